//! `pipeline run`: convert a pipeline's sources, with command-line overrides for quick runs.

use crate::config::{PipelineConfig, load_config};
use crate::engine::{RunOptions, run as run_pipeline};
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Arguments of `pipeline run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Pipeline YAML file.
    pub config: PathBuf,
    /// Convert at most this many jets (overrides source.limit).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Skip this many jets first (overrides source.offset).
    #[arg(long)]
    pub offset: Option<u64>,
    /// Worker threads (overrides engine.threads; 0 = the cores left by the writers).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Writer threads (overrides engine.writers; 0 = half the cores).
    #[arg(long)]
    pub writers: Option<usize>,
    /// Print each stage's CPU time per jet (all threads) after the summary.
    #[arg(long)]
    pub profile: bool,
    /// Output directory (overrides sink.path).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Replace an output directory written by a different pipeline.
    #[arg(long)]
    pub overwrite: bool,
    /// Convert only the units with `unit % n == i` (e.g. `--part 3/10` in a SLURM array job).
    /// Parts may share one output directory; the part that completes the set writes the
    /// merged manifest.json.
    #[arg(long, value_parser = parse_part)]
    pub part: Option<(u32, u32)>,
    /// No progress output (the summary is still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the pipeline and prints the summary.
pub fn run(args: RunArgs) -> Result<()> {
    let cfg = configure(&args)?;
    if args.profile {
        crate::profile::enable();
    }
    eprintln!("pipeline `{}` ({})", cfg.name, args.config.display());
    let summary = run_pipeline(
        &cfg,
        &RunOptions {
            part: args.part,
            overwrite: args.overwrite,
            quiet: args.quiet,
        },
    )?;
    println!("{summary}");
    if args.profile {
        println!("\n{}", crate::profile::report(summary.jets_converted));
    }
    Ok(())
}

/// The pipeline YAML with the command-line overrides applied and validated (also used by
/// the Python package's `jetpipe.run`).
pub fn configure(args: &RunArgs) -> Result<PipelineConfig> {
    let mut cfg = load_config(&args.config)?.config;
    if let Some(l) = args.limit {
        cfg.source.limit = Some(l);
    }
    if let Some(o) = args.offset {
        cfg.source.offset = o;
    }
    if let Some(t) = args.threads {
        cfg.engine.threads = t;
    }
    if let Some(w) = args.writers {
        cfg.engine.writers = w;
    }
    if let Some(p) = &args.output {
        cfg.sink.path = p.clone();
    }
    garde::Validate::validate(&cfg)
        .map_err(|e| Error::Config(format!("invalid command-line override: {e}")))?;
    Ok(cfg)
}

/// Parses `i/n` with `0 <= i < n`.
fn parse_part(s: &str) -> std::result::Result<(u32, u32), String> {
    let (i, n) = s.split_once('/').ok_or("expected i/n, e.g. 0/4")?;
    let (i, n): (u32, u32) = (
        i.trim()
            .parse()
            .map_err(|_| format!("`{i}` is not a part number"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a part count"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("part {i}/{n}: need 0 <= i < n"));
    }
    Ok((i, n))
}
