//! Running a pipeline: plan the units, prepare the output, stream batches through the
//! stages into the sink, keep the manifest current, and report a summary.

pub mod executor;
pub mod output;
pub mod plan;
pub mod progress;

use crate::config::PipelineConfig;
use crate::error::Result;
use crate::sink::dataset::{DatasetSink, UnitSpan, points_partition};
use crate::sink::parquet::ShardOptions;
use crate::source::Hdf5Source;
use crate::stages::pointcloud::PointCloudStage;
use crate::store::manifest::{FORMAT, Manifest, SourceRecord, Status, TableEntry, Totals};
use crate::store::tables::{fingerprint, jets_schema, points_schema, table_docs};
use std::path::PathBuf;
use std::time::Instant;

/// Command-line choices that are not part of the pipeline.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replace an output written by a different pipeline.
    pub overwrite: bool,
    /// No progress output.
    pub quiet: bool,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Units kept from an earlier run of the same pipeline.
    pub units_kept: usize,
    /// Output directory.
    pub output: PathBuf,
    /// Totals, as in the manifest.
    pub totals: Totals,
    /// Wall time.
    pub seconds: f64,
    /// Worker threads used.
    pub threads: usize,
    /// Peak resident memory of the process, when the OS reports it.
    pub peak_rss_bytes: Option<u64>,
    /// Note about a replaced earlier output.
    pub note: Option<String>,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.totals;
        if let Some(n) = &self.note {
            writeln!(f, "note: {n}")?;
        }
        writeln!(f, "output:   {}", self.output.display())?;
        writeln!(
            f,
            "units:    {}/{} complete ({} kept from an earlier run)",
            t.units_complete, t.units_planned, self.units_kept
        )?;
        writeln!(
            f,
            "jets:     {} in, {} written, {} rejected, {} pixel values zeroed",
            t.jets_in, t.jets_written, t.jets_rejected, t.zeroed_values
        )?;
        writeln!(
            f,
            "time:     {:.2} s, {:.0} jets/s with {} worker thread(s)",
            self.seconds,
            t.jets_in as f64 / self.seconds.max(1e-9),
            self.threads
        )?;
        write!(f, "written:  {:.2} MB", t.bytes as f64 / 1e6)?;
        if let Some(rss) = self.peak_rss_bytes {
            write!(f, "\npeak RSS: {:.0} MB", rss as f64 / 1e6)?;
        }
        Ok(())
    }
}

/// Peak resident set size of this process (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A manifest for a run that has not completed any unit yet.
pub fn new_manifest(cfg: &PipelineConfig, source: &Hdf5Source, units_planned: usize) -> Manifest {
    let mut config = serde_json::to_value(cfg).expect("config serialises");
    if let Some(obj) = config.as_object_mut() {
        // Neither changes the bytes; leaving them out keeps a moved dataset's manifest valid.
        obj.remove("engine");
        if let Some(sink) = obj.get_mut("sink").and_then(|s| s.as_object_mut()) {
            sink.remove("path");
        }
    }
    let partitions: Vec<String> = cfg
        .stages
        .pointcloud
        .resolutions
        .iter()
        .map(|&r| {
            points_partition(r)
                .trim_start_matches("points/")
                .to_string()
        })
        .collect();
    let tables = table_docs(cfg)
        .into_iter()
        .map(|doc| {
            let parts = if doc.partitioned_by.is_some() {
                partitions.clone()
            } else {
                vec![]
            };
            (
                doc.table.clone(),
                TableEntry {
                    fingerprint: fingerprint(&doc),
                    partitions: parts,
                    schema: doc,
                },
            )
        })
        .collect();
    Manifest {
        format: FORMAT.into(),
        pipeline: cfg.name.clone(),
        config_hash: cfg.content_hash(),
        tool: format!("jetpipe {}", env!("CARGO_PKG_VERSION")),
        status: Status::Running,
        error: None,
        config,
        sources: source
            .files
            .iter()
            .map(|f| SourceRecord {
                path: f.path.display().to_string(),
                size_bytes: f.size_bytes,
                jets: f.n_jets,
                image_dtype: f.image_dtype.into(),
            })
            .collect(),
        tables,
        units: Vec::new(),
        totals: Totals {
            units_planned: units_planned as u64,
            ..Totals::default()
        },
    }
}

/// Units of an earlier run of the same pipeline that can be kept: same sources, same jet
/// range, and every shard present with the recorded size. (Checksums are not re-read here.)
fn reusable_units(
    old: &Manifest,
    new: &Manifest,
    units: &[plan::Unit],
    dir: &std::path::Path,
) -> Vec<crate::store::manifest::UnitRecord> {
    if old.sources != new.sources {
        return Vec::new();
    }
    old.units
        .iter()
        .filter(|r| {
            units
                .iter()
                .any(|u| (u.id, u.file, u.start, u.end) == (r.unit, r.file, r.start, r.end))
                && r.shards.len() == 1 + new.tables["points"].partitions.len()
                && r.shards
                    .iter()
                    .all(|s| std::fs::metadata(dir.join(&s.path)).is_ok_and(|m| m.len() == s.bytes))
        })
        .cloned()
        .collect()
}

/// Runs the pipeline to completion. On error, completed units stay listed in a manifest with
/// status `failed`; no partial shard is left behind. A rerun of the same pipeline keeps the
/// complete units and converts the others.
pub fn run(cfg: &PipelineConfig, opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let source = Hdf5Source::open(&cfg.source)?;
    let jets_per_file: Vec<u64> = source.files.iter().map(|f| f.n_jets).collect();
    let units = plan::plan_units(
        &jets_per_file,
        cfg.source.offset,
        cfg.source.limit,
        cfg.sink.shard_size,
    );
    let dir = cfg.sink.path.clone();
    let mut manifest = new_manifest(cfg, &source, units.len());
    let previous = output::prepare(&dir, &cfg.content_hash(), &manifest.config, opts.overwrite)?;
    let mut note = None;
    match previous {
        output::Previous::Nothing => {}
        output::Previous::Replaced(n) => note = Some(n),
        output::Previous::SamePipeline(old) => {
            let kept = reusable_units(&old, &manifest, &units, &dir);
            note = Some(if kept.len() == units.len() {
                format!(
                    "{} already holds this pipeline's complete output: nothing to convert",
                    dir.display()
                )
            } else {
                format!(
                    "output holds an earlier run of this pipeline ({:?}): keeping {} of {} units, converting the rest",
                    old.status,
                    kept.len(),
                    units.len()
                )
            });
            for u in kept {
                manifest.push_unit(u);
            }
        }
    }
    let units_kept = manifest.units.len();
    let done: std::collections::BTreeSet<u32> = manifest.units.iter().map(|u| u.unit).collect();
    let units: Vec<plan::Unit> = units
        .into_iter()
        .filter(|u| !done.contains(&u.id))
        .collect();
    let batches = plan::plan_batches(&units, cfg.engine.batch_size);
    manifest.write(&dir)?;
    let stage = PointCloudStage::new(
        cfg,
        source.geometry,
        source.files.iter().map(|f| f.path.clone()).collect(),
    );
    let mut sink = DatasetSink::new(
        dir.clone(),
        ShardOptions {
            row_group_size: cfg.sink.row_group_size,
            zstd_level: cfg.sink.zstd_level,
        },
        jets_schema(cfg),
        points_schema(cfg),
        cfg.stages.pointcloud.resolutions.clone(),
        units.iter().map(|u| {
            let span = UnitSpan {
                file: u.file,
                start: u.start,
                end: u.end,
            };
            (u.id, span)
        }),
    );
    let threads = cfg.worker_threads();
    let total: u64 = units.iter().map(|u| u.end - u.start).sum();
    let mut progress = progress::Progress::new(total, opts.quiet);
    let result = executor::execute(
        &source,
        &stage,
        &batches,
        threads,
        cfg.engine.queue_depth,
        |t| {
            let n = t.jets_in as u64;
            if let Some(unit) = sink.write(t)? {
                manifest.push_unit(unit);
                manifest.write(&dir)?;
            }
            progress.inc(n);
            Ok(())
        },
    );
    progress.finish();
    drop(sink); // removes the temporary files of an unfinished unit
    match result {
        Ok(()) => {
            manifest.status = Status::Complete;
            manifest.write(&dir)?;
        }
        Err(e) => {
            manifest.status = Status::Failed;
            manifest.error = Some(e.to_string());
            let _ = manifest.write(&dir);
            return Err(e);
        }
    }
    Ok(RunSummary {
        units_kept,
        output: dir,
        totals: manifest.totals,
        seconds: started.elapsed().as_secs_f64(),
        threads,
        peak_rss_bytes: peak_rss_bytes(),
        note,
    })
}
