//! The one training loop (`pipeline train`) for every [`JetModel`], classifier or generative:
//! AdamW on the model's loss (BCE with logits for classifiers), gradient accumulation, plateau
//! or cosine schedule, early stopping on the model's goal (validation AUC or validation loss),
//! per-epoch metrics and plots, `best`/`last` checkpoints, and exact mid-epoch resume (the
//! loader state is part of the checkpoint; the noise of a step is seeded by the step). The model is built by the registry (`models`),
//! which is the only place that knows which model a run trains.

use crate::error::{Error, Result};
use crate::loader::{Loader, Subset};
use crate::train::checkpoint::{self, TrainState};
use crate::train::contract::{Dims, Goal, JetModel, Make, Needs, Noise, Step};
use crate::train::history::{self, EpochMetrics};
use crate::train::jet_inputs::JetTable;
use crate::train::run::{
    TrainOptions, TrainSummary, check_labels, device, fmt_auc, jet_table, jet_tensor, seeded,
};
use crate::train::spec::{Scheduler, TrainSpec};
use crate::train::tensors::{BatchTensors, to_tensors};
use crate::train::{ema, metrics, plot};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Instant;

/// One batch of `loader` as the model's inputs, with the run's jet inputs joined by jet id.
fn inputs(
    b: crate::loader::Batch,
    needs: Needs,
    jets: Option<&JetTable>,
    device: &Device,
) -> Result<BatchTensors> {
    let mut t = to_tensors(b, needs, device);
    t.inputs.jets = jet_tensor(jets, &t.jet_ids, device)?;
    Ok(t)
}

/// Logits, labels and jet ids of `model` over a loader's whole epoch 0 (`jets`: the run's jet
/// inputs, if any).
pub fn predict<M: JetModel>(
    model: &M,
    needs: Needs,
    loader: &Loader,
    jets: Option<&JetTable>,
    device: &Device,
) -> Result<(Vec<f32>, Vec<i8>, Vec<u64>)> {
    let eval = model.valid();
    let (mut logits, mut labels, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for b in loader.epoch(0)? {
        let t = inputs(b?, needs, jets, device)?;
        let z = eval.scores(&t.inputs).ok_or_else(|| {
            Error::Config("the model is generative: it gives no per-jet scores".into())
        })?;
        let z: Vec<f32> = z
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::Train(format!("scoring: reading the logits back: {e:?}")))?;
        logits.extend(z);
        labels.extend(t.label_values);
        ids.extend(t.jet_ids);
    }
    Ok((logits, labels, ids))
}

/// Noise streams of validation batches (training steps use the stream of their batch number).
const VALIDATION_STREAM: u64 = 1 << 62;

/// The validation loss of `model` over a loader's epoch 0, with a classifier's logits and the
/// labels. A generative model's loss is drawn with the same noise every epoch (seed `seed`,
/// full annealed weights), so epochs compare.
fn validate<M: JetModel>(
    model: &M,
    needs: Needs,
    loader: &Loader,
    jets: Option<&JetTable>,
    device: &Device,
    seed: u64,
) -> Result<(f64, Vec<f32>, Vec<i8>)> {
    if M::GOAL == Goal::MaxAuc {
        let (z, l, _) = predict(model, needs, loader, jets, device)?;
        return Ok((metrics::bce_with_logits(&z, &l), z, l));
    }
    let eval = model.valid();
    let (mut sum, mut n) = (0.0, 0usize);
    for (i, b) in loader.epoch(0)?.enumerate() {
        let t = inputs(b?, needs, jets, device)?;
        let mut noise = Noise::new(seed, VALIDATION_STREAM + i as u64);
        let mut step = Step {
            labels: t.labels,
            noise: &mut noise,
            progress: 1.0,
        };
        let loss: f32 = eval.objective(&t.inputs, &mut step).loss.into_scalar();
        sum += f64::from(loss) * t.jet_ids.len() as f64;
        n += t.jet_ids.len();
    }
    Ok((sum / n.max(1) as f64, Vec::new(), Vec::new()))
}

/// The sizes of the model `spec` trains, given its jet inputs.
pub fn dims(spec: &TrainSpec, jets: Option<&JetTable>) -> Dims {
    Dims {
        features: spec.loader.features.len(),
        jet_inputs: jets.map_or(0, |t| t.width),
        resolution: spec.loader.resolution as usize,
        image: spec.loader.image.as_ref().map_or([0; 3], |i| i.dims()),
    }
}

/// Loads the `which` checkpoint (`best` or `last`) of run `run` into a model built by `make`.
pub fn load_model<M: JetModel>(
    run: &Path,
    which: &str,
    make: Make<M>,
    dims: Dims,
    device: &Device,
) -> Result<M> {
    let dir = checkpoint::find(run, which).ok_or_else(|| Error::Output {
        path: run.to_path_buf(),
        msg: format!("no `{which}` checkpoint"),
    })?;
    make(device, dims)
        .try_load_file(dir.join("model.bpk"))
        .map_err(|e| Error::Output {
            path: dir,
            msg: format!("cannot load model: {e}"),
        })
}

/// The learning rate of optimiser step `step` of `total`.
fn rate(spec: &TrainSpec, st: &TrainState, total: usize) -> f64 {
    match spec.scheduler {
        Scheduler::Plateau => st.lr,
        Scheduler::Cosine => {
            spec.lr * 0.5 * (1.0 + (std::f64::consts::PI * st.step as f64 / total as f64).cos())
        }
    }
}

/// Refuses a dataset without kNN graphs for a model that reads them.
fn require_graph(title: &str, needs: Needs, loader: &Loader, dataset: &Path) -> Result<()> {
    if needs.neighbours && loader.knn_k() == 0 {
        return Err(Error::Config(format!(
            "model {title} reads the kNN graph, but dataset {} has none (it was converted with \
             `stages.knn: null`)",
            dataset.display()
        )));
    }
    Ok(())
}

/// Trains the model `make` builds (`title` names it in output and plots; it reads `needs`)
/// as `spec` says.
pub fn fit<M: JetModel>(
    spec: &TrainSpec,
    opts: &TrainOptions,
    title: &str,
    needs: Needs,
    make: Make<M>,
) -> Result<TrainSummary> {
    let run = spec.run_dir.as_path();
    let plain = device(spec.device)?;
    let device = plain.clone().autodiff();
    let train = Loader::open(&spec.loader_for(Subset::Train))?;
    require_graph(title, needs, &train, &spec.loader.dataset)?;
    let val = Loader::open(&spec.loader_for(Subset::Val))?;
    if M::GOAL == Goal::MinLoss && val.jets() == 0 {
        return Err(Error::Config(format!(
            "model {title}: the validation split of {} has no jets, and the best checkpoint of a \
             generative model is the lowest validation loss: raise `split.val`",
            spec.loader.dataset.display()
        )));
    }
    let resume_from = if opts.resume {
        Some(checkpoint::find(run, "last").ok_or_else(|| Error::Output {
            path: run.to_path_buf(),
            msg: "--resume: no `last` checkpoint".into(),
        })?)
    } else {
        None
    };
    let jets = jet_table(spec, run, &spec.loader.dataset, !opts.resume)?;
    let dims = dims(spec, jets.as_ref());
    let mut model = seeded(&device, spec.seed, || make(&device, dims));
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
    // The moving average of the weights (models that keep one): starts as the initial weights.
    let mut ema = model.ema_decay().map(|_| model.valid());
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
        if let Some(e) = ema.take() {
            ema = Some(e.try_load_file(dir.join("ema.bpk")).map_err(|e| bad(&e))?);
        }
    }
    if !opts.quiet {
        println!(
            "model:    {title} ({} trainable parameters), {} point features, res {}{}",
            model.parameters(),
            if needs.points { dims.features } else { 0 },
            spec.loader.resolution,
            jets.as_ref()
                .map_or(String::new(), |j| format!(", {} jet inputs", j.width))
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
        let mut acc = GradientsAccumulator::<M>::new();
        let mut pending = 0;
        while st.epoch_step < steps {
            let Some(b) = it.next() else { break };
            let t = inputs(b?, needs, jets.as_ref(), &device)?;
            if M::GOAL == Goal::MaxAuc {
                check_labels(&t.label_values, &t.jet_ids)?;
            }
            let mut noise = Noise::new(spec.seed, (st.step * accum + pending) as u64);
            let mut step = Step {
                labels: t.labels,
                noise: &mut noise,
                progress: st.step as f64 / total as f64,
            };
            let out = model.objective(&t.inputs, &mut step);
            let n = t.label_values.len();
            let diverged = |what: String| {
                Error::Train(format!(
                    "model diverged at step {} (epoch {}): {what} is not finite; lower lr or \
                     check the transforms for overflow",
                    st.step, st.epoch
                ))
            };
            if let Some(logits) = out.logits {
                let z: Vec<f32> = logits.inner().try_into_vec_as::<f32>().map_err(|e| {
                    Error::Train(format!(
                        "step {} (epoch {}): reading the logits back: {e:?}",
                        st.step, st.epoch
                    ))
                })?;
                if let Some(i) = z.iter().position(|v| !v.is_finite()) {
                    return Err(diverged(format!("logit {} of jet {}", z[i], t.jet_ids[i])));
                }
                st.partial_loss += metrics::bce_with_logits(&z, &t.label_values) * n as f64;
                st.partial_logits.extend(z);
                st.partial_labels.extend(&t.label_values);
            } else {
                let l: f32 = out.loss.clone().inner().into_scalar();
                if !l.is_finite() {
                    return Err(diverged(format!("the loss ({l})")));
                }
                st.partial_loss += f64::from(l) * n as f64;
            }
            st.partial_jets += n;
            seen += n;
            let loss = out.loss;
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
            let lr = rate(spec, &st, total);
            model = optim.step(lr, model, acc.grads());
            if let (Some(e), Some(decay)) = (ema.take(), model.ema_decay()) {
                // Warm-up: the average forgets the random initial weights within ~10 steps
                // early on, then decays at `decay` (min(d, (1 + n)/(10 + n)), n = steps done).
                let n = st.step as f64;
                ema = Some(ema::update(e, &model, decay.min((1.0 + n) / (10.0 + n))));
            }
            st.lr = lr;
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
                checkpoint::save(run, "last", &model, Some(&optim), ema.as_ref(), &st)?;
            }
            if opts.stop_after_steps == Some(session_steps) {
                checkpoint::save(run, "last", &model, Some(&optim), ema.as_ref(), &st)?;
                bar.abandon();
                return Ok(TrainSummary { state: st });
            }
        }
        drop(it);
        bar.finish_and_clear();
        let rate = seen as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let scored = ema.as_ref().unwrap_or(&model);
        let (val_loss, vz, vl) = validate(scored, needs, &val, jets.as_ref(), &plain, spec.seed)?;
        let m = EpochMetrics {
            epoch: st.epoch,
            lr: st.lr,
            train_loss: st.partial_loss / st.partial_jets.max(1) as f64,
            train_auc: metrics::auc(&st.partial_logits, &st.partial_labels),
            val_loss,
            val_acc: (M::GOAL == Goal::MaxAuc).then(|| metrics::accuracy(&vz, &vl, 0.0)),
            val_auc: metrics::auc(&vz, &vl),
            samples_per_s: rate,
            train_jets: st.partial_jets,
        };
        if !opts.quiet {
            println!(
                "epoch {:>3}: train loss {:.4} auc {} | val loss {:.4} acc {} auc {} | lr {:.2e} | {:.0} jets/s",
                m.epoch,
                m.train_loss,
                fmt_auc(m.train_auc),
                m.val_loss,
                fmt_auc(m.val_acc),
                fmt_auc(m.val_auc),
                m.lr,
                m.samples_per_s
            );
        }
        let improved = match M::GOAL {
            Goal::MaxAuc => match (m.val_auc, st.best_auc) {
                (Some(a), Some(b)) => a > b,
                (Some(_), None) => true,
                _ => false,
            },
            Goal::MinLoss => m.val_loss.is_finite() && st.best_loss.is_none_or(|b| m.val_loss < b),
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
            st.best_loss = Some(m.val_loss);
            st.best_epoch = Some(m.epoch);
            st.bad_epochs = 0;
            st.plateau_epochs = 0;
            if M::GOAL == Goal::MaxAuc {
                let t = format!("{title}, validation, epoch {}", m.epoch);
                plot::roc(&run.join("roc.png"), &t, &vz, &vl)?;
            }
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
        plot::losses(&run.join("loss.png"), title, &st.history)?;
        if improved {
            checkpoint::save(run, "best", ema.as_ref().unwrap_or(&model), None, None, &st)?;
        }
        checkpoint::save(run, "last", &model, Some(&optim), ema.as_ref(), &st)?;
    }
    if !opts.quiet {
        let best = match M::GOAL {
            Goal::MaxAuc => format!("val AUC {}", fmt_auc(st.best_auc)),
            Goal::MinLoss => format!("val loss {}", fmt_auc(st.best_loss)),
        };
        println!(
            "best:     {best} at epoch {} ({})",
            st.best_epoch.map_or("-".into(), |e| e.to_string()),
            run.join("best").display()
        );
    }
    Ok(TrainSummary { state: st })
}

/// Trains the run's model (checked by `ModelSpec::check` first: `train::train` does).
pub fn train_model(
    spec: &TrainSpec,
    opts: &crate::train::run::TrainOptions,
) -> Result<crate::train::run::TrainSummary> {
    struct Fit<'a>(&'a TrainSpec, &'a crate::train::run::TrainOptions);
    impl crate::train::models::ModelVisitor for Fit<'_> {
        type Out = Result<crate::train::run::TrainSummary>;
        fn visit<M: JetModel>(self, title: &str, needs: Needs, make: Make<M>) -> Self::Out {
            fit(self.0, self.1, title, needs, make)
        }
    }
    spec.model.visit(Fit(spec, opts))
}

/// Logits, labels and jet ids of the `best` model of run `run` (settings `spec`) for the jets
/// that loader `loader` reads.
pub fn score(
    run: &std::path::Path,
    spec: &TrainSpec,
    loader: &crate::loader::LoaderSpec,
    device: &Device,
) -> Result<(Vec<f32>, Vec<i8>, Vec<u64>)> {
    struct Score<'a> {
        run: &'a std::path::Path,
        spec: &'a TrainSpec,
        loader: &'a crate::loader::LoaderSpec,
        device: &'a Device,
    }
    impl crate::train::models::ModelVisitor for Score<'_> {
        type Out = Result<(Vec<f32>, Vec<i8>, Vec<u64>)>;
        fn visit<M: JetModel>(self, title: &str, needs: Needs, make: Make<M>) -> Self::Out {
            if M::GOAL != Goal::MaxAuc {
                return Err(Error::Config(format!(
                    "model {title} is generative: it gives no per-jet scores to evaluate (use \
                     `pipeline generate` or `pipeline reconstruct`)"
                )));
            }
            let l = crate::loader::Loader::open(self.loader)?;
            require_graph(title, needs, &l, &self.loader.dataset)?;
            let jets =
                crate::train::run::jet_table(self.spec, self.run, &self.loader.dataset, false)?;
            let dims = dims(self.spec, jets.as_ref());
            let model = load_model(self.run, "best", make, dims, self.device)?;
            predict(&model, needs, &l, jets.as_ref(), self.device)
        }
    }
    spec.model.visit(Score {
        run,
        spec,
        loader,
        device,
    })
}
