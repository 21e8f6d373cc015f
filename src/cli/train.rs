//! `pipeline train T.yaml [--resume]`, `pipeline eval RUN` and `pipeline compare RUN…`: train
//! a model from a training YAML into its run directory, score a dataset with a run's best
//! model, and compare the scores of several runs.

use crate::error::{Error, Result};
use crate::loader::Subset;
use crate::train::run::TrainOptions;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `pipeline train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training YAML (`train:` section; see schemas/train.schema.json).
    pub config: PathBuf,
    /// Continue the run in `run_dir` from its `last` checkpoint (mid-epoch, same batches).
    #[arg(long)]
    pub resume: bool,
    /// No progress bar or per-epoch lines.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Arguments of `pipeline eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run directory written by `pipeline train`.
    pub run: PathBuf,
    /// Dataset to score (default: the run's).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Jets to score: test, val, train (the run's split) or all.
    #[arg(long, default_value = "test")]
    pub subset: String,
    /// Write `predictions_TAG.parquet` and `roc_eval_TAG.png` instead of `predictions.parquet`
    /// and `roc_eval.png` (e.g. one tag per dataset scored).
    #[arg(long)]
    pub tag: Option<String>,
}

/// Arguments of `pipeline compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run directories with `predictions.parquet` from `pipeline eval` on the same jets; the
    /// first is the reference (e.g. the features baseline).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// The ROC figure of every run.
    #[arg(long, default_value = "roc_compare.png")]
    pub out: PathBuf,
    /// Bootstrap resamples for the standard errors.
    #[arg(long, default_value_t = 500)]
    pub bootstrap: usize,
    /// Compare the runs' `predictions_TAG.parquet` (from `pipeline eval --tag TAG`).
    #[arg(long)]
    pub tag: Option<String>,
}

/// Runs `pipeline compare`.
pub fn compare(args: CompareArgs) -> Result<()> {
    crate::train::compare::run_compare(
        &args.runs,
        args.tag.as_deref(),
        &args.out,
        args.bootstrap.max(2),
    )
    .map(|_| ())
}

/// Runs `pipeline train`.
pub fn train(args: TrainArgs) -> Result<()> {
    // Before any thread starts: freed step memory stays mapped (train::malloc).
    crate::train::malloc::keep_freed_memory();
    let text = crate::config::read_yaml(&args.config, "training")?;
    let spec = crate::train::spec::parse_train(&text, &args.config.display().to_string())?;
    let opts = TrainOptions {
        resume: args.resume,
        quiet: args.quiet,
        stop_after_steps: None,
    };
    let s = crate::train::train(&spec, &text, &opts)?;
    let best = match (s.state.best_auc, s.state.best_loss) {
        (Some(a), _) => format!("best val AUC {a:.4}"),
        (None, Some(l)) => format!("best val loss {l:.4}"),
        (None, None) => "no best epoch".into(),
    };
    println!(
        "run:      {} ({} epochs, {best})",
        spec.run_dir.display(),
        s.state.history.len(),
    );
    Ok(())
}

/// Runs `pipeline eval`.
pub fn eval(args: EvalArgs) -> Result<()> {
    let subset = match args.subset.as_str() {
        "test" => Some(Subset::Test),
        "val" => Some(Subset::Val),
        "train" => Some(Subset::Train),
        "all" => None,
        s => {
            return Err(Error::Config(format!(
                "--subset {s}: use test, val, train or all"
            )));
        }
    };
    let s = crate::train::eval::eval(
        &args.run,
        args.dataset.as_deref(),
        subset,
        args.tag.as_deref(),
    )?;
    println!(
        "scored:   {} jets ({}), AUC {}, accuracy {:.4}",
        s.jets,
        args.subset,
        s.auc.map_or("-".into(), |a| format!("{a:.4}")),
        s.accuracy
    );
    println!("written:  {}", s.path.display());
    Ok(())
}
