//! Running a pipeline: plan the units, prepare the output, stream batches through the
//! stages into the sink, keep the manifest current, and report a summary.

pub mod executor;
pub mod lock;
pub mod output;
pub mod plan;
pub mod progress;
pub mod verify;

use crate::config::PipelineConfig;
use crate::error::Result;
use crate::sink::dataset::{DatasetSink, UnitSpan, points_partition};
use crate::sink::parquet::ShardOptions;
use crate::source::Hdf5Source;
use crate::stages::pointcloud::PointCloudStage;
use crate::store::manifest::{
    FILE_NAME, FORMAT, Manifest, SourceRecord, Status, TableEntry, Totals, part_manifest,
};
use crate::store::tables::{fingerprint, jets_schema, points_schema, table_docs};
use std::path::PathBuf;
use std::time::Instant;

/// Command-line choices that are not part of the pipeline.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Convert only units with `unit % n == i` (`--part i/n`).
    pub part: Option<(u32, u32)>,
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
    /// Unit writer threads used.
    pub writers: usize,
    /// Source jets converted by this run (not counting units kept from an earlier run).
    pub jets_converted: u64,
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
            "time:     {:.2} s, {:.0} jets/s with {} worker and {} writer thread(s)",
            self.seconds,
            t.jets_in as f64 / self.seconds.max(1e-9),
            self.threads,
            self.writers
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
                mtime_ns: f.mtime_ns,
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
        stats: Default::default(),
    }
}

/// Units of an earlier run of the same pipeline that can be kept: same jet range and every
/// shard intact (size and SHA-256 as recorded). Returns them and the number found damaged.
fn reusable_units(
    olds: &[Manifest],
    units: &[plan::Unit],
    n_tables: usize,
    dir: &std::path::Path,
) -> (Vec<crate::store::manifest::UnitRecord>, usize) {
    let mut damaged = 0;
    let mut seen = std::collections::BTreeSet::new();
    let kept = olds
        .iter()
        .flat_map(|m| &m.units)
        .filter(|r| seen.insert(r.unit))
        .filter(|r| {
            units
                .iter()
                .any(|u| (u.id, u.file, u.start, u.end) == (r.unit, r.file, r.start, r.end))
        })
        .filter(|r| {
            let ok = r.shards.len() == n_tables
                && r.shards
                    .iter()
                    .all(|s| verify::shard_intact(dir, s).is_ok());
            damaged += usize::from(!ok);
            ok
        })
        .cloned()
        .collect();
    (kept, damaged)
}

/// When the `--part` manifests in `dir` together cover every unit of the run, writes the
/// merged `manifest.json` (identical to the manifest of a single run). Returns whether it did.
pub fn merge_parts(
    cfg: &PipelineConfig,
    source: &Hdf5Source,
    units_planned: usize,
    dir: &std::path::Path,
) -> Result<bool> {
    let mut merged = new_manifest(cfg, source, units_planned);
    let mut units = std::collections::BTreeMap::new();
    for part in Manifest::read_parts(dir)? {
        if part.config_hash == merged.config_hash && part.status == Status::Complete {
            for u in part.units {
                units.entry(u.unit).or_insert(u);
            }
        }
    }
    if units.len() != units_planned || units.keys().copied().ne(0..units_planned as u32) {
        return Ok(false);
    }
    for u in units.into_values() {
        merged.push_unit(u);
    }
    merged.status = Status::Complete;
    merged.write(dir)?;
    Ok(true)
}

/// Refuses to resume over sources that differ from those of the earlier run.
fn check_sources(old: &Manifest, new: &Manifest) -> Result<()> {
    for (a, b) in old.sources.iter().zip(&new.sources) {
        if a != b {
            return Err(crate::error::Error::Source {
                file: b.path.clone().into(),
                msg: format!(
                    "changed since the earlier run of this pipeline (size {} → {}, mtime {} → {}, jets {} → {}); refusing to resume over it: pass --overwrite to convert from scratch",
                    a.size_bytes, b.size_bytes, a.mtime_ns, b.mtime_ns, a.jets, b.jets
                ),
            });
        }
    }
    if old.sources.len() != new.sources.len() {
        return Err(crate::error::Error::Config(format!(
            "the input files differ from the earlier run's ({} → {} files); refusing to resume: pass --overwrite",
            old.sources.len(),
            new.sources.len()
        )));
    }
    Ok(())
}

/// Runs the pipeline to completion. On error, completed units stay listed in a manifest with
/// status `failed`; no partial shard is left behind. A rerun of the same pipeline keeps the
/// complete units and converts the others.
pub fn run(cfg: &PipelineConfig, opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let source = Hdf5Source::open(&cfg.source)?;
    let jets_per_file: Vec<u64> = source.files.iter().map(|f| f.n_jets).collect();
    let all_units = plan::plan_units(
        &jets_per_file,
        cfg.source.offset,
        cfg.source.limit,
        cfg.sink.shard_size,
    );
    let units: Vec<plan::Unit> = (all_units.iter())
        .filter(|u| opts.part.is_none_or(|(i, n)| u.id % n == i))
        .copied()
        .collect();
    let (manifest_rel, lock_name) = match opts.part {
        None => (FILE_NAME.to_string(), ".jetpipe.lock".to_string()),
        Some((i, n)) => (
            part_manifest(i, n),
            format!(".jetpipe.part-{i}-of-{n}.lock"),
        ),
    };
    let dir = cfg.sink.path.clone();
    let mut manifest = new_manifest(cfg, &source, units.len());
    std::fs::create_dir_all(&dir).map_err(|e| crate::error::Error::io(&dir, e))?;
    let (_lock, lock_note) = lock::RunLock::acquire(&dir, &lock_name)?;
    let previous = output::prepare(
        &dir,
        &cfg.content_hash(),
        &manifest.config,
        opts.overwrite,
        opts.part,
    )?;
    let mut notes: Vec<String> = lock_note.into_iter().collect();
    match previous {
        output::Previous::Nothing => {}
        output::Previous::Replaced(n) => notes.push(n),
        output::Previous::SamePipeline(olds) => {
            for old in &olds {
                check_sources(old, &manifest)?;
            }
            let n_tables = 1 + cfg.stages.pointcloud.resolutions.len();
            let (kept, damaged) = reusable_units(&olds, &units, n_tables, &dir);
            if damaged > 0 {
                notes.push(format!("{damaged} unit(s) of the earlier run failed verification (missing or altered shards) and are converted again"));
            }
            notes.push(if kept.len() == units.len() {
                format!(
                    "{} already holds this pipeline's complete output: nothing to convert",
                    dir.display()
                )
            } else {
                format!(
                    "output holds earlier runs of this pipeline: keeping {} of {} units, converting the rest",
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
    manifest.write_at(&dir, &manifest_rel)?;
    let stage = PointCloudStage::new(
        cfg,
        source.geometry,
        source.files.iter().map(|f| f.path.clone()).collect(),
    );
    let sink = DatasetSink::new(
        dir.clone(),
        ShardOptions {
            row_group_size: cfg.sink.row_group_size,
            zstd_level: cfg.sink.zstd_level,
            plain_lists: cfg.source.channels.clone(),
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
    let (threads, writers) = (cfg.worker_threads(), cfg.writer_threads());
    let total: u64 = units.iter().map(|u| u.end - u.start).sum();
    let mut progress = progress::Progress::new(total, opts.quiet);
    let settings = executor::Settings {
        threads,
        writers,
        queue_depth: cfg.engine.queue_depth,
        direct: cfg.engine.inflate == crate::config::Inflate::Workers,
    };
    let result = executor::execute(&source, &stage, &batches, settings, &sink, |ev| {
        match ev {
            executor::Event::Batch(n) => progress.inc(n),
            executor::Event::Unit(unit) => {
                manifest.push_unit(unit);
                manifest.write_at(&dir, &manifest_rel)?;
            }
        }
        Ok(())
    });
    progress.finish();
    match result {
        Ok(()) => {
            manifest.status = Status::Complete;
            manifest.write_at(&dir, &manifest_rel)?;
            if opts.part.is_some() && merge_parts(cfg, &source, all_units.len(), &dir)? {
                notes.push("every part is complete: wrote the merged manifest.json".into());
            }
        }
        Err(e) => {
            manifest.status = Status::Failed;
            manifest.error = Some(e.to_string());
            let _ = manifest.write_at(&dir, &manifest_rel);
            return Err(e);
        }
    }
    Ok(RunSummary {
        units_kept,
        output: dir,
        totals: manifest.totals,
        seconds: started.elapsed().as_secs_f64(),
        threads,
        writers,
        jets_converted: total,
        peak_rss_bytes: peak_rss_bytes(),
        note: (!notes.is_empty()).then(|| notes.join("\n      ")),
    })
}
