//! Prefetch threads: decode row groups and assemble one rank's batches ahead of the consumer.
//!
//! Worker w builds batches w, w + P, w + 2P, … and hands them over on its own bounded channel,
//! so the consumer takes them in order with no reordering and each worker runs at most two
//! batches ahead. Decoded row groups live in a shared slot table: the first worker that needs
//! one decodes it. Workers first claim every free row group of their batch; while a row group
//! they need is being decoded by another worker, they decode the next row groups in order of
//! first use (up to a few batches ahead) instead of waiting, so decoding stays parallel even
//! when consecutive batches share row groups (sequential reads). A row group is dropped as
//! soon as the last batch that uses it is assembled: memory is about one shuffle window of
//! decoded jets plus the batches in flight.

use crate::error::{Error, Result};
use crate::loader::batch::{Assembler, Batch};
use crate::loader::dataset::PointsDataset;
use crate::loader::decode::{Decoded, Wanted};
use crate::loader::plan::{RowGroup, Sample};
use crossbeam::channel::{Receiver, Sender, bounded};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Everything the workers share.
pub struct Job {
    /// The dataset.
    pub ds: Arc<PointsDataset>,
    /// The columns to decode.
    pub want: Arc<Wanted>,
    /// Batch assembly.
    pub asm: Arc<Assembler>,
    /// The layout's row groups.
    pub row_groups: Vec<RowGroup>,
    /// The jets to serve, in order.
    pub samples: Vec<Sample>,
    /// Each batch's range in `samples`.
    pub batches: Vec<Range<usize>>,
    /// Spare batches to reuse.
    pub pool: Receiver<Batch>,
    /// The epoch (for the reflections).
    pub epoch: u64,
}

enum Slot {
    Empty,
    Loading,
    Ready(Arc<Decoded>),
    Done,
    Failed(String),
}

struct Shared {
    job: Job,
    slots: Mutex<Vec<Slot>>,
    changed: Condvar,
    uses: Vec<AtomicUsize>,
    /// Row groups in order of first use, the next one to decode ahead, and each one's first
    /// batch.
    need: Vec<u32>,
    cursor: AtomicUsize,
    first_use: Vec<usize>,
    ahead: usize,
    stop: AtomicBool,
}

impl Shared {
    /// Decodes row group `rg` here if no worker has claimed it yet.
    fn claim_and_decode(&self, rg: u32) -> bool {
        {
            let mut s = self.slots.lock().expect("slots");
            if !matches!(s[rg as usize], Slot::Empty) {
                return false;
            }
            s[rg as usize] = Slot::Loading;
        }
        let j = &self.job;
        let rgd = j.row_groups[rg as usize];
        let decoded =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| j.ds.decode(rgd, &j.want)));
        // A panic must not leave the slot `Loading`: waiting workers would never wake.
        let state = match decoded {
            Ok(Ok(d)) => Slot::Ready(Arc::new(d)),
            Ok(Err(e)) => Slot::Failed(e.to_string()),
            Err(_) => Slot::Failed(format!(
                "shard {} row group {}: decoding panicked",
                rgd.shard, rgd.index
            )),
        };
        self.slots.lock().expect("slots")[rg as usize] = state;
        self.changed.notify_all();
        true
    }

    /// Decodes the next unclaimed row group first used by batch `i + ahead` at the latest;
    /// false when there is none.
    fn decode_ahead(&self, i: usize) -> bool {
        loop {
            let c = self.cursor.load(Ordering::Acquire);
            let Some(&rg) = self.need.get(c) else {
                return false;
            };
            if self.first_use[rg as usize] > i + self.ahead {
                return false;
            }
            if self
                .cursor
                .compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
                && self.claim_and_decode(rg)
            {
                return true;
            }
        }
    }

    /// The decoded row groups `rgs` of batch `i` (decoding the free ones here).
    fn get(&self, rgs: &[u32], i: usize) -> Result<Vec<Arc<Decoded>>> {
        for &rg in rgs {
            self.claim_and_decode(rg);
        }
        let mut out = Vec::with_capacity(rgs.len());
        for &rg in rgs {
            loop {
                let mut s = self.slots.lock().expect("slots");
                match &s[rg as usize] {
                    Slot::Ready(d) => {
                        out.push(d.clone());
                        break;
                    }
                    Slot::Failed(msg) => return Err(Error::Loader(msg.clone())),
                    Slot::Loading => {
                        drop(s);
                        if !self.decode_ahead(i) {
                            s = self.slots.lock().expect("slots");
                            if matches!(s[rg as usize], Slot::Loading) {
                                drop(self.changed.wait(s).expect("slots"));
                            }
                        }
                    }
                    Slot::Empty | Slot::Done => unreachable!("row group used after release"),
                }
            }
        }
        Ok(out)
    }

    fn release(&self, rgs: &[u32]) {
        for &rg in rgs {
            if self.uses[rg as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                self.slots.lock().expect("slots")[rg as usize] = Slot::Done;
            }
        }
    }

    fn build(&self, i: usize, worker: usize, workers: usize) -> Result<Batch> {
        let j = &self.job;
        let samples = &j.samples[j.batches[i].clone()];
        let mut rgs: Vec<u32> = samples.iter().map(|s| s.rg).collect();
        rgs.sort_unstable();
        rgs.dedup();
        // Start on a different row group than the other workers do.
        let mut order = rgs.clone();
        order.rotate_left(worker * rgs.len() / workers);
        let got = self.get(&order, i)?;
        let mut decoded: Vec<(u32, Arc<Decoded>)> = order.iter().copied().zip(got).collect();
        decoded.sort_unstable_by_key(|(rg, _)| *rg);
        let mut batch = j.pool.try_recv().unwrap_or_default();
        j.asm.start(&mut batch, samples.len());
        for (b, s) in samples.iter().enumerate() {
            let at = decoded
                .binary_search_by_key(&s.rg, |(rg, _)| *rg)
                .expect("decoded");
            j.asm
                .put(&decoded[at].1, s.row as usize, b, j.epoch, &mut batch)?;
        }
        drop(decoded);
        self.release(&rgs);
        Ok(batch)
    }
}

/// The running prefetch: yields the job's batches in order.
pub struct Prefetch {
    rx: Vec<Receiver<Result<Batch>>>,
    next: usize,
    total: usize,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Prefetch {
    /// Starts `workers` threads on `job`.
    pub fn start(job: Job, workers: usize) -> Self {
        let workers = workers.max(1);
        let mut uses: Vec<AtomicUsize> = (0..job.row_groups.len())
            .map(|_| AtomicUsize::new(0))
            .collect();
        for r in &job.batches {
            let mut rgs: Vec<u32> = job.samples[r.clone()].iter().map(|s| s.rg).collect();
            rgs.sort_unstable();
            rgs.dedup();
            for rg in rgs {
                *uses[rg as usize].get_mut() += 1;
            }
        }
        let total = job.batches.len();
        let mut first_use = vec![usize::MAX; job.row_groups.len()];
        let mut need = Vec::new();
        for (i, r) in job.batches.iter().enumerate() {
            for s in &job.samples[r.clone()] {
                if first_use[s.rg as usize] == usize::MAX {
                    first_use[s.rg as usize] = i;
                    need.push(s.rg);
                }
            }
        }
        let shared = Arc::new(Shared {
            slots: Mutex::new((0..job.row_groups.len()).map(|_| Slot::Empty).collect()),
            changed: Condvar::new(),
            uses,
            need,
            cursor: AtomicUsize::new(0),
            first_use,
            ahead: 2 * workers + 2,
            stop: AtomicBool::new(false),
            job,
        });
        let mut rx = Vec::new();
        let mut threads = Vec::new();
        for w in 0..workers {
            let (tx, r): (Sender<Result<Batch>>, _) = bounded(2);
            rx.push(r);
            let sh = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("loader-{w}"))
                    .spawn(move || {
                        for i in (w..total).step_by(workers) {
                            if sh.stop.load(Ordering::Relaxed) {
                                return;
                            }
                            let r = sh.build(i, w, workers);
                            let failed = r.is_err();
                            if tx.send(r).is_err() || failed {
                                return;
                            }
                        }
                    })
                    .expect("spawn loader thread"),
            );
        }
        Self {
            rx,
            next: 0,
            total,
            shared,
            threads,
        }
    }
}

impl Iterator for Prefetch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.total {
            return None;
        }
        let w = self.next % self.rx.len();
        self.next += 1;
        Some(
            self.rx[w]
                .recv()
                .unwrap_or_else(|_| Err(Error::Loader("a loader thread stopped".into()))),
        )
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.rx.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
