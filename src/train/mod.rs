//! Training with Burn (the `train` feature): the loader's Burn adapter, ResNet-PC, the
//! features baseline, the training loop with metrics, plots, checkpoints and resume,
//! evaluation into a predictions table, and the comparison of runs.

pub mod baseline;
pub mod checkpoint;
pub mod compare;
pub mod eval;
pub mod history;
pub mod jet_inputs;
pub mod metrics;
pub mod plot;
pub mod resnet_pc;
pub mod run;
pub mod spec;
pub mod tensors;

use crate::error::{Error, Result};
use run::{TrainOptions, TrainSummary};
use spec::{ModelSpec, TrainSpec};

/// Runs `spec` (its YAML `text` is kept as the run's `config.yaml`).
pub fn train(spec: &TrainSpec, text: &str, opts: &TrainOptions) -> Result<TrainSummary> {
    run::prepare_run(spec, text, opts.resume)?;
    match spec.model {
        ModelSpec::ResnetPc(v) => run::train_resnet(spec, v, opts),
        ModelSpec::FeaturesBaseline if opts.resume => Err(Error::Config(
            "the features baseline trains in seconds: rerun it into a new run_dir (or delete this one) instead of --resume".into(),
        )),
        ModelSpec::FeaturesBaseline => baseline::train_baseline(spec, opts),
    }
}
