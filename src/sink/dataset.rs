//! The dataset sink: a unit's shards (`jets/` and one `points/res=R/` per resolution),
//! opened by [`DatasetSink::open_unit`], fed the unit's batches in order and committed after
//! the last one. Units are independent files, so several are written at once, one per
//! writer thread of the executor.

use super::parquet::{ShardOptions, ShardWriter};
use crate::batch::{JetTables, Rejection};
use crate::error::{Error, Result};
use crate::store::manifest::UnitRecord;
use arrow::datatypes::SchemaRef;
use std::path::PathBuf;

/// Jets `start..end` of file `file`: what a unit covers.
#[derive(Debug, Clone, Copy)]
pub struct UnitSpan {
    /// File index.
    pub file: usize,
    /// First jet index in the file.
    pub start: u64,
    /// One past the last jet index.
    pub end: u64,
}

/// One unit being written: its shards (the jets table and one per resolution), open under
/// their temporary names. Dropped before [`UnitWriter::commit`], it removes them.
pub struct UnitWriter {
    id: u32,
    span: UnitSpan,
    jets: ShardWriter,
    points: Vec<ShardWriter>,
    written: u64,
    zeroed: u64,
    rejected: Vec<Rejection>,
}

/// What every unit of a run is written with. Shared (it is `Sync`): each writer thread opens
/// its own units through it.
pub struct DatasetSink {
    root: PathBuf,
    opts: ShardOptions,
    jets_schema: SchemaRef,
    points_schema: SchemaRef,
    resolutions: Vec<u32>,
    spans: std::collections::HashMap<u32, UnitSpan>,
}

/// Relative path of unit `id`'s shard of `table` (e.g. `points/res=256`).
pub fn shard_path(table: &str, id: u32) -> String {
    format!("{table}/part-{id:05}.parquet")
}

/// Partition directory of resolution `res` in the points table.
pub fn points_partition(res: u32) -> String {
    format!("points/res={res}")
}

impl DatasetSink {
    /// A sink writing under `root`; `spans` gives each unit's jet range by unit id.
    pub fn new(
        root: PathBuf,
        opts: ShardOptions,
        jets_schema: SchemaRef,
        points_schema: SchemaRef,
        resolutions: Vec<u32>,
        spans: impl IntoIterator<Item = (u32, UnitSpan)>,
    ) -> Self {
        Self {
            root,
            opts,
            jets_schema,
            points_schema,
            resolutions,
            spans: spans.into_iter().collect(),
        }
    }

    /// Opens unit `id`'s shards (one of the units the sink was made with).
    pub fn open_unit(&self, id: u32) -> Result<UnitWriter> {
        let span = *self
            .spans
            .get(&id)
            .ok_or_else(|| Error::Internal(format!("unit {id} was not planned")))?;
        let jets = ShardWriter::create(
            &self.root,
            &shard_path("jets", id),
            self.jets_schema.clone(),
            &self.opts,
        )?;
        let points = self
            .resolutions
            .iter()
            .map(|&r| {
                ShardWriter::create(
                    &self.root,
                    &shard_path(&points_partition(r), id),
                    self.points_schema.clone(),
                    &self.opts,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(UnitWriter {
            id,
            span,
            jets,
            points,
            written: 0,
            zeroed: 0,
            rejected: Vec::new(),
        })
    }
}

impl UnitWriter {
    /// The unit's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Appends one batch of the unit (batches arrive in sequence order).
    pub fn write(&mut self, t: JetTables) -> Result<()> {
        if t.unit != self.id {
            return Err(Error::Internal(format!(
                "batch {} of unit {} handed to the writer of unit {}",
                t.seq, t.unit, self.id
            )));
        }
        self.jets.write(&t.jets)?;
        for (w, b) in self.points.iter_mut().zip(&t.points) {
            w.write(b)?;
        }
        self.written += t.jets.num_rows() as u64;
        self.zeroed += t.zeroed_values;
        self.rejected.extend(t.rejected);
        Ok(())
    }

    /// Finishes every shard, then gives them their final names, and returns the unit's
    /// record. Every shard is complete on disk before any of them gets its final name; if a
    /// rename fails, the ones already renamed are taken back.
    pub fn commit(self) -> Result<UnitRecord> {
        let mut finished = vec![self.jets.finish()?];
        for w in self.points {
            finished.push(w.finish()?);
        }
        let mut published: Vec<PathBuf> = Vec::new();
        let mut shards = Vec::new();
        for f in finished {
            let path = f.final_path().to_path_buf();
            match f.publish() {
                Ok(rec) => {
                    published.push(path);
                    shards.push(rec);
                }
                Err(e) => {
                    for p in &published {
                        let _ = std::fs::remove_file(p);
                    }
                    return Err(e);
                }
            }
        }
        Ok(UnitRecord {
            unit: self.id,
            file: self.span.file,
            start: self.span.start,
            end: self.span.end,
            jets_written: self.written,
            zeroed_values: self.zeroed,
            rejected: self.rejected,
            shards,
        })
    }
}
