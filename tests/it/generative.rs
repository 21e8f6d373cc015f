//! Generative models end to end on the tiny committed sample: the VAE and the DDPM train from
//! YAML through the one training loop on the loader's image view (the loss falls, the best
//! checkpoint is the lowest validation loss, a resumed run gives the uninterrupted run's
//! history), `eval` refuses them, and the committed YAMLs parse.

use crate::train::{dataset, root};
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

fn quiet() -> TrainOptions {
    TrainOptions {
        quiet: true,
        ..Default::default()
    }
}

fn train(text: &str, opts: &TrainOptions) -> jetpipe::train::run::TrainSummary {
    let spec = parse_train(text, "t.yaml").unwrap();
    jetpipe::train::train(&spec, text, opts).unwrap()
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
