//! The baseline every report compares against: logistic regression on the `jets` table's
//! jet-level features (pt, m0, hit counts, channel sums and fractions, widths, pT_D, core and
//! leading fractions, shape axes, …; all of them, or the run's `jet_inputs`), standardised
//! with the training set's mean and standard deviation, trained with the same split,
//! optimiser, metrics and outputs as the point-cloud models (`model: features_baseline`).

use crate::error::{Error, Result};
use crate::loader::Subset;
use crate::loader::plan::SplitMix64;
use crate::train::checkpoint::{self, TrainState};
use crate::train::history::{self, EpochMetrics};
use crate::train::jet_inputs::{JetTable, Normalisation, read_jets};
use crate::train::run::{TrainOptions, TrainSummary};
use crate::train::spec::TrainSpec;
use crate::train::{metrics, plot};
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use std::time::Instant;

/// Logits of the run's best baseline for the jets of `dataset` that `keep` selects:
/// (logits, labels, jet ids).
pub fn predict_baseline(
    run: &std::path::Path,
    dataset: &std::path::Path,
    keep: &dyn Fn(u64) -> bool,
    device: &Device,
) -> Result<(Vec<f32>, Vec<i8>, Vec<u64>)> {
    let norm = Normalisation::load(run)?;
    let table = JetTable::new(read_jets(dataset)?, &norm, dataset)?;
    let rows: Vec<usize> = (0..table.ids.len())
        .filter(|&i| keep(table.ids[i]))
        .collect();
    let (nf, x) = (table.width, table.matrix(&rows));
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
        .map_err(|e| Error::Train(format!("features baseline: reading the scores back: {e:?}")))?;
    let labels = rows.iter().map(|&r| table.labels[r]).collect();
    let ids = rows.iter().map(|&r| table.ids[r]).collect();
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
    let dataset = spec.loader.dataset.as_path();
    let data = read_jets(dataset)?;
    // Every numeric column of the jets table unless the run names its `jet_inputs`.
    let names = spec
        .jet_inputs
        .clone()
        .unwrap_or_else(|| data.names.clone());
    let cols = data.columns(&names, dataset)?;
    let (tr, va) = (
        data.rows(&spec.split_of(Subset::Train)),
        data.rows(&spec.split_of(Subset::Val)),
    );
    if tr.is_empty() || va.is_empty() {
        return Err(Error::Config(
            "the split leaves no training or no validation jets".into(),
        ));
    }
    // Standardise with the training set's mean and standard deviation.
    let norm = Normalisation::fit(&data, &cols, &tr);
    norm.save(run)?;
    let table = JetTable::new(data, &norm, dataset)?;
    let nf = table.width;
    let matrix = |idx: &[usize]| table.matrix(idx);
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
    let (xv, yv): (Vec<f32>, Vec<i8>) =
        (matrix(&va), va.iter().map(|&r| table.labels[r]).collect());
    let xv = Tensor::<2>::from_data(TensorData::new(xv, [va.len(), nf]), &plain);
    let mut st = TrainState {
        lr: spec.lr,
        ..Default::default()
    };
    if !opts.quiet {
        println!(
            "model:    features baseline: logistic regression on {nf} jet features ({})",
            norm.names.join(", ")
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
            let y: Vec<i8> = chunk.iter().map(|&r| table.labels[r]).collect();
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
            let zv: Vec<f32> = z.inner().try_into_vec_as::<f32>().map_err(|e| {
                Error::Train(format!(
                    "features baseline, step {}: reading the logits back: {e:?}",
                    st.step
                ))
            })?;
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
            .map_err(|e| {
                Error::Train(format!(
                    "features baseline, epoch {epoch}: reading the validation logits back: {e:?}"
                ))
            })?;
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
