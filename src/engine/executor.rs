//! The streaming executor: one reader thread, a pool of stage workers, and the sink on the
//! calling thread, joined by bounded crossbeam channels.
//!
//! - Order: every batch (and every error) carries its sequence number; the sink consumes them
//!   strictly in sequence, so the output and the error reported do not depend on thread count
//!   or timing: the run fails at the first bad batch in input order, after every earlier
//!   batch was written.
//! - Memory: a batch needs a credit to be read and returns it once written; at most
//!   `threads + 2 × queue_depth` batches exist at once, however slow one of them is.

use super::plan::BatchSpec;
use crate::batch::{ImageBatch, JetTables};
use crate::error::{Error, Result};
use crate::source::Hdf5Source;
use crate::stages::pointcloud::{PointCloudStage, Scratch};
use crossbeam::channel::{Receiver, bounded};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

type Tagged = (u64, Result<JetTables>);

/// Runs `batches` through `stage`, handing finished batches to `sink` in sequence order.
/// Returns the error of the first failing batch in sequence order, if any.
pub fn execute(
    source: &Hdf5Source,
    stage: &PointCloudStage,
    batches: &[BatchSpec],
    threads: usize,
    queue_depth: usize,
    direct: bool,
    mut sink: impl FnMut(JetTables) -> Result<()>,
) -> Result<()> {
    let threads = threads.max(1);
    let in_flight = threads + 2 * queue_depth;
    let (credit_tx, credit_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        credit_tx.send(()).expect("capacity");
    }
    let (in_tx, in_rx) = bounded::<ImageBatch>(queue_depth);
    let (out_tx, out_rx) = bounded::<Tagged>(queue_depth);
    let cancel = AtomicBool::new(false);
    let cancel = &cancel;

    std::thread::scope(|s| {
        let reader_out = out_tx.clone();
        s.spawn(move || {
            for spec in batches {
                if credit_rx.recv().is_err() || cancel.load(Ordering::Relaxed) {
                    break;
                }
                let read = source.files[spec.file].read_for_workers(spec.start, spec.n, direct);
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
        for _ in 0..threads {
            let (rx, tx) = (in_rx.clone(), out_tx.clone());
            s.spawn(move || {
                let mut scratch = Scratch::default();
                for batch in rx {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let seq = batch.seq;
                    if tx.send((seq, stage.process(batch, &mut scratch))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(in_rx);
        drop(out_tx);

        let result = reorder(
            &out_rx,
            batches.len() as u64,
            &mut || credit_tx.send(()),
            &mut sink,
        );
        cancel.store(true, Ordering::Relaxed);
        drop(credit_tx);
        for _ in out_rx.iter() {}
        result
    })
}

/// Feeds results to `sink` strictly in sequence order, returning a credit after each.
fn reorder<E>(
    results: &Receiver<Tagged>,
    expected: u64,
    credit: &mut impl FnMut() -> std::result::Result<(), E>,
    sink: &mut impl FnMut(JetTables) -> Result<()>,
) -> Result<()> {
    let mut pending: BTreeMap<u64, Result<JetTables>> = BTreeMap::new();
    let mut next = 0u64;
    while next < expected {
        match pending.remove(&next) {
            Some(r) => {
                sink(r?)?;
                let _ = credit();
                next += 1;
            }
            None => match results.recv() {
                Ok((seq, r)) => {
                    pending.insert(seq, r);
                }
                Err(_) => return Err(Error::Cancelled),
            },
        }
    }
    Ok(())
}
