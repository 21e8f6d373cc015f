//! Conversion throughput benchmark (issue 7), all numbers from one run on the same file:
//!
//! 1. bare read: every image through the HDF5 library, batches of 64, one thread (what
//!    h5py does; h5py itself is timed too when Python has it) — the baseline;
//! 2. `pipeline run --profile` of the main job (4 resolutions, kNN k=16, features, Parquet)
//!    on that file pinned to 1, 2, … all cores (`taskset`; the engine's default split of the
//!    cores into stage workers and unit writers), and without kNN; jets/s, ratio to the
//!    baseline and peak RSS as the run reports them; then the CPU µs per jet of every stage
//!    (reader, worker and writer threads) and the throughput those figures project for
//!    each measured core count and for 16 and 64 cores;
//! 3. bytes per jet on disk per resolution, point columns and kNN lists apart;
//! 4. the kNN lists' Parquet encoding: a res=1024 shard re-encoded with the sink's settings
//!    (delta + bit-packed) and with dictionary encoding, in the sink's 64-row writes;
//! 5. the Python reference converter (`benches/reference_converter.py`) on the first
//!    `JETPIPE_BENCH_PY_JETS` jets (default 500), its point sets checked against jetpipe's.
//!
//! Run: `.ci/with-tools cargo bench --no-default-features --bench convert` (without Burn,
//! which it does not use: a much shorter first build). The file is `JETPIPE_BENCH_FILE`, by
//! default a 20,000-jet file made once by the generator's bench mode under
//! `$TMPDIR/jetpipe-bench/`. `JETPIPE_BENCH_FULL=1` also converts a 139,306-jet file (the
//! real file's size) with 2 threads and compares its peak RSS with the 20k-jet run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

use common::{ROOT, bench_file, work_dir};

/// Jets/s reading every image through the HDF5 library on one thread.
fn bare_read(path: &Path) -> (u64, f64) {
    let file = hdf5::File::open(path).expect("open");
    let ds = file.dataset("X_jets").expect("X_jets");
    let n = ds.shape()[0];
    let start = Instant::now();
    let mut sum = 0f64;
    for a in (0..n).step_by(64) {
        let b = (a + 64).min(n);
        let v = ds
            .read_slice::<f32, _, ndarray::Ix4>(ndarray::s![a..b, .., .., ..])
            .expect("read");
        sum += f64::from(v[[0, 62, 62, 1]]);
    }
    std::hint::black_box(sum);
    (n as u64, n as f64 / start.elapsed().as_secs_f64())
}

/// Jets/s of h5py reading every image in batches of 64, if Python has h5py.
fn h5py_read(path: &Path) -> Option<f64> {
    let code = "import h5py,sys,time\nx=h5py.File(sys.argv[1])['X_jets']\nt=time.perf_counter()\nfor a in range(0,x.shape[0],64): x[a:a+64]\nprint(x.shape[0]/(time.perf_counter()-t))";
    let out = Command::new("python3")
        .args(["-c", code])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

struct RunResult {
    jets_per_s: f64,
    rss_mb: f64,
    /// Worker and writer threads the run chose.
    threads: (usize, usize),
    /// CPU µs per jet of each profiled stage: (stage, thread kind, µs).
    stages: Vec<(String, String, f64)>,
}

impl RunResult {
    /// CPU µs per jet of one thread kind (reader, worker, writer).
    fn cpu(&self, thread: &str) -> f64 {
        self.stages
            .iter()
            .filter(|(_, t, _)| t == thread)
            .map(|(_, _, us)| us)
            .sum()
    }
}

/// Runs the main job on `file` into `out` on the first `cores` CPUs (`taskset`; the engine's
/// default split of them into workers and writers), kNN on or off, with `--profile`.
fn run_pipeline(file: &Path, out: &Path, cores: usize, knn: bool) -> RunResult {
    let _ = std::fs::remove_dir_all(out);
    let text = std::fs::read_to_string(format!("{ROOT}/pipelines/qg1024.yaml")).expect("yaml");
    let mut text = text
        .replace("data-samples/qg_sample.h5", &file.display().to_string())
        .replace("out/qg1024", &out.display().to_string());
    if !knn {
        let a = text.find("  knn:").expect("knn section");
        let b = text.find("  features:").expect("features section");
        text.replace_range(a..b, "  knn: null\n");
    }
    let cfg = out.with_extension("yaml");
    std::fs::write(&cfg, text).expect("write config");
    let start = Instant::now();
    let output = Command::new("taskset")
        .args(["-c", &format!("0-{}", cores - 1)])
        .arg(env!("CARGO_BIN_EXE_pipeline"))
        .arg("run")
        .arg(&cfg)
        .arg("--profile")
        .output()
        .expect("taskset and pipeline run");
    let wall = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pipeline failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |key: &str| -> f64 {
        let line = stdout.lines().find(|l| l.starts_with(key)).expect(key);
        line[key.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .expect("number")
    };
    let jets = field("jets:");
    // "time: … with W worker and V writer thread(s)"
    let time = stdout
        .lines()
        .find(|l| l.starts_with("time:"))
        .expect("time line");
    let words: Vec<&str> = time.split_whitespace().collect();
    let at = |w: &str| -> usize {
        let i = words.iter().position(|x| *x == w).expect(w);
        words[i - 1].parse().expect("thread count")
    };
    let threads = (at("worker"), at("writer"));
    let stages = stdout
        .lines()
        .skip_while(|l| !l.starts_with("stage"))
        .skip(1)
        .filter(|l| !l.starts_with("total"))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 3).then(|| (w[0].to_string(), w[1].to_string(), w[2].parse().ok()))
        })
        .filter_map(|(a, b, c)| Some((a, b, c?)))
        .collect();
    RunResult {
        jets_per_s: jets / wall,
        rss_mb: field("peak RSS:"),
        threads,
        stages,
    }
}

/// Projected jets/s on `cores` cores from one run's per-thread CPU figures: the workers and
/// writers split the cores as the engine's default does (writers half, at least one), each
/// kind limited by its CPU µs per jet; the single reader thread caps the whole.
fn projected(r: &RunResult, cores: usize) -> f64 {
    let writers = (cores / 2).max(1);
    let workers = cores.saturating_sub(writers).max(1);
    let (read, work, write) = (r.cpu("reader"), r.cpu("worker"), r.cpu("writer"));
    let total = read + work + write;
    [
        1e6 / read.max(1e-9),
        workers as f64 * 1e6 / work.max(1e-9),
        writers as f64 * 1e6 / write.max(1e-9),
        cores as f64 * 1e6 / total.max(1e-9),
    ]
    .into_iter()
    .fold(f64::INFINITY, f64::min)
}

/// Bytes per jet at each resolution: (resolution, all columns, kNN columns).
fn bytes_per_jet(out: &Path) -> Vec<(String, f64, f64)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut rows = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join("points"))
        .expect("points dir")
        .map(|e| e.expect("entry").path())
        .collect();
    dirs.sort_by_key(|d| {
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        name.trim_start_matches("res=").parse::<u32>().unwrap_or(0)
    });
    for dir in dirs {
        let (mut jets, mut all, mut knn) = (0i64, 0i64, 0i64);
        for shard in std::fs::read_dir(&dir).expect("res dir") {
            let f = std::fs::File::open(shard.expect("shard").path()).expect("open");
            let md = SerializedFileReader::new(f)
                .expect("parquet")
                .metadata()
                .clone();
            jets += md.file_metadata().num_rows();
            for rg in md.row_groups() {
                for col in rg.columns() {
                    all += col.compressed_size();
                    if col.column_path().string().starts_with("knn") {
                        knn += col.compressed_size();
                    }
                }
            }
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        rows.push((name, all as f64 / jets as f64, knn as f64 / jets as f64));
    }
    rows
}

/// µs per jet and bytes per jet to encode `batches` with `props`, written as the sink does:
/// `WRITE_ROWS`-row batches, each compacted by `concat_batches` (the sink's copy) first.
fn encode(
    batches: &[arrow::record_batch::RecordBatch],
    props: &parquet::file::properties::WriterProperties,
) -> (f64, f64) {
    use jetpipe::sink::parquet::WRITE_ROWS;
    let all = arrow::compute::concat_batches(&batches[0].schema(), batches).expect("concat");
    let rows = all.num_rows();
    let (start, mut reps, mut bytes) = (Instant::now(), 0, 0);
    while start.elapsed().as_secs_f64() < 2.0 || reps == 0 {
        let mut w =
            parquet::arrow::ArrowWriter::try_new(Vec::new(), all.schema(), Some(props.clone()))
                .expect("writer");
        for off in (0..rows).step_by(WRITE_ROWS) {
            w.write(&all.slice(off, WRITE_ROWS.min(rows - off)))
                .expect("write");
        }
        bytes = w.into_inner().expect("close").len();
        reps += 1;
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / (reps * rows) as f64;
    (us, bytes as f64 / rows as f64)
}

/// The kNN-list encodings compared on the first res=1024 shard of `out`.
fn knn_encodings(out: &Path) {
    use jetpipe::sink::parquet::ShardOptions;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::schema::types::ColumnPath;
    let shard = out.join("points/res=1024/part-00000.parquet");
    let f = std::fs::File::open(&shard).expect("shard");
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    let opts = ShardOptions {
        row_group_size: 1024,
        zstd_level: 3,
        plain_lists: vec!["tracks".into(), "ecal".into(), "hcal".into()],
    };
    let used = opts.properties().expect("properties");
    let knn = ColumnPath::new(vec!["knn".into(), "list".into(), "item".into()]);
    let dict = used
        .clone()
        .into_builder()
        .set_column_dictionary_enabled(knn.clone(), true)
        .set_column_encoding(knn, parquet::basic::Encoding::PLAIN)
        .build();
    println!(
        "
encoding the res=1024 points table ({}):",
        shard.display()
    );
    let (us_d, b_d) = encode(&batches, &dict);
    let (us_u, b_u) = encode(&batches, &used);
    println!(
        "{:<44} {:>8.0} µs/jet {:>8.0} B/jet",
        "kNN lists dictionary-encoded", us_d, b_d
    );
    println!(
        "{:<44} {:>8.0} µs/jet {:>8.0} B/jet  ({:.2}× the time, {:.2}× the bytes)",
        "kNN lists delta + bit-packed (used)",
        us_u,
        b_u,
        us_u / us_d,
        b_u / b_d
    );
}

fn main() {
    let file = std::env::var("JETPIPE_BENCH_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| bench_file(20_000));
    let work = work_dir();
    println!("conversion benchmark on {}", file.display());
    let (n, bare) = bare_read(&file);
    println!(
        "{n} jets; {} cores\n",
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    println!(
        "{:<52} {:>10} {:>10} {:>10}",
        "", "jets/s", "vs bare", "peak RSS"
    );
    println!(
        "{:<52} {:>10.0} {:>9.2}× {:>10}",
        "bare HDF5 read, 1 thread (baseline)", bare, 1.0, ""
    );
    if let Some(h) = h5py_read(&file) {
        println!(
            "{:<52} {:>10.0} {:>9.2}× {:>10}",
            "h5py read, batches of 64",
            h,
            h / bare,
            ""
        );
    }
    let out = work.join("out");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut runs: Vec<(usize, RunResult)> = Vec::new();
    for c in 1..=cores {
        let r = run_pipeline(&file, &out, c, true);
        println!(
            "{:<52} {:>10.0} {:>9.2}× {:>7.0} MB",
            format!(
                "jetpipe main job, {c} core(s): {} worker(s), {} writer(s)",
                r.threads.0, r.threads.1
            ),
            r.jets_per_s,
            r.jets_per_s / bare,
            r.rss_mb
        );
        runs.push((c, r));
        if c == cores {
            // Keep this output for the size table and the reference check.
            let _ = std::fs::remove_dir_all(work.join("out_main"));
            std::fs::rename(&out, work.join("out_main")).expect("keep output");
        }
    }
    let r = run_pipeline(&file, &out, cores, false);
    println!(
        "{:<52} {:>10.0} {:>9.2}× {:>7.0} MB",
        format!("jetpipe main job without kNN, {cores} core(s)"),
        r.jets_per_s,
        r.jets_per_s / bare,
        r.rss_mb
    );
    let two = &runs.last().expect("a run").1;
    let main_out = work.join("out_main");

    // Where the CPU goes, per thread kind, from the all-cores run's profile.
    println!("\nCPU time per jet by stage ({cores}-core run, `pipeline run --profile`):");
    println!("{:<12} {:<8} {:>12}", "stage", "thread", "CPU µs/jet");
    for (stage, thread, us) in &two.stages {
        println!("{stage:<12} {thread:<8} {us:>12.1}");
    }
    for t in ["reader", "worker", "writer"] {
        println!("{:<12} {t:<8} {:>12.1}", "total", two.cpu(t));
    }
    println!("\nscaling: measured vs projected from each run's per-thread CPU µs/jet");
    println!("{:<8} {:>14} {:>16}", "cores", "measured", "projected");
    for (c, r) in &runs {
        println!("{c:<8} {:>14.0} {:>16.0}", r.jets_per_s, projected(r, *c));
    }
    for c in [16, 64] {
        println!(
            "{c:<8} {:>14} {:>16.0}   (from the {cores}-core run)",
            "—",
            projected(two, c)
        );
    }

    let py_jets: usize = std::env::var("JETPIPE_BENCH_PY_JETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let ref_out = work.join("reference");
    std::fs::create_dir_all(&ref_out).expect("reference dir");
    let py = Command::new("python3")
        .arg(format!("{ROOT}/benches/reference_converter.py"))
        .arg(&file)
        .arg(&ref_out)
        .args(["--n", &py_jets.to_string(), "--check"])
        .arg(&main_out)
        .output();
    match py {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let rate: Option<f64> = text
                .lines()
                .find(|l| l.contains("jets/s"))
                .and_then(|l| l.split(" = ").nth(1))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok());
            if let Some(rate) = rate {
                println!(
                    "{:<52} {:>10.1} {:>9.2}× {:>10}",
                    format!("Python reference converter ({py_jets} jets)"),
                    rate,
                    rate / bare,
                    ""
                );
                println!(
                    "\njetpipe ({cores} cores) vs Python reference: {:.1}×",
                    two.jets_per_s / rate
                );
            }
            for l in text.lines().filter(|l| l.contains("point sets")) {
                println!("{l}");
            }
        }
        Ok(o) => println!(
            "\nPython reference converter failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => println!("\nPython reference converter skipped: {e}"),
    }

    knn_encodings(&main_out);

    println!("\nbytes per jet on disk (zstd level 3):");
    println!(
        "{:<10} {:>10} {:>14} {:>12}",
        "table", "all", "points only", "kNN lists"
    );
    for (name, all, knn) in bytes_per_jet(&main_out) {
        println!(
            "{:<10} {:>10.0} {:>14.0} {:>12.0}",
            name,
            all,
            all - knn,
            knn
        );
    }

    if std::env::var("JETPIPE_BENCH_FULL").is_ok_and(|v| v == "1") {
        let full = bench_file(139_306);
        let r = run_pipeline(&full, &work.join("out_full"), 2, true);
        println!(
            "\n139,306 jets, 2 threads: {:.0} jets/s, peak RSS {:.0} MB = {:.2}× the 20k-jet run's {:.0} MB",
            r.jets_per_s,
            r.rss_mb,
            r.rss_mb / two.rss_mb,
            two.rss_mb
        );
        let _ = std::fs::remove_dir_all(work.join("out_full"));
    }
}
