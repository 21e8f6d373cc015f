//! What a training run needs around its loop (`fit`): the options, the device, seeded model
//! initialisation, the run directory, and the run's jet inputs.

use crate::error::{Error, Result};
use crate::loader::Subset;
use crate::train::checkpoint::{self, TrainState};
use crate::train::jet_inputs::{JetTable, Normalisation, read_jets};
use crate::train::spec::{DeviceKind, TrainSpec};
use burn::prelude::*;
use std::path::Path;

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

/// The (non-autodiff) device of `kind`, checked with one small computation: a binary built
/// without the device's feature, a machine without the driver or without a GPU give an error
/// that names the device instead of a panic inside the first training step.
pub fn device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => probe(Device::cuda(0), "cuda"),
        #[cfg(feature = "wgpu")]
        DeviceKind::Wgpu => probe(
            Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            "wgpu",
        ),
        #[allow(unreachable_patterns)] // every GPU feature enabled
        other => {
            let name = format!("{other:?}").to_lowercase();
            Err(Error::Config(format!(
                "device: {name} needs a binary built with `--features {name}` (see docs/gpu.md)"
            )))
        }
    }
}

/// `device` after a sum of two vectors on it came back right; a panic on the way (no driver,
/// no GPU, a kernel that does not compile) becomes a configuration error naming `name`.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn probe(device: Device, name: &str) -> Result<Device> {
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::{Arc, Mutex};
    // Backends fail on their own threads (the first panic there says why: no driver, no
    // device) and the caller then sees only a closed channel, so every panic message during
    // the probe is kept and the first one reported.
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let hook = panic::take_hook();
    let keep = Arc::clone(&seen);
    panic::set_hook(Box::new(move |info| {
        if let Ok(mut v) = keep.lock() {
            v.push(info.to_string());
        }
    }));
    let got = panic::catch_unwind(AssertUnwindSafe(|| {
        let a = Tensor::<1>::from_floats([1.0, 2.0], &device);
        (a.clone() + a.flip([0])).into_data().try_to_vec::<f32>()
    }));
    panic::set_hook(hook);
    let first = seen.lock().ok().and_then(|v| v.first().cloned());
    let fail = |why: String| {
        Err(Error::Config(format!(
            "device: {name}: the device does not work here ({why}); \
             use `device: cpu`, or see docs/gpu.md for what a {name} run needs"
        )))
    };
    match got {
        Ok(Ok(v)) if v == [3.0, 3.0] => Ok(device),
        Ok(Ok(v)) => fail(format!("1 + 2 gave {v:?}")),
        Ok(Err(e)) => fail(format!("{e:?}")),
        Err(payload) => fail(first.unwrap_or_else(|| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "it panicked".into())
        })),
    }
}

/// Serialises model initialisation: Burn's CPU backend has one global RNG and creates
/// parameters lazily, so two models built at once (tests, or a library user) would draw
/// from it interleaved. Dropout draws from the same RNG while a model trains, so a model
/// initialised while another one trains with dropout in the same process does not get
/// reproducible weights; `pipeline train` trains one model per process.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A module built by `make` after seeding the RNG with `seed`, its parameters drawn at once.
pub fn seeded<M: Module>(device: &Device, seed: u64, make: impl Fn() -> M) -> M {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let record = make().into_record(); // materialises every parameter from the seeded RNG
    make().load_record(record)
}

/// The jet inputs of run `run` (settings `spec`) for the jets of `dataset`, when the run has
/// `jet_inputs` (or, for a model that takes them by default, every numeric column):
/// standardised as fitted on the training jets and saved to the run (`fit`: a new run), or as
/// the run saved them (resume, evaluation).
pub fn jet_table(
    spec: &TrainSpec,
    run: &Path,
    dataset: &Path,
    fit: bool,
) -> Result<Option<JetTable>> {
    let all = spec.model.needs().all_jet_inputs_by_default;
    if spec.jet_inputs.is_none() && !all {
        return Ok(None);
    }
    let data = read_jets(dataset)?;
    let names = &spec
        .jet_inputs
        .clone()
        .unwrap_or_else(|| data.names.clone());
    let norm = if fit {
        let cols = data.columns(names, dataset)?;
        let rows = data.rows(&spec.split_of(Subset::Train));
        let norm = Normalisation::fit(&data, &cols, &rows);
        norm.save(run)?;
        norm
    } else {
        let norm = Normalisation::load(run)?;
        if spec.jet_inputs.is_some() && norm.names != *names {
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
pub fn jet_tensor(
    table: Option<&JetTable>,
    ids: &[u64],
    device: &Device,
) -> Result<Option<Tensor<2>>> {
    table.map(|t| t.tensor(ids, device)).transpose()
}

/// Refuses labels other than 0 and 1 (training needs both classes defined).
pub fn check_labels(labels: &[i8], ids: &[u64]) -> Result<()> {
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

/// An AUC for the console (`-` when undefined).
pub fn fmt_auc(a: Option<f64>) -> String {
    a.map_or("-".into(), |a| format!("{a:.4}"))
}
