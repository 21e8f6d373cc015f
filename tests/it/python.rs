//! Cross-language checks: the committed samples are converted with the real pipeline
//! YAMLs, then Python (numpy reference implementation, docs/python.md's pyarrow/polars/DuckDB
//! snippets) reads the output. Needs `python3` with `.ci/requirements-test.txt` installed
//! (the README's test command installs it).

use crate::common::{python, quiet};
use jetpipe::config::load_config;
use jetpipe::engine::run;
use jetpipe::loader::npy::NpyElement;
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

/// The tie rule (jetpipe's hash) leaves no shift of the kept pixels inside their tie group on
/// the 1000 generator jets, where the former row-major rule shifted them about one row up:
/// `benches/tie_bias.py --check` fails otherwise (its numpy tie key is the one the numpy
/// reference check above verifies against the stored points).
#[test]
fn tie_rule_keeps_no_position_bias_on_generator_jets() {
    let script = root().join("benches/tie_bias.py");
    let h5 = root().join("data-samples/qg_sample.h5");
    python(&[
        script.to_str().unwrap(),
        h5.to_str().unwrap(),
        "--res",
        "256",
        "--check",
    ]);
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
    // Every ```python block of the documentation pages that show them.
    let script = root().join("tests/python/readme_snippets.py");
    for page in ["docs/python.md", "docs/loader.md"] {
        let page = root().join(page);
        python(&[
            script.to_str().unwrap(),
            page.to_str().unwrap(),
            qg1024().to_str().unwrap(),
        ]);
    }
}

#[test]
fn readme_sql_queries_print_what_the_readme_shows() {
    let readme = std::fs::read_to_string(root().join("docs/sql.md")).unwrap();
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
    assert!(checked >= 5, "docs/sql.md shows {checked} queries");
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

/// Plain little-endian arrays for numpy.fromfile.
fn dump<T: NpyElement>(path: &Path, v: &[T]) {
    let mut bytes = Vec::with_capacity(std::mem::size_of_val(v));
    for &x in v {
        x.put(&mut bytes);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn python_reader_gives_the_rust_loaders_batches_on_tiny_sample() {
    use jetpipe::loader::{Loader, LoaderSpec, SplitSpec, Subset};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cfg = load_config(&root().join("pipelines/qg_tiny.yaml"))
        .unwrap()
        .config;
    cfg.source.files = vec![root().join("data-samples/qg_tiny.h5").display().to_string()];
    cfg.sink.path = out.clone();
    cfg.sink.shard_size = 20; // batches of 16 cross shard and row-group boundaries
    cfg.sink.row_group_size = 8;
    run(&cfg, &quiet()).unwrap();
    let d = dir.path().join("dump");
    std::fs::create_dir_all(&d).unwrap();
    let mut spec = LoaderSpec::new(&out, 1024);
    spec.batch_size = 16;
    spec.shuffle = false;
    let all: Vec<_> = Loader::open(&spec)
        .unwrap()
        .epoch(0)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let cat = |f: &dyn Fn(&jetpipe::loader::Batch) -> Vec<u8>| -> Vec<u8> {
        all.iter().flat_map(f).collect()
    };
    let sizes: Vec<u64> = all.iter().map(|b| b.size as u64).collect();
    dump(&d.join("sizes.u64"), &sizes);
    let points: Vec<f32> = all.iter().flat_map(|b| b.points.clone()).collect();
    dump(&d.join("points.f32"), &points);
    dump(&d.join("mask.u8"), &cat(&|b| b.mask.clone()));
    let labels: Vec<i8> = all.iter().flat_map(|b| b.labels.clone()).collect();
    dump(&d.join("labels.i8"), &labels);
    let ids: Vec<u64> = all.iter().flat_map(|b| b.jet_ids.clone()).collect();
    dump(&d.join("jet_ids.u64"), &ids);
    let n: Vec<u16> = all.iter().flat_map(|b| b.n_points.clone()).collect();
    dump(&d.join("n_points.u16"), &n);
    let nb: Vec<u16> = all.iter().flat_map(|b| b.neighbours.clone()).collect();
    dump(&d.join("neighbours.u16"), &nb);
    let kk: Vec<u16> = all.iter().flat_map(|b| b.knn_k.clone()).collect();
    dump(&d.join("knn_k.u16"), &kk);
    let ids_of = |s: &LoaderSpec| -> Vec<u64> {
        Loader::open(s)
            .unwrap()
            .epoch(0)
            .unwrap()
            .flat_map(|b| b.unwrap().jet_ids)
            .collect()
    };
    for rank in 0..2 {
        let mut s = spec.clone();
        s.world_size = 2;
        s.rank = rank;
        s.neighbours = false;
        dump(&d.join(format!("ranks2_{rank}.u64")), &ids_of(&s));
    }
    let mut s = spec.clone();
    s.split = Some(SplitSpec {
        train: 0.7,
        val: 0.2,
        seed: 4,
        subset: Subset::Train,
    });
    dump(&d.join("train.u64"), &ids_of(&s));
    let script = root().join("tests/python/loader_check.py");
    python(&[
        script.to_str().unwrap(),
        out.to_str().unwrap(),
        d.to_str().unwrap(),
    ]);
}
