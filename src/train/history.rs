//! Per-epoch metrics, written as JSON lines (`metrics.jsonl`) and CSV (`metrics.csv`) in the
//! run directory after every epoch.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch (from 0).
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss (BCE with logits for classifiers, the model's loss otherwise).
    pub train_loss: f64,
    /// Training ROC AUC over the epoch's batches (model changing during the epoch).
    pub train_auc: Option<f64>,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation accuracy at probability 0.5 (classifiers).
    pub val_acc: Option<f64>,
    /// Validation ROC AUC (exact).
    pub val_auc: Option<f64>,
    /// Training jets per second (loader + forward + backward + step).
    pub samples_per_s: f64,
    /// Jets seen in training this epoch.
    pub train_jets: usize,
}

const CSV_HEADER: &str =
    "epoch,lr,train_loss,train_auc,val_loss,val_acc,val_auc,samples_per_s,train_jets";

/// Rewrites `metrics.jsonl` and `metrics.csv` from the whole history (resume-safe).
pub fn write(run: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut jsonl = String::new();
    let mut csv = format!("{CSV_HEADER}\n");
    let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.6}"));
    for m in history {
        jsonl.push_str(&serde_json::to_string(m).expect("json"));
        jsonl.push('\n');
        csv.push_str(&format!(
            "{},{},{:.6},{},{:.6},{},{},{:.1},{}\n",
            m.epoch,
            m.lr,
            m.train_loss,
            opt(m.train_auc),
            m.val_loss,
            opt(m.val_acc),
            opt(m.val_auc),
            m.samples_per_s,
            m.train_jets
        ));
    }
    for (name, text) in [("metrics.jsonl", jsonl), ("metrics.csv", csv)] {
        let p = run.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}
