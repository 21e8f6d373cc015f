//! Training with Burn (the `train` feature): the model contract, the registry of models, the
//! one training loop with metrics, plots, checkpoints and resume, the loader's Burn adapter,
//! evaluation into a predictions table, and the comparison of runs.
//!
//! Layers inside (the layering test in `lib.rs` checks them): `contract` (the `JetModel` and
//! `Classifier` traits) ← `nn` (shared layers), `ema` (weight averages) ← `models` (one file
//! per model, and the registry) ← `spec` (the YAML) ← `run` ← `fit` (the loop), `device_check` (the same steps on two
//! devices) ← `eval` ←
//! `compare`, `sample` (generate and reconstruct with generative models). `malloc` (glibc
//! settings that `pipeline train` and the training bench apply first) uses nothing.

pub mod checkpoint;
pub mod compare;
pub mod contract;
pub mod device_check;
pub mod ema;
pub mod eval;
pub mod fit;
pub mod history;
pub mod jet_inputs;
pub mod malloc;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod plot;
pub mod run;
pub mod sample;
pub mod spec;
pub mod tensors;

use crate::error::Result;
use run::{TrainOptions, TrainSummary};
use spec::TrainSpec;

/// Runs `spec` (its YAML `text` is kept as the run's `config.yaml`).
pub fn train(spec: &TrainSpec, text: &str, opts: &TrainOptions) -> Result<TrainSummary> {
    spec.model.check(&spec.loader)?;
    run::device(spec.device)?; // a device that does not work stops before the run is touched
    run::prepare_run(spec, text, opts.resume)?;
    fit::train_model(spec, opts)
}
