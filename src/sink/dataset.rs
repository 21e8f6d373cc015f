//! The dataset sink: routes each converted batch to its unit's shards (`jets/` and one
//! `points/res=R/` per resolution) and commits the unit after its last batch.

use super::parquet::{ShardOptions, ShardWriter};
use crate::batch::{JetTables, Rejection};
use crate::error::Result;
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

struct OpenUnit {
    id: u32,
    jets: ShardWriter,
    points: Vec<ShardWriter>,
    written: u64,
    zeroed: u64,
    rejected: Vec<Rejection>,
}

/// Writes every unit of a run.
pub struct DatasetSink {
    root: PathBuf,
    opts: ShardOptions,
    jets_schema: SchemaRef,
    points_schema: SchemaRef,
    resolutions: Vec<u32>,
    spans: std::collections::HashMap<u32, UnitSpan>,
    open: Option<OpenUnit>,
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
            open: None,
        }
    }

    fn open_unit(&self, id: u32) -> Result<OpenUnit> {
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
        Ok(OpenUnit {
            id,
            jets,
            points,
            written: 0,
            zeroed: 0,
            rejected: Vec::new(),
        })
    }

    /// Writes one batch (batches arrive in sequence order). Returns the unit's record when
    /// this batch completed it.
    pub fn write(&mut self, t: JetTables) -> Result<Option<UnitRecord>> {
        if self.open.as_ref().is_none_or(|u| u.id != t.unit) {
            // A different unit can only start after the previous one committed.
            debug_assert!(self.open.is_none());
            self.open = Some(self.open_unit(t.unit)?);
        }
        let unit = self.open.as_mut().expect("unit open");
        unit.jets.write(&t.jets)?;
        for (w, b) in unit.points.iter_mut().zip(&t.points) {
            w.write(b)?;
        }
        unit.written += t.jets.num_rows() as u64;
        unit.zeroed += t.zeroed_values;
        unit.rejected.extend(t.rejected);
        if !t.last_in_unit {
            return Ok(None);
        }
        let unit = self.open.take().expect("unit open");
        // Every shard of the unit is complete on disk before any of them gets its final name;
        // if a rename fails, the ones already renamed are taken back.
        let mut finished = vec![unit.jets.finish()?];
        for w in unit.points {
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
        let span = self.spans[&unit.id];
        Ok(Some(UnitRecord {
            unit: unit.id,
            file: span.file,
            start: span.start,
            end: span.end,
            jets_written: unit.written,
            zeroed_values: unit.zeroed,
            rejected: unit.rejected,
            shards,
        }))
    }
}
