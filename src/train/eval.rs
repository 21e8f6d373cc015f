//! `pipeline eval RUN`: score a dataset's jets with a run's best model and write
//! `RUN/predictions.parquet` (jet_id, score, label; contract `schemas/predictions.schema.json`)
//! so `pipeline sql -d DATASET -d RUN` can join predictions with the `jets` table; prints
//! AUC and accuracy and draws `RUN/roc_eval.png`. With a tag (`--tag s9`) the files are
//! `predictions_s9.parquet` and `roc_eval_s9.png`, so scores of several datasets coexist.

use crate::error::{Error, Result};
use crate::loader::Subset;
use crate::store::tables::predictions_schema;
use crate::train::spec::load_train;
use crate::train::{metrics, plot, run};
use arrow::array::{Float32Array, Int8Array, RecordBatch, UInt64Array};
use parquet::arrow::ArrowWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `eval` measured.
#[derive(Debug, Clone)]
pub struct EvalSummary {
    /// Jets scored.
    pub jets: usize,
    /// ROC AUC (None when a class is missing).
    pub auc: Option<f64>,
    /// Accuracy at probability 0.5.
    pub accuracy: f64,
    /// The predictions file.
    pub path: PathBuf,
}

/// `RUN/predictions.parquet`, or `RUN/predictions_TAG.parquet`.
pub fn predictions_file(run: &Path, tag: Option<&str>) -> PathBuf {
    run.join(match tag {
        None => "predictions.parquet".into(),
        Some(t) => format!("predictions_{t}.parquet"),
    })
}

/// Checks that `tag` can name a file and an SQL table: letters, digits and `_`.
pub fn check_tag(tag: Option<&str>) -> Result<()> {
    match tag {
        Some(t) if !crate::store::tables::is_predictions_tag(t) => Err(Error::Config(format!(
            "--tag `{t}`: use letters, digits and `_` only"
        ))),
        _ => Ok(()),
    }
}

/// Scores `subset` (None: every jet) of `dataset` (default: the run's) with the run's `best`
/// model, into the predictions file of `tag` ([`predictions_file`]).
pub fn eval(
    run_dir: &Path,
    dataset: Option<&Path>,
    subset: Option<Subset>,
    tag: Option<&str>,
) -> Result<EvalSummary> {
    check_tag(tag)?;
    let spec = load_train(&run_dir.join("config.yaml"))?;
    let device = run::device(spec.device)?;
    let l = eval_loader(&spec, dataset, subset);
    let (logits, labels, ids) = crate::train::fit::score(run_dir, &spec, &l, &device)?;
    let title = format!(
        "{}, {} of {}",
        spec.model.title(),
        subset.map_or("all jets".into(), |s| format!("{s:?} jets").to_lowercase()),
        l.dataset.file_name().unwrap_or_default().to_string_lossy()
    );
    write(run_dir, tag, &title, &logits, &labels, &ids)
}

/// The loader settings of `eval`: the run's, on `subset` (None: every jet) of `dataset`.
fn eval_loader(
    spec: &crate::train::spec::TrainSpec,
    dataset: Option<&Path>,
    subset: Option<Subset>,
) -> crate::loader::LoaderSpec {
    let mut l = spec.loader_for(subset.unwrap_or(Subset::Val));
    if subset.is_none() {
        l.split = None;
    }
    // Every selected jet once, in order (also for --subset train).
    (l.shuffle, l.drop_last, l.rank, l.world_size) = (false, false, 0, 1);
    l.reflect.clear();
    if let Some(d) = dataset {
        l.dataset = d.to_path_buf();
    }
    l
}

/// Writes the predictions file and the ROC plot, and summarises.
fn write(
    run_dir: &Path,
    tag: Option<&str>,
    title: &str,
    logits: &[f32],
    labels: &[i8],
    ids: &[u64],
) -> Result<EvalSummary> {
    let scores: Vec<f32> = logits.iter().map(|&z| 1.0 / (1.0 + (-z).exp())).collect();
    let path = predictions_file(run_dir, tag);
    let batch = RecordBatch::try_new(
        predictions_schema(),
        vec![
            Arc::new(UInt64Array::from(ids.to_vec())),
            Arc::new(Float32Array::from(scores)),
            Arc::new(Int8Array::from_iter(
                labels.iter().map(|&l| (l >= 0).then_some(l)),
            )),
        ],
    )?;
    let f = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut w = ArrowWriter::try_new(f, predictions_schema(), None)?;
    w.write(&batch)?;
    w.close()?;
    let png = tag.map_or("roc_eval.png".into(), |t| format!("roc_eval_{t}.png"));
    plot::roc(&run_dir.join(png), title, logits, labels)?;
    Ok(EvalSummary {
        jets: ids.len(),
        auc: metrics::auc(logits, labels),
        accuracy: metrics::accuracy(logits, labels, 0.0),
        path,
    })
}
