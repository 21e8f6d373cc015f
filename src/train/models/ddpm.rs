//! A denoising diffusion model of jet images (`model: {ddpm: {…}}`, Ho et al. 2020): the
//! UNet of `nn::unet` predicts the noise ε of x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε at a uniformly drawn
//! step t (or, with `prediction: v`, the velocity v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀); the loss is the
//! mean squared error of that target over the pixels. Optionally conditional on
//! the label (`y`): the label is replaced by "no label" with probability `p_uncond` in
//! training, so sampling can use classifier-free guidance. Sampling, reconstruction (SDEdit:
//! noise a real jet to t₀ and denoise it back) and DDIM inversion are `nn::diffusion`'s; the
//! loop keeps an exponential moving average of the weights (`ema`) that validation, the best
//! checkpoint and sampling use.
//!
//! Energies are non-negative and ~97 % of pixels are 0: the model learns the loader's image
//! view (normally log1p of the energies, scaled to about unit range), and its samples are
//! made detector-like (`nn::image::detector_like`: negatives to 0, pixels below the
//! threshold suppressed), as the detector's zero suppression does.

use crate::train::contract::{
    Dims, Goal, ImageGenerator, Inputs, JetModel, Needs, Noise, Objective, Sampling, Step,
};
use crate::train::nn::diffusion::{BetaSchedule, Prediction, Schedule};
use crate::train::nn::image::detector_like;
use crate::train::nn::unet::{UNet, UNetSizes};
use burn::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The model's YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DdpmConfig {
    /// Width of the UNet's first level.
    #[serde(default = "base")]
    pub base: usize,
    /// Width multiplier per level (1 to 4 levels; the image halves at each level).
    #[serde(default = "mults")]
    pub mults: Vec<usize>,
    /// Residual blocks per level.
    #[serde(default = "one")]
    pub blocks: usize,
    /// Self-attention at the lowest resolution.
    #[serde(default = "yes")]
    pub attention: bool,
    /// Diffusion steps T.
    #[serde(default = "timesteps")]
    pub timesteps: usize,
    /// β schedule.
    #[serde(default = "cosine")]
    pub schedule: BetaSchedule,
    /// What the UNet predicts: the noise ε (Ho et al.) or the velocity v (Salimans & Ho
    /// 2022), which does not amplify the network's errors at the high-noise steps.
    #[serde(default)]
    pub prediction: Prediction,
    /// Condition on the label (quark/gluon) with classifier-free guidance.
    #[serde(default = "yes")]
    pub conditional: bool,
    /// Probability that a training jet's label is dropped (the unconditional model of
    /// classifier-free guidance).
    #[serde(default = "p_uncond")]
    pub p_uncond: f64,
    /// Dropout in the residual blocks. Its masks come from Burn's global RNG, not from the
    /// step's seeded noise: a resumed run with dropout > 0 does not redraw the same masks.
    #[serde(default)]
    pub dropout: f64,
    /// Decay of the exponential moving average of the weights (0: none).
    #[serde(default = "ema")]
    pub ema: f64,
}

fn base() -> usize {
    32
}
fn mults() -> Vec<usize> {
    vec![1, 2, 2]
}
fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn timesteps() -> usize {
    1000
}
fn cosine() -> BetaSchedule {
    BetaSchedule::Cosine
}
fn p_uncond() -> f64 {
    0.1
}
fn ema() -> f64 {
    0.999
}

/// Classes of the conditioning label: the file's `y` of 0 or 1.
const CLASSES: usize = 2;

impl DdpmConfig {
    /// E.g. `DDPM 32×[1, 2, 2], T 1000 cosine, conditional`.
    pub fn title(&self) -> String {
        let s = serde_json::to_value(self.schedule)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        format!(
            "DDPM {}×{:?}, T {} {s}{}{}",
            self.base,
            self.mults,
            self.timesteps,
            if self.prediction == Prediction::V {
                ", v-prediction"
            } else {
                ""
            },
            if self.conditional {
                ", conditional"
            } else {
                ""
            }
        )
    }

    /// Images (and the labels, which every step gets).
    pub fn needs(&self) -> Needs {
        Needs {
            points: false,
            mask: false,
            neighbours: false,
            all_jet_inputs_by_default: false,
            image: true,
        }
    }

    /// Sizes the model cannot be built with, as a message.
    pub fn invalid(&self) -> Option<String> {
        if !(1..=4).contains(&self.mults.len()) || self.mults.contains(&0) || self.base == 0 {
            return Some("ddpm: `mults` needs 1 to 4 positive entries, `base` > 0".into());
        }
        if self.blocks == 0 || self.timesteps < 2 {
            return Some("ddpm: `blocks` must be ≥ 1 and `timesteps` ≥ 2".into());
        }
        if !(0.0..1.0).contains(&self.p_uncond)
            || !(0.0..1.0).contains(&self.dropout)
            || !(0.0..1.0).contains(&self.ema)
        {
            return Some("ddpm: `p_uncond`, `dropout` and `ema` must be within [0, 1)".into());
        }
        None
    }
}

/// The diffusion model.
#[derive(Module, Debug)]
pub struct Ddpm {
    unet: UNet,
    #[module(skip)]
    schedule: Schedule,
    conditional: bool,
    p_uncond: f64,
    ema: f64,
    /// `[C, H, W]` of the images.
    image: [usize; 3],
}

impl Ddpm {
    /// A model of `dims.image` images.
    pub fn new(c: &DdpmConfig, dims: Dims, d: &Device) -> Self {
        let mut mults = [1; 4];
        mults[..c.mults.len()].copy_from_slice(&c.mults);
        let sizes = UNetSizes {
            image_channels: dims.image[0],
            base: c.base,
            mults,
            levels: c.mults.len(),
            blocks: c.blocks,
            attention: c.attention,
            classes: if c.conditional { CLASSES } else { 0 },
            dropout: c.dropout,
        };
        Self {
            unet: UNet::new(sizes, d),
            schedule: Schedule::new(c.schedule, c.timesteps).predicting(c.prediction),
            conditional: c.conditional,
            p_uncond: c.p_uncond,
            ema: c.ema,
            image: dims.image,
        }
    }

    /// Class indices of labels: 0 or 1 as the file's `y`, anything else "no label".
    fn classes(&self, labels: &[i64], drop: Option<&[f32]>, d: &Device) -> Tensor<1, Int> {
        let null = self.unet.null_class() as i64;
        let v: Vec<i64> = labels
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                let dropped = drop.is_some_and(|u| u[i] < self.p_uncond as f32);
                if (0..CLASSES as i64).contains(&y) && !dropped {
                    y
                } else {
                    null
                }
            })
            .collect();
        Tensor::from_data(TensorData::new(v, [labels.len()]), d)
    }

    /// The network's output (ε or v) for `x` at step `t` (every image), guided by weight `w`
    /// towards `classes` (linear in the output, so the same for ε and v).
    fn guided_output(
        &self,
        x: Tensor<4>,
        t: usize,
        classes: &Option<Tensor<1, Int>>,
        w: f64,
    ) -> Tensor<4> {
        let b = x.dims()[0];
        let steps = vec![t; b];
        match classes {
            Some(c) if w != 0.0 => {
                let null = Tensor::<1, Int>::full([b], self.unet.null_class() as i64, &x.device());
                let both = self.unet.forward(
                    Tensor::cat(vec![x.clone(), x], 0),
                    &[steps.clone(), steps].concat(),
                    Some(Tensor::cat(vec![c.clone(), null], 0)),
                );
                let [_, ch, h, wd] = both.dims();
                let cond = both.clone().slice([0..b, 0..ch, 0..h, 0..wd]);
                let unc = both.slice([b..2 * b, 0..ch, 0..h, 0..wd]);
                cond.mul_scalar(1.0 + w) - unc.mul_scalar(w)
            }
            c => self.unet.forward(x, &steps, c.clone()),
        }
    }

    /// The conditioning classes of `labels` for sampling (`None`: unconditional model).
    fn sample_classes(&self, labels: &Tensor<1, Int>) -> Option<Tensor<1, Int>> {
        if !self.conditional {
            return None;
        }
        let v: Vec<i64> = labels
            .clone()
            .try_into_vec_as::<i64>()
            .expect("labels read back from the device");
        Some(self.classes(&v, None, &labels.device()))
    }

    /// The step index of fraction `f` of the schedule (at least the first step).
    fn step_of(&self, f: f64) -> usize {
        let t = self.schedule.steps();
        ((f * t as f64).round() as usize).clamp(1, t) - 1
    }

    /// Runs `how`'s sampler from `x` at step `from`.
    fn denoise(
        &self,
        x: Tensor<4>,
        from: usize,
        classes: &Option<Tensor<1, Int>>,
        how: &Sampling,
        noise: &mut Noise,
    ) -> Tensor<4> {
        let mut net = |x: Tensor<4>, t: usize| self.guided_output(x, t, classes, how.guidance);
        let out = match how.steps {
            None => self.schedule.ancestral(x, from, &mut net, noise, how.clip),
            Some(n) => {
                let n = ((n * (from + 1)) as f64 / self.schedule.steps() as f64).ceil() as usize;
                self.schedule.ddim(x, from, n.max(1), &mut net, how.clip)
            }
        };
        detector_like(out, how.threshold)
    }

    /// DDIM inversion of real `images` to fraction `how.t0` of the schedule and DDIM decoding
    /// back (a deterministic round trip; `how.steps` steps over the whole schedule, 50 if
    /// unset).
    pub fn invert_and_decode(
        &self,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
        how: &Sampling,
    ) -> Tensor<4> {
        let classes = self.sample_classes(&labels);
        let to = self.step_of(how.t0);
        let n = how.steps.unwrap_or(50);
        let n = ((n * (to + 1)) as f64 / self.schedule.steps() as f64)
            .ceil()
            .max(1.0) as usize;
        let mut net = |x: Tensor<4>, t: usize| self.guided_output(x, t, &classes, how.guidance);
        let z = self.schedule.ddim_invert(images, to, n, &mut net);
        detector_like(
            self.schedule.ddim(z, to, n, &mut net, how.clip),
            how.threshold,
        )
    }
}

impl JetModel for Ddpm {
    const GOAL: Goal = Goal::MinLoss;

    fn objective(&self, x: &Inputs, step: &mut Step) -> Objective {
        let x0 = x.image();
        let d = x0.device();
        let shape = x0.dims();
        let b = shape[0];
        let t = step.noise.integers(b, self.schedule.steps());
        let eps = step.noise.normal(shape, &d);
        let xt = self.schedule.q_sample(x0.clone(), &t, eps.clone());
        let target = self.schedule.target(x0, &t, eps);
        let classes = self.conditional.then(|| {
            let labels: Vec<i64> = step
                .labels
                .clone()
                .try_into_vec_as::<i64>()
                .expect("labels read back from the device");
            let drop = step.noise.uniforms(b);
            self.classes(&labels, Some(&drop), &d)
        });
        let pred = self.unet.forward(xt, &t, classes);
        Objective {
            loss: (pred - target).powi_scalar(2).mean(),
            logits: None,
        }
    }

    fn scores(&self, _: &Inputs) -> Option<Tensor<1>> {
        None
    }

    fn parameters(&self) -> usize {
        self.num_params()
    }

    fn generator(&self) -> Option<&dyn ImageGenerator> {
        Some(self)
    }

    fn ema_decay(&self) -> Option<f64> {
        (self.ema > 0.0).then_some(self.ema)
    }
}

impl ImageGenerator for Ddpm {
    /// SDEdit: noise to t₀ = `how.t0`·T, denoise back (ancestral, or DDIM with a share of
    /// `how.steps`); with `how.invert`, DDIM inversion to t₀ and DDIM decoding instead.
    fn reconstruct(
        &self,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
        how: &Sampling,
        noise: &mut Noise,
    ) -> Tensor<4> {
        if how.invert {
            return self.invert_and_decode(images, labels, how);
        }
        let classes = self.sample_classes(&labels);
        let from = self.step_of(how.t0);
        let shape = images.dims();
        let eps = noise.normal(shape, &images.device());
        let xt = self.schedule.q_sample(images, &vec![from; shape[0]], eps);
        self.denoise(xt, from, &classes, how, noise)
    }

    /// From pure noise at the last step.
    fn generate(&self, labels: Tensor<1, Int>, how: &Sampling, noise: &mut Noise) -> Tensor<4> {
        let classes = self.sample_classes(&labels);
        let [ch, h, w] = self.image;
        let x = noise.normal([labels.dims()[0], ch, h, w], &labels.device());
        self.denoise(x, self.schedule.steps() - 1, &classes, how, noise)
    }

    fn conditional(&self) -> bool {
        self.conditional
    }

    fn noises(&self) -> bool {
        true
    }
}
