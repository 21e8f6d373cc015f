//! The same training steps on two devices: a registered model is initialised once on the
//! reference device (the CPU), copied to the device under test (CUDA, or wgpu on Mesa's lavapipe
//! in CI), and both copies take the same AdamW steps on the same synthetic batch. The
//! losses must agree step by step within a stated tolerance: this executes every kernel a
//! model's forward, backward and optimiser step compile to on the device, which a build or a
//! `cargo check` of the GPU feature never does. `pipeline device-check` prints the table.
//!
//! The batch is drawn on the host from a seeded generator ([`Noise`]), so both devices get the
//! same bytes; models that draw from the device's RNG while training (dropout) must be given
//! `dropout: 0` here, since two backends draw different masks.

use crate::error::{Error, Result};
use crate::train::contract::{Dims, Inputs, JetModel, Make, Needs, Noise, Step};
use crate::train::models::{ModelSpec, ModelVisitor};
use crate::train::run::seeded;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use std::time::Instant;

/// The synthetic batch: sizes of a real one, values from a seeded host generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synthetic {
    /// Jets per batch.
    pub batch: usize,
    /// Points per jet for models made for any resolution (others use their own).
    pub resolution: usize,
    /// Features per point.
    pub features: usize,
    /// Neighbours per point of the kNN lists.
    pub k: usize,
    /// Jet-level inputs of models that read every `jets` column by default (the baseline).
    pub jet_inputs: usize,
    /// `[C, H, W]` of image models' inputs.
    pub image: [usize; 3],
}

impl Default for Synthetic {
    fn default() -> Self {
        Self {
            batch: 8,
            resolution: 64,
            features: 9,
            k: 16,
            jet_inputs: 30,
            image: [3, 16, 16],
        }
    }
}

impl Synthetic {
    /// The sizes a model reading `needs` at `resolution` points is built for.
    pub fn dims(&self, needs: Needs, resolution: usize) -> Dims {
        Dims {
            features: self.features,
            jet_inputs: if needs.all_jet_inputs_by_default {
                self.jet_inputs
            } else {
                0
            },
            resolution,
            image: if needs.image { self.image } else { [0; 3] },
        }
    }

    /// Real points of jet `b` at resolution `r`: between 2 and `r`, spread over the batch so
    /// that some jets are shorter than k + 1 and some fill every slot.
    pub fn points_of(&self, b: usize, r: usize) -> usize {
        2 + (b * 7919 + 3) % (r - 1)
    }

    /// The batch for a model reading `needs` (built for `dims`) on `device`, and its labels.
    pub fn inputs(&self, needs: Needs, dims: Dims, device: &Device) -> (Inputs, Tensor<1, Int>) {
        let (bs, r, f, k) = (self.batch, dims.resolution, self.features, self.k);
        let mut noise = Noise::new(22, 0);
        let mask: Vec<f32> = (0..bs * r)
            .map(|i| f32::from(u8::from(i % r < self.points_of(i / r, r))))
            .collect();
        let points: Vec<f32> = noise
            .normals(bs * r * f)
            .into_iter()
            .enumerate()
            .map(|(i, v)| v * mask[i / f])
            .collect();
        let (nb, nm) = neighbour_lists(bs, r, k, |b| self.points_of(b, r));
        let [c, h, w] = dims.image;
        let image: Vec<f32> = noise
            .normals(bs * c * h * w)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let jets = noise.normals(bs * dims.jet_inputs);
        let x = Inputs {
            points: needs
                .points
                .then(|| Tensor::from_data(TensorData::new(points, [bs, r, f]), device)),
            mask: (needs.mask || needs.neighbours)
                .then(|| Tensor::from_data(TensorData::new(mask, [bs, r]), device)),
            neighbours: needs
                .neighbours
                .then(|| Tensor::from_data(TensorData::new(nb, [bs, r, k]), device)),
            neighbour_mask: needs
                .neighbours
                .then(|| Tensor::from_data(TensorData::new(nm, [bs, r, k]), device)),
            jets: (dims.jet_inputs > 0)
                .then(|| Tensor::from_data(TensorData::new(jets, [bs, dims.jet_inputs]), device)),
            image: needs
                .image
                .then(|| Tensor::from_data(TensorData::new(image, [bs, c, h, w]), device)),
        };
        let labels = (0..bs as i64).map(|i| i % 2).collect();
        let labels = Tensor::from_data(TensorData::new(labels, [bs]), device);
        (x, labels)
    }
}

/// `[bs, r, k]` neighbour lists and their mask for jets of `n(b)` real points: point i lists
/// the next `min(k, n − 1)` points (cyclically; the graph's shape, not its geometry, is what
/// a check or a timing needs), padding entries point at the point itself.
pub fn neighbour_lists(
    bs: usize,
    r: usize,
    k: usize,
    n: impl Fn(usize) -> usize,
) -> (Vec<i64>, Vec<f32>) {
    let mut nb = vec![0i64; bs * r * k];
    let mut nm = vec![0f32; bs * r * k];
    for b in 0..bs {
        let n = n(b);
        for i in 0..r {
            for s in 0..k {
                let at = (b * r + i) * k + s;
                let real = i < n && s + 1 < n;
                nb[at] = if real {
                    ((i + s + 1) % n) as i64
                } else {
                    i as i64
                };
                nm[at] = f32::from(u8::from(real));
            }
        }
    }
    (nb, nm)
}

/// One device's side of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRun {
    /// The loss before each step.
    pub losses: Vec<f32>,
    /// Seconds per training step, the first (compilation, autotuning) left out.
    pub secs_per_step: f64,
}

/// A model's check: the reference device's run and the tested device's.
#[derive(Debug, Clone, PartialEq)]
pub struct Parity {
    /// The model's title.
    pub title: String,
    /// Its trainable parameters.
    pub params: usize,
    /// On the reference device (the CPU).
    pub reference: DeviceRun,
    /// On the device under test.
    pub tested: DeviceRun,
}

impl Parity {
    /// The largest relative difference of the two devices' [`CHECKED`] first losses.
    pub fn max_rel_diff(&self) -> f32 {
        (0..CHECKED).map(|s| self.rel_diff(s)).fold(0.0, f32::max)
    }

    /// The relative difference of the two devices' losses before step `s` (NaN past the end).
    pub fn rel_diff(&self, s: usize) -> f32 {
        match (self.reference.losses.get(s), self.tested.losses.get(s)) {
            (Some(a), Some(b)) => (a - b).abs() / a.abs().max(1e-6),
            _ => f32::NAN,
        }
    }
}

/// Learning rate of the checked steps.
pub const LR: f64 = 1e-4;

/// The losses compared: before any step (the forward pass) and after the first update (the
/// backward pass and the optimiser). Later steps are trained, timed and printed, but not held
/// to the tolerance: training amplifies rounding differences between backends by itself.
/// Adam's first step moves every parameter by ±lr whatever its gradient's size, so a gradient
/// that is rounding noise moves a parameter in opposite directions on the two devices; the
/// 22-million-parameter Aggregation Transformer's two copies differ by 1e-7 (first loss),
/// 7e-6 (second) and 6e-4 (third) on lavapipe, ParticleNet's by 2e-7, 1e-7 and 4e-5.
pub const CHECKED: usize = 2;

/// Trains `spec` for `steps` AdamW steps (learning rate [`LR`]) on `reference` and on `tested`
/// from the same initial weights (drawn on `reference` with seed 0) and the same batch.
pub fn compare(
    spec: &ModelSpec,
    data: Synthetic,
    steps: usize,
    reference: &Device,
    tested: &Device,
) -> Result<Parity> {
    if steps < CHECKED {
        return Err(Error::Config(format!(
            "device check: at least {CHECKED} steps"
        )));
    }
    let resolution = spec.resolution().map_or(data.resolution, |r| r as usize);
    Ok(spec.visit(Check {
        data,
        steps,
        resolution,
        reference: reference.clone().autodiff(),
        tested: tested.clone().autodiff(),
    }))
}

struct Check {
    data: Synthetic,
    steps: usize,
    resolution: usize,
    reference: Device,
    tested: Device,
}

impl ModelVisitor for Check {
    type Out = Parity;
    fn visit<M: JetModel>(self, title: &str, needs: Needs, make: Make<M>) -> Parity {
        let dims = self.data.dims(needs, self.resolution);
        let model = seeded(&self.reference, 0, || make(&self.reference, dims));
        // `fork` detaches every parameter: the two copies share no autodiff graph.
        let copy = model.clone().fork(&self.tested);
        let model = model.fork(&self.reference);
        Parity {
            title: title.to_string(),
            params: model.parameters(),
            reference: train(model, &self.data, needs, dims, self.steps, &self.reference),
            tested: train(copy, &self.data, needs, dims, self.steps, &self.tested),
        }
    }
}

/// `steps` training steps of `model` on `device`, the loss before each.
fn train<M: JetModel>(
    mut model: M,
    data: &Synthetic,
    needs: Needs,
    dims: Dims,
    steps: usize,
    device: &Device,
) -> DeviceRun {
    let (x, labels) = data.inputs(needs, dims, device);
    let mut optim = AdamWConfig::new().with_weight_decay(0.05).init();
    let mut losses = Vec::with_capacity(steps);
    let mut timed = Instant::now();
    for s in 0..steps {
        if s == 1 {
            timed = Instant::now();
        }
        let mut noise = Noise::new(0, s as u64);
        let mut step = Step {
            labels: labels.clone(),
            noise: &mut noise,
            progress: s as f64 / steps as f64,
        };
        let loss = model.objective(&x, &mut step).loss;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(LR, model, grads);
        let v = loss.into_data().try_to_vec::<f32>().unwrap_or_default();
        losses.push(v.first().copied().unwrap_or(f32::NAN));
    }
    DeviceRun {
        losses,
        secs_per_step: timed.elapsed().as_secs_f64() / (steps - 1) as f64,
    }
}

/// The models checked by default: every family, small enough for a CPU-emulated GPU, no
/// dropout.
pub const DEFAULT_MODELS: &[&str] = &[
    r#"{"resnet_pc": "256_S"}"#,
    r#""features_baseline""#,
    r#"{"aggregation_transformer": {"variant": "256_S", "mask": true}}"#,
    r#"{"gnn": {"conv": "gcn", "dropout": 0.0}}"#,
    r#"{"gnn": {"conv": "gat", "dropout": 0.0}}"#,
    r#"{"particle_net": {"dynamic": true, "dropout": 0.0}}"#,
    r#"{"particle_transformer": {"dropout": 0.0}}"#,
    r#"{"vae": {}}"#,
    r#"{"ddpm": {"base": 16}}"#,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Two CPU devices give identical losses, and the losses fall: the check itself works
    /// (the GPU comparison runs in `tests/it/gpu.rs` with the `wgpu` feature).
    #[test]
    fn cpu_against_cpu_is_exact_and_learns() {
        let spec: ModelSpec =
            serde_json::from_str(r#"{"gnn": {"conv": "gcn", "dropout": 0.0}}"#).expect("spec");
        let p = compare(
            &spec,
            Synthetic::default(),
            4,
            &Device::flex(),
            &Device::flex(),
        )
        .expect("check");
        assert_eq!(p.reference.losses.len(), 4);
        assert_eq!(p.reference.losses, p.tested.losses);
        assert_eq!(p.max_rel_diff(), 0.0);
        assert!(
            p.reference.losses[3] < p.reference.losses[0],
            "{:?}",
            p.reference.losses
        );
    }

    /// Every default model spec parses.
    #[test]
    fn default_models_parse() {
        for m in DEFAULT_MODELS {
            serde_json::from_str::<ModelSpec>(m).unwrap_or_else(|e| panic!("{m}: {e}"));
        }
    }
}
