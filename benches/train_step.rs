//! ResNet-PC training-step speed on the CPU backend (issue 9): one AdamW step on a batch of
//! 64 jets (forward, BCE-with-logits, backward, optimiser), for the model computed on
//! `[B, L, C]` rows (`ResNetPc::forward`, what `pipeline train` runs) against the same model
//! with Burn's `Conv1d`/`MaxPool1d` modules on `[B, C, L]` (`ResNetPc::forward_modules`, the
//! baseline), measured in the same run on the same inputs. The two give the same logits (checked
//! here before timing; a unit test checks values and gradients).
//!
//! Then every registered model (issue 19) through the model contract, as `pipeline train`
//! runs it: jets/s of one training step at batch 64 and the ratio to ResNet-PC 1024_M measured
//! in the same run. Jets have between 30 and R real points (uniform), the rest padding. The
//! generative models (VAE, DDPM) get random non-negative 3 × 32 × 32 images (125 × 125
//! pooled by 4, as `pipelines/qg_train_{vae,ddpm}.yaml` read them).
//!
//! Run: `.ci/with-tools cargo bench --bench train_step`. `TRAIN_STEP_VARIANTS=1024_M,512_M`
//! picks the ResNet-PC variants of the first table (`none` skips it); `TRAIN_STEP_MODELS`
//! picks models of the second as JSON model specs separated by `;` (default: every model
//! family; `none` skips it); `TRAIN_STEP_RESOLUTION` (default 256) is the resolution of the models made for
//! any (the GNNs); `TRAIN_STEP_SECS` (default 10) is the time spent per variant and path;
//! `TRAIN_STEP_ONLY_ROWS=1` skips the modules baseline (for profiling). A third table (issue
//! 26) runs the same ResNet-PC steps in PyTorch (`benches/torch_resnet_step.py`, where
//! `torch` imports) back to back with Burn's, at batch 64 and 256 and 1 and all threads, and
//! prints Burn/PyTorch (`TRAIN_STEP_TORCH_VARIANTS`, `TRAIN_STEP_TORCH_BATCHES`, see
//! [`against_pytorch`]). `TRAIN_STEP_OPS=1`
//! first times single ops, forward and backward, on ParticleNet's edge rows (64 jets × 256
//! points × 16 neighbours): batch norm, a bias-free Linear and ReLU at 64 and 256 channels.

use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use jetpipe::train::contract::{Dims, Inputs, JetModel, Make, Needs, Noise, Step};
use jetpipe::train::device_check::neighbour_lists;
use jetpipe::train::models::resnet_pc::{ResNetPc, Variant};
use jetpipe::train::models::{ModelSpec, ModelVisitor};
use std::time::Instant;

const BATCH: usize = 64;
/// Features per point, as in the committed training configs.
const FEATURES: usize = 9;

/// Seconds per jet of ResNet-PC training steps through `fwd` ([`per_jet`]).
fn time_steps(variant: Variant, secs: f64, fwd: fn(&ResNetPc, Tensor<3>) -> Tensor<1>) -> f64 {
    time_steps_batch(variant, secs, fwd, BATCH)
}

/// [`time_steps`] at batch size `batch`.
fn time_steps_batch(
    variant: Variant,
    secs: f64,
    fwd: fn(&ResNetPc, Tensor<3>) -> Tensor<1>,
    batch: usize,
) -> f64 {
    let device = Device::flex().autodiff();
    let model = ResNetPc::new(variant, FEATURES, 0, &device);
    let mut optim = AdamWConfig::new().with_weight_decay(0.05).init();
    let bce = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&device);
    let r = variant.resolution() as usize;
    let x = Tensor::<3>::random(
        [batch, r, FEATURES],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let y = Tensor::<1, Int>::from_data(
        TensorData::new((0..batch as i64).map(|i| i % 2).collect(), [batch]),
        &device,
    );
    let step = |model: ResNetPc| {
        let loss = bce.forward(fwd(&model, x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        optim.step(1e-3, model, grads)
    };
    per_jet(model, step, secs, batch)
}

/// Seconds per jet of `step` (one training step on `BATCH` jets, returning the updated model)
/// run for about `secs` seconds (at least two steps), after one warm-up step.
fn per_jet<M>(mut model: M, mut step: impl FnMut(M) -> M, secs: f64, batch: usize) -> f64 {
    model = step(model);
    let t0 = Instant::now();
    let mut steps = 0;
    while steps < 2 || t0.elapsed().as_secs_f64() < secs {
        model = step(model);
        steps += 1;
    }
    t0.elapsed().as_secs_f64() / (steps * batch) as f64
}

fn main() {
    // As `pipeline train` (train::malloc); `GLIBC_TUNABLES=glibc.malloc.tcache_count=7`
    // (glibc's default value) measures with glibc's defaults.
    let malloc = jetpipe::train::malloc::keep_freed_memory();
    println!(
        "malloc: {}",
        if malloc {
            "freed memory kept (jetpipe::train::malloc)"
        } else {
            "the C library's settings"
        }
    );
    let secs: f64 = std::env::var("TRAIN_STEP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let names = std::env::var("TRAIN_STEP_VARIANTS").unwrap_or("1024_M,1024_S,512_M,256_M".into());
    let threads = rayon_threads();
    if std::env::var("TRAIN_STEP_OPS").is_ok() {
        edge_row_ops(threads);
    }
    println!("ResNet-PC training step, batch {BATCH}, {FEATURES} features, {threads} threads");
    println!(
        "{:<8} {:>12} {:>12} {:>14} {:>14} {:>8}",
        "variant", "modules µs", "rows µs", "modules jets/s", "rows jets/s", "speed-up"
    );
    for name in names.split(',').filter(|n| *n != "none") {
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
    against_pytorch(secs, threads, malloc);
    registered_models(secs, threads);
}

/// `[C, H, W]` of the images generative models get (125 × 125 sum-pooled by 4).
const IMAGE: [usize; 3] = [3, 32, 32];

/// Jet-level inputs given to the features baseline (the `jets` table has about 30).
const JET_INPUTS: usize = 30;

/// Times one training step of the model a spec names, in seconds per jet.
struct TimeStep {
    secs: f64,
    resolution: usize,
}

impl ModelVisitor for TimeStep {
    type Out = f64;
    fn visit<M: JetModel>(self, _: &str, needs: Needs, make: Make<M>) -> f64 {
        let device = Device::flex().autodiff();
        let r = self.resolution;
        let dims = Dims {
            features: FEATURES,
            jet_inputs: if needs.all_jet_inputs_by_default {
                JET_INPUTS
            } else {
                0
            },
            resolution: r,
            image: if needs.image { IMAGE } else { [0; 3] },
        };
        let model = make(&device, dims);
        let mut optim = AdamWConfig::new().with_weight_decay(0.05).init();
        // Jet b has 30 + (b · 7919 mod (R − 29)) real points.
        let mask: Vec<f32> = (0..BATCH * r)
            .map(|i| {
                let n = 30 + (i / r * 7919) % (r - 29);
                f32::from(u8::from(i % r < n))
            })
            .collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [BATCH, r]), &device);
        let points = Tensor::<3>::random(
            [BATCH, r, FEATURES],
            Distribution::Normal(0.0, 1.0),
            &device,
        ) * mask.clone().reshape([BATCH, r, 1]);
        let (neighbours, neighbour_mask) = if needs.neighbours {
            let (nb, nm) = neighbour_lists(BATCH, r, K, |b| 30 + (b * 7919) % (r - 29));
            (
                Some(Tensor::from_data(
                    TensorData::new(nb, [BATCH, r, K]),
                    &device,
                )),
                Some(Tensor::from_data(
                    TensorData::new(nm, [BATCH, r, K]),
                    &device,
                )),
            )
        } else {
            (None, None)
        };
        let x = Inputs {
            points: needs.points.then_some(points),
            mask: (needs.mask || needs.neighbours).then_some(mask),
            neighbours,
            neighbour_mask,
            jets: (dims.jet_inputs > 0).then(|| {
                Tensor::<2>::random([BATCH, JET_INPUTS], Distribution::Normal(0.0, 1.0), &device)
            }),
            image: needs.image.then(|| {
                let [c, h, w] = IMAGE;
                Tensor::<4>::random([BATCH, c, h, w], Distribution::Normal(0.0, 1.0), &device)
                    .clamp_min(0.0)
            }),
        };
        let y = Tensor::<1, Int>::from_data(
            TensorData::new((0..BATCH as i64).map(|i| i % 2).collect(), [BATCH]),
            &device,
        );
        let step = |model: M| {
            let mut noise = Noise::new(0, 0);
            let mut step = Step {
                labels: y.clone(),
                noise: &mut noise,
                progress: 0.5,
            };
            let loss = model.objective(&x, &mut step).loss;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            optim.step(1e-3, model, grads)
        };
        per_jet(model, step, self.secs, BATCH)
    }
}

/// Neighbours per point of the stored graphs (the conversion's default k).
const K: usize = 16;

/// Every registered model family, one training step each, against ResNet-PC 1024_M.
fn registered_models(secs: f64, threads: usize) {
    let default = [
        r#"{"resnet_pc": "1024_M"}"#,
        r#"{"resnet_pc": "256_S"}"#,
        r#""features_baseline""#,
        r#"{"aggregation_transformer": {"variant": "256_S", "mask": true}}"#,
        r#"{"aggregation_transformer": {"variant": "256_S", "mask": false}}"#,
        r#"{"gnn": {"conv": "gcn"}}"#,
        r#"{"gnn": {"conv": "sage"}}"#,
        r#"{"gnn": {"conv": "gin"}}"#,
        r#"{"gnn": {"conv": "gat"}}"#,
        r#"{"particle_net": {"dynamic": false}}"#,
        r#"{"particle_net": {"dynamic": true}}"#,
        r#"{"particle_net": {"dynamic": false, "k": 7, "blocks": [[32, 32, 32], [64, 64, 64]], "fc": 128}}"#,
        r#"{"particle_net": {"dynamic": true, "k": 7, "blocks": [[32, 32, 32], [64, 64, 64]], "fc": 128}}"#,
        r#"{"particle_transformer": {}}"#,
        r#"{"vae": {}}"#,
        r#"{"ddpm": {}}"#,
        r#"{"ddpm": {"base": 16}}"#,
    ]
    .join(";");
    let list = std::env::var("TRAIN_STEP_MODELS").unwrap_or(default);
    if list == "none" {
        return;
    }
    let reference = ModelSpec::ResnetPc(Variant::R1024M);
    let any_resolution: u32 = std::env::var("TRAIN_STEP_RESOLUTION")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    println!();
    println!(
        "registered models, one training step, batch {BATCH}, {FEATURES} point features, {threads} threads; resolution {any_resolution} for models made for any"
    );
    let time = |m: &ModelSpec| {
        m.visit(TimeStep {
            secs,
            resolution: m.resolution().unwrap_or(any_resolution) as usize,
        })
    };
    let base = time(&reference);
    println!(
        "{:<48} {:>12} {:>10} {:>16}",
        "model", "µs/jet", "jets/s", "vs ResNet-PC 1024_M"
    );
    for spec in list.split(';') {
        let m: ModelSpec = serde_json::from_str(spec)
            .unwrap_or_else(|e| panic!("TRAIN_STEP_MODELS: `{spec}`: {e}"));
        let t = if m == reference { base } else { time(&m) };
        println!(
            "{:<48} {:>12.0} {:>10.1} {:>15.2}×",
            m.title(),
            t * 1e6,
            1.0 / t,
            base / t
        );
    }
}

/// Forward + backward of single ops on `[64·256·16, C]` edge rows (mean of 3 after a warm-up).
fn edge_row_ops(threads: usize) {
    use burn::nn::{BatchNormConfig, LinearConfig};
    let device = Device::flex().autodiff();
    let n = BATCH * 256 * K;
    println!("ops on [{n}, C] rows, forward + backward, {threads} threads");
    let time = |name: String, f: &dyn Fn()| {
        f();
        let t0 = Instant::now();
        for _ in 0..3 {
            f();
        }
        println!(
            "{name:<28} {:>8.0} ms",
            t0.elapsed().as_secs_f64() * 1e3 / 3.0
        );
    };
    for c in [64usize, 256] {
        let x = Tensor::<2>::random([n, c], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let bn = BatchNormConfig::new(c).init(&device);
        let lin = LinearConfig::new(c, c).with_bias(false).init(&device);
        time(format!("BatchNorm C={c}"), &|| {
            let _ = bn.forward(x.clone()).sum().backward();
        });
        time(format!("rows batch_norm C={c}"), &|| {
            let _ = jetpipe::train::nn::rows::batch_norm(&bn, x.clone())
                .sum()
                .backward();
        });
        time(format!("Linear {c}->{c} (no bias)"), &|| {
            let _ = lin.forward(x.clone()).sum().backward();
        });
        time(format!("ReLU C={c}"), &|| {
            let _ = burn::tensor::activation::relu(x.clone()).sum().backward();
        });
    }
    println!();
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

/// Issue 26: ResNet-PC's training step in Burn (rows forward, as `pipeline train` runs it)
/// against the same architecture in PyTorch CPU eager (`benches/torch_resnet_step.py`, built
/// from the same layer table and checked to have the same parameter count), back to back,
/// for each variant, batch size and thread count. Skipped with a message where `torch` is
/// not importable by `TRAIN_STEP_PYTHON` (default `python3`; `.ci/test-python` installs it
/// into the tools venv that `.ci/with-tools` puts first on `PATH`).
/// When `main` applied jetpipe's malloc settings, the PyTorch process gets the same ones
/// through `GLIBC_TUNABLES` (both gain from them; the ratio compares like with like).
/// `TRAIN_STEP_TORCH_VARIANTS` (default `1024_M,1024_S,256_M`, `none` skips the table) and
/// `TRAIN_STEP_TORCH_BATCHES` (default `64,256`) pick the rows.
fn against_pytorch(secs: f64, all_threads: usize, malloc: bool) {
    use jetpipe::train::contract::Classifier;
    let variants =
        std::env::var("TRAIN_STEP_TORCH_VARIANTS").unwrap_or("1024_M,1024_S,256_M".into());
    if variants == "none" {
        return;
    }
    let python = std::env::var("TRAIN_STEP_PYTHON").unwrap_or("python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/torch_resnet_step.py");
    let probe = std::process::Command::new(&python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output();
    let version = match probe {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => {
            println!(
                "\nPyTorch reference skipped: `{python} -c 'import torch'` failed \
                 (install torch, e.g. `.ci/with-tools .ci/test-python` once)"
            );
            return;
        }
    };
    let batches: Vec<usize> = std::env::var("TRAIN_STEP_TORCH_BATCHES")
        .unwrap_or("64,256".into())
        .split(',')
        .map(|b| b.parse().expect("TRAIN_STEP_TORCH_BATCHES: sizes"))
        .collect();
    let mut thread_counts = vec![1];
    if all_threads > 1 {
        thread_counts.push(all_threads);
    }
    let tunables = jetpipe::train::malloc::glibc_tunables();
    println!(
        "\nResNet-PC training step: Burn (rows) against PyTorch {version} CPU eager, {FEATURES} features"
    );
    if malloc {
        println!("PyTorch runs with GLIBC_TUNABLES={tunables} (the same allocator settings)");
    }
    println!(
        "{:<8} {:>6} {:>8} {:>13} {:>13} {:>12}",
        "variant", "batch", "threads", "Burn jets/s", "torch jets/s", "Burn/torch"
    );
    for name in variants.split(',') {
        let v: Variant = serde_json::from_value(serde_json::Value::String(name.into()))
            .unwrap_or_else(|_| panic!("unknown variant {name}"));
        let s = v.shape();
        let shape = format!(
            r#"{{"kernel":{},"stride":{},"padding":{},"channels":{},"blocks":{:?}}}"#,
            s.kernel, s.stride, s.padding, s.channels, s.blocks
        );
        let params = ResNetPc::new(v, FEATURES, 0, &Device::flex()).trainable_params();
        for &batch in &batches {
            for &threads in &thread_counts {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("rayon pool");
                let burn =
                    1.0 / pool.install(|| time_steps_batch(v, secs, ResNetPc::forward, batch));
                let mut cmd = std::process::Command::new(&python);
                if malloc {
                    cmd.env("GLIBC_TUNABLES", &tunables);
                }
                let out = cmd
                    .arg(script)
                    .args(["--shape", &shape])
                    .args(["--resolution", &v.resolution().to_string()])
                    .args(["--features", &FEATURES.to_string()])
                    .args(["--batch", &batch.to_string()])
                    .args(["--threads", &threads.to_string()])
                    .args(["--secs", &secs.to_string()])
                    .output()
                    .expect("run the PyTorch reference");
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{script} failed: {}{}",
                    text,
                    String::from_utf8_lossy(&out.stderr)
                );
                // "torch <jets/s> jets/s params <n> …"
                let words: Vec<&str> = text.split_whitespace().collect();
                let torch: f64 = words[1].parse().expect("jets/s");
                let torch_params: usize = words[4].parse().expect("params");
                assert_eq!(
                    torch_params, params,
                    "{name}: the PyTorch model has {torch_params} parameters, Burn's {params}"
                );
                println!(
                    "{:<8} {:>6} {:>8} {:>13.1} {:>13.1} {:>11.2}×",
                    name,
                    batch,
                    threads,
                    burn,
                    torch,
                    burn / torch
                );
            }
        }
    }
}
