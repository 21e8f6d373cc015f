//! The fault catalogue, run against the real `pipeline` binary: kill -9 anywhere then
//! resume, a disk that fills up, damaged shards, a source changed between run and resume,
//! and `--part` runs whose union must equal a single run. After every fault, the rerun's
//! output is byte-identical to an uninterrupted run, so no jet is lost or duplicated.
//!
//! Children are spawned only while no fixture is being written (`FIXTURES` lock): HDF5 does
//! not open files close-on-exec, so a child would inherit a writer's file lock.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static FIXTURES: Mutex<()> = Mutex::new(());

/// Writes the fixture file and the pipeline YAML: 300 jets, units of 10 (30 units).
fn setup(dir: &Path) -> PathBuf {
    let _g = FIXTURES.lock().unwrap();
    let h5 = dir.join("jets.h5");
    write_h5(&h5, &random_jets(99, 300, 40, 40, 3), &Write::default());
    let yaml = dir.join("p.yaml");
    std::fs::write(
        &yaml,
        format!(
            "name: faults\nsource:\n  files: [\"{}\"]\nstages:\n  pointcloud:\n    resolutions: [16, 64]\nsink:\n  path: \"{}\"\n  shard_size: 10\nengine:\n  batch_size: 5\n",
            h5.display(),
            dir.join("out").display()
        ),
    )
    .unwrap();
    yaml
}

fn pipeline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let _g = FIXTURES.lock().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn snapshot(d: &Path) -> Vec<(String, Vec<u8>)> {
    tree(d)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(d.join(f)).unwrap()))
        .collect()
}

fn reference(dir: &Path, yaml: &Path) -> Vec<(String, Vec<u8>)> {
    let out = dir.join("reference");
    let o = pipeline(
        &[
            "run",
            yaml.to_str().unwrap(),
            "-q",
            "--output",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let verify = pipeline(&["verify", out.to_str().unwrap()], &[]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    snapshot(&out)
}

#[test]
fn kill_9_anywhere_then_resume_gives_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = setup(dir.path());
    let want = reference(dir.path(), &yaml);
    let out = dir.path().join("out");
    // The kill times are drawn from [0, scale): scale starts at the time of one bare run
    // and shrinks whenever a run finishes before its kill (a loaded CI machine makes one
    // timing unrepresentative), so the test keeps killing until 20 runs were cut short.
    let _ = std::fs::remove_dir_all(&out);
    let t0 = Instant::now();
    let o = pipeline(&["run", yaml.to_str().unwrap(), "-q"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut scale = t0.elapsed().as_secs_f64();
    let mut rng = Rng(2026);
    let (mut interrupted, mut rounds) = (0, 0);
    while interrupted < 20 {
        assert!(
            rounds < 80,
            "only {interrupted} of {rounds} runs were killed before finishing"
        );
        rounds += 1;
        let _ = std::fs::remove_dir_all(&out);
        let delay = Duration::from_secs_f64(scale * rng.unit() as f64);
        let mut child = {
            let _g = FIXTURES.lock().unwrap();
            Command::new(env!("CARGO_BIN_EXE_pipeline"))
                .args(["run", yaml.to_str().unwrap(), "-q"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            scale *= 0.7;
        } else {
            interrupted += 1;
        }
        let o = pipeline(&["run", yaml.to_str().unwrap(), "-q"], &[]);
        assert!(
            o.status.success(),
            "round {rounds}: resume failed: {}",
            stderr(&o)
        );
        assert!(
            snapshot(&out) == want,
            "round {rounds} (killed after {delay:?}): output differs from an uninterrupted run"
        );
    }
}

#[test]
fn full_disk_fails_cleanly_and_resume_completes() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = setup(dir.path());
    let want = reference(dir.path(), &yaml);
    let out = dir.path().join("out");
    let o = pipeline(
        &["run", yaml.to_str().unwrap(), "-q"],
        &[("JETPIPE_FAULT_WRITE_LIMIT", "150000")],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(".parquet.tmp: writing shard failed")
            && err.contains("No space left on device"),
        "{err}"
    );
    assert!(
        tree(&out).iter().all(|f| !f.ends_with(".tmp")),
        "temporary shard left behind"
    );
    let m = jetpipe::store::manifest::Manifest::read(&out)
        .unwrap()
        .unwrap();
    assert_eq!(m.status, jetpipe::store::manifest::Status::Failed);
    assert!(
        !m.units.is_empty() && m.units.len() < 30,
        "{} units",
        m.units.len()
    );
    let o = pipeline(&["run", yaml.to_str().unwrap(), "-q"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(snapshot(&out) == want);
}

#[test]
fn damaged_shards_are_caught_by_verify_and_rewritten_by_resume() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = setup(dir.path());
    let want = reference(dir.path(), &yaml);
    let out = dir.path().join("out");
    assert!(
        pipeline(&["run", yaml.to_str().unwrap(), "-q"], &[])
            .status
            .success()
    );
    let flipped = out.join("points/res=64/part-00007.parquet");
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&flipped, bytes).unwrap();
    let truncated = out.join("jets/part-00012.parquet");
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let v = pipeline(&["verify", out.to_str().unwrap()], &[]);
    assert_ne!(v.status.code(), Some(0));
    let report = String::from_utf8_lossy(&v.stdout);
    assert!(
        report.contains("unit 7: points/res=64/part-00007.parquet: checksum"),
        "{report}"
    );
    assert!(
        report.contains("unit 12: jets/part-00012.parquet:")
            && report.contains("bytes, manifest says"),
        "{report}"
    );
    assert!(report.contains("2 problem(s)"), "{report}");
    let o = pipeline(&["run", yaml.to_str().unwrap()], &[]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("2 unit(s) of the earlier run failed verification")
            || String::from_utf8_lossy(&o.stdout)
                .contains("2 unit(s) of the earlier run failed verification")
    );
    assert!(snapshot(&out) == want);
    assert!(
        pipeline(&["verify", out.to_str().unwrap()], &[])
            .status
            .success()
    );
}

#[test]
fn changed_source_refuses_resume_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = setup(dir.path());
    let out = dir.path().join("out");
    assert!(
        pipeline(&["run", yaml.to_str().unwrap(), "-q"], &[])
            .status
            .success()
    );
    {
        let _g = FIXTURES.lock().unwrap();
        write_h5(
            &dir.path().join("jets.h5"),
            &random_jets(100, 300, 40, 40, 3),
            &Write::default(),
        );
    }
    let o = pipeline(&["run", yaml.to_str().unwrap(), "-q"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("jets.h5: changed since the earlier run") && err.contains("--overwrite"),
        "{err}"
    );
    let v = pipeline(&["verify", out.to_str().unwrap()], &[]);
    assert!(String::from_utf8_lossy(&v.stdout).contains("changed since conversion"));
    let o = pipeline(&["run", yaml.to_str().unwrap(), "-q", "--overwrite"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        pipeline(&["verify", out.to_str().unwrap()], &[])
            .status
            .success()
    );
}

#[test]
fn parts_in_one_directory_equal_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = setup(dir.path());
    let want = reference(dir.path(), &yaml);
    let out = dir.path().join("out");
    for part in ["3/4", "0/4", "2/4"] {
        let o = pipeline(&["run", yaml.to_str().unwrap(), "-q", "--part", part], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            !out.join("manifest.json").exists(),
            "merged before every part finished"
        );
    }
    let o = pipeline(&["run", yaml.to_str().unwrap(), "-q", "--part", "1/4"], &[]);
    assert!(o.status.success());
    let got: Vec<(String, Vec<u8>)> = snapshot(&out)
        .into_iter()
        .filter(|(f, _)| !f.starts_with("parts/"))
        .collect();
    assert!(got == want, "union of parts differs from a single run");
    assert!(
        pipeline(&["verify", out.to_str().unwrap()], &[])
            .status
            .success()
    );
    let bad = pipeline(&["run", yaml.to_str().unwrap(), "--part", "4/4"], &[]);
    assert!(stderr(&bad).contains("need 0 <= i < n"));
}

/// Runs `pipeline` and fails the test if it has not ended within `secs` seconds (a hang).
fn pipeline_within(args: &[&str], env: &[(&str, &str)], secs: u64) -> Output {
    let child = {
        let _g = FIXTURES.lock().unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_pipeline"));
        c.args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        c.spawn().unwrap()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("pipeline {args:?} with {env:?} still running after {secs} s: it hangs");
        }
    }
}

/// The fault YAML with several stage workers and unit writers.
fn parallel_yaml(dir: &Path) -> PathBuf {
    let yaml = setup(dir);
    let text = std::fs::read_to_string(&yaml).unwrap() + "  threads: 2\n  writers: 3\n";
    let parallel = dir.join("parallel.yaml");
    std::fs::write(&parallel, text).unwrap();
    parallel
}

/// Runs the parallel fault YAML with the panic fault `env` set: the run must end within 60 s
/// with exit code 1, no temporary file, and a failed manifest, which `check` inspects with
/// the error text; then a plain rerun must resume to the bytes of an uninterrupted run.
fn panic_then_resume(
    env: (&str, &str),
    check: impl FnOnce(&str, &Path, &jetpipe::store::manifest::Manifest),
) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = parallel_yaml(dir.path());
    let want = reference(dir.path(), &yaml);
    let out = dir.path().join("out");
    let o = pipeline_within(&["run", yaml.to_str().unwrap(), "-q"], &[env], 60);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(tree(&out).iter().all(|f| !f.ends_with(".tmp")));
    let m = jetpipe::store::manifest::Manifest::read(&out)
        .unwrap()
        .unwrap();
    assert_eq!(m.status, jetpipe::store::manifest::Status::Failed);
    check(&stderr(&o), &out, &m);
    let o = pipeline_within(&["run", yaml.to_str().unwrap(), "-q"], &[], 60);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(snapshot(&out) == want, "resumed output differs");
}

#[test]
fn worker_panic_ends_the_run_with_context_and_resume_completes() {
    // Jet 137 is in batch 135..140 of unit 13 (units of 10 jets, batches of 5).
    panic_then_resume(("JETPIPE_FAULT_PANIC_JET", "137"), |err, _, m| {
        assert!(
            err.contains("internal error: a worker thread, converting jets 135..140 of ")
                && err.contains("jets.h5 panicked: injected fault JETPIPE_FAULT_PANIC_JET=137"),
            "{err}"
        );
        // Every unit before the failing batch is complete, nothing after it was written.
        let units: Vec<u32> = m.units.iter().map(|u| u.unit).collect();
        assert_eq!(units, (0..13).collect::<Vec<_>>());
        assert!(
            m.error
                .as_ref()
                .unwrap()
                .contains("converting jets 135..140")
        );
    });
}

#[test]
fn writer_panic_ends_the_run_and_resume_completes() {
    panic_then_resume(("JETPIPE_FAULT_PANIC_UNIT", "7"), |err, out, m| {
        assert!(
            err.contains("internal error: a writer thread, writing unit 7 (batch 15) panicked"),
            "{err}"
        );
        assert!(!tree(out).iter().any(|f| f.contains("part-00007")));
        assert!(m.units.iter().all(|u| u.unit != 7) && m.units.len() >= 7);
    });
}

/// A source opens while another process holds a writer's lock on it: jetpipe opens sources
/// without HDF5's file lock. The child here inherits the writer's descriptor (HDF5 does not
/// open files close-on-exec) and keeps its lock after the writer closed, which is how the
/// loader's fixture once failed with "unable to lock file, errno = 11"; a plain
/// `hdf5::File::open` still fails in that state, `source::open_read_only` does not.
#[test]
fn a_source_opens_while_another_process_holds_a_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.h5");
    let writer = hdf5::File::create(&path).unwrap();
    let mut child = {
        let _guard = FIXTURES.lock().unwrap_or_else(|e| e.into_inner());
        Command::new("sleep").arg("30").spawn().unwrap()
    };
    drop(writer);
    let plain = hdf5::File::open(&path).map(|_| ());
    let ours = jetpipe::source::open_read_only(&path).map(|_| ());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        plain.is_err(),
        "the lock was not held: the test shows nothing"
    );
    ours.unwrap();
}
