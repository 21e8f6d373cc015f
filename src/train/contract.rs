//! The model contract: what every trainable model provides ([`JetModel`]: a loss per batch and
//! what "best" means), what it reads from a batch ([`Needs`]), the batch as it reaches the model
//! ([`Inputs`]) and the randomness a step may draw ([`Noise`]). Classifiers implement the
//! narrower [`Classifier`] (logits; BCE and "best = highest validation AUC" come with it);
//! generative models implement [`JetModel`] themselves ("best = lowest validation loss"). The
//! training loop (`fit`), evaluation and the registry (`models`) are written against these
//! traits alone, so adding a model is one file under `models/` and one registry line.

use burn::prelude::*;

/// What a model reads from a batch; what it does not read is never uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// `[B, R, F]` point features.
    pub points: bool,
    /// `[B, R]` point mask (1 real, 0 padding).
    pub mask: bool,
    /// `[B, R, k]` kNN indices and their mask (the loader must load neighbours).
    pub neighbours: bool,
    /// Without `jet_inputs` in the YAML, take every numeric column of the `jets` table (the
    /// features baseline) rather than none (point-cloud models).
    pub all_jet_inputs_by_default: bool,
    /// `[B, C, H, W]` images (the loader's `image:` view must be set).
    pub image: bool,
}

/// A batch on a device, holding only what the model [`Needs`].
#[derive(Debug, Clone)]
pub struct Inputs {
    /// `[B, R, F]` features, zero-padded.
    pub points: Option<Tensor<3>>,
    /// `[B, R]` 1.0 for real points, 0.0 for padding.
    pub mask: Option<Tensor<2>>,
    /// `[B, R, k]` neighbour indices (padding = the point's own index).
    pub neighbours: Option<Tensor<3, Int>>,
    /// `[B, R, k]` 1.0 for real neighbours.
    pub neighbour_mask: Option<Tensor<3>>,
    /// `[B, J]` standardised jet-level inputs, when the run has them.
    pub jets: Option<Tensor<2>>,
    /// `[B, C, H, W]` images of the loader's image view.
    pub image: Option<Tensor<4>>,
}

impl Inputs {
    /// The points; the model declared [`Needs::points`].
    pub fn points(&self) -> Tensor<3> {
        self.points
            .clone()
            .expect("model contract: `Needs::points` is set for a model that reads points")
    }

    /// The images; the model declared [`Needs::image`].
    pub fn image(&self) -> Tensor<4> {
        self.image
            .clone()
            .expect("model contract: `Needs::image` is set for a model that reads images")
    }

    /// The point mask; the model declared [`Needs::mask`].
    pub fn mask(&self) -> Tensor<2> {
        self.mask
            .clone()
            .expect("model contract: `Needs::mask` is set for a model that reads the mask")
    }
}

/// The sizes a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Features per point (F).
    pub features: usize,
    /// Jet-level inputs (J; 0 when the run has none).
    pub jet_inputs: usize,
    /// Points per jet (R, the loader's resolution).
    pub resolution: usize,
    /// `[C, H, W]` of the loader's images (all 0 without the image view).
    pub image: [usize; 3],
}

/// What the best checkpoint of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// The highest validation ROC AUC (classifiers).
    MaxAuc,
    /// The lowest validation loss (generative models; the loss is drawn with the same noise
    /// every epoch, so epochs compare).
    MinLoss,
}

/// Randomness of one training or validation step, drawn on the host from a generator seeded
/// by (run seed, step): a resumed run draws exactly what the uninterrupted run drew, and no
/// model shares Burn's global RNG.
#[derive(Debug)]
pub struct Noise {
    rng: rand::rngs::StdRng,
}

impl Noise {
    /// The generator of stream `stream` (e.g. the optimiser step) of seed `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        use rand::SeedableRng;
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&stream.to_le_bytes());
        key[16..24].copy_from_slice(b"jetpipe\0");
        Self {
            rng: rand::rngs::StdRng::from_seed(key),
        }
    }

    /// `n` standard normal draws.
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        use rand::RngExt;
        (0..n)
            .map(|_| self.rng.sample(rand_distr::StandardNormal))
            .collect()
    }

    /// A tensor of standard normal draws.
    pub fn normal<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Tensor<D> {
        let v = self.normals(shape.iter().product());
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    /// `n` uniform draws in [0, 1).
    pub fn uniforms(&mut self, n: usize) -> Vec<f32> {
        use rand::RngExt;
        (0..n).map(|_| self.rng.random::<f32>()).collect()
    }

    /// `n` uniform integers in `0..below`.
    pub fn integers(&mut self, n: usize, below: usize) -> Vec<usize> {
        use rand::RngExt;
        (0..n).map(|_| self.rng.random_range(0..below)).collect()
    }
}

/// What a training step gives a model besides its inputs.
#[derive(Debug)]
pub struct Step<'a> {
    /// `[B]` labels as stored (`y`: conditional models read them; classifiers are scored
    /// against them).
    pub labels: Tensor<1, Int>,
    /// The step's randomness.
    pub noise: &'a mut Noise,
    /// Fraction of the training done, 0 to 1 (annealed loss weights); 1 in validation.
    pub progress: f64,
}

/// A step's result.
#[derive(Debug, Clone)]
pub struct Objective {
    /// `[1]` the loss to minimise, the mean over the batch's jets.
    pub loss: Tensor<1>,
    /// `[B]` logits of a classifier (scored for AUC), `None` for generative models.
    pub logits: Option<Tensor<1>>,
}

/// A trainable model: its loss on a batch and what its best checkpoint is. Every
/// [`Classifier`] is one; generative models implement it directly.
pub trait JetModel: Module + Clone + std::fmt::Debug + Send + 'static {
    /// What the best checkpoint of a run is.
    const GOAL: Goal;

    /// The loss of a batch (and a classifier's logits).
    fn objective(&self, x: &Inputs, step: &mut Step) -> Objective;

    /// Logits `[B]` of a classifier; `None` for a model that does not classify.
    fn scores(&self, x: &Inputs) -> Option<Tensor<1>>;

    /// Trainable parameters as PyTorch counts them.
    fn parameters(&self) -> usize;

    /// Decay of the exponential moving average of the weights that the loop keeps for
    /// validation, the best checkpoint and sampling; `None`: no average.
    fn ema_decay(&self) -> Option<f64> {
        None
    }

    /// The model as a generator of jet images, if it is one.
    fn generator(&self) -> Option<&dyn ImageGenerator> {
        None
    }
}

/// How a generative model samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Diffusion reconstruction: the fraction t₀/T of the noise schedule real jets are noised
    /// to before being denoised back (SDEdit).
    pub t0: f64,
    /// Diffusion: denoising steps over the whole schedule; `None`: ancestral sampling over all
    /// T steps, else DDIM with that many steps.
    pub steps: Option<usize>,
    /// Classifier-free guidance weight w (conditional models): ε = (1 + w)·ε(c) − w·ε(∅).
    pub guidance: f64,
    /// Output pixels below this value (in the model's transformed units) are set to 0.
    pub threshold: f32,
    /// Diffusion reconstruction by DDIM inversion to t₀ and DDIM decoding back (deterministic)
    /// instead of noising (SDEdit).
    pub invert: bool,
    /// Diffusion: the data range the predicted x̂₀ is clamped to at every sampling step.
    pub clip: Option<(f32, f32)>,
}

/// A model that generates jet images (in the loader's transformed units, `[B, C, H, W]`).
pub trait ImageGenerator {
    /// Reconstructions of real `images` with labels `labels`.
    fn reconstruct(
        &self,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
        how: &Sampling,
        noise: &mut Noise,
    ) -> Tensor<4>;

    /// New images, one per label (`labels` matter to conditional models only).
    fn generate(&self, labels: Tensor<1, Int>, how: &Sampling, noise: &mut Noise) -> Tensor<4>;

    /// Whether generated images follow the labels asked for.
    fn conditional(&self) -> bool;

    /// Whether reconstructions depend on `Sampling::t0` (diffusion) rather than being one
    /// encoding and decoding (VAE).
    fn noises(&self) -> bool;
}

impl<M: Classifier> JetModel for M {
    const GOAL: Goal = Goal::MaxAuc;

    fn objective(&self, x: &Inputs, step: &mut Step) -> Objective {
        let logits = self.logits(x);
        let loss = burn::nn::loss::BinaryCrossEntropyLossConfig::new()
            .with_logits(true)
            .init(&logits.device())
            .forward(logits.clone(), step.labels.clone());
        Objective {
            loss,
            logits: Some(logits),
        }
    }

    fn scores(&self, x: &Inputs) -> Option<Tensor<1>> {
        Some(self.logits(x))
    }

    fn parameters(&self) -> usize {
        self.trainable_params()
    }
}

/// A binary jet classifier trained with BCE on its logits; "best" is the highest validation
/// AUC.
pub trait Classifier: Module + Clone + std::fmt::Debug + Send + 'static {
    /// Logits `[B]` of a batch.
    fn logits(&self, x: &Inputs) -> Tensor<1>;

    /// Trainable parameters as PyTorch counts them (Burn's `num_params` also counts buffers
    /// such as BatchNorm running statistics; models with buffers override this).
    fn trainable_params(&self) -> usize {
        self.num_params()
    }
}

/// Builds a model of the given sizes on a device (what the registry hands the loop).
pub type Make<'a, M> = &'a dyn Fn(&Device, Dims) -> M;
