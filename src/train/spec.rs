//! The training YAML (`pipeline train T.yaml`): a `train:` section with the model, the loader
//! settings, the split, the optimiser and scheduler, and where the run goes. serde refuses
//! unknown keys; garde checks ranges (errors name the line).

use crate::config::{parse_yaml, read_yaml};
use crate::error::Result;
use crate::loader::LoaderSpec;
pub use crate::train::models::ModelSpec;
use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scheduler {
    /// Multiply the rate by `factor` when the validation AUC has not improved for more than
    /// `patience` epochs (ReduceLROnPlateau, mode max).
    Plateau,
    /// Cosine annealing from `lr` to 0 over all steps.
    Cosine,
}

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// Burn's CPU backend (flex), all cores.
    Cpu,
    /// NVIDIA GPU 0 through Burn's native CUDA backend (binary built with `--features cuda`).
    Cuda,
    /// The GPU wgpu picks (Vulkan, Metal or DX12; binary built with `--features wgpu`), or
    /// Mesa's lavapipe on a machine without one.
    Wgpu,
}

/// Train/validation fractions of the hash split (the rest is the test set).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
#[garde(allow_unvalidated)]
pub struct Split {
    /// Training fraction.
    #[serde(default = "d_train")]
    #[garde(range(min = 0.0, max = 1.0))]
    pub train: f64,
    /// Validation fraction.
    #[serde(default = "d_val")]
    #[garde(range(min = 0.0, max = 1.0))]
    pub val: f64,
    /// Hash seed.
    #[serde(default)]
    pub seed: u64,
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// The model.
    #[garde(skip)]
    pub model: ModelSpec,
    /// Loader settings for the training set (validation reads the same dataset in order);
    /// `split` must be left out here: the train section's `split` decides.
    #[garde(dive, custom(|l: &LoaderSpec, _: &()| no_loader_split(l)))]
    pub loader: LoaderSpec,
    /// Train/validation/test split by jet-id hash.
    #[serde(default = "d_split")]
    #[garde(dive)]
    pub split: Split,
    /// Run directory: metrics, plots, checkpoints.
    #[garde(skip)]
    pub run_dir: PathBuf,
    /// Epochs.
    #[serde(default = "d_epochs")]
    #[garde(range(min = 1, max = 100000))]
    pub epochs: usize,
    /// Optimiser steps per epoch at most (quick runs); absent: the whole training set.
    #[serde(default)]
    #[garde(inner(range(min = 1)))]
    pub max_steps: Option<usize>,
    /// AdamW learning rate.
    #[serde(default = "d_lr")]
    #[garde(range(min = 1e-9, max = 10.0))]
    pub lr: f64,
    /// AdamW (decoupled) weight decay.
    #[serde(default = "d_wd")]
    #[garde(range(min = 0.0, max = 10.0))]
    pub weight_decay: f64,
    /// Learning-rate schedule.
    #[serde(default = "d_sched")]
    #[garde(skip)]
    pub scheduler: Scheduler,
    /// Plateau: epochs without improvement before the rate is cut.
    #[serde(default = "d_patience")]
    #[garde(range(min = 1))]
    pub patience: usize,
    /// Plateau: factor the rate is multiplied by.
    #[serde(default = "d_factor")]
    #[garde(range(min = 0.0, max = 1.0))]
    pub factor: f64,
    /// Stop after this many epochs without a better validation AUC (0: never).
    #[serde(default = "d_early")]
    #[garde(skip)]
    pub early_stopping: usize,
    /// Batches whose gradients are summed (and averaged) per optimiser step.
    #[serde(default = "d_one")]
    #[garde(range(min = 1, max = 1024))]
    pub grad_accumulation: usize,
    /// Save the `last` checkpoint every this many optimiser steps (and at every epoch end).
    #[serde(default = "d_ckpt")]
    #[garde(range(min = 1))]
    pub checkpoint_every: usize,
    /// Seed of the model initialisation (the loader has its own `seed`).
    #[serde(default)]
    #[garde(skip)]
    pub seed: u64,
    /// Device: `cpu`, `cuda` or `wgpu` (the last two need a binary built with that feature).
    #[serde(default = "d_device")]
    #[garde(skip)]
    pub device: DeviceKind,
    /// Jet-level inputs: numeric columns of the dataset's `jets` table (e.g. `[m0, pt]`),
    /// standardised with the training jets' mean and standard deviation. The features
    /// baseline uses exactly these (absent: every numeric column). Point-cloud models
    /// concatenate them to their pooled point features (or CLS token) before the head
    /// (absent: none, the e2e_sparse models).
    #[serde(default)]
    #[garde(custom(jet_input_names))]
    pub jet_inputs: Option<Vec<String>>,
}

fn jet_input_names(v: &Option<Vec<String>>, _: &()) -> garde::Result {
    let Some(v) = v else { return Ok(()) };
    if v.is_empty() {
        return Err(garde::Error::new(
            "list at least one column, or leave `jet_inputs` out",
        ));
    }
    for (i, n) in v.iter().enumerate() {
        if crate::train::jet_inputs::NOT_FEATURES.contains(&n.as_str()) {
            return Err(garde::Error::new(format!(
                "`{n}` is an identifier or the label, not an input"
            )));
        }
        if v[..i].contains(n) {
            return Err(garde::Error::new(format!("`{n}` is listed twice")));
        }
    }
    Ok(())
}

fn d_device() -> DeviceKind {
    DeviceKind::Cpu
}

fn no_loader_split(l: &LoaderSpec) -> garde::Result {
    match l.split {
        None => Ok(()),
        Some(_) => Err(garde::Error::new(
            "leave `split` out of the loader: set it in the train section",
        )),
    }
}

fn d_train() -> f64 {
    0.8
}
fn d_val() -> f64 {
    0.1
}
fn d_split() -> Split {
    Split {
        train: 0.8,
        val: 0.1,
        seed: 0,
    }
}
fn d_epochs() -> usize {
    20
}
fn d_lr() -> f64 {
    1e-3
}
fn d_wd() -> f64 {
    0.05
}
fn d_sched() -> Scheduler {
    Scheduler::Plateau
}
fn d_patience() -> usize {
    5
}
fn d_factor() -> f64 {
    0.5
}
fn d_early() -> usize {
    10
}
fn d_one() -> usize {
    1
}
fn d_ckpt() -> usize {
    200
}

/// A training YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct TrainFile {
    /// The training settings.
    #[garde(dive)]
    pub train: TrainSpec,
}

/// Parses training YAML text; errors name `origin`, line and column.
pub fn parse_train(text: &str, origin: &str) -> Result<TrainSpec> {
    parse_yaml::<TrainFile>(text, origin, "training").map(|f| f.train)
}

/// Reads a training YAML file.
pub fn load_train(path: &std::path::Path) -> Result<TrainSpec> {
    parse_train(&read_yaml(path, "training")?, &path.display().to_string())
}

impl TrainSpec {
    /// The jets of `subset` under this run's split.
    pub fn split_of(&self, subset: crate::loader::Subset) -> crate::loader::SplitSpec {
        crate::loader::SplitSpec {
            train: self.split.train,
            val: self.split.val,
            seed: self.split.seed,
            subset,
        }
    }

    /// The loader of one subset: train (the YAML's settings), or val/test (in file order,
    /// every jet, same features and batch size).
    pub fn loader_for(&self, subset: crate::loader::Subset) -> LoaderSpec {
        let mut l = self.loader.clone();
        l.split = Some(self.split_of(subset));
        l.stats_from = Some(self.split_of(crate::loader::Subset::Train));
        if subset != crate::loader::Subset::Train {
            // Validation and test: every jet once, in order, on every rank, as stored.
            l.shuffle = false;
            l.reflect.clear();
            l.drop_last = false;
            l.rank = 0;
            l.world_size = 1;
        }
        l
    }
}
