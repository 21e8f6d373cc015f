//! Checking a dataset against its manifest and its sources: every shard's size, SHA-256, row
//! count and schema fingerprint; every unit's jet ids (each jet of the source exactly once,
//! in order, except the rejected ones, which the manifest lists with reasons); and the
//! source files' size and modification time.

use crate::error::{Error, Result};
use crate::store::manifest::ShardRecord;
use crate::store::manifest::{Manifest, Status, UnitRecord};
use crate::store::tables::{fingerprint, table_doc};
use arrow::array::AsArray;
use arrow::datatypes::UInt64Type;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Shards read.
    pub shards: usize,
    /// Jets whose ids were checked (jets table).
    pub jets: u64,
    /// Every problem, one line each.
    pub problems: Vec<String>,
}

/// Size and SHA-256 of a shard against its record.
pub fn shard_intact(dir: &Path, rec: &ShardRecord) -> std::result::Result<(), String> {
    let path = dir.join(&rec.path);
    let mut f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", rec.path))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|e| format!("{}: {e}", rec.path))?;
    if n != rec.bytes {
        return Err(format!(
            "{}: {n} bytes, manifest says {}",
            rec.path, rec.bytes
        ));
    }
    let sum = format!("sha256:{:x}", h.finalize());
    if sum != rec.sha256 {
        return Err(format!(
            "{}: checksum {sum} differs from the manifest's {}",
            rec.path, rec.sha256
        ));
    }
    Ok(())
}

/// Row count, schema fingerprint and jet ids of one shard.
fn read_shard(
    dir: &Path,
    rec: &ShardRecord,
) -> std::result::Result<(u64, String, Vec<u64>), String> {
    let path = dir.join(&rec.path);
    let e = |x: &dyn std::fmt::Display| format!("{}: {x}", rec.path);
    let file = std::fs::File::open(&path).map_err(|x| e(&x))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|x| e(&x))?;
    let rows = b.metadata().file_metadata().num_rows() as u64;
    let table = if rec.path.starts_with("jets/") {
        "jets"
    } else {
        "points"
    };
    let fp = fingerprint(&table_doc(table, "", None, b.schema()));
    let idx = b.schema().index_of("jet_id").map_err(|x| e(&x))?;
    let mask = ProjectionMask::roots(b.parquet_schema(), [idx]);
    let mut ids = Vec::with_capacity(rows as usize);
    for batch in b.with_projection(mask).build().map_err(|x| e(&x))? {
        let batch = batch.map_err(|x| e(&x))?;
        ids.extend_from_slice(batch.column(0).as_primitive::<UInt64Type>().values());
    }
    Ok((rows, fp, ids))
}

/// Jet ids a unit must hold, in order.
pub fn expected_ids(u: &UnitRecord) -> Vec<u64> {
    let rejected: std::collections::HashSet<u64> = u.rejected.iter().map(|r| r.index).collect();
    (u.start..u.end)
        .filter(|i| !rejected.contains(i))
        .map(|i| ((u.file as u64) << 32) | i)
        .collect()
}

/// Checks everything the manifest of `dir` promises.
pub fn verify(dir: &Path) -> Result<Report> {
    let m = Manifest::read(dir)?.ok_or_else(|| Error::Output {
        path: dir.into(),
        msg: "no manifest.json: not a jetpipe dataset".into(),
    })?;
    let mut r = Report::default();
    if m.status != Status::Complete {
        r.problems.push(format!(
            "manifest status is {:?}, not complete{}",
            m.status,
            m.error.as_ref().map_or(String::new(), |e| format!(": {e}"))
        ));
    }
    let ids: Vec<u32> = m.units.iter().map(|u| u.unit).collect();
    let want: Vec<u32> = (0..m.totals.units_planned as u32).collect();
    if ids != want {
        let missing: Vec<u32> = want.iter().filter(|u| !ids.contains(u)).copied().collect();
        r.problems.push(format!(
            "units listed {ids:?} are not exactly 0..{} (missing {missing:?})",
            m.totals.units_planned
        ));
    }
    // The units must tile the selected window of the sources exactly: re-plan it from the
    // recorded config and source sizes.
    let cfg = &m.config["source"];
    let shard = m.config["sink"]["shard_size"].as_u64().unwrap_or(0);
    let (offset, limit) = (cfg["offset"].as_u64().unwrap_or(0), cfg["limit"].as_u64());
    let per_file: Vec<u64> = m.sources.iter().map(|s| s.jets).collect();
    let plan = super::plan::plan_units(&per_file, offset, limit, shard.max(1));
    for (p, u) in plan.iter().zip(&m.units) {
        if (p.id, p.file, p.start, p.end) != (u.unit, u.file, u.start, u.end) {
            r.problems.push(format!(
                "unit {} covers file {} jets {}..{}, but the sources and config give file {} jets {}..{}",
                u.unit, u.file, u.start, u.end, p.file, p.start, p.end
            ));
        }
    }
    if plan.len() as u64 != m.totals.units_planned {
        r.problems.push(format!(
            "the sources and config give {} units, the manifest plans {}",
            plan.len(),
            m.totals.units_planned
        ));
    }
    let n_tables = 1 + m.tables.get("points").map_or(0, |t| t.partitions.len());
    for u in &m.units {
        if u.shards.len() != n_tables {
            r.problems.push(format!(
                "unit {}: {} shards listed, expected {n_tables}",
                u.unit,
                u.shards.len()
            ));
        }
        let expected = expected_ids(u);
        if expected.len() as u64 != u.jets_written {
            r.problems.push(format!(
                "unit {}: jets_written {} but range and rejections give {}",
                u.unit,
                u.jets_written,
                expected.len()
            ));
        }
        for s in &u.shards {
            r.shards += 1;
            if let Err(p) = shard_intact(dir, s) {
                r.problems.push(format!("unit {}: {p}", u.unit));
                continue;
            }
            match read_shard(dir, s) {
                Err(p) => r.problems.push(format!("unit {}: {p}", u.unit)),
                Ok((rows, fp, got)) => {
                    let table = if s.path.starts_with("jets/") {
                        "jets"
                    } else {
                        "points"
                    };
                    if rows != s.rows {
                        r.problems.push(format!(
                            "unit {}: {}: {rows} rows, manifest says {}",
                            u.unit, s.path, s.rows
                        ));
                    }
                    if m.tables.get(table).is_none_or(|t| t.fingerprint != fp) {
                        r.problems.push(format!(
                            "unit {}: {}: schema fingerprint {fp} differs from the manifest's",
                            u.unit, s.path
                        ));
                    }
                    if got != expected {
                        let dup =
                            got.len() - got.iter().collect::<std::collections::HashSet<_>>().len();
                        let lost = expected.iter().filter(|i| !got.contains(i)).count();
                        r.problems.push(format!("unit {}: {}: jet ids differ from the source range {}..{} of file {} ({} duplicated, {} missing)", u.unit, s.path, u.start, u.end, u.file, dup, lost));
                    }
                    if table == "jets" {
                        r.jets += got.len() as u64;
                    }
                }
            }
        }
    }
    for s in &m.sources {
        match std::fs::metadata(&s.path) {
            Err(e) => r.problems.push(format!("source {}: {e}", s.path)),
            Ok(meta) => {
                let mtime = crate::source::mtime_ns(&meta);
                if meta.len() != s.size_bytes || mtime != s.mtime_ns {
                    r.problems.push(format!(
                        "source {} changed since conversion (size {} → {}, mtime {} → {})",
                        s.path,
                        s.size_bytes,
                        meta.len(),
                        s.mtime_ns,
                        mtime
                    ));
                }
            }
        }
    }
    Ok(r)
}
