//! The training loop for point-cloud models (`pipeline train`): AdamW on BCE with logits,
//! gradient accumulation, plateau or cosine schedule, early stopping on validation AUC,
//! per-epoch metrics and plots, `best`/`last` checkpoints, and exact mid-epoch resume (the
//! loader state is part of the checkpoint).

use crate::error::{Error, Result};
use crate::loader::{Loader, Subset};
use crate::train::checkpoint::{self, TrainState};
use crate::train::history::{self, EpochMetrics};
use crate::train::jet_inputs::{JetTable, Normalisation, read_jets};
use crate::train::metrics;
use crate::train::plot;
use crate::train::resnet_pc::{ResNetPc, Variant};
use crate::train::spec::{DeviceKind, Scheduler, TrainSpec};
use crate::train::tensors::to_tensors;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Instant;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in `run_dir` from its `last` checkpoint.
    pub resume: bool,
    /// No progress bar or per-epoch lines.
    pub quiet: bool,
    /// Stop (as if killed) after this many optimiser steps in this invocation (tests).
    pub stop_after_steps: Option<usize>,
}

/// Where a run ended.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The state at the end (history, best AUC).
    pub state: TrainState,
}

/// The (non-autodiff) device of `kind`.
pub fn device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        #[allow(deprecated)] // burn marks its libtorch backend deprecated; see README: CUDA
        DeviceKind::Cuda => Ok(Device::libtorch_cuda(0)),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => Err(Error::Config(
            "device: cuda needs a binary built with `--features cuda` (see README: CUDA)".into(),
        )),
    }
}

/// Serialises model initialisation: Burn's CPU backend has one global RNG and creates
/// parameters lazily, so two models built at once (tests, or a library user) would draw
/// from it interleaved.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A module built by `make` after seeding the RNG with `seed`, its parameters drawn at once.
pub fn seeded<M: Module>(device: &Device, seed: u64, make: impl Fn() -> M) -> M {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let record = make().into_record(); // materialises every parameter from the seeded RNG
    make().load_record(record)
}

/// The jet inputs of run `run` (settings `spec`) for the jets of `dataset`, when the run has
/// `jet_inputs`: standardised as fitted on the training jets and saved to the run (`fit`: a
/// new run), or as the run saved them (resume, evaluation).
pub fn jet_table(
    spec: &TrainSpec,
    run: &Path,
    dataset: &Path,
    fit: bool,
) -> Result<Option<JetTable>> {
    let Some(names) = &spec.jet_inputs else {
        return Ok(None);
    };
    let data = read_jets(dataset)?;
    let norm = if fit {
        let cols = data.columns(names, dataset)?;
        let rows = data.rows(&spec.split_of(Subset::Train));
        let norm = Normalisation::fit(&data, &cols, &rows);
        norm.save(run)?;
        norm
    } else {
        let norm = Normalisation::load(run)?;
        if norm.names != *names {
            return Err(Error::Output {
                path: run.join("normalisation.json"),
                msg: format!(
                    "holds jet inputs [{}], the run's config.yaml names [{}]",
                    norm.names.join(", "),
                    names.join(", ")
                ),
            });
        }
        norm
    };
    JetTable::new(data, &norm, dataset).map(Some)
}

/// The `[B, J]` jet inputs of a batch's jets, when the run has them.
fn jet_tensor(table: Option<&JetTable>, ids: &[u64], device: &Device) -> Result<Option<Tensor<2>>> {
    table.map(|t| t.tensor(ids, device)).transpose()
}

/// Validation logits and labels of `model` over a loader's whole epoch 0 (`jets`: the run's
/// jet inputs, if any).
pub fn predict(
    model: &ResNetPc,
    loader: &Loader,
    jets: Option<&JetTable>,
    device: &Device,
) -> Result<(Vec<f32>, Vec<i8>, Vec<u64>)> {
    let eval = model.valid();
    let (mut logits, mut labels, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for b in loader.epoch(0)? {
        let t = to_tensors(b?, device);
        let j = jet_tensor(jets, &t.jet_ids, device)?;
        let z: Vec<f32> = eval
            .forward_with_jets(t.points, j)
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::Train(format!("scoring: reading the logits back: {e:?}")))?;
        logits.extend(z);
        labels.extend(t.label_values);
        ids.extend(t.jet_ids);
    }
    Ok((logits, labels, ids))
}

fn check_labels(labels: &[i8], ids: &[u64]) -> Result<()> {
    match labels.iter().position(|&l| l != 0 && l != 1) {
        None => Ok(()),
        Some(i) => Err(Error::Loader(format!(
            "jet {}: label {} — training needs labels 0 or 1 (`y` of the source)",
            ids[i], labels[i]
        ))),
    }
}

/// Prepares the run directory: a new run writes `config.yaml`; a resumed one must have the
/// same config.
pub fn prepare_run(spec: &TrainSpec, text: &str, resume: bool) -> Result<()> {
    let run = &spec.run_dir;
    std::fs::create_dir_all(run).map_err(|e| Error::io(run, e))?;
    let cfg = run.join("config.yaml");
    let old = std::fs::read_to_string(&cfg).ok();
    match (resume, old) {
        (true, Some(old)) if old != text => Err(Error::Output {
            path: run.clone(),
            msg: "--resume with a different training config than the run's config.yaml".into(),
        }),
        (true, None) => Err(Error::Output {
            path: run.clone(),
            msg: "--resume: no run here (config.yaml missing)".into(),
        }),
        (false, Some(_)) if checkpoint::find(run, "last").is_some() => Err(Error::Output {
            path: run.clone(),
            msg: "holds a run already: pass --resume to continue it, or choose another run_dir"
                .into(),
        }),
        (true, Some(_)) => Ok(()),
        (false, _) => std::fs::write(&cfg, text).map_err(|e| Error::io(&cfg, e)),
    }
}

/// Trains ResNet-PC `variant` as `spec` says.
pub fn train_resnet(
    spec: &TrainSpec,
    variant: Variant,
    opts: &TrainOptions,
) -> Result<TrainSummary> {
    if spec.loader.resolution != variant.resolution() {
        return Err(Error::Config(format!(
            "model ResNet-PC {} is made for resolution {}, the loader reads {}",
            variant.name(),
            variant.resolution(),
            spec.loader.resolution
        )));
    }
    let run = spec.run_dir.as_path();
    let plain = device(spec.device)?;
    let device = plain.clone().autodiff();
    let train = Loader::open(&spec.loader_for(Subset::Train))?;
    let val = Loader::open(&spec.loader_for(Subset::Val))?;
    let nf = spec.loader.features.len();
    let resume_from = if opts.resume {
        Some(checkpoint::find(run, "last").ok_or_else(|| Error::Output {
            path: run.to_path_buf(),
            msg: "--resume: no `last` checkpoint".into(),
        })?)
    } else {
        None
    };
    let jets = jet_table(spec, run, &spec.loader.dataset, !opts.resume)?;
    let nj = jets.as_ref().map_or(0, |t| t.width);
    let mut model = seeded(&device, spec.seed, || {
        ResNetPc::new(variant, nf, nj, &device)
    });
    let adamw = || {
        AdamWConfig::new()
            .with_weight_decay(spec.weight_decay as f32)
            .with_epsilon(1e-8)
    };
    let mut optim = adamw().init();
    let mut st = TrainState {
        lr: spec.lr,
        ..Default::default()
    };
    if let Some(dir) = resume_from {
        st = checkpoint::read_state(&dir)?;
        let bad = |e: &dyn std::fmt::Display| Error::Output {
            path: dir.clone(),
            msg: format!("cannot load checkpoint: {e}"),
        };
        model = model
            .try_load_file(dir.join("model.bpk"))
            .map_err(|e| bad(&e))?;
        optim = adamw()
            .init()
            .load(dir.join("optim.bpk"))
            .map_err(|e| bad(&e))?;
    }
    if !opts.quiet {
        println!(
            "model:    ResNet-PC {} ({} trainable parameters), {} features, res {}{}",
            variant.name(),
            model.trainable_params(),
            spec.loader.features.len(),
            spec.loader.resolution,
            spec.jet_inputs
                .as_ref()
                .map_or(String::new(), |j| format!(", jet inputs {}", j.join(", ")))
        );
        println!(
            "data:     {} training jets ({} batches/epoch), {} validation jets",
            train.jets(),
            train.batches_per_epoch(),
            val.jets()
        );
    }
    let accum = spec.grad_accumulation;
    if accum > train.batches_per_epoch() {
        return Err(Error::Config(format!(
            "grad_accumulation {accum} exceeds the {} training batches per epoch",
            train.batches_per_epoch()
        )));
    }
    let steps = (train.batches_per_epoch() / accum)
        .min(spec.max_steps.unwrap_or(usize::MAX))
        .max(1);
    let total = steps * spec.epochs;
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let mut session_steps = 0;
    while !st.finished && st.epoch < spec.epochs {
        let mut it = match st.loader.clone() {
            Some(s) if s.epoch == st.epoch as u64 => train.resume(&s)?,
            _ => train.epoch(st.epoch as u64)?,
        };
        let bar = if opts.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(steps as u64)
        };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "epoch {} {{bar:30}} {{pos}}/{{len}} steps {{msg}} eta {{eta}}",
                st.epoch
            ))
            .expect("template"),
        );
        bar.set_position(st.epoch_step as u64);
        let t0 = Instant::now();
        let mut seen = 0usize;
        let mut acc = GradientsAccumulator::<ResNetPc>::new();
        let mut pending = 0;
        while st.epoch_step < steps {
            let Some(b) = it.next() else { break };
            let t = to_tensors(b?, &device);
            check_labels(&t.label_values, &t.jet_ids)?;
            let j = jet_tensor(jets.as_ref(), &t.jet_ids, &device)?;
            let logits = model.forward_with_jets(t.points, j);
            let loss = bce.forward(logits.clone(), t.labels);
            let z: Vec<f32> = logits.inner().try_into_vec_as::<f32>().map_err(|e| {
                Error::Train(format!(
                    "step {} (epoch {}): reading the logits back: {e:?}",
                    st.step, st.epoch
                ))
            })?;
            if let Some(i) = z.iter().position(|v| !v.is_finite()) {
                return Err(Error::Train(format!(
                    "model diverged at step {} (epoch {}): logit {} of jet {} is not finite; lower lr or check the feature transforms for overflow",
                    st.step, st.epoch, z[i], t.jet_ids[i]
                )));
            }
            st.partial_loss += metrics::bce_with_logits(&z, &t.label_values) * z.len() as f64;
            st.partial_jets += z.len();
            st.partial_logits.extend(z);
            st.partial_labels.extend(&t.label_values);
            seen += t.label_values.len();
            let loss = if accum > 1 {
                loss.div_scalar(accum as f32)
            } else {
                loss
            };
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            acc.accumulate(&model, grads);
            pending += 1;
            if pending < accum {
                continue;
            }
            pending = 0;
            let lr = match spec.scheduler {
                Scheduler::Plateau => st.lr,
                Scheduler::Cosine => {
                    spec.lr
                        * 0.5
                        * (1.0 + (std::f64::consts::PI * st.step as f64 / total as f64).cos())
                }
            };
            model = optim.step(lr, model, acc.grads());
            st.lr = if spec.scheduler == Scheduler::Cosine {
                lr
            } else {
                st.lr
            };
            st.step += 1;
            st.epoch_step += 1;
            session_steps += 1;
            st.loader = Some(it.state());
            bar.set_message(format!(
                "{:.0} jets/s",
                seen as f64 / t0.elapsed().as_secs_f64()
            ));
            bar.inc(1);
            if st.step.is_multiple_of(spec.checkpoint_every) {
                checkpoint::save(run, "last", &model, Some(&optim), &st)?;
            }
            if opts.stop_after_steps == Some(session_steps) {
                checkpoint::save(run, "last", &model, Some(&optim), &st)?;
                bar.abandon();
                return Ok(TrainSummary { state: st });
            }
        }
        drop(it);
        bar.finish_and_clear();
        let rate = seen as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let (vz, vl, _) = predict(&model, &val, jets.as_ref(), &plain)?;
        let m = EpochMetrics {
            epoch: st.epoch,
            lr: st.lr,
            train_loss: st.partial_loss / st.partial_jets.max(1) as f64,
            train_auc: metrics::auc(&st.partial_logits, &st.partial_labels),
            val_loss: metrics::bce_with_logits(&vz, &vl),
            val_acc: metrics::accuracy(&vz, &vl, 0.0),
            val_auc: metrics::auc(&vz, &vl),
            samples_per_s: rate,
            train_jets: st.partial_jets,
        };
        if !opts.quiet {
            println!(
                "epoch {:>3}: train loss {:.4} auc {} | val loss {:.4} acc {:.4} auc {} | lr {:.2e} | {:.0} jets/s",
                m.epoch,
                m.train_loss,
                fmt_auc(m.train_auc),
                m.val_loss,
                m.val_acc,
                fmt_auc(m.val_auc),
                m.lr,
                m.samples_per_s
            );
        }
        let improved = match (m.val_auc, st.best_auc) {
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            _ => false,
        };
        st.history.push(m.clone());
        st.epoch += 1;
        st.epoch_step = 0;
        st.loader = None;
        st.partial_loss = 0.0;
        st.partial_jets = 0;
        st.partial_logits.clear();
        st.partial_labels.clear();
        if improved {
            st.best_auc = m.val_auc;
            st.best_epoch = Some(m.epoch);
            st.bad_epochs = 0;
            st.plateau_epochs = 0;
            plot::roc(
                &run.join("roc.png"),
                &format!(
                    "ResNet-PC {}, validation, epoch {}",
                    variant.name(),
                    m.epoch
                ),
                &vz,
                &vl,
            )?;
        } else {
            st.bad_epochs += 1;
            st.plateau_epochs += 1;
            // As PyTorch's ReduceLROnPlateau: cut after more than `patience` bad epochs.
            if spec.scheduler == Scheduler::Plateau && st.plateau_epochs > spec.patience {
                st.lr *= spec.factor;
                st.plateau_epochs = 0;
            }
        }
        st.finished = st.epoch >= spec.epochs
            || (spec.early_stopping > 0 && st.bad_epochs >= spec.early_stopping);
        history::write(run, &st.history)?;
        plot::losses(
            &run.join("loss.png"),
            &format!("ResNet-PC {}", variant.name()),
            &st.history,
        )?;
        if improved {
            checkpoint::save(run, "best", &model, None, &st)?;
        }
        checkpoint::save(run, "last", &model, Some(&optim), &st)?;
    }
    if !opts.quiet {
        println!(
            "best:     val AUC {} at epoch {} ({})",
            fmt_auc(st.best_auc),
            st.best_epoch.map_or("-".into(), |e| e.to_string()),
            run.join("best").display()
        );
    }
    Ok(TrainSummary { state: st })
}

fn fmt_auc(a: Option<f64>) -> String {
    a.map_or("-".into(), |a| format!("{a:.4}"))
}

/// Loads the `best` (or `last`) model of a run.
pub fn load_model(
    run: &Path,
    spec: &TrainSpec,
    variant: Variant,
    which: &str,
    device: &Device,
) -> Result<ResNetPc> {
    let dir = checkpoint::find(run, which).ok_or_else(|| Error::Output {
        path: run.to_path_buf(),
        msg: format!("no `{which}` checkpoint"),
    })?;
    let nj = spec.jet_inputs.as_ref().map_or(0, Vec::len);
    ResNetPc::new(variant, spec.loader.features.len(), nj, device)
        .try_load_file(dir.join("model.bpk"))
        .map_err(|e| Error::Output {
            path: dir,
            msg: format!("cannot load model: {e}"),
        })
}
