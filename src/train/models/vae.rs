//! A variational autoencoder of jet images (`model: {vae: {…}}`), in the form of the seeds'
//! VAEs (GINIE Common Task 01, the e/γ task): an encoder of four [Conv 3×3 stride 2, BatchNorm,
//! LeakyReLU 0.2] blocks, linear μ and log σ², and the mirrored decoder (Linear, then
//! ConvTranspose 3×3 stride 2 blocks back to the image).
//!
//! Loss per jet: Σ_pixels (x̂ − x)² + β_t · KL(q(z|x) ‖ N(0, 1)), averaged over the batch (at
//! β = 1 the negative ELBO of a Gaussian decoder of variance ½, up to a constant), with
//! β annealed linearly from 0 to `beta` over the first `beta_warmup` of training (validation
//! uses the full β, so epochs compare). Images are the loader's image view, normally
//! `log1p` of the energies: the decoder's output is unbounded; reconstructions and samples are
//! made detector-like (negatives to 0, pixels below the threshold suppressed) by
//! `nn::image::detector_like`. Images whose sides are not multiples of 16 are zero-padded for
//! the encoder and the decoder's output is cropped back.

use crate::train::contract::{
    Dims, ImageGenerator, Inputs, JetModel, Needs, Noise, Objective, Sampling, Step,
};
use crate::train::nn::image::{crop, detector_like, pad_to};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The model's YAML.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Channels of the four encoder blocks (the decoder mirrors them).
    #[serde(default = "channels")]
    pub channels: [usize; 4],
    /// Latent dimensions.
    #[serde(default = "latent")]
    pub latent: usize,
    /// Weight of the KL term after the warm-up.
    #[serde(default = "one")]
    pub beta: f64,
    /// Fraction of training over which β rises linearly from 0 (0: the full β from the start).
    #[serde(default = "warmup")]
    pub beta_warmup: f64,
}

fn channels() -> [usize; 4] {
    [32, 64, 128, 256]
}
fn latent() -> usize {
    32
}
fn one() -> f64 {
    1.0
}
fn warmup() -> f64 {
    0.3
}

/// The encoder's total stride (four stride-2 blocks).
const STRIDE: usize = 16;

impl VaeConfig {
    /// E.g. `VAE 32-64-128-256, latent 32`.
    pub fn title(&self) -> String {
        let [a, b, c, d] = self.channels;
        format!("VAE {a}-{b}-{c}-{d}, latent {}", self.latent)
    }

    /// Images only.
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
        if self.channels.contains(&0) || self.latent == 0 {
            return Some("vae: `channels` and `latent` must be positive".into());
        }
        if !(self.beta >= 0.0 && (0.0..=1.0).contains(&self.beta_warmup)) {
            return Some("vae: `beta` must be ≥ 0 and `beta_warmup` within [0, 1]".into());
        }
        None
    }

    /// β at training progress `p` (0 to 1).
    pub fn beta_at(&self, p: f64) -> f64 {
        if self.beta_warmup == 0.0 {
            self.beta
        } else {
            self.beta * (p / self.beta_warmup).min(1.0)
        }
    }
}

/// Conv (or transposed conv), BatchNorm, LeakyReLU 0.2.
#[derive(Module, Debug)]
struct Down {
    conv: Conv2d,
    bn: BatchNorm,
}

#[derive(Module, Debug)]
struct Up {
    conv: ConvTranspose2d,
    bn: BatchNorm,
}

fn up(i: usize, o: usize, d: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new([i, o], [3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_padding_out([1, 1])
        .init(d)
}

/// The VAE.
#[derive(Module, Debug)]
pub struct Vae {
    down: Vec<Down>,
    mu: Linear,
    logvar: Linear,
    from_latent: Linear,
    up: Vec<Up>,
    out: ConvTranspose2d,
    /// `[C, H, W]` of the images.
    image: [usize; 3],
    #[module(skip)]
    cfg: VaeConfig,
    bn_channels: usize,
}

impl Vae {
    /// A VAE of `dims.image` images.
    pub fn new(c: VaeConfig, dims: Dims, d: &Device) -> Self {
        let [ch, h, w] = dims.image;
        let (hh, ww) = (h.div_ceil(STRIDE), w.div_ceil(STRIDE));
        let ins = [ch, c.channels[0], c.channels[1], c.channels[2]];
        let down = ins
            .iter()
            .zip(c.channels)
            .map(|(&i, o)| Down {
                conv: Conv2dConfig::new([i, o], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(d),
                bn: BatchNormConfig::new(o).init(d),
            })
            .collect();
        let flat = c.channels[3] * hh * ww;
        let up_ch = [c.channels[3], c.channels[2], c.channels[1], c.channels[0]];
        let ups = (0..3)
            .map(|i| Up {
                conv: up(up_ch[i], up_ch[i + 1], d),
                bn: BatchNormConfig::new(up_ch[i + 1]).init(d),
            })
            .collect();
        Self {
            down,
            mu: LinearConfig::new(flat, c.latent).init(d),
            logvar: LinearConfig::new(flat, c.latent).init(d),
            from_latent: LinearConfig::new(c.latent, flat).init(d),
            up: ups,
            out: up(c.channels[0], ch, d),
            image: dims.image,
            cfg: c,
            bn_channels: 2 * c.channels.iter().sum::<usize>() - c.channels[3],
        }
    }

    /// μ and log σ² `[B, latent]` of images `[B, C, H, W]` (log σ² clamped to [−30, 20] so
    /// σ² never overflows).
    pub fn encode(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let mut h = pad_to(x, STRIDE);
        for b in &self.down {
            h = leaky_relu(b.bn.forward(b.conv.forward(h)), 0.2);
        }
        let h = h.flatten::<2>(1, 3);
        let logvar = self.logvar.forward(h.clone()).clamp(-30.0, 20.0);
        (self.mu.forward(h), logvar)
    }

    /// Images `[B, C, H, W]` (unbounded) of latents `[B, latent]`.
    pub fn decode(&self, z: Tensor<2>) -> Tensor<4> {
        let [_, h, w] = self.image;
        let (hh, ww) = (h.div_ceil(STRIDE), w.div_ceil(STRIDE));
        let b = z.dims()[0];
        let c = self.up[0].conv.channels[0];
        let mut x = self.from_latent.forward(z).reshape([b, c, hh, ww]);
        for u in &self.up {
            x = leaky_relu(u.bn.forward(u.conv.forward(x)), 0.2);
        }
        crop(self.out.forward(x), h, w)
    }

    /// Reconstruction term, KL term (both `[B]`) and the reconstructions of `x` with latent
    /// noise `eps` `[B, latent]`.
    fn terms(&self, x: Tensor<4>, eps: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        let (mu, logvar) = self.encode(x.clone());
        let z = mu.clone() + eps * logvar.clone().mul_scalar(0.5).exp();
        let r = self.decode(z);
        let rec = (r - x).powi_scalar(2).flatten::<2>(1, 3).sum_dim(1);
        let kl = (logvar.clone().exp() + mu.powi_scalar(2) - logvar - 1.0)
            .sum_dim(1)
            .mul_scalar(0.5);
        (rec.flatten(0, 1), kl.flatten(0, 1))
    }
}

impl JetModel for Vae {
    const GOAL: crate::train::contract::Goal = crate::train::contract::Goal::MinLoss;

    fn objective(&self, x: &Inputs, step: &mut Step) -> Objective {
        let img = x.image();
        let b = img.dims()[0];
        let eps = step.noise.normal([b, self.cfg.latent], &img.device());
        let (rec, kl) = self.terms(img, eps);
        let beta = self.cfg.beta_at(step.progress);
        Objective {
            loss: (rec + kl.mul_scalar(beta)).mean(),
            logits: None,
        }
    }

    fn scores(&self, _: &Inputs) -> Option<Tensor<1>> {
        None
    }

    fn parameters(&self) -> usize {
        self.num_params() - 2 * self.bn_channels
    }

    fn generator(&self) -> Option<&dyn ImageGenerator> {
        Some(self)
    }
}

impl ImageGenerator for Vae {
    /// The decoded posterior mean: x̂ = decode(μ(x)).
    fn reconstruct(
        &self,
        images: Tensor<4>,
        _: Tensor<1, Int>,
        how: &Sampling,
        _: &mut Noise,
    ) -> Tensor<4> {
        let (mu, _) = self.encode(images);
        detector_like(self.decode(mu), how.threshold)
    }

    /// Decoded draws z ~ N(0, 1) (the VAE is unconditional: labels only set the count).
    fn generate(&self, labels: Tensor<1, Int>, how: &Sampling, noise: &mut Noise) -> Tensor<4> {
        let z = noise.normal([labels.dims()[0], self.cfg.latent], &labels.device());
        detector_like(self.decode(z), how.threshold)
    }

    fn conditional(&self) -> bool {
        false
    }

    fn noises(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(h: usize, w: usize) -> Dims {
        Dims {
            features: 0,
            jet_inputs: 0,
            resolution: 256,
            image: [3, h, w],
        }
    }

    fn cfg(yaml: &str) -> VaeConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn parameter_count_is_the_sum_of_its_layers() {
        // 32 × 32 images: the encoder ends at 256 × 2 × 2 = 1024 features.
        let m = Vae::new(cfg("{}"), dims(32, 32), &Device::flex());
        let conv = |i: usize, o: usize| 9 * i * o + o;
        let enc = conv(3, 32) + conv(32, 64) + conv(64, 128) + conv(128, 256);
        let bn = 2 * (32 + 64 + 128 + 256) + 2 * (128 + 64 + 32);
        let lin = 2 * (1024 * 32 + 32) + (32 * 1024 + 1024);
        let dec = conv(256, 128) + conv(128, 64) + conv(64, 32) + conv(32, 3);
        assert_eq!(m.parameters(), enc + bn + lin + dec);
    }

    #[test]
    fn shapes_round_trip_for_sides_that_are_not_multiples_of_16() {
        let d = Device::flex();
        let m = Vae::new(cfg("{latent: 8}"), dims(63, 40), &d);
        let x = Tensor::<4>::ones([2, 3, 63, 40], &d);
        let (mu, lv) = m.encode(x.clone());
        assert_eq!(mu.dims(), [2, 8]);
        assert_eq!(lv.dims(), [2, 8]);
        assert_eq!(m.decode(mu).dims(), [2, 3, 63, 40]);
    }

    #[test]
    fn loss_is_reconstruction_plus_annealed_kl() {
        let d = Device::flex();
        let m = Vae::new(
            cfg("{latent: 4, beta: 2.0, beta_warmup: 0.5}"),
            dims(16, 16),
            &d,
        )
        .valid();
        let v: Vec<f32> = (0..2 * 3 * 256)
            .map(|i| ((i * 37) % 11) as f32 / 10.0)
            .collect();
        let img = Tensor::<4>::from_data(TensorData::new(v, [2, 3, 16, 16]), &d);
        let x = Inputs {
            points: None,
            mask: None,
            neighbours: None,
            neighbour_mask: None,
            jets: None,
            image: Some(img.clone()),
        };
        // The same noise the objective draws, applied by hand.
        let eps = Noise::new(3, 4).normal([2, 4], &d);
        let (rec, kl) = m.terms(img.clone(), eps.clone());
        let (rec, kl): (Vec<f32>, Vec<f32>) = (
            rec.try_into_vec_as::<f32>().unwrap(),
            kl.try_into_vec_as::<f32>().unwrap(),
        );
        // Independent KL: ½ Σ (σ² + μ² − 1 − log σ²) from μ, log σ².
        let (mu, lv) = m.encode(img);
        let (mu, lv): (Vec<f32>, Vec<f32>) = (
            mu.try_into_vec_as::<f32>().unwrap(),
            lv.try_into_vec_as::<f32>().unwrap(),
        );
        for j in 0..2 {
            let want: f32 = (0..4)
                .map(|i| {
                    let (m, l) = (mu[j * 4 + i], lv[j * 4 + i]);
                    0.5 * (l.exp() + m * m - 1.0 - l)
                })
                .sum();
            assert!(
                (kl[j] - want).abs() < 1e-4 * want.abs().max(1.0),
                "{} {want}",
                kl[j]
            );
            assert!(rec[j] > 0.0);
        }
        for (progress, beta) in [(0.0, 0.0), (0.25, 1.0), (0.9, 2.0)] {
            let mut noise = Noise::new(3, 4);
            let mut step = Step {
                labels: Tensor::from_data(TensorData::new(vec![0i64, 1], [2]), &d),
                noise: &mut noise,
                progress,
            };
            let loss: f32 = m.objective(&x, &mut step).loss.into_scalar();
            let want = (rec[0] + rec[1] + beta * (kl[0] + kl[1])) / 2.0;
            assert!(
                (loss - want).abs() < 1e-3 * want,
                "β {beta}: {loss} vs {want}"
            );
        }
    }

    #[test]
    fn reconstructions_and_samples_are_detector_like() {
        let d = Device::flex();
        let m = Vae::new(cfg("{latent: 4}"), dims(16, 16), &d).valid();
        let how = Sampling {
            t0: 0.0,
            steps: None,
            guidance: 0.0,
            threshold: 0.05,
            invert: false,
            clip: None,
        };
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 1], [3]), &d);
        let g = m.generate(labels.clone(), &how, &mut Noise::new(1, 2));
        assert_eq!(g.dims(), [3, 3, 16, 16]);
        let r = m.reconstruct(
            Tensor::ones([3, 3, 16, 16], &d),
            labels,
            &how,
            &mut Noise::new(1, 2),
        );
        for t in [g, r] {
            let v: Vec<f32> = t.try_into_vec_as::<f32>().unwrap();
            assert!(v.iter().all(|&p| p == 0.0 || p >= 0.05));
        }
    }
}
