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

/// The main job's output on the committed sample, converted once for every test here.
fn qg1024() -> &'static Path {
    static OUT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    OUT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let out = dir.join("qg1024");
        convert("pipelines/qg1024.yaml", &out);
        out
    })
}

#[test]
fn readme_snippets_run_on_main_job_output() {
    let script = root().join("tests/python/readme_snippets.py");
    let readme = root().join("README.md");
    python(&[
        script.to_str().unwrap(),
        readme.to_str().unwrap(),
        qg1024().to_str().unwrap(),
    ]);
}

#[test]
fn readme_sql_queries_print_what_the_readme_shows() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut checked = 0;
    for block in readme.split("```sql\n").skip(1) {
        let (query, rest) = block.split_once("\n```").unwrap();
        let want = rest
            .split_once("```text\n")
            .and_then(|(_, r)| r.split_once("```"))
            .map(|(t, _)| t)
            .expect("each sql block is followed by its output");
        let out = Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(["sql", "-d", qg1024().to_str().unwrap(), query])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "output of {query}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "README shows {checked} queries");
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
