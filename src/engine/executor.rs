//! The streaming executor: one reader thread, a pool of stage workers, and the sink on the
//! calling thread, joined by bounded crossbeam channels (back-pressure keeps memory at about
//! batch size × queue depth). The sink restores batch order from sequence numbers, so the
//! output does not depend on the number of workers.

use super::plan::BatchSpec;
use crate::batch::{ImageBatch, JetTables};
use crate::error::{Error, Result};
use crate::source::Hdf5Source;
use crate::stages::pointcloud::{PointCloudStage, Scratch};
use crossbeam::channel::bounded;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs `batches` through `stage`, handing finished batches to `sink` in sequence order.
/// The first error anywhere stops every thread and is returned.
pub fn execute(
    source: &Hdf5Source,
    stage: &PointCloudStage,
    batches: &[BatchSpec],
    threads: usize,
    queue_depth: usize,
    mut sink: impl FnMut(JetTables) -> Result<()>,
) -> Result<()> {
    let (in_tx, in_rx) = bounded::<ImageBatch>(queue_depth);
    let (out_tx, out_rx) = bounded::<Result<JetTables>>(queue_depth);
    let cancel = AtomicBool::new(false);
    let cancel = &cancel;

    std::thread::scope(|s| {
        let reader_out = out_tx.clone();
        s.spawn(move || {
            for spec in batches {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let batch =
                    source.files[spec.file]
                        .read(spec.start, spec.n)
                        .map(|raw| ImageBatch {
                            seq: spec.seq,
                            unit: spec.unit,
                            last_in_unit: spec.last_in_unit,
                            file: spec.file,
                            start: spec.start,
                            n: spec.n,
                            raw,
                        });
                match batch {
                    Ok(b) => {
                        if in_tx.send(b).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = reader_out.send(Err(e));
                        break;
                    }
                }
            }
        });
        for _ in 0..threads.max(1) {
            let (rx, tx) = (in_rx.clone(), out_tx.clone());
            s.spawn(move || {
                let mut scratch = Scratch::default();
                for batch in rx {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = stage.process(batch, &mut scratch);
                    let failed = result.is_err();
                    if tx.send(result).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(in_rx);
        drop(out_tx);

        let result = reorder(out_rx.iter(), batches.len() as u64, &mut sink);
        if result.is_err() {
            cancel.store(true, Ordering::Relaxed);
            for _ in out_rx.iter() {}
        }
        result
    })
}

/// Feeds results to `sink` in sequence order; fails on the first error.
fn reorder(
    results: impl Iterator<Item = Result<JetTables>>,
    expected: u64,
    sink: &mut impl FnMut(JetTables) -> Result<()>,
) -> Result<()> {
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    for r in results {
        let t = r?;
        pending.insert(t.seq, t);
        while let Some(t) = pending.remove(&next) {
            sink(t)?;
            next += 1;
        }
    }
    if next == expected {
        Ok(())
    } else {
        Err(Error::Cancelled)
    }
}
