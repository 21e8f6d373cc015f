//! Shared by the benchmarks: the work directory and the generator's bench-mode files.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `$TMPDIR/jetpipe-bench/`, created on first use.
pub fn work_dir() -> PathBuf {
    let d = std::env::temp_dir().join("jetpipe-bench");
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

/// A bench-mode file of `n` jets from the sample's generator, made once.
pub fn bench_file(n: u64) -> PathBuf {
    let path = work_dir().join(format!("qg_bench_{n}.h5"));
    if !path.exists() {
        eprintln!("generating {} ({n} jets)…", path.display());
        let ok = Command::new("python3")
            .arg(format!("{ROOT}/data-samples/generator/generate.py"))
            .args(["bench", "--input"])
            .arg(format!("{ROOT}/data-samples/qg_sample.h5"))
            .args(["--n", &n.to_string(), "--out"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "bench file generation failed (run under .ci/with-tools)"
        );
    }
    path
}
