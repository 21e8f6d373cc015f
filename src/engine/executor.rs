//! The streaming executor: one reader thread, a pool of stage workers, a pool of unit
//! writers, and the calling thread re-ordering between them, joined by bounded crossbeam
//! channels.
//!
//! - Order: every batch (and every error) carries its sequence number; the calling thread
//!   takes them strictly in sequence and hands each unit's batches, in order, to one writer
//!   thread (units round-robin over the writers). A unit is a set of files of its own, so
//!   the bytes do not depend on the number of workers or writers. The run fails at the first
//!   bad batch in input order; the units before it are completed, the unit it belongs to is
//!   dropped (no partial shard stays behind).
//! - Panics: a panic in the reader, a worker, a writer or the caller's event handler ends the
//!   run with an [`Error::Internal`] that names the thread and the file and jet range it was
//!   working on; every other thread stops or finishes what it holds, so the run never hangs.
//! - Memory: a batch needs a credit to be read and returns it once written; at most
//!   `threads + writers + 2 × queue_depth` batches exist at once, however slow one is.

use super::plan::BatchSpec;
use crate::batch::{ImageBatch, JetTables};
use crate::error::{Error, Result};
use crate::profile::{Clock, Stage};
use crate::sink::dataset::{DatasetSink, UnitWriter};
use crate::source::Hdf5Source;
use crate::stages::pointcloud::{PointCloudStage, Scratch};
use crate::store::manifest::UnitRecord;
use crossbeam::channel::{Receiver, Sender, bounded, unbounded};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

type Tagged = (u64, Result<JetTables>);

/// Threads and queues of a run: they change speed and memory, never the bytes.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Stage worker threads (at least one is used).
    pub threads: usize,
    /// Unit writer threads (at least one is used).
    pub writers: usize,
    /// Batches buffered per channel.
    pub queue_depth: usize,
    /// Read compressed chunks and inflate them on the workers.
    pub direct: bool,
}

/// What the writers report to the caller, as it happens.
#[derive(Debug)]
pub enum Event {
    /// A batch of this many source jets was written.
    Batch(u64),
    /// A unit was committed (all its shards have their final names).
    Unit(UnitRecord),
}

/// A writer's report: an event, or the failure of batch `seq`.
type Report = std::result::Result<Event, (u64, Error)>;

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs `f`, turning a panic into [`Error::Internal`] described by `what()`.
fn guarded<T>(what: impl FnOnce() -> String, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::Internal(format!(
            "{} panicked: {}",
            what(),
            panic_message(p.as_ref())
        ))),
    }
}

/// Runs `batches` through `stage` and writes them with `sink`, reporting progress and
/// committed units to `on_event` (on the calling thread). Returns the error of the first
/// failing batch in sequence order, if any (a writer's failure when no stage failed).
pub fn execute(
    source: &Hdf5Source,
    stage: &PointCloudStage,
    batches: &[BatchSpec],
    settings: Settings,
    sink: &DatasetSink,
    mut on_event: impl FnMut(Event) -> Result<()>,
) -> Result<()> {
    let threads = settings.threads.max(1);
    let writers = settings.writers.max(1);
    let queue_depth = settings.queue_depth.max(1);
    let in_flight = threads + writers + 2 * queue_depth;
    let (credit_tx, credit_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        credit_tx.send(()).expect("capacity");
    }
    let (in_tx, in_rx) = bounded::<ImageBatch>(queue_depth);
    let (out_tx, out_rx) = bounded::<Tagged>(queue_depth);
    let (report_tx, report_rx) = unbounded::<Report>();
    let cancel = AtomicBool::new(false);
    let cancel = &cancel;
    let file_name = |file: usize| source.files[file].path.display().to_string();
    let file_name = &file_name;

    std::thread::scope(|s| {
        // Reader.
        let reader_out = out_tx.clone();
        s.spawn(move || {
            for spec in batches {
                if credit_rx.recv().is_err() || cancel.load(Ordering::Relaxed) {
                    break;
                }
                let what = || {
                    format!(
                        "the reader thread, reading jets {}..{} of {}",
                        spec.start,
                        spec.start + spec.n as u64,
                        file_name(spec.file)
                    )
                };
                let mut clock = Clock::start();
                let read = guarded(what, || {
                    source.files[spec.file].read_for_workers(spec.start, spec.n, settings.direct)
                });
                clock.lap(Stage::Read);
                match read {
                    Ok(raw) => {
                        let batch = ImageBatch {
                            seq: spec.seq,
                            unit: spec.unit,
                            last_in_unit: spec.last_in_unit,
                            file: spec.file,
                            start: spec.start,
                            n: spec.n,
                            raw,
                        };
                        if in_tx.send(batch).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = reader_out.send((spec.seq, Err(e)));
                        break;
                    }
                }
            }
        });
        // Stage workers.
        for _ in 0..threads {
            let (rx, tx) = (in_rx.clone(), out_tx.clone());
            s.spawn(move || {
                let mut scratch = Scratch::default();
                for batch in rx {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let (seq, file, start, n) = (batch.seq, batch.file, batch.start, batch.n);
                    let what = || {
                        format!(
                            "a worker thread, converting jets {start}..{} of {}",
                            start + n as u64,
                            file_name(file)
                        )
                    };
                    let r = guarded(what, || stage.process(batch, &mut scratch));
                    if r.is_err() {
                        // A panic may leave the buffers half-updated.
                        scratch = Scratch::default();
                    }
                    if tx.send((seq, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(in_rx);
        drop(out_tx);
        // Unit writers.
        let mut to_writers: Vec<Sender<JetTables>> = Vec::with_capacity(writers);
        for _ in 0..writers {
            let (tx, rx) = bounded::<JetTables>(queue_depth);
            to_writers.push(tx);
            let (report, credit) = (report_tx.clone(), credit_tx.clone());
            s.spawn(move || write_units(sink, rx, report, credit));
        }
        drop(report_tx);

        // The calling thread: re-order, hand out, report.
        let mut first_error: Option<(u64, Error)> = None;
        let note = |seq: u64, e: Error, first: &mut Option<(u64, Error)>| {
            cancel.store(true, Ordering::Relaxed);
            if first.as_ref().is_none_or(|(s, _)| seq < *s) {
                *first = Some((seq, e));
            }
        };
        let mut handle = |r: Report, first: &mut Option<(u64, Error)>| match r {
            Ok(ev) => {
                let res = guarded(|| "the run's event handler".to_string(), || on_event(ev));
                if let Err(e) = res {
                    note(u64::MAX, e, first);
                }
            }
            Err((seq, e)) => note(seq, e, first),
        };
        let mut pending: BTreeMap<u64, Result<JetTables>> = BTreeMap::new();
        let (mut next, mut last_unit, mut slot) = (0u64, None::<u32>, 0usize);
        while next < batches.len() as u64 && !cancel.load(Ordering::Relaxed) {
            while let Ok(r) = report_rx.try_recv() {
                handle(r, &mut first_error);
            }
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            let Some(r) = pending.remove(&next) else {
                match out_rx.recv() {
                    Ok((seq, r)) => {
                        pending.insert(seq, r);
                    }
                    Err(_) => {
                        note(next, Error::Cancelled, &mut first_error);
                    }
                }
                continue;
            };
            match r {
                Ok(t) => {
                    if last_unit.is_some_and(|u| u != t.unit) {
                        slot = (slot + 1) % writers;
                    }
                    last_unit = Some(t.unit);
                    if to_writers[slot].send(t).is_err() {
                        note(
                            next,
                            Error::Internal("a writer thread stopped".into()),
                            &mut first_error,
                        );
                    }
                    next += 1;
                }
                Err(e) => note(next, e, &mut first_error),
            }
        }
        // Stop the reader and the workers; the writers finish what they hold.
        drop(to_writers);
        drop(credit_tx);
        drop(pending);
        let stop_stages = first_error.is_some();
        if stop_stages {
            for _ in out_rx.iter() {}
        }
        for r in report_rx.iter() {
            handle(r, &mut first_error);
        }
        cancel.store(true, Ordering::Relaxed);
        for _ in out_rx.iter() {}
        match first_error {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    })
}

/// A writer thread: writes the batches it is handed, unit by unit, commits each unit after
/// its last batch and reports both. It writes everything it is handed (the calling thread
/// stops handing out batches at the first failure), so every unit before a failing batch is
/// completed. After a failure of its own it drops its open unit (removing its temporary
/// files) and only drains its queue; a unit left open when the queue closes is dropped too.
fn write_units(
    sink: &DatasetSink,
    rx: Receiver<JetTables>,
    report: Sender<Report>,
    credit: Sender<()>,
) {
    let mut open: Option<UnitWriter> = None;
    let mut failed = false;
    for t in rx {
        let (seq, unit, n) = (t.seq, t.unit, t.jets_in as u64);
        if !failed {
            let what = || format!("a writer thread, writing unit {unit} (batch {seq})");
            let mut clock = Clock::start();
            let r = guarded(what, || {
                let last = t.last_in_unit;
                if open.as_ref().is_none_or(|u| u.id() != unit) {
                    open = None;
                    open = Some(sink.open_unit(unit)?);
                }
                let w = open.as_mut().expect("unit open");
                w.write(t)?;
                let _ = report.send(Ok(Event::Batch(n)));
                if last {
                    let w = open.take().expect("unit open");
                    crate::fault::panic_if("JETPIPE_FAULT_PANIC_UNIT", u64::from(unit));
                    let rec = w.commit()?;
                    let _ = report.send(Ok(Event::Unit(rec)));
                }
                Ok(())
            });
            clock.lap(Stage::Encode);
            if let Err(e) = r {
                open = None;
                failed = true;
                let _ = report.send(Err((seq, e)));
            }
        }
        let _ = credit.send(());
    }
}
