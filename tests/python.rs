//! Cross-language checks: the committed samples are converted with the real pipeline
//! YAMLs, then Python (numpy reference implementation, README's pyarrow/polars/DuckDB
//! snippets) reads the output. Needs `python3` with `.ci/requirements-test.txt` installed
//! (the README's test command installs it).

mod common;

use common::quiet;
use jetpipe::config::load_config;
use jetpipe::engine::run;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn convert(yaml: &str, out: &Path) {
    let mut cfg = load_config(&root().join(yaml)).unwrap().config;
    for f in &mut cfg.source.files {
        *f = root().join(&*f).display().to_string();
    }
    cfg.sink.path = out.to_path_buf();
    run(&cfg, &quiet()).unwrap();
}

fn python(args: &[&str]) {
    let out = Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed (see README: test command)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python3 {args:?} failed:\n{text}");
    println!("{text}");
}

fn reference_check(yaml: &str, h5: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    convert(yaml, &out);
    let script = root().join("tests/python/reference_check.py");
    let h5 = root().join(h5);
    python(&[
        script.to_str().unwrap(),
        h5.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
}

#[test]
fn numpy_reference_agrees_on_tiny_qg_sample() {
    reference_check("pipelines/qg_tiny.yaml", "data-samples/qg_tiny.h5");
}

#[test]
fn numpy_reference_agrees_on_egamma_sample() {
    reference_check("pipelines/egamma.yaml", "data-samples/egamma_sample.h5");
}

#[test]
fn readme_snippets_run_on_main_job_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qg1024");
    convert("pipelines/qg1024.yaml", &out);
    let script = root().join("tests/python/readme_snippets.py");
    let readme = root().join("README.md");
    python(&[
        script.to_str().unwrap(),
        readme.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
}

#[test]
fn data_sample_generator_checks_pass() {
    // Schema, chunking, determinism of the e/γ and bench modes on the committed samples;
    // Pythia regeneration is skipped where pythia8mc is not installed.
    let tests = root().join("data-samples/generator/test_generator.py");
    python(&[
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        tests.to_str().unwrap(),
    ]);
}
