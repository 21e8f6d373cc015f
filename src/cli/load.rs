//! `pipeline load LOADER_YAML`: run the loader over whole epochs with a consumer that does
//! nothing, and report what a trainer would get: jets and batches per epoch, throughput,
//! label balance, the resolved transforms (with the cached statistics) and peak memory.

use crate::error::Result;
use crate::loader::{Loader, LoaderState, spec::load_loader};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `pipeline load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Loader YAML (`loader:` section; see `pipeline schema`).
    pub config: PathBuf,
    /// Epochs to run.
    #[arg(long, default_value_t = 1)]
    pub epochs: u64,
    /// Stop after this many batches and print the loader state as JSON (to test resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Resume from a loader state JSON file printed by `--stop-after`.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Write every served batch as `.npy` files (`DIR/epoch0/000000/points.npy`, `mask.npy`,
    /// …; numbered within the epoch, also after `--resume`) to
    /// see exactly what a model is fed (`numpy.load` reads them).
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs the command.
pub fn load(args: LoadArgs) -> Result<()> {
    let spec = load_loader(&args.config)?;
    let loader = Loader::open(&spec)?;
    println!(
        "dataset:  {} (res={}, {} jets selected, rank {}/{})",
        spec.dataset.display(),
        spec.resolution,
        loader.jets(),
        spec.rank,
        spec.world_size
    );
    println!(
        "batches:  {} per epoch of up to {} jets; neighbours k={}",
        loader.batches_per_epoch(),
        spec.batch_size,
        loader.knn_k()
    );
    for (f, ops) in spec.features.iter().zip(loader.ops()) {
        println!("feature:  {:<10} {ops:?}", f.column());
    }
    let resume: Option<LoaderState> = match &args.resume {
        Some(p) => Some(
            serde_json::from_str(&std::fs::read_to_string(p).map_err(|e| crate::Error::io(p, e))?)
                .map_err(|e| {
                    crate::Error::Loader(format!("{}: not a loader state: {e}", p.display()))
                })?,
        ),
        None => None,
    };
    let first = resume.as_ref().map_or(0, |s| s.epoch);
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(loader.batches_per_epoch() as u64 * args.epochs)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} batches, {per_sec}, eta {eta}")
            .expect("template"),
    );
    let start = Instant::now();
    let (mut jets, mut served) = (0usize, 0usize);
    let mut labels = std::collections::BTreeMap::<i8, usize>::new();
    for e in first..first + args.epochs {
        let mut it = match resume.as_ref().filter(|s| s.epoch == e) {
            Some(s) => loader.resume(s)?,
            None => loader.epoch(e)?,
        };
        while let Some(b) = it.next() {
            let b = b?;
            if let Some(dir) = &args.dump {
                let index = it.state().batches - 1; // within the epoch, also after --resume
                let at = dir.join(format!("epoch{e}")).join(format!("{index:06}"));
                crate::loader::npy::write_batch(&at, &b)?;
            }
            jets += b.size;
            served += 1;
            for &l in &b.labels {
                *labels.entry(l).or_default() += 1;
            }
            loader.recycle(b);
            bar.inc(1);
            if args.stop_after == Some(served) {
                bar.finish_and_clear();
                println!(
                    "state:    {}",
                    serde_json::to_string(&it.state()).expect("json")
                );
                return Ok(());
            }
        }
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "served:   {jets} jets in {served} batches, {secs:.2} s, {:.0} jets/s",
        jets as f64 / secs
    );
    println!("labels:   {labels:?}");
    if let Some(rss) = crate::engine::peak_rss_bytes() {
        println!("peak RSS: {:.0} MB", rss as f64 / 1e6);
    }
    Ok(())
}
