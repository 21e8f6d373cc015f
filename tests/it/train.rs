//! Training end to end on the tiny committed sample (ResNet-PC 256_S on CPU, a few steps):
//! the loss falls and the training AUC rises; outputs (metrics, plots, checkpoints,
//! predictions matching their contract, SQL join) exist; a run stopped mid-epoch and resumed
//! gives the same history as an uninterrupted run; bad training YAMLs name the line. Each
//! other model family's short training is in `train_models`.

use crate::common::quiet;
use jetpipe::config::load_config;
use jetpipe::engine::run;
use jetpipe::train::run::TrainOptions;
use jetpipe::train::spec::parse_train;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Converts the 64-jet sample at resolution 256 into `out`, with or without kNN graphs.
pub(crate) fn convert_tiny(out: &Path, knn: bool) {
    let mut cfg = load_config(&root().join("pipelines/qg_tiny.yaml"))
        .unwrap()
        .config;
    cfg.source.files = vec![root().join("data-samples/qg_tiny.h5").display().to_string()];
    cfg.sink.path = out.to_path_buf();
    cfg.stages.pointcloud.resolutions = vec![256];
    if !knn {
        cfg.stages.knn = None;
    }
    run(&cfg, &quiet()).unwrap();
}

/// The 64-jet sample converted at resolution 256 (once per test binary).
pub(crate) fn dataset() -> &'static Path {
    static D: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &D.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tiny");
        convert_tiny(&out, true);
        (dir, out)
    })
    .1
}

pub(crate) fn yaml(run_dir: &Path, extra: &str) -> String {
    format!(
        "train:\n  model: {{resnet_pc: 256_S}}\n  run_dir: \"{}\"\n  split: {{train: 0.75, val: 0.25, seed: 1}}\n  lr: 0.001\n{extra}  loader:\n    dataset: \"{}\"\n    resolution: 256\n    batch_size: 8\n    neighbours: false\n    features:\n      - column: tracks\n        transforms: [log1p]\n      - column: ecal\n        transforms: [log1p]\n      - column: hcal\n        transforms: [log1p]\n      - eta\n      - phi\n",
        run_dir.display(),
        dataset().display()
    )
}

pub(crate) fn quiet_opts() -> TrainOptions {
    TrainOptions {
        quiet: true,
        ..Default::default()
    }
}

pub(crate) fn train(text: &str, opts: &TrainOptions) -> jetpipe::train::run::TrainSummary {
    let spec = parse_train(text, "t.yaml").unwrap();
    jetpipe::train::train(&spec, text, opts).unwrap()
}

/// The error message of a training that must fail.
pub(crate) fn train_error(spec: &jetpipe::train::spec::TrainSpec, text: &str) -> String {
    jetpipe::train::train(spec, text, &quiet_opts())
        .expect_err("training should fail")
        .to_string()
}

#[test]
fn short_training_learns_and_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let text = yaml(&run_dir, "  epochs: 6\n");
    let s = train(&text, &quiet_opts());
    let h = &s.state.history;
    assert_eq!(h.len(), 6);
    let (first, last) = (&h[0], &h[5]);
    assert!(
        last.train_loss < first.train_loss,
        "loss did not fall: {h:?}"
    );
    let auc = last.train_auc.unwrap();
    assert!(auc > 0.6, "train AUC {auc}: {h:?}");
    for f in [
        "config.yaml",
        "metrics.csv",
        "metrics.jsonl",
        "roc.png",
        "loss.png",
        "best/model.bpk",
        "last/model.bpk",
        "last/optim.bpk",
        "last/state.json",
    ] {
        assert!(run_dir.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    // Predictions: every jet of the dataset, contract-conform, joinable with SQL.
    let e = jetpipe::train::eval::eval(&run_dir, None, None, None).unwrap();
    assert_eq!(e.jets, 64);
    let f = std::fs::File::open(&e.path).unwrap();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let doc = jetpipe::store::tables::table_doc("predictions", "", None, r.schema());
    assert_eq!(
        doc.columns,
        jetpipe::store::tables::predictions_doc().columns
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["sql", "-d"])
        .arg(dataset())
        .arg("-d")
        .arg(&run_dir)
        .args(["--format", "csv", "SELECT count(*) AS n, sum(CASE WHEN p.label = j.label THEN 1 ELSE 0 END) AS same FROM predictions p JOIN jets j USING (jet_id)"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("64,64"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The model key of the small Aggregation Transformer runs.
pub(crate) const AGG: &str = "{aggregation_transformer: {variant: 256_S}}";

/// A run stopped after 3 steps and resumed has the history of the uninterrupted run.
fn check_resume(model: &str, extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let yaml = |d: &Path| {
        let t = yaml(d, extra).replace("{resnet_pc: 256_S}", model);
        // Transformers train at a lower rate.
        if model == AGG {
            t.replace("lr: 0.001", "lr: 0.0003")
        } else {
            t
        }
    };
    let full = train(&yaml(&a), &quiet_opts());
    let text = yaml(&b);
    let stopped = train(
        &text,
        &TrainOptions {
            quiet: true,
            stop_after_steps: Some(3),
            ..Default::default()
        },
    );
    assert_eq!((stopped.state.epoch, stopped.state.epoch_step), (0, 3));
    assert!(stopped.state.history.is_empty());
    let resumed = train(
        &text,
        &TrainOptions {
            quiet: true,
            resume: true,
            ..Default::default()
        },
    );
    let (x, y) = (&full.state.history, &resumed.state.history);
    assert_eq!(x.len(), y.len());
    for (p, q) in x.iter().zip(y) {
        assert_eq!(
            (p.train_jets, p.val_auc, p.lr),
            (q.train_jets, q.val_auc, q.lr)
        );
        for (u, v) in [(p.train_loss, q.train_loss), (p.val_loss, q.val_loss)] {
            assert!(
                (u - v).abs() < 1e-5 * (1.0 + u.abs()),
                "{model}\n{x:?}\n{y:?}"
            );
        }
    }
    // A second run into the same directory without --resume is refused.
    let spec = parse_train(&text, "t.yaml").unwrap();
    let e = train_error(&spec, &text);
    assert!(e.contains("--resume"), "{e}");
}

#[test]
fn resume_mid_epoch_gives_the_uninterrupted_history() {
    // With jet inputs, whose normalisation the resumed run reads back.
    check_resume(
        "{resnet_pc: 256_S}",
        "  epochs: 2\n  jet_inputs: [m0, pt, n_hits]\n",
    );
}

#[test]
fn a_transformer_resumes_mid_epoch_to_the_uninterrupted_history() {
    check_resume(AGG, "  epochs: 1\n  max_steps: 4\n");
}

/// The baseline trains in the same loop: the cosine schedule, gradient accumulation and
/// resume apply to it as to any model.
#[test]
fn features_baseline_honours_schedule_accumulation_and_resume() {
    let extra = "  epochs: 3\n  scheduler: cosine\n  grad_accumulation: 2\n";
    check_resume("features_baseline", extra);
    let dir = tempfile::tempdir().unwrap();
    let text =
        yaml(&dir.path().join("r"), extra).replace("{resnet_pc: 256_S}", "features_baseline");
    let h = train(&text, &quiet_opts()).state.history;
    // 45 training jets, batches of 8 (the last of 5), 2 batches per step: 3 steps per epoch, 9
    // in all; the rate of
    // epoch e is the cosine at its last step 3e + 2.
    let want: Vec<f64> = (0..3)
        .map(|e| 0.001 * 0.5 * (1.0 + (std::f64::consts::PI * (3 * e + 2) as f64 / 9.0).cos()))
        .collect();
    let got: Vec<f64> = h.iter().map(|m| m.lr).collect();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
    assert_eq!(
        h.iter().map(|m| m.train_jets).collect::<Vec<_>>(),
        [45, 45, 45]
    );
}

#[test]
fn features_baseline_trains_on_the_jets_table() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("base");
    let text = yaml(&run_dir, "  epochs: 30\n").replace("{resnet_pc: 256_S}", "features_baseline");
    let s = train(&text, &quiet_opts());
    let h = &s.state.history;
    assert!(h.last().unwrap().train_loss < h[0].train_loss, "{h:?}");
    assert!(run_dir.join("best/model.bpk").exists());
    // Evaluation with the saved normalisation: the validation jets score the validation AUC.
    let best = assert_val_eval_is_the_best_val_auc(&run_dir, &s);
    let all = jetpipe::train::eval::eval(&run_dir, None, None, None).unwrap();
    assert_eq!(all.jets, 64);
    // Compare: the run against itself has Δ = 0 exactly and the eval AUC; the figure has one
    // curve per run (blue, then orange).
    let out = dir.path().join("roc_compare.png");
    let rows =
        jetpipe::train::compare::run_compare(&[run_dir.clone(), run_dir.clone()], None, &out, 50)
            .unwrap();
    assert!((rows[1].auc - all.auc.unwrap()).abs() < 1e-9);
    assert_eq!(
        (rows[1].delta, rows[1].delta_err, rows[1].p_better),
        (0.0, 0.0, 0.0)
    );
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (640, 600));
    let px = &buf[..info.buffer_size()];
    let count = |rgb: [u8; 3]| px.chunks(3).filter(|c| c == &rgb).count();
    assert!(count([255, 127, 14]) > 100, "no orange curve");
    // Tagged predictions sit beside the untagged ones and are compared by tag.
    let v = jetpipe::train::eval::eval(
        &run_dir,
        None,
        Some(jetpipe::loader::Subset::Val),
        Some("v1"),
    )
    .unwrap();
    assert!(v.path.ends_with("predictions_v1.parquet") && run_dir.join("roc_eval_v1.png").exists());
    let tagged =
        jetpipe::train::compare::run_compare(std::slice::from_ref(&run_dir), Some("v1"), &out, 5)
            .unwrap();
    assert!((tagged[0].auc - best).abs() < 1e-6);
    assert_eq!(
        jetpipe::train::compare::read_predictions(&run_dir, None)
            .unwrap()
            .ids
            .len(),
        64
    );
    // SQL registers each tagged file as its own table beside `predictions`.
    let out_sql = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["sql", "-d"])
        .arg(&run_dir)
        .args([
            "--format",
            "csv",
            "SELECT (SELECT count(*) FROM predictions) AS a, (SELECT count(*) FROM predictions_v1) AS b",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out_sql.stdout);
    assert!(
        text.contains(&format!("64,{}", v.jets)),
        "{text}{}",
        String::from_utf8_lossy(&out_sql.stderr)
    );
    let e = jetpipe::train::eval::eval(&run_dir, None, None, Some("a/b"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--tag `a/b`"), "{e}");
    // A run without predictions is named.
    let e = jetpipe::train::compare::run_compare(
        &[run_dir.clone(), dir.path().join("none")],
        None,
        &out,
        5,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("none/predictions.parquet") && e.contains("pipeline eval"),
        "{e}"
    );
}

#[test]
fn bad_training_yaml_names_the_line() {
    let e = parse_train(&yaml(Path::new("/tmp/x"), "  epocs: 2\n"), "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.yaml:") && e.contains("epocs"), "{e}");
    let text = yaml(Path::new("/tmp/x"), "").replace("256_S}", "512_S}");
    let spec = parse_train(&text, "t.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec;
    spec.run_dir = dir.path().join("r");
    let e = train_error(&spec, &text);
    assert!(e.contains("made for resolution 512"), "{e}");
}

#[test]
fn cuda_that_does_not_work_here_is_a_clear_error_and_writes_nothing() {
    // `device: cuda` here: a binary without the `cuda` feature names the build it needs; one
    // with it, on a machine without the driver or a GPU, says the device does not work. No
    // panic, and the run directory is not created. (On a machine with a GPU the run trains.)
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let text = yaml(&run_dir, "  device: cuda\n  epochs: 1\n");
    let spec = parse_train(&text, "t.yaml").unwrap();
    let result = jetpipe::train::train(&spec, &text, &quiet_opts());
    if cfg!(feature = "cuda") && result.is_ok() {
        return; // a machine with a GPU
    }
    let e = result.expect_err("device: cuda trained").to_string();
    assert!(e.contains("device: cuda"), "{e}");
    let why = if cfg!(feature = "cuda") {
        "does not work here"
    } else {
        "--features cuda"
    };
    assert!(e.contains(why), "{e}");
    assert!(!run_dir.exists(), "{e}");
}

#[test]
fn committed_training_and_loader_yamls_are_valid() {
    for f in [
        "pipelines/qg_train_256s.yaml",
        "pipelines/qg_train_baseline.yaml",
        "pipelines/qg_train_baseline_image.yaml",
        "pipelines/qg_train_agg256s.yaml",
        "pipelines/qg_train_gnn.yaml",
        "pipelines/qg_train_particlenet.yaml",
        "pipelines/qg_train_particlenet_lite.yaml",
        "pipelines/qg_train_part.yaml",
    ] {
        let s = jetpipe::train::spec::load_train(&root().join(f)).unwrap();
        assert_eq!(s.loader.dataset, Path::new("out/qg1024"), "{f}");
        // The model can be built on its loader settings (sizes, resolution, ParT's vectors).
        s.model
            .check(&s.loader)
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let l =
        jetpipe::loader::spec::load_loader(&root().join("pipelines/qg1024_loader.yaml")).unwrap();
    assert_eq!((l.resolution, l.features.len()), (1024, 5));
    // The image-only baseline lists every numeric jets column of the contract but pt and m0.
    let s =
        jetpipe::train::spec::load_train(&root().join("pipelines/qg_train_baseline_image.yaml"))
            .unwrap();
    let contract: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/jets.schema.json")).unwrap(),
    )
    .unwrap();
    let want: Vec<String> = contract["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !matches!(c["type"].as_str(), Some("string")))
        .map(|c| c["name"].as_str().unwrap().to_string())
        .filter(|n| !["jet_id", "source_index", "label", "pt", "m0"].contains(&n.as_str()))
        .collect();
    assert_eq!(s.jet_inputs.unwrap(), want);
}

#[test]
fn only_the_training_loader_reflects() {
    let text = yaml(Path::new("/tmp/x"), "").replace(
        "    neighbours: false\n",
        "    neighbours: false\n    reflect: [eta, phi]\n",
    );
    let spec = parse_train(&text, "t.yaml").unwrap();
    use jetpipe::loader::Subset;
    assert_eq!(spec.loader_for(Subset::Train).reflect, ["eta", "phi"]);
    for s in [Subset::Val, Subset::Test] {
        assert!(spec.loader_for(s).reflect.is_empty(), "{s:?}");
    }
}

#[test]
fn jet_inputs_feed_the_baseline_and_resnet_pc() {
    let dir = tempfile::tempdir().unwrap();
    // The baseline on exactly the listed columns, standardised over the training jets.
    let base = dir.path().join("base");
    let text = yaml(&base, "  epochs: 3\n  jet_inputs: [m0, pt]\n")
        .replace("{resnet_pc: 256_S}", "features_baseline");
    train(&text, &quiet_opts());
    let norm = jetpipe::train::jet_inputs::Normalisation::load(&base).unwrap();
    assert_eq!(norm.names, ["m0", "pt"]);
    // The mean is over the training jets only (recomputed here from the raw column).
    let data = jetpipe::train::jet_inputs::read_jets(dataset()).unwrap();
    let spec = parse_train(&text, "t.yaml").unwrap();
    let tr = spec.split_of(jetpipe::loader::Subset::Train);
    let m0 = data.names.iter().position(|n| n == "m0").unwrap();
    let nd = data.names.len();
    let vals: Vec<f64> = (0..data.ids.len())
        .filter(|&i| tr.keeps(data.ids[i]))
        .map(|i| f64::from(data.x[i * nd + m0]))
        .collect();
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    assert!(vals.len() > 30 && (norm.mean[0] - mean).abs() < 1e-9 * mean.abs());
    // ResNet-PC with the jet inputs: trains, evaluates with the saved normalisation, and its
    // validation AUC is the eval AUC of the validation jets.
    let run_dir = dir.path().join("pc");
    let text = yaml(&run_dir, "  epochs: 1\n  jet_inputs: [m0, pt]\n");
    let s = train(&text, &quiet_opts());
    // Fitted on the same training jets as the baseline's.
    assert_eq!(
        jetpipe::train::jet_inputs::Normalisation::load(&run_dir).unwrap(),
        norm
    );
    assert_val_eval_is_the_best_val_auc(&run_dir, &s);
    // A column the jets table lacks is named with the dataset.
    let bad = dir.path().join("bad");
    let text = yaml(&bad, "  epochs: 1\n  jet_inputs: [mass]\n");
    let e = train_error(&parse_train(&text, "t.yaml").unwrap(), &text);
    assert!(e.contains("`mass`") && e.contains("tiny"), "{e}");
    // Identifiers, repeats and empty lists are refused with the line.
    for (bad, want) in [
        ("[jet_id]", "identifier"),
        ("[m0, m0]", "twice"),
        ("[]", "at least one"),
    ] {
        let text = yaml(&bad_dir(), &format!("  jet_inputs: {bad}\n"));
        let e = parse_train(&text, "t.yaml").unwrap_err().to_string();
        assert!(e.contains(want) && e.contains("t.yaml:"), "{bad}: {e}");
    }
}

/// Evaluates the validation jets of `run_dir` with its saved best model and normalisation,
/// checks that their AUC is the training's best validation AUC, and returns it.
pub(crate) fn assert_val_eval_is_the_best_val_auc(
    run_dir: &Path,
    s: &jetpipe::train::run::TrainSummary,
) -> f64 {
    let e = jetpipe::train::eval::eval(run_dir, None, Some(jetpipe::loader::Subset::Val), None)
        .unwrap();
    let best = s.state.best_auc.unwrap();
    assert!(
        (e.auc.unwrap() - best).abs() < 1e-6,
        "{:?} vs {best}",
        e.auc
    );
    best
}

fn bad_dir() -> PathBuf {
    PathBuf::from("/tmp/never-written")
}

/// A run that diverges is a training failure (exit code 1, the step named), not a bad input
/// (2); a SQL query that does not parse is a bad input (2). AdamW bounds each step by `lr`
/// (≤ 10 by validation), which this model survives, so the divergence is provoked by a feature
/// scale whose first convolution overflows f32.
#[test]
fn diverged_training_exits_1_and_a_bad_query_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = yaml(&dir.path().join("run"), "  epochs: 1\n  max_steps: 6\n").replace(
        "      - eta\n",
        "      - {column: eta, transforms: [{scale: 3.0e38}]}\n",
    );
    let cfg = dir.path().join("t.yaml");
    std::fs::write(&cfg, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .arg("train")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("model diverged at step 0 (epoch 0)"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["sql", "-d"])
        .arg(dataset())
        .arg("SELEC jet_id FROM jets")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("SELEC"), "{err}");
}
