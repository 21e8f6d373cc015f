//! Checkpoints: `RUN/last/` and `RUN/best/`, each holding `model.bpk`, `optim.bpk` (Burn's
//! burnpack files), `ema.bpk` (the weights' moving average of models that keep one; `best`'s
//! `model.bpk` is that average) and `state.json` (epoch, loader state, learning rate, scheduler and
//! early-stopping counters, the partial epoch's metrics, the history). A checkpoint is written
//! into a temporary directory and swapped in by renames, so a run killed while saving keeps
//! the previous one.

use crate::error::{Error, Result};
use crate::loader::LoaderState;
use crate::train::history::EpochMetrics;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything besides the weights and the optimiser moments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epoch in progress (its validation still pending when `loader` is at its end).
    pub epoch: usize,
    /// Where the training loader stands.
    pub loader: Option<LoaderState>,
    /// Optimiser steps so far (all epochs).
    pub step: usize,
    /// Steps in the current epoch.
    pub epoch_step: usize,
    /// Current learning rate.
    pub lr: f64,
    /// Best validation AUC so far and its epoch.
    pub best_auc: Option<f64>,
    /// Best validation loss so far (generative models' goal; the loss at the best AUC for
    /// classifiers).
    #[serde(default)]
    pub best_loss: Option<f64>,
    /// Epoch of the best checkpoint.
    pub best_epoch: Option<usize>,
    /// Epochs since the validation AUC last improved (plateau and early stopping).
    pub bad_epochs: usize,
    /// Epochs since the plateau scheduler last cut the rate or the AUC improved.
    pub plateau_epochs: usize,
    /// Training loss sum, jets, logits and labels of the epoch so far.
    pub partial_loss: f64,
    /// Jets in `partial_loss`.
    pub partial_jets: usize,
    /// Training logits of the epoch so far.
    pub partial_logits: Vec<f32>,
    /// Their labels.
    pub partial_labels: Vec<i8>,
    /// Metrics of finished epochs.
    pub history: Vec<EpochMetrics>,
    /// The run stopped (epochs done or early stopping).
    pub finished: bool,
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(p, e)
}

/// Writes `RUN/name/` atomically.
pub fn save<M: Module>(
    run: &Path,
    name: &str,
    model: &M,
    optim: Option<&ModuleOptimizer>,
    ema: Option<&M>,
    state: &TrainState,
) -> Result<()> {
    let dir = run.join(name);
    let tmp = run.join(format!(".{name}.tmp"));
    let old = run.join(format!(".{name}.old"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let bad = |e: &dyn std::fmt::Display| Error::Output {
        path: tmp.clone(),
        msg: format!("cannot write checkpoint: {e}"),
    };
    // `valid()` folds Burn's pending running-statistics update (BatchNorm keeps the latest
    // one aside until the next update) into the shared state, so the file has it.
    drop(model.valid());
    model
        .clone()
        .save_file(tmp.join("model.bpk"))
        .map_err(|e| bad(&e))?;
    if let Some(e) = ema {
        e.clone()
            .save_file(tmp.join("ema.bpk"))
            .map_err(|e| bad(&e))?;
    }
    if let Some(o) = optim {
        o.save(tmp.join("optim.bpk")).map_err(|e| bad(&e))?;
    }
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    std::fs::write(tmp.join("state.json"), json).map_err(io(&tmp))?;
    if !dir.exists() && old.exists() {
        // A save was killed between its renames: put the previous checkpoint back first.
        std::fs::rename(&old, &dir).map_err(io(&dir))?;
    }
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(&dir, &old).map_err(io(&dir))?;
    }
    std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The directory of checkpoint `name` (falling back to the copy a killed save left).
pub fn find(run: &Path, name: &str) -> Option<PathBuf> {
    [run.join(name), run.join(format!(".{name}.old"))]
        .into_iter()
        .find(|d| d.join("state.json").exists())
}

/// Reads `state.json` of a checkpoint directory.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let p = dir.join("state.json");
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    serde_json::from_str(&text).map_err(|e| Error::Output {
        path: p,
        msg: format!("not a jetpipe training state: {e}"),
    })
}
