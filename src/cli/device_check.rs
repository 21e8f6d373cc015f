//! `pipeline device-check --device cuda|wgpu`: trains every model family for a few steps on
//! the CPU and on the GPU from the same weights and batch, prints the last losses, the largest
//! relative difference of the checked losses (`train::device_check::CHECKED`) and of the last,
//! and the seconds per step; fails when a model's checked losses disagree.

use crate::error::{Error, Result};
use crate::train::device_check::{DEFAULT_MODELS, Synthetic, compare};
use crate::train::models::ModelSpec;
use crate::train::run::device;
use crate::train::spec::DeviceKind;
use burn::prelude::Device;
use clap::Args;

/// Arguments of `pipeline device-check`.
#[derive(Debug, Args)]
pub struct DeviceCheckArgs {
    /// The device to check against the CPU: `cuda` or `wgpu`.
    #[arg(long, value_parser = parse_device)]
    pub device: DeviceKind,
    /// Model specs as in the training YAML's `model:` (JSON), separated by `;` (default:
    /// one of every family, dropout off).
    #[arg(long)]
    pub models: Option<String>,
    /// Training steps per model (the first is not timed).
    #[arg(long, default_value_t = 4)]
    pub steps: usize,
    /// Jets per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Points per jet of the models made for any resolution.
    #[arg(long, default_value_t = 64)]
    pub resolution: usize,
    /// Largest relative difference between the devices of the checked losses (before the
    /// first step and after it) that passes.
    #[arg(long, default_value_t = 1e-3)]
    pub tolerance: f32,
}

fn parse_device(s: &str) -> std::result::Result<DeviceKind, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("`{s}`: expected cpu, cuda or wgpu"))
}

/// Runs the check and prints one row per model.
pub fn device_check(args: DeviceCheckArgs) -> Result<()> {
    let tested = device(args.device)?;
    let data = Synthetic {
        batch: args.batch,
        resolution: args.resolution,
        ..Synthetic::default()
    };
    let list = args.models.unwrap_or_else(|| DEFAULT_MODELS.join(";"));
    println!(
        "{:<44} {:>10} {:>11} {:>11} {:>9} {:>9} {:>11} {:>11}",
        "model", "params", "loss cpu", "loss gpu", "checked", "last", "cpu s/step", "gpu s/step"
    );
    let mut bad = Vec::new();
    for text in list.split(';').filter(|s| !s.trim().is_empty()) {
        let spec: ModelSpec = serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("--models: `{text}`: {e}")))?;
        let p = compare(&spec, data, args.steps, &Device::flex(), &tested)?;
        let last = |l: &[f32]| l.last().copied().unwrap_or(f32::NAN);
        let rel = p.max_rel_diff();
        println!(
            "{:<44} {:>10} {:>11.6} {:>11.6} {:>9.1e} {:>9.1e} {:>11.4} {:>11.4}",
            p.title,
            p.params,
            last(&p.reference.losses),
            last(&p.tested.losses),
            rel,
            p.rel_diff(args.steps - 1),
            p.reference.secs_per_step,
            p.tested.secs_per_step
        );
        if rel.is_nan() || rel > args.tolerance {
            bad.push(format!(
                "{}: losses {:?} on the CPU, {:?} on {:?}",
                p.title, p.reference.losses, p.tested.losses, args.device
            ));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "device check: losses differ by more than {} (relative):\n{}",
            args.tolerance,
            bad.join("\n")
        )))
    }
}
