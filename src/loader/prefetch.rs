//! Prefetch threads: decode row groups and assemble one rank's batches ahead of the consumer.
//!
//! Worker w builds batches w, w + P, w + 2P, … and hands them over on its own bounded channel,
//! so the consumer takes them in order with no reordering and each worker runs at most two
//! batches ahead. Decoded row groups live in a shared slot table: the first worker that needs
//! one decodes it (workers first claim every free row group of their batch, then wait for the
//! ones others are decoding, so a window's row groups decode in parallel), and a row group is
//! dropped as soon as the last batch that uses it is assembled. Memory is therefore about one
//! shuffle window of decoded jets plus the batches in flight.

use crate::error::{Error, Result};
use crate::loader::batch::{Assembler, Batch, Columns, Decoded};
use crate::loader::dataset::PointsDataset;
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
    /// Projection and column positions.
    pub columns: Arc<Columns>,
    /// Feature column names (error messages).
    pub names: Arc<Vec<String>>,
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
    stop: AtomicBool,
}

impl Shared {
    fn decode(&self, rg: u32) -> Result<Decoded> {
        let j = &self.job;
        let b = j.ds.read(j.row_groups[rg as usize], &j.columns.read)?;
        Decoded::new(&b, &j.columns, &j.names)
    }

    /// The decoded row groups `rgs` (decoding the free ones here).
    fn get(&self, rgs: &[u32]) -> Result<Vec<Arc<Decoded>>> {
        for &rg in rgs {
            let claimed = {
                let mut s = self.slots.lock().expect("slots");
                let free = matches!(s[rg as usize], Slot::Empty);
                if free {
                    s[rg as usize] = Slot::Loading;
                }
                free
            };
            if claimed {
                let state = match self.decode(rg) {
                    Ok(d) => Slot::Ready(Arc::new(d)),
                    Err(e) => Slot::Failed(e.to_string()),
                };
                self.slots.lock().expect("slots")[rg as usize] = state;
                self.changed.notify_all();
            }
        }
        let mut s = self.slots.lock().expect("slots");
        let mut out = Vec::with_capacity(rgs.len());
        for &rg in rgs {
            loop {
                match &s[rg as usize] {
                    Slot::Ready(d) => {
                        out.push(d.clone());
                        break;
                    }
                    Slot::Failed(msg) => return Err(Error::Loader(msg.clone())),
                    Slot::Loading => s = self.changed.wait(s).expect("slots"),
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
        let got = self.get(&order)?;
        let mut decoded: Vec<(u32, Arc<Decoded>)> = order.iter().copied().zip(got).collect();
        decoded.sort_unstable_by_key(|(rg, _)| *rg);
        let mut batch = j.pool.try_recv().unwrap_or_default();
        j.asm.start(&mut batch, samples.len());
        for (b, s) in samples.iter().enumerate() {
            let at = decoded
                .binary_search_by_key(&s.rg, |(rg, _)| *rg)
                .expect("decoded");
            j.asm.put(&decoded[at].1, s.row as usize, b, &mut batch)?;
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
        let shared = Arc::new(Shared {
            slots: Mutex::new((0..job.row_groups.len()).map(|_| Slot::Empty).collect()),
            changed: Condvar::new(),
            uses,
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

    /// Batches yielded so far.
    pub fn yielded(&self) -> usize {
        self.next
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
