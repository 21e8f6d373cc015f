//! ResNet-PC training-step speed on the CPU backend (issue 9): one AdamW step on a batch of
//! 64 jets (forward, BCE-with-logits, backward, optimiser), for the model computed on
//! `[B, L, C]` rows (`ResNetPc::forward`, what `pipeline train` runs) against the same model
//! with Burn's `Conv1d`/`MaxPool1d` modules on `[B, C, L]` (`ResNetPc::forward_modules`, the
//! baseline), measured in the same run on the same inputs. The two give the same logits (checked
//! here before timing; a unit test checks values and gradients).
//!
//! Run: `.ci/with-tools cargo bench --bench train_step`. `TRAIN_STEP_VARIANTS=1024_M,512_M`
//! picks the variants; `TRAIN_STEP_SECS` (default 10) is the time spent per variant and path;
//! `TRAIN_STEP_ONLY_ROWS=1` skips the baseline (for profiling).

use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use jetpipe::train::resnet_pc::{ResNetPc, Variant};
use std::time::Instant;

const BATCH: usize = 64;
/// Features per point, as in the README's training configs.
const FEATURES: usize = 9;

/// Seconds per jet of training steps through `fwd` for about `secs` seconds (at least two),
/// after one warm-up step.
fn time_steps(variant: Variant, secs: f64, fwd: fn(&ResNetPc, Tensor<3>) -> Tensor<1>) -> f64 {
    let device = Device::flex().autodiff();
    let mut model = ResNetPc::new(variant, FEATURES, 0, &device);
    let mut optim = AdamWConfig::new().with_weight_decay(0.05).init();
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let r = variant.resolution() as usize;
    let x = Tensor::<3>::random(
        [BATCH, r, FEATURES],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let y = Tensor::<1, Int>::from_data(
        TensorData::new((0..BATCH as i64).map(|i| i % 2).collect(), [BATCH]),
        &device,
    );
    let mut step = |model: ResNetPc| {
        let loss = bce.forward(fwd(&model, x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-3, model, grads)
    };
    model = step(model);
    let t0 = Instant::now();
    let mut steps = 0;
    while steps < 2 || t0.elapsed().as_secs_f64() < secs {
        model = step(model);
        steps += 1;
    }
    t0.elapsed().as_secs_f64() / (steps * BATCH) as f64
}

fn main() {
    let secs: f64 = std::env::var("TRAIN_STEP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let names = std::env::var("TRAIN_STEP_VARIANTS").unwrap_or("1024_M,1024_S,512_M,256_M".into());
    let threads = rayon_threads();
    println!("ResNet-PC training step, batch {BATCH}, {FEATURES} features, {threads} threads");
    println!(
        "{:<8} {:>12} {:>12} {:>14} {:>14} {:>8}",
        "variant", "modules µs", "rows µs", "modules jets/s", "rows jets/s", "speed-up"
    );
    for name in names.split(',') {
        let v: Variant = serde_json::from_value(serde_json::Value::String(name.into()))
            .unwrap_or_else(|_| panic!("unknown variant {name}"));
        check_same_logits(v);
        let m = if std::env::var("TRAIN_STEP_ONLY_ROWS").is_ok() {
            f64::NAN
        } else {
            time_steps(v, secs, ResNetPc::forward_modules)
        };
        let r = time_steps(v, secs, ResNetPc::forward);
        println!(
            "{:<8} {:>12.0} {:>12.0} {:>14.1} {:>14.1} {:>7.2}×",
            name,
            m * 1e6,
            r * 1e6,
            1.0 / m,
            1.0 / r,
            m / r
        );
    }
}

/// Burn's CPU backend runs on the global rayon pool.
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Both forwards give the same logits for one batch (training mode: batch statistics).
fn check_same_logits(v: Variant) {
    let device = Device::flex().autodiff();
    let m = ResNetPc::new(v, FEATURES, 0, &device);
    let r = v.resolution() as usize;
    let x = Tensor::<3>::random([8, r, FEATURES], Distribution::Normal(0.0, 1.0), &device);
    let a = m.forward(x.clone());
    let b = m.forward_modules(x);
    let scale = a.clone().abs().max().into_scalar::<f32>().max(1e-6);
    let d = (a - b).abs().max().into_scalar::<f32>() / scale;
    assert!(d < 1e-4, "{}: the two forwards differ by {d}", v.name());
}
