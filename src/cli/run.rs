//! `pipeline run`: convert a pipeline's sources, with command-line overrides for quick runs.

use crate::config::load_config;
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
    /// Worker threads (overrides engine.threads; 0 = one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory (overrides sink.path).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Replace an output directory written by a different pipeline.
    #[arg(long)]
    pub overwrite: bool,
    /// No progress output (the summary is still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the pipeline and prints the summary.
pub fn run(args: RunArgs) -> Result<()> {
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
    if let Some(p) = args.output {
        cfg.sink.path = p;
    }
    garde::Validate::validate(&cfg)
        .map_err(|e| Error::Config(format!("invalid command-line override: {e}")))?;
    eprintln!("pipeline `{}` ({})", cfg.name, args.config.display());
    let summary = run_pipeline(
        &cfg,
        &RunOptions {
            overwrite: args.overwrite,
            quiet: args.quiet,
        },
    )?;
    println!("{summary}");
    Ok(())
}
