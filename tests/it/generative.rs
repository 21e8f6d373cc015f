//! Generative models end to end on the tiny committed sample: the VAE and the DDPM train from
//! YAML through the one training loop on the loader's image view (the loss falls, the best
//! checkpoint is the lowest validation loss, a resumed run gives the uninterrupted run's
//! history), `eval` refuses them, and the committed YAMLs parse.

use crate::train::{dataset, quiet_opts as quiet, root, train};
use jetpipe::train::run::TrainOptions;
use jetpipe::train::spec::parse_train;
use std::path::Path;

/// A training YAML for `model` on the tiny sample's 32 × 32 images (125 pooled by 4, log1p).
pub(crate) fn yaml(run_dir: &Path, model: &str, extra: &str) -> String {
    format!(
        "train:\n  model: {model}\n  run_dir: \"{}\"\n  split: {{train: 0.75, val: 0.25, seed: 1}}\n  lr: 0.002\n  scheduler: cosine\n{extra}  loader:\n    dataset: \"{}\"\n    resolution: 256\n    batch_size: 8\n    neighbours: false\n    features: [eta]\n    image: {{pool: 4, transforms: [log1p]}}\n",
        run_dir.display(),
        dataset().display()
    )
}

/// Trains `model` for 4 epochs; checks the loss falls, "best" is the lowest validation loss,
/// the outputs exist and `eval` refuses the run; returns the run's history.
fn trains_and_keeps_the_lowest_validation_loss(model: &str) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let s = train(&yaml(&run, model, "  epochs: 4\n"), &quiet());
    let h = &s.state.history;
    assert_eq!(h.len(), 4);
    assert!(
        h[3].train_loss < h[0].train_loss,
        "{model}: loss did not fall: {h:?}"
    );
    assert!(h.iter().all(|m| m.val_auc.is_none() && m.val_acc.is_none()));
    let best = h
        .iter()
        .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
        .unwrap();
    assert_eq!(s.state.best_epoch, Some(best.epoch), "{h:?}");
    assert_eq!(s.state.best_loss, Some(best.val_loss));
    for f in [
        "metrics.csv",
        "loss.png",
        "best/model.bpk",
        "last/optim.bpk",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    assert!(!run.join("roc.png").exists());
    let e = jetpipe::train::eval::eval(&run, None, None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("generative"), "{e}");
}

#[test]
fn vae_trains_on_the_image_view() {
    trains_and_keeps_the_lowest_validation_loss("{vae: {channels: [8, 16, 16, 16], latent: 8}}");
}

/// A CPU-test-sized conditional DDPM (T = 50) with a weight average.
pub(crate) const SMALL_DDPM: &str = "{ddpm: {base: 8, mults: [1, 2], timesteps: 50, ema: 0.5}}";

#[test]
fn ddpm_trains_on_the_image_view() {
    trains_and_keeps_the_lowest_validation_loss(SMALL_DDPM);
}

#[test]
fn ddpm_with_v_prediction_trains_on_the_image_view() {
    trains_and_keeps_the_lowest_validation_loss(
        "{ddpm: {base: 8, mults: [1, 2], timesteps: 50, ema: 0.5, prediction: v}}",
    );
}

#[test]
fn a_resumed_vae_run_equals_the_uninterrupted_run() {
    resume_equals_uninterrupted("{vae: {channels: [8, 8, 8, 8], latent: 4}}");
}

#[test]
fn a_resumed_ddpm_run_with_its_weight_average_equals_the_uninterrupted_run() {
    resume_equals_uninterrupted(SMALL_DDPM);
}

/// Stops a run after 3 steps, resumes it, and compares with the uninterrupted run (the
/// noise of every step and the weight average are part of what must match).
fn resume_equals_uninterrupted(model: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let text_a = yaml(&a, model, "  epochs: 2\n  checkpoint_every: 1\n");
    let full = train(&text_a, &quiet());
    let text_b = yaml(&b, model, "  epochs: 2\n  checkpoint_every: 1\n");
    let stop = TrainOptions {
        quiet: true,
        stop_after_steps: Some(3),
        ..Default::default()
    };
    train(&text_b, &stop);
    let resumed = train(
        &text_b,
        &TrainOptions {
            quiet: true,
            resume: true,
            ..Default::default()
        },
    );
    let strip = |h: &[jetpipe::train::history::EpochMetrics]| {
        h.iter()
            .map(|m| (m.train_loss, m.val_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&full.state.history), strip(&resumed.state.history));
}

#[test]
fn image_models_need_the_image_view() {
    let dir = tempfile::tempdir().unwrap();
    let text = yaml(&dir.path().join("r"), "{vae: {}}", "")
        .replace("    image: {pool: 4, transforms: [log1p]}\n", "");
    let spec = parse_train(&text, "t.yaml").unwrap();
    let e = jetpipe::train::train(&spec, &text, &quiet())
        .unwrap_err()
        .to_string();
    assert!(e.contains("reads images") && e.contains("image:"), "{e}");
}

#[test]
fn committed_generative_yamls_are_valid() {
    for f in [
        "pipelines/qg_train_vae.yaml",
        "pipelines/qg_train_ddpm.yaml",
    ] {
        let s = jetpipe::train::spec::load_train(&root().join(f)).unwrap();
        s.model
            .check(&s.loader)
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(s.loader.image.is_some(), "{f}");
    }
}

#[test]
fn generate_and_reconstruct_write_datasets_metrics_and_pictures() {
    use jetpipe::train::sample::{SampleOptions, generate, reconstruct};
    let dir = tempfile::tempdir().unwrap();
    let (vae, ddpm) = (dir.path().join("vae"), dir.path().join("ddpm"));
    let vae_model = "{vae: {channels: [8, 8, 8, 8], latent: 4}}";
    // A quarter of the jets (about 16) are test jets.
    let split = |t: String| t.replace("train: 0.75, val: 0.25", "train: 0.5, val: 0.25");
    train(&split(yaml(&vae, vae_model, "  epochs: 1\n")), &quiet());
    // The DDPM learns halved log1p images: the two runs' units differ.
    let ddpm_yaml = split(yaml(&ddpm, SMALL_DDPM, "  epochs: 1\n"))
        .replace("transforms: [log1p]}", "transforms: [log1p, {scale: 0.5}]}");
    train(&ddpm_yaml, &quiet());
    let mut o = SampleOptions {
        runs: vec![vae.clone(), ddpm.clone()],
        out: dir.path().join("gen"),
        jets: 8,
        steps: Some(5),
        guidance: 1.0,
        threshold: None,
        t0: vec![0.3, 0.6],
        invert: true,
        seed: 0,
        batch: 3,
        quiet: true,
    };
    let g = generate(&o).unwrap();
    let names: Vec<&str> = g.sets.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "ddpm",
            "reference: mean image",
            "reference: real train jets",
            "vae"
        ]
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.out.join("metrics.json")).unwrap())
            .unwrap();
    for (name, m) in json["sets"].as_object().unwrap() {
        let d = &m["distribution"];
        for key in ["w1", "w1_over_sd", "separation_power"] {
            let per = d[key].as_object().unwrap();
            assert_eq!(
                per.len(),
                jetpipe::train::sample::report::OBSERVABLES.len(),
                "{name} {key}"
            );
            assert!(
                per.values().all(|v| v.as_f64().unwrap().is_finite()),
                "{name} {key}"
            );
        }
        for key in [
            "frechet",
            "two_sample_auc",
            "mean_w1_over_sd",
            "mean_separation_power",
        ] {
            assert!(d[key].as_f64().unwrap().is_finite(), "{name} {key}: {d}");
        }
        assert_eq!(d["jets"], 8);
    }
    for f in ["jets.png", "observables.png"] {
        assert!(o.out.join(f).exists(), "{f}");
    }
    // Every set is a dataset: the conditional DDPM's jets carry the real jets' labels, the
    // unconditional VAE's none.
    let real = jetpipe::train::jet_inputs::read_jets(&g.datasets["real"]).unwrap();
    let d = jetpipe::train::jet_inputs::read_jets(&g.datasets["ddpm"]).unwrap();
    let v = jetpipe::train::jet_inputs::read_jets(&g.datasets["vae"]).unwrap();
    assert_eq!((real.ids.len(), d.ids.len(), v.ids.len()), (8, 8, 8));
    assert_eq!(d.labels, real.labels);
    assert!(real.labels.iter().all(|&l| l == 0 || l == 1));
    assert!(v.labels.iter().all(|&l| l == -1));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["sql", "--format", "csv", "-d"])
        .arg(&g.datasets["ddpm"])
        .arg("SELECT count(*) AS n FROM jets")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('8'),
        "{out:?}"
    );

    o.out = dir.path().join("rec");
    let r = reconstruct(&o).unwrap();
    let names: Vec<&str> = r.sets.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "ddpm DDIM-inverted t0=0.3",
            "ddpm DDIM-inverted t0=0.6",
            "ddpm t0=0.3",
            "ddpm t0=0.6",
            "vae"
        ]
    );
    for (name, m) in &r.sets {
        let rec = m.reconstruction.as_ref().unwrap();
        assert!(rec.pixel_mse.is_finite() && rec.pixel_mse > 0.0, "{name}");
        assert_eq!(rec.energy_bias.len(), 3, "{name}");
    }
    assert!(o.out.join("reconstructions.png").exists());
}
