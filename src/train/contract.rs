//! The model contract: what every trainable jet classifier provides ([`Classifier`]), what it
//! reads from a batch ([`Needs`]), and the batch as it reaches the model ([`Inputs`]). The
//! training loop (`fit`), evaluation and the registry (`models`) are written against this
//! trait alone, so adding a model is one file under `models/` and one registry line.

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
}

impl Inputs {
    /// The points; the model declared [`Needs::points`].
    pub fn points(&self) -> Tensor<3> {
        self.points
            .clone()
            .expect("model contract: `Needs::points` is set for a model that reads points")
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
