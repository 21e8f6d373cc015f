//! Loader throughput (issue 8), all numbers from one run on the same shards:
//!
//! 1. the Rust loader at R=1024, B=256, 2 prefetch threads, a no-op consumer (batches handed
//!    back with `recycle`), shuffled and sequential, without and with the kNN neighbours;
//! 2. the Python reader (`python/jetpipe_reader.py`, pyarrow + numpy) on the same shards and
//!    settings (its sequential read is all it does) — the baseline the ratio is taken against;
//! 3. shuffle quality: the lag-1 autocorrelation of the labels along an epoch and the mean
//!    share of the most common shard in a batch, shuffled and not.
//!
//! Run: `.ci/with-tools cargo bench --bench loader`. The dataset is the main job converted
//! from a 20,000-jet generator bench file (made once under `$TMPDIR/jetpipe-bench/`, like the
//! conversion benchmark's); `JETPIPE_BENCH_LOADER_DATASET` points at another dataset.

use jetpipe::loader::{Loader, LoaderSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

use common::{ROOT, bench_file, work_dir};

const R: u32 = 1024;
const B: usize = 256;

/// The main job converted from the 20k-jet bench file (both made once).
fn dataset() -> PathBuf {
    if let Ok(d) = std::env::var("JETPIPE_BENCH_LOADER_DATASET") {
        return d.into();
    }
    let h5 = bench_file(20_000);
    let out = work_dir().join("loader_20000");
    let complete = std::fs::read_to_string(out.join("manifest.json"))
        .is_ok_and(|m| m.contains("\"status\": \"complete\""));
    if !complete {
        eprintln!("converting {} → {} …", h5.display(), out.display());
        let text = std::fs::read_to_string(format!("{ROOT}/pipelines/qg1024.yaml"))
            .expect("yaml")
            .replace("data-samples/qg_sample.h5", &h5.display().to_string())
            .replace("out/qg1024", &out.display().to_string());
        let yaml = out.with_extension("yaml");
        std::fs::write(&yaml, text).expect("write yaml");
        let ok = Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(["run", "-q", "--overwrite"])
            .arg(&yaml)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "conversion failed");
    }
    out
}

fn spec(ds: &Path, shuffle: bool, neighbours: bool) -> LoaderSpec {
    let mut s = LoaderSpec::new(ds, R);
    s.batch_size = B;
    s.prefetch = 2;
    s.shuffle = shuffle;
    s.neighbours = neighbours;
    s
}

/// Jets/s of the Rust loader over `epochs` epochs, consumer doing nothing.
fn rust(ds: &Path, shuffle: bool, neighbours: bool, epochs: u64) -> f64 {
    let loader = Loader::open(&spec(ds, shuffle, neighbours)).expect("open");
    let start = Instant::now();
    let mut jets = 0;
    for e in 0..epochs {
        for b in loader.epoch(e).expect("epoch") {
            let b = b.expect("batch");
            jets += b.size;
            loader.recycle(b);
        }
    }
    jets as f64 / start.elapsed().as_secs_f64()
}

/// Jets/s of the Python reader (sequential, one pass over the shards), if Python has pyarrow.
fn python(ds: &Path, neighbours: bool) -> Option<f64> {
    let code = format!(
        "import sys,time\nsys.path.insert(0,'{ROOT}/python')\nimport jetpipe_reader as jr\nt=time.perf_counter()\nr=jr.JetpipeReader(sys.argv[1],{R},batch_size={B},neighbours={})\nn=sum(b['points'].shape[0] for b in r.read_all())\nprint(n/(time.perf_counter()-t))",
        if neighbours { "True" } else { "False" }
    );
    let out = Command::new("python3")
        .args(["-c", &code])
        .arg(ds)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "python reader failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// (lag-1 label autocorrelation, mean share of the most common shard per batch) of epoch 0.
fn quality(ds: &Path, shuffle: bool) -> (f64, f64) {
    let mut s = spec(ds, shuffle, false);
    s.features = vec![jetpipe::loader::FeatureSpec::Column("eta".into())];
    let loader = Loader::open(&s).expect("open");
    let shard_size = loader.dataset().manifest().config["sink"]["shard_size"]
        .as_u64()
        .expect("shard_size");
    let (mut labels, mut shares) = (Vec::new(), Vec::new());
    for b in loader.epoch(0).expect("epoch") {
        let b = b.expect("batch");
        labels.extend(b.labels.iter().map(|&l| f64::from(l)));
        let mut per = std::collections::HashMap::<u64, usize>::new();
        for id in &b.jet_ids {
            *per.entry((id & 0xffff_ffff) / shard_size).or_default() += 1;
        }
        shares.push(*per.values().max().expect("nonempty") as f64 / b.size as f64);
    }
    let n = labels.len() as f64;
    let mean = labels.iter().sum::<f64>() / n;
    let var = labels.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let cov = labels
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum::<f64>()
        / (n - 1.0);
    (cov / var, shares.iter().sum::<f64>() / shares.len() as f64)
}

fn main() {
    let ds = dataset();
    let jets = Loader::open(&spec(&ds, false, false)).expect("open").jets();
    println!(
        "dataset {} — {jets} jets, R={R}, B={B}, prefetch 2, features tracks ecal hcal eta phi, {} cores",
        ds.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let py = python(&ds, false);
    let py_nb = python(&ds, true);
    let rows = [
        ("Rust loader, shuffled", rust(&ds, true, false, 3), py),
        ("Rust loader, sequential", rust(&ds, false, false, 3), py),
        (
            "Rust loader, shuffled, + neighbours [B,R,16]",
            rust(&ds, true, true, 2),
            py_nb,
        ),
        (
            "Rust loader, sequential, + neighbours",
            rust(&ds, false, true, 2),
            py_nb,
        ),
    ];
    println!("\n{:<48} {:>10} {:>14}", "", "jets/s", "vs Python");
    if let Some(p) = py {
        println!(
            "{:<48} {p:>10.0} {:>13.2}×",
            "Python reader (baseline)", 1.0
        );
    }
    if let Some(p) = py_nb {
        println!(
            "{:<48} {p:>10.0} {:>13.2}×",
            "Python reader, + neighbours (baseline)", 1.0
        );
    }
    for (name, v, base) in rows {
        match base {
            Some(b) => println!("{name:<48} {v:>10.0} {:>13.2}×", v / b),
            None => println!("{name:<48} {v:>10.0} {:>14}", "(no python)"),
        }
    }
    println!("\nshuffle quality over epoch 0 (open_shards 4, shuffle_buffer 4096):");
    println!(
        "{:<24} {:>22} {:>28}",
        "", "label autocorr. lag 1", "largest shard share/batch"
    );
    for (name, shuffle) in [("shuffled", true), ("sequential", false)] {
        let (ac, share) = quality(&ds, shuffle);
        println!("{name:<24} {ac:>22.3} {share:>28.2}");
    }
    // SAFETY: `rusage` is a plain C struct of integers, for which all zero bytes are valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage` for the call's duration.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    println!(
        "\npeak RSS of this benchmark process: {:.0} MB",
        ru.ru_maxrss as f64 / 1024.0
    );
}
