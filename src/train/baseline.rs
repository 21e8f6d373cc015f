//! The baseline every report compares against: logistic regression on the `jets` table's
//! jet-level features (pt, m0, hit counts, channel sums and fractions, widths, pT_D, core and
//! leading fractions, shape axes, …), standardised with the training set's mean and standard
//! deviation, trained with the same split, optimiser, metrics and outputs as the point-cloud
//! models (`model: features_baseline`).

use crate::error::{Error, Result};
use crate::loader::plan::SplitMix64;
use crate::loader::{SplitSpec, Subset};
use crate::store::manifest::Manifest;
use crate::train::checkpoint::{self, TrainState};
use crate::train::history::{self, EpochMetrics};
use crate::train::run::{TrainOptions, TrainSummary};
use crate::train::spec::TrainSpec;
use crate::train::{metrics, plot};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, Int8Type, UInt64Type};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::time::Instant;

/// Columns that are identifiers or labels, not features.
const NOT_FEATURES: &[&str] = &["jet_id", "source_file", "source_index", "label"];

/// The jets table as a feature matrix.
pub struct JetFeatures {
    /// Feature names.
    pub names: Vec<String>,
    /// Row-major `[jets, features]`.
    pub x: Vec<f32>,
    /// Labels.
    pub labels: Vec<i8>,
    /// Jet ids.
    pub ids: Vec<u64>,
}

/// Reads every numeric feature column of the `jets` table of `dir`.
pub fn read_jets(dir: &std::path::Path) -> Result<JetFeatures> {
    let m = Manifest::read(dir)?.ok_or_else(|| Error::Output {
        path: dir.to_path_buf(),
        msg: "no manifest.json".into(),
    })?;
    let mut out = JetFeatures {
        names: Vec::new(),
        x: Vec::new(),
        labels: Vec::new(),
        ids: Vec::new(),
    };
    for s in m
        .units
        .iter()
        .flat_map(|u| &u.shards)
        .filter(|s| s.path.starts_with("jets/"))
    {
        let path = dir.join(&s.path);
        let f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        for b in ParquetRecordBatchReaderBuilder::try_new(f)?.build()? {
            let b = b?;
            let schema = b.schema();
            let cols: Vec<usize> = (0..b.num_columns())
                .filter(|&i| {
                    let f = schema.field(i);
                    !NOT_FEATURES.contains(&f.name().as_str()) && f.data_type().is_numeric()
                })
                .collect();
            if out.names.is_empty() {
                out.names = cols
                    .iter()
                    .map(|&i| schema.field(i).name().clone())
                    .collect();
            }
            let cast: Vec<_> = cols
                .iter()
                .map(|&i| arrow::compute::cast(b.column(i), &DataType::Float32))
                .collect::<std::result::Result<_, _>>()?;
            for row in 0..b.num_rows() {
                for c in &cast {
                    let a = c.as_primitive::<Float32Type>();
                    let v = if a.is_null(row) { 0.0 } else { a.value(row) };
                    out.x.push(if v.is_finite() { v } else { 0.0 });
                }
            }
            let labels = b
                .column_by_name("label")
                .map(|c| c.as_primitive::<Int8Type>().clone());
            for row in 0..b.num_rows() {
                out.labels.push(
                    labels
                        .as_ref()
                        .map_or(-1, |l| if l.is_null(row) { -1 } else { l.value(row) }),
                );
            }
            let ids = b
                .column_by_name("jet_id")
                .expect("jet_id")
                .as_primitive::<UInt64Type>();
            out.ids.extend(ids.values().iter());
        }
    }
    Ok(out)
}

/// The standardisation the baseline was trained with (`RUN/normalisation.json`), so that
/// `pipeline eval` scales jets the same way.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalisation {
    /// Feature columns in input order.
    pub names: Vec<String>,
    /// Training-set mean of each feature.
    pub mean: Vec<f64>,
    /// 1 / standard deviation (1 for a constant feature).
    pub scale: Vec<f64>,
}

impl Normalisation {
    fn save(&self, run: &std::path::Path) -> Result<()> {
        let p = run.join("normalisation.json");
        let json = serde_json::to_vec_pretty(self).expect("serialises");
        std::fs::write(&p, json).map_err(|e| Error::io(&p, e))
    }

    fn load(run: &std::path::Path) -> Result<Self> {
        let p = run.join("normalisation.json");
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Output {
            path: p,
            msg: format!("not a baseline normalisation: {e}"),
        })
    }
}

/// Logits of the run's best baseline for the jets of `dataset` that `keep` selects:
/// (logits, labels, jet ids).
pub fn predict_baseline(
    run: &std::path::Path,
    dataset: &std::path::Path,
    keep: &dyn Fn(u64) -> bool,
    device: &Device,
) -> Result<(Vec<f32>, Vec<i8>, Vec<u64>)> {
    let norm = Normalisation::load(run)?;
    let data = read_jets(dataset)?;
    let cols: Vec<usize> = norm
        .names
        .iter()
        .map(|n| {
            data.names
                .iter()
                .position(|d| d == n)
                .ok_or_else(|| Error::Output {
                    path: dataset.to_path_buf(),
                    msg: format!("the jets table has no column `{n}`, which the baseline uses"),
                })
        })
        .collect::<Result<_>>()?;
    let nd = data.names.len();
    let rows: Vec<usize> = (0..data.ids.len()).filter(|&i| keep(data.ids[i])).collect();
    let nf = cols.len();
    let (xs, mean, scale, cols) = (&data.x, &norm.mean, &norm.scale, &cols);
    let x: Vec<f32> = rows
        .iter()
        .flat_map(|&r| {
            cols.iter()
                .enumerate()
                .map(move |(f, &c)| ((f64::from(xs[r * nd + c]) - mean[f]) * scale[f]) as f32)
        })
        .collect();
    let dir = checkpoint::find(run, "best").ok_or_else(|| Error::Output {
        path: run.to_path_buf(),
        msg: "no `best` checkpoint".into(),
    })?;
    let model = Logistic {
        linear: LinearConfig::new(nf, 1).init(device),
    }
    .try_load_file(dir.join("model.bpk"))
    .map_err(|e| Error::Output {
        path: dir,
        msg: format!("cannot load model: {e}"),
    })?;
    let z = model
        .linear
        .forward(Tensor::<2>::from_data(
            TensorData::new(x, [rows.len(), nf]),
            device,
        ))
        .squeeze_dim::<1>(1)
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Loader(format!("{e:?}")))?;
    let labels = rows.iter().map(|&r| data.labels[r]).collect();
    let ids = rows.iter().map(|&r| data.ids[r]).collect();
    Ok((z, labels, ids))
}

/// Logistic regression.
#[derive(Module, Debug)]
pub struct Logistic {
    linear: Linear,
}

/// Trains the baseline.
pub fn train_baseline(spec: &TrainSpec, opts: &TrainOptions) -> Result<TrainSummary> {
    let run = spec.run_dir.as_path();
    let data = read_jets(&spec.loader.dataset)?;
    let nf = data.names.len();
    let split = |subset| SplitSpec {
        train: spec.split.train,
        val: spec.split.val,
        seed: spec.split.seed,
        subset,
    };
    let rows = |s: SplitSpec| -> Vec<usize> {
        (0..data.ids.len())
            .filter(|&i| s.keeps(data.ids[i]))
            .collect()
    };
    let (tr, va) = (rows(split(Subset::Train)), rows(split(Subset::Val)));
    if tr.is_empty() || va.is_empty() {
        return Err(Error::Config(
            "the split leaves no training or no validation jets".into(),
        ));
    }
    // Standardise with the training set's mean and standard deviation.
    let mut mean = vec![0f64; nf];
    let mut sq = vec![0f64; nf];
    for &r in &tr {
        for f in 0..nf {
            let v = f64::from(data.x[r * nf + f]);
            mean[f] += v;
            sq[f] += v * v;
        }
    }
    let n = tr.len() as f64;
    let scale: Vec<f64> = (0..nf)
        .map(|f| {
            mean[f] /= n;
            let var = (sq[f] / n - mean[f] * mean[f]).max(0.0);
            if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 }
        })
        .collect();
    Normalisation {
        names: data.names.clone(),
        mean: mean.clone(),
        scale: scale.clone(),
    }
    .save(run)?;
    let (x, mean, scale) = (&data.x, &mean, &scale);
    let matrix = |idx: &[usize]| -> Vec<f32> {
        idx.iter()
            .flat_map(|&r| {
                (0..nf).map(move |f| ((f64::from(x[r * nf + f]) - mean[f]) * scale[f]) as f32)
            })
            .collect()
    };
    let plain = crate::train::run::device(spec.device)?;
    let device = plain.clone().autodiff();
    let mut model = crate::train::run::seeded(&device, spec.seed, || Logistic {
        linear: LinearConfig::new(nf, 1).init(&device),
    });
    let mut optim = AdamWConfig::new()
        .with_weight_decay(spec.weight_decay as f32)
        .with_epsilon(1e-8)
        .init();
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let (xv, yv): (Vec<f32>, Vec<i8>) = (matrix(&va), va.iter().map(|&r| data.labels[r]).collect());
    let xv = Tensor::<2>::from_data(TensorData::new(xv, [va.len(), nf]), &plain);
    let mut st = TrainState {
        lr: spec.lr,
        ..Default::default()
    };
    if !opts.quiet {
        println!(
            "model:    features baseline: logistic regression on {nf} jet features ({})",
            data.names.join(", ")
        );
        println!(
            "data:     {} training jets, {} validation jets",
            tr.len(),
            va.len()
        );
    }
    let bs = spec.loader.batch_size;
    let mut rng = SplitMix64::new(spec.seed ^ 0xBA5E);
    let mut order = tr.clone();
    for epoch in 0..spec.epochs {
        rng.shuffle(&mut order);
        let t0 = Instant::now();
        let (mut loss_sum, mut logits_all, mut labels_all) = (0.0, Vec::new(), Vec::new());
        for (s, chunk) in order.chunks(bs).enumerate() {
            if spec.max_steps.is_some_and(|m| s >= m) {
                break;
            }
            let y: Vec<i8> = chunk.iter().map(|&r| data.labels[r]).collect();
            if let Some(bad) = y.iter().find(|&&l| l != 0 && l != 1) {
                return Err(Error::Loader(format!(
                    "label {bad}: training needs labels 0 or 1"
                )));
            }
            let x =
                Tensor::<2>::from_data(TensorData::new(matrix(chunk), [chunk.len(), nf]), &device);
            let t = Tensor::<1, Int>::from_data(
                TensorData::new(
                    y.iter().map(|&l| i64::from(l)).collect::<Vec<_>>(),
                    [y.len()],
                ),
                &device,
            );
            let z = model.linear.forward(x).squeeze_dim::<1>(1);
            let loss = bce.forward(z.clone(), t);
            let zv: Vec<f32> = z
                .inner()
                .try_into_vec_as::<f32>()
                .map_err(|e| Error::Loader(format!("{e:?}")))?;
            loss_sum += metrics::bce_with_logits(&zv, &y) * y.len() as f64;
            logits_all.extend(zv);
            labels_all.extend(y);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(st.lr, model, grads);
            st.step += 1;
        }
        let vz: Vec<f32> = model
            .valid()
            .linear
            .forward(xv.clone())
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::Loader(format!("{e:?}")))?;
        let m = EpochMetrics {
            epoch,
            lr: st.lr,
            train_loss: loss_sum / labels_all.len().max(1) as f64,
            train_auc: metrics::auc(&logits_all, &labels_all),
            val_loss: metrics::bce_with_logits(&vz, &yv),
            val_acc: metrics::accuracy(&vz, &yv, 0.0),
            val_auc: metrics::auc(&vz, &yv),
            samples_per_s: labels_all.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            train_jets: labels_all.len(),
        };
        if !opts.quiet {
            println!(
                "epoch {:>3}: train loss {:.4} | val loss {:.4} acc {:.4} auc {:.4}",
                m.epoch,
                m.train_loss,
                m.val_loss,
                m.val_acc,
                m.val_auc.unwrap_or(f64::NAN)
            );
        }
        let improved = m.val_auc.is_some_and(|a| st.best_auc.is_none_or(|b| a > b));
        st.history.push(m.clone());
        st.epoch = epoch + 1;
        if improved {
            st.best_auc = m.val_auc;
            st.best_epoch = Some(epoch);
            st.bad_epochs = 0;
            plot::roc(
                &run.join("roc.png"),
                &format!("features baseline, validation, epoch {}", m.epoch),
                &vz,
                &yv,
            )?;
            checkpoint::save(run, "best", &model, None, &st)?;
        } else {
            st.bad_epochs += 1;
        }
        history::write(run, &st.history)?;
        plot::losses(&run.join("loss.png"), "features baseline", &st.history)?;
        st.finished = st.epoch >= spec.epochs
            || (spec.early_stopping > 0 && st.bad_epochs >= spec.early_stopping);
        checkpoint::save(run, "last", &model, Some(&optim), &st)?;
        if st.finished {
            break;
        }
    }
    if !opts.quiet {
        println!(
            "best:     val AUC {:.4} at epoch {}",
            st.best_auc.unwrap_or(f64::NAN),
            st.best_epoch.unwrap_or(0)
        );
    }
    Ok(TrainSummary { state: st })
}
