//! `manifest.json`: what a dataset is (pipeline, config hash, sources, table contracts) and
//! what it holds (completed units with their shards, row counts and checksums). Written
//! atomically (temp file + fsync + rename) after every completed unit. Contains no timestamps,
//! so an identical run writes an identical manifest.

use crate::batch::Rejection;
use crate::error::{Error, Result};
use crate::store::tables::TableDoc;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// A completed shard, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Path relative to the dataset root, e.g. `points/res=256/part-00000.parquet`.
    pub path: String,
    /// Rows (jets) in the shard.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// `sha256:<hex>` of the file.
    pub sha256: String,
}

/// Manifest format identifier.
pub const FORMAT: &str = "jetpipe.dataset/1";
/// File name inside the dataset directory.
pub const FILE_NAME: &str = "manifest.json";
/// Directory of the manifests of `--part i/n` runs.
pub const PARTS_DIR: &str = "parts";

/// Manifest path of part `i` of `n`, relative to the dataset directory.
pub fn part_manifest(i: u32, n: u32) -> String {
    format!("{PARTS_DIR}/part-{i:05}-of-{n:05}.json")
}

/// State of the run that wrote the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A run is writing (or was killed while writing): only listed units are complete.
    Running,
    /// Every unit is complete.
    Complete,
    /// The run stopped with an error: only listed units are complete.
    Failed,
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Path as matched from the config.
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u64,
    /// Jets in the file.
    pub jets: u64,
    /// Image dataset element type.
    pub image_dtype: String,
}

/// A table contract and its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// `sha256:` of names, types and nullability.
    pub fingerprint: String,
    /// Partition directories (e.g. `res=256`), empty for unpartitioned tables.
    pub partitions: Vec<String>,
    /// The contract.
    pub schema: TableDoc,
}

/// One completed work unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// Unit number (= shard number `part-NNNNN`).
    pub unit: u32,
    /// Source file (index into `sources`).
    pub file: usize,
    /// First jet index in the file.
    pub start: u64,
    /// One past the last jet index.
    pub end: u64,
    /// Jets written (end − start − rejected).
    pub jets_written: u64,
    /// Pixel values set to zero by `on_invalid: zero`.
    pub zeroed_values: u64,
    /// Jets left out, with reasons.
    pub rejected: Vec<Rejection>,
    /// The unit's shards, one per table (and resolution).
    pub shards: Vec<ShardRecord>,
}

/// Totals over completed units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Units planned for the run.
    pub units_planned: u64,
    /// Units complete.
    pub units_complete: u64,
    /// Jets read in complete units.
    pub jets_in: u64,
    /// Jets written.
    pub jets_written: u64,
    /// Jets rejected by `on_invalid: skip_jet`.
    pub jets_rejected: u64,
    /// Pixel values zeroed by `on_invalid: zero`.
    pub zeroed_values: u64,
    /// Bytes of all shards.
    pub bytes: u64,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Hash of the resolved config (see `PipelineConfig::content_hash`).
    pub config_hash: String,
    /// `jetpipe <version>`.
    pub tool: String,
    /// Run state.
    pub status: Status,
    /// The error that stopped a failed run.
    pub error: Option<String>,
    /// The resolved config (engine settings and output path left out).
    pub config: serde_json::Value,
    /// Input files.
    pub sources: Vec<SourceRecord>,
    /// Table contracts by name.
    pub tables: std::collections::BTreeMap<String, TableEntry>,
    /// Completed units, in order.
    pub units: Vec<UnitRecord>,
    /// Totals over `units`.
    pub totals: Totals,
    /// Feature statistics cached by the loader (`standardise`), by key (see
    /// `loader::preprocess::stats_key`). Absent until a loader computes some.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stats: std::collections::BTreeMap<String, FeatureStats>,
}

/// Median and 16th/84th percentiles of one per-point feature over a set of jets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    /// Median.
    pub median: f32,
    /// 16th percentile.
    pub p16: f32,
    /// 84th percentile.
    pub p84: f32,
    /// Points the statistics were computed over.
    pub points: u64,
    /// Jets the statistics were computed over.
    pub jets: u64,
}

impl Manifest {
    /// Adds a completed unit and updates the totals.
    pub fn push_unit(&mut self, unit: UnitRecord) {
        let t = &mut self.totals;
        t.units_complete += 1;
        t.jets_in += unit.end - unit.start;
        t.jets_written += unit.jets_written;
        t.jets_rejected += unit.rejected.len() as u64;
        t.zeroed_values += unit.zeroed_values;
        t.bytes += unit.shards.iter().map(|s| s.bytes).sum::<u64>();
        self.units.push(unit);
        self.units.sort_by_key(|u| u.unit);
    }

    /// Writes `dir/manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.write_at(dir, FILE_NAME)
    }

    /// Writes `dir/relative` atomically (temp file unique to this process, fsync, rename).
    pub fn write_at(&self, dir: &Path, relative: &str) -> Result<()> {
        let path = dir.join(relative);
        let parent = path.parent().expect("inside dir");
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let name = path.file_name().expect("file name").to_string_lossy();
        let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut json = serde_json::to_vec_pretty(self).expect("manifest serialises");
        json.push(b'\n');
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&json).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Reads `dir/manifest.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        Self::read_at(dir, FILE_NAME)
    }

    /// The manifests of `--part` runs in `dir/parts/`, in name order.
    pub fn read_parts(dir: &Path) -> Result<Vec<Self>> {
        let mut names: Vec<String> = match std::fs::read_dir(dir.join(PARTS_DIR)) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("part-") && n.ends_with(".json"))
                .collect(),
            Err(_) => return Ok(Vec::new()),
        };
        names.sort();
        let mut out = Vec::new();
        for n in names {
            if let Some(m) = Self::read_at(dir, &format!("{PARTS_DIR}/{n}"))? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Reads `dir/relative`; `Ok(None)` when there is none.
    pub fn read_at(dir: &Path, relative: &str) -> Result<Option<Self>> {
        let path = dir.join(relative);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Output {
                path,
                msg: format!("not a valid jetpipe manifest: {e}"),
            })
    }
}
