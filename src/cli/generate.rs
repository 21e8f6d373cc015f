//! `pipeline generate RUN…` and `pipeline reconstruct RUN…`: jets from trained generative
//! models (VAE, DDPM) as jetpipe datasets, with metrics against real test jets and PNGs (see
//! `train::sample`).

use crate::error::Result;
use crate::train::sample::{SampleOptions, generate as gen_jets, reconstruct as rec_jets};
use clap::Args;
use std::path::PathBuf;

/// What `generate` and `reconstruct` share.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Run directories of generative models (`pipeline train` with `vae` or `ddpm`) trained
    /// on the same dataset and image view.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Output directory: one dataset per set of jets, metrics.json and the PNGs.
    #[arg(long)]
    pub out: PathBuf,
    /// Jets per set (real test jets of the runs' split, in file order).
    #[arg(long, default_value_t = 512)]
    pub jets: usize,
    /// Diffusion: DDIM steps over the whole schedule.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Diffusion: ancestral sampling over all T steps instead of DDIM.
    #[arg(long)]
    pub ancestral: bool,
    /// Diffusion: classifier-free guidance weight w (ε = (1 + w)·ε(label) − w·ε(none)).
    #[arg(long, default_value_t = 0.0)]
    pub guidance: f64,
    /// Output pixels below this value (model units) are set to 0; default: the 1st percentile
    /// of the real jets' non-zero pixels (the zero suppression as the model sees it).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Seed of the sampling noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Jets per model call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// No progress bars or table.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Arguments of `pipeline reconstruct`.
#[derive(Debug, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub common: SampleArgs,
    /// Diffusion: noise the jets to these fractions t₀/T of the schedule and denoise back.
    #[arg(long, value_delimiter = ',', default_value = "0.3,0.6")]
    pub t0: Vec<f64>,
    /// Diffusion: also reconstruct by DDIM inversion to t₀ and DDIM decoding (deterministic).
    #[arg(long)]
    pub invert: bool,
}

fn options(a: SampleArgs, t0: Vec<f64>, invert: bool) -> SampleOptions {
    SampleOptions {
        runs: a.runs,
        out: a.out,
        jets: a.jets,
        steps: (!a.ancestral).then_some(a.steps),
        guidance: a.guidance,
        threshold: a.threshold,
        t0,
        invert,
        seed: a.seed,
        batch: a.batch,
        quiet: a.quiet,
    }
}

/// Runs `pipeline generate`.
pub fn generate(a: SampleArgs) -> Result<()> {
    let out = a.out.clone();
    gen_jets(&options(a, Vec::new(), false))?;
    println!(
        "wrote {}/{{metrics.json,jets.png,observables.png}}",
        out.display()
    );
    Ok(())
}

/// Runs `pipeline reconstruct`.
pub fn reconstruct(a: ReconstructArgs) -> Result<()> {
    let out = a.common.out.clone();
    if let Some(t) = a.t0.iter().find(|t| !(**t > 0.0 && **t <= 1.0)) {
        return Err(crate::error::Error::Config(format!(
            "--t0 {t}: fractions of the schedule lie in (0, 1]"
        )));
    }
    rec_jets(&options(a.common, a.t0, a.invert))?;
    println!(
        "wrote {}/{{metrics.json,reconstructions.png,observables.png}}",
        out.display()
    );
    Ok(())
}
