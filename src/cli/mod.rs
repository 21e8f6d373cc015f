//! Command-line interface: argument definitions and dispatch, one file per command.

#[cfg(feature = "train")]
mod device_check;
mod explain;
#[cfg(feature = "train")]
mod generate;
mod inspect;
mod load;
mod preview;
pub mod run;
mod schema;
mod sql;
#[cfg(feature = "train")]
mod train;
mod validate;
mod verify;

pub use schema::schema_files;

use crate::config::{LoadedConfig, load_config};
use crate::error::Result;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

/// jetpipe: HEP jet-image HDF5 → Parquet point clouds, streaming.
#[derive(Debug, Parser)]
#[command(name = "pipeline", version, about)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline YAML: convert its sources into a Parquet dataset.
    Run(run::RunArgs),
    /// Check a pipeline YAML and its input files without converting anything.
    Validate {
        /// Pipeline YAML file.
        config: PathBuf,
    },
    /// Print the stage plan and the Arrow schema of every output table.
    Explain {
        /// Pipeline YAML file.
        config: PathBuf,
    },
    /// Summarise an HDF5 source file or an output dataset directory.
    Inspect(inspect::InspectArgs),
    /// Check a dataset: every shard's checksum, rows, schema and jet ids against the manifest
    /// and the sources.
    Verify {
        /// Dataset directory written by `pipeline run`.
        dir: PathBuf,
    },
    /// Query datasets with SQL (DataFusion): tables `jets` and `points` (partition column `res`).
    Sql(sql::SqlArgs),
    /// Run the loader (a loader YAML) over whole epochs and report throughput and batches.
    Load(load::LoadArgs),
    /// Train a registered model (see `train::models`) from a training YAML.
    #[cfg(feature = "train")]
    Train(train::TrainArgs),
    /// Score a dataset with a training run's best model into RUN/predictions.parquet (or
    /// RUN/predictions_TAG.parquet).
    #[cfg(feature = "train")]
    Eval(train::EvalArgs),
    /// Compare runs scored on the same jets: AUCs with bootstrap errors, paired differences to
    /// the first run, and every ROC curve in one PNG.
    #[cfg(feature = "train")]
    Compare(train::CompareArgs),
    /// Generate jets with trained generative models (VAE, DDPM) into datasets, with metrics
    /// against real test jets and PNGs.
    #[cfg(feature = "train")]
    Generate(generate::SampleArgs),
    /// Reconstruct real test jets with trained generative models (VAE; DDPM from t₀), with
    /// metrics and side-by-side PNGs.
    #[cfg(feature = "train")]
    Reconstruct(generate::ReconstructArgs),
    /// Train every model family a few steps on the CPU and on a GPU (`--device cuda|wgpu`)
    /// from the same weights and batch, and check that the losses agree.
    #[cfg(feature = "train")]
    DeviceCheck(device_check::DeviceCheckArgs),
    /// Draw the first jets of a dataset (channels and kept points, side by side) into a PNG.
    Preview(preview::PreviewArgs),
    /// Print the JSON Schema of the pipeline YAML and the table contracts, or write them.
    Schema {
        /// Write `pipeline.schema.json`, `jets.schema.json`, `points.schema.json` here.
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

fn load(path: &Path) -> Result<LoadedConfig> {
    load_config(path)
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate { config } => validate::validate(&load(&config)?),
        Command::Explain { config } => explain::explain(&load(&config)?),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Verify { dir } => verify::verify(&dir),
        Command::Sql(args) => sql::sql(args),
        Command::Load(args) => load::load(args),
        #[cfg(feature = "train")]
        Command::Train(args) => train::train(args),
        #[cfg(feature = "train")]
        Command::Eval(args) => train::eval(args),
        #[cfg(feature = "train")]
        Command::Compare(args) => train::compare(args),
        #[cfg(feature = "train")]
        Command::Generate(args) => generate::generate(args),
        #[cfg(feature = "train")]
        Command::Reconstruct(args) => generate::reconstruct(args),
        #[cfg(feature = "train")]
        Command::DeviceCheck(args) => device_check::device_check(args),
        Command::Preview(args) => preview::preview(args).map(|_| ()),
        Command::Schema { write } => schema::schema(write.as_deref()),
    }
}
