//! Where a conversion's CPU time goes: per-stage thread CPU time, summed over all threads,
//! collected only when switched on (`pipeline run --profile`; otherwise each probe is one
//! relaxed atomic load). `benches/convert.rs` turns these figures into its per-stage table
//! and the projected throughput on more cores.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A part of the conversion whose CPU time is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading a batch from HDF5 (the compressed chunks, or the library's decoded read).
    Read = 0,
    /// Inflating a jet's gzip chunk on a worker.
    Inflate,
    /// Scanning the image for hit pixels and ranking them.
    Select,
    /// Jet-level features.
    Features,
    /// The point columns of every resolution.
    Points,
    /// The kNN search, all resolutions.
    KnnSearch,
    /// The kNN lists and graph statistics, all resolutions.
    KnnStats,
    /// Building the batch's Arrow arrays.
    Assemble,
    /// Parquet encoding, compression and writing of the shards (writer threads).
    Encode,
}

/// Every stage, in table order, with its name and the thread that runs it.
pub const STAGES: [(Stage, &str, &str); 9] = [
    (Stage::Read, "read", "reader"),
    (Stage::Inflate, "inflate", "worker"),
    (Stage::Select, "select", "worker"),
    (Stage::Features, "features", "worker"),
    (Stage::Points, "points", "worker"),
    (Stage::KnnSearch, "knn_search", "worker"),
    (Stage::KnnStats, "knn_stats", "worker"),
    (Stage::Assemble, "assemble", "worker"),
    (Stage::Encode, "encode", "writer"),
];

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];

/// Starts collecting (for the rest of the process).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// CPU time of the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A running measurement on the current thread (`None` when profiling is off).
#[derive(Debug, Clone, Copy)]
pub struct Clock(Option<u64>);

impl Clock {
    /// Starts measuring.
    #[inline]
    pub fn start() -> Self {
        Clock(ENABLED.load(Ordering::Relaxed).then(thread_cpu_ns))
    }

    /// Starts anew without counting the time since the last lap (another clock counted it).
    #[inline]
    pub fn restart(&mut self) {
        *self = Clock::start();
    }

    /// Adds the CPU time since the last lap (or the start) to `stage`, and starts anew.
    #[inline]
    pub fn lap(&mut self, stage: Stage) {
        if let Some(t0) = self.0 {
            let t1 = thread_cpu_ns();
            NANOS[stage as usize].fetch_add(t1.saturating_sub(t0), Ordering::Relaxed);
            self.0 = Some(t1);
        }
    }
}

/// CPU seconds collected so far per stage, in [`STAGES`] order.
pub fn seconds() -> Vec<f64> {
    NANOS
        .iter()
        .map(|n| n.load(Ordering::Relaxed) as f64 * 1e-9)
        .collect()
}

/// The per-stage table `pipeline run --profile` prints: CPU µs per jet for `jets` jets.
pub fn report(jets: u64) -> String {
    let per_jet = |s: f64| s * 1e6 / jets.max(1) as f64;
    let secs = seconds();
    let mut out = format!("{:<12} {:<8} {:>12}\n", "stage", "thread", "CPU µs/jet");
    let mut by_thread = std::collections::BTreeMap::<&str, f64>::new();
    for ((_, name, thread), s) in STAGES.iter().zip(&secs) {
        out += &format!("{name:<12} {thread:<8} {:>12.1}\n", per_jet(*s));
        *by_thread.entry(thread).or_default() += per_jet(*s);
    }
    for (thread, us) in by_thread {
        out += &format!("{:<12} {thread:<8} {us:>12.1}\n", "total");
    }
    out
}
