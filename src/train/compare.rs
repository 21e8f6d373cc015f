//! `pipeline compare RUN…`: the models of several runs on the same jets. Reads each run's
//! `predictions.parquet` (from `pipeline eval`; `predictions_T.parquet` with `--tag T`), refuses runs that scored different jets, and
//! reports each model's ROC AUC with a bootstrap standard error and its AUC difference to the
//! first run (the reference, e.g. the features baseline) with a *paired* bootstrap: the same
//! resampled jets for both models, so the jet-to-jet noise they share cancels. Draws every ROC
//! curve into one PNG.

use crate::error::{Error, Result};
use crate::loader::plan::mix64;
use crate::train::metrics::{accuracy, auc, roc};
use crate::train::plot;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Int8Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};

/// One run's predictions, sorted by jet id.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The run directory.
    pub run: PathBuf,
    /// Jet ids, ascending.
    pub ids: Vec<u64>,
    /// Scores (probability of label 1).
    pub scores: Vec<f32>,
    /// Labels as stored.
    pub labels: Vec<i8>,
}

/// Reads the run's predictions file of `tag` (`RUN/predictions.parquet`, or
/// `RUN/predictions_TAG.parquet`), sorted by jet id; jets without a label are dropped.
pub fn read_predictions(run: &Path, tag: Option<&str>) -> Result<Scored> {
    let path = crate::train::eval::predictions_file(run, tag);
    let bad = |msg: String| Error::Output {
        path: path.clone(),
        msg,
    };
    let f = std::fs::File::open(&path).map_err(|e| {
        let t = tag.map_or(String::new(), |t| format!(" --tag {t}"));
        bad(format!(
            "{e} (run `pipeline eval {}{t}` first)",
            run.display()
        ))
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)?.build()?;
    let mut rows: Vec<(u64, f32, i8)> = Vec::new();
    for b in reader {
        let b = b?;
        let col = |name: &str| {
            b.column_by_name(name)
                .cloned()
                .ok_or_else(|| bad(format!("no column `{name}`")))
        };
        let (ids, scores, labels) = (col("jet_id")?, col("score")?, col("label")?);
        let ids = ids.as_primitive_opt::<UInt64Type>();
        let scores = scores.as_primitive_opt::<Float32Type>();
        let labels = labels.as_primitive_opt::<Int8Type>();
        let (Some(ids), Some(scores), Some(labels)) = (ids, scores, labels) else {
            return Err(bad("columns are not (uint64, float32, int8)".into()));
        };
        for i in 0..b.num_rows() {
            if labels.is_valid(i) {
                rows.push((ids.value(i), scores.value(i), labels.value(i)));
            }
        }
    }
    rows.sort_unstable_by_key(|r| r.0);
    if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(bad(format!("jet {} is scored twice", w[0].0)));
    }
    Ok(Scored {
        run: run.to_path_buf(),
        ids: rows.iter().map(|r| r.0).collect(),
        scores: rows.iter().map(|r| r.1).collect(),
        labels: rows.iter().map(|r| r.2).collect(),
    })
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// AUC on all jets.
    pub auc: f64,
    /// Bootstrap standard error of the AUC.
    pub auc_err: f64,
    /// Accuracy at score 0.5.
    pub accuracy: f64,
    /// AUC minus the reference's, on all jets.
    pub delta: f64,
    /// Paired-bootstrap standard error of `delta`.
    pub delta_err: f64,
    /// Fraction of bootstrap samples in which this model's AUC exceeds the reference's.
    pub p_better: f64,
}

/// Compares `runs` (the first is the reference) over `samples` paired bootstrap resamples
/// (seeded, so the numbers are reproducible). Every run must have scored the same jets.
pub fn compare(runs: &[Scored], samples: usize, seed: u64) -> Result<Vec<Row>> {
    let first = runs
        .first()
        .ok_or_else(|| Error::Config("compare needs at least one run".into()))?;
    for r in &runs[1..] {
        if r.ids != first.ids || r.labels != first.labels {
            return Err(Error::Config(format!(
                "{} scored {} jets and {} scored {} jets, not the same ones: \
                 evaluate every run on the same dataset and subset (`pipeline eval RUN --subset test`)",
                first.run.display(),
                first.ids.len(),
                r.run.display(),
                r.ids.len()
            )));
        }
    }
    let n = first.ids.len();
    let full: Vec<f64> = runs
        .iter()
        .map(|r| auc(&r.scores, &r.labels))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            Error::Config(format!(
                "{}: the scored jets hold one class only; no AUC",
                first.run.display()
            ))
        })?;
    // Bootstrap: the same resampled jets for every run. The runs share their labels
    // (checked above), so a one-class resample (no AUC) is skipped for all of them alike and
    // the per-run vectors stay paired.
    let mut boot = vec![Vec::with_capacity(samples); runs.len()];
    let (mut s, mut l) = (vec![0f32; n], vec![0i8; n]);
    for b in 0..samples {
        let pick: Vec<usize> = (0..n)
            .map(|i| (mix64(seed ^ mix64(b as u64) ^ mix64(i as u64 + 0xB007)) % n as u64) as usize)
            .collect();
        for (r, out) in runs.iter().zip(boot.iter_mut()) {
            for (k, &p) in pick.iter().enumerate() {
                s[k] = r.scores[p];
                l[k] = r.labels[p];
            }
            if let Some(a) = auc(&s, &l) {
                out.push(a);
            }
        }
    }
    let std = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt()
    };
    Ok(runs
        .iter()
        .zip(&boot)
        .zip(&full)
        .map(|((r, b), &a)| {
            let d: Vec<f64> = b.iter().zip(&boot[0]).map(|(x, y)| x - y).collect();
            Row {
                auc: a,
                auc_err: std(b),
                accuracy: accuracy(&r.scores, &r.labels, 0.5),
                delta: a - full[0],
                delta_err: std(&d),
                p_better: d.iter().filter(|&&x| x > 0.0).count() as f64 / d.len().max(1) as f64,
            }
        })
        .collect())
}

/// `pipeline compare`: prints the table and writes the ROC curves of every run into `out`.
pub fn run_compare(
    runs: &[PathBuf],
    tag: Option<&str>,
    out: &Path,
    samples: usize,
) -> Result<Vec<Row>> {
    crate::train::eval::check_tag(tag)?;
    let scored: Vec<Scored> = runs
        .iter()
        .map(|r| read_predictions(r, tag))
        .collect::<Result<_>>()?;
    let rows = compare(&scored, samples, 0)?;
    let name = |r: &Scored| {
        r.run.file_name().map_or(r.run.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        })
    };
    let n = scored.first().map_or(0, |s| s.ids.len());
    println!(
        "{n} jets; ± = bootstrap standard error ({samples} resamples, paired for Δ); reference: {}",
        name(&scored[0])
    );
    println!(
        "{:<28} {:>16} {:>9} {:>20} {:>10}",
        "run", "AUC", "accuracy", "Δ AUC vs reference", "P(Δ > 0)"
    );
    for (s, r) in scored.iter().zip(&rows) {
        println!(
            "{:<28} {:>8.4} ± {:.4} {:>9.4} {:>+11.4} ± {:.4} {:>10.3}",
            name(s),
            r.auc,
            r.auc_err,
            r.accuracy,
            r.delta,
            r.delta_err,
            r.p_better
        );
    }
    let curves: Vec<(String, Vec<(f64, f64)>)> = scored
        .iter()
        .zip(&rows)
        .map(|(s, r)| {
            (
                format!("{}: AUC {:.4} ± {:.4}", name(s), r.auc, r.auc_err),
                roc(&s.scores, &s.labels),
            )
        })
        .collect();
    plot::roc_curves(out, &format!("ROC, {n} jets"), &curves)?;
    println!("written:  {}", out.display());
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(name: &str, scores: Vec<f32>, labels: Vec<i8>) -> Scored {
        Scored {
            run: PathBuf::from(name),
            ids: (0..scores.len() as u64).collect(),
            scores,
            labels,
        }
    }

    /// Labels alternate; `good` ranks every positive above every negative, `noisy` is the
    /// same with some pairs swapped, `flat` gives one score to all.
    #[test]
    fn paired_bootstrap_ranks_models_and_refuses_different_jets() {
        let n = 400;
        let labels: Vec<i8> = (0..n).map(|i| (i % 2) as i8).collect();
        let good: Vec<f32> = labels.iter().map(|&l| f32::from(l)).collect();
        let noisy: Vec<f32> = (0..n)
            .map(|i| if i % 10 < 2 { 1.0 - good[i] } else { good[i] })
            .collect();
        let flat = vec![0.5f32; n];
        let runs = [
            scored("noisy", noisy, labels.clone()),
            scored("good", good, labels.clone()),
            scored("flat", flat, labels.clone()),
        ];
        let rows = compare(&runs, 200, 1).unwrap();
        // Exact AUCs: noisy flips 20 % of each class, so P(s+ > s−) = 0.8·0.8 and ties
        // (0.8·0.2 + 0.2·0.8) count half: AUC = 0.64 + 0.16 = 0.80.
        assert!((rows[0].auc - 0.80).abs() < 1e-12, "{}", rows[0].auc);
        assert_eq!((rows[1].auc, rows[2].auc), (1.0, 0.5));
        assert_eq!(rows[0].delta, 0.0);
        assert_eq!(rows[0].delta_err, 0.0);
        assert!((rows[1].delta - 0.20).abs() < 1e-12);
        assert_eq!(rows[1].p_better, 1.0);
        assert_eq!(rows[2].p_better, 0.0);
        // A perfect model's AUC has no spread; the noisy one's is about
        // sqrt(AUC(1−AUC)/n_class)-sized.
        assert_eq!(rows[1].auc_err, 0.0);
        assert!(
            (0.01..0.04).contains(&rows[0].auc_err),
            "{}",
            rows[0].auc_err
        );
        assert_eq!(rows, compare(&runs, 200, 1).unwrap());
        let mut other = runs[1].clone();
        other.ids[7] = 9999;
        let e = compare(&[runs[0].clone(), other], 10, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the same ones"), "{e}");
    }
}
