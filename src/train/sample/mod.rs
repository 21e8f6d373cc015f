//! `pipeline generate RUN…` and `pipeline reconstruct RUN…`: jets from trained generative
//! models (VAE, DDPM), judged against real jets.
//!
//! Both read real test jets of the runs' dataset through the runs' loader image view (the
//! runs must share dataset and view), and write into one output directory:
//! - a jetpipe dataset per set of jets (`SET/dataset`: Parquet point clouds, kNN graphs and
//!   the `jets` table, converted with the dataset's own settings from `SET/images.h5`; see
//!   `images`), so `pipeline sql` and every reader work on generated jets;
//! - `metrics.json` and a printed table (`report`): distribution metrics of every set against
//!   the real jets, and for reconstructions the pixel and energy errors;
//! - `jets.png` (generate) or `reconstructions.png` (original | each model, same jets) and
//!   `observables.png` (histograms, real against every set).
//!
//! `generate` also measures two references so each number can be read against its best and
//! worst case: other real jets (the training split: the metrics' noise floor) and the mean
//! training image repeated (a model that ignores the jet).

pub mod images;
pub mod report;

use crate::error::{Error, Result};
use crate::loader::spec::ImageSpec;
use crate::loader::{Loader, Subset};
use crate::train::contract::{ImageGenerator, JetModel, Make, Needs, Noise, Sampling};
use crate::train::fit::{dims, load_model};
use crate::train::models::ModelVisitor;
use crate::train::run::device;
use crate::train::spec::{TrainSpec, load_train};
use burn::prelude::*;
use images::{ImageSet, from_energy, to_dataset, to_energy};
use indicatif::{ProgressBar, ProgressStyle};
use report::{Distribution, Observables, Reconstruction};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to sample and how.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Run directories of generative models (same dataset and image view).
    pub runs: Vec<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Jets per set (at most the real test jets).
    pub jets: usize,
    /// DDIM steps over the whole schedule; `None`: ancestral sampling over all T steps.
    pub steps: Option<usize>,
    /// Classifier-free guidance weight.
    pub guidance: f64,
    /// Zero suppression of the outputs in the model's units; `None`: the 1st percentile of
    /// the real jets' non-zero pixels.
    pub threshold: Option<f32>,
    /// Reconstruction depths t₀/T of diffusion models.
    pub t0: Vec<f64>,
    /// Diffusion reconstructions also by DDIM inversion (deterministic round trip).
    pub invert: bool,
    /// Seed of the sampling noise.
    pub seed: u64,
    /// Jets drawn per model call.
    pub batch: usize,
    /// No progress bars or table.
    pub quiet: bool,
}

/// One set's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct SetMetrics {
    /// Output pixels below this value (the model's units) were set to 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Distribution metrics against the real test jets.
    pub distribution: Distribution,
    /// Reconstruction metrics against the originals (reconstructions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<Reconstruction>,
    /// Seconds spent sampling the set.
    pub seconds: f64,
}

/// What a command wrote and measured.
#[derive(Debug, Clone, Serialize)]
pub struct SampleSummary {
    /// `generate` or `reconstruct`.
    pub kind: String,
    /// Real test jets compared against.
    pub real_jets: usize,
    /// The sampler: `ancestral` or `ddim N`.
    pub sampler: String,
    /// Classifier-free guidance weight.
    pub guidance: f64,
    /// Metrics per set, by set name.
    pub sets: BTreeMap<String, SetMetrics>,
    /// The datasets written, by set name (`real` included).
    pub datasets: BTreeMap<String, PathBuf>,
}

/// The spec of `run` and the image view it trains on.
fn run_spec(run: &Path) -> Result<(TrainSpec, ImageSpec)> {
    let spec = load_train(&run.join("config.yaml"))?;
    let img = spec.loader.image.clone().ok_or_else(|| {
        Error::Config(format!(
            "run {}: its loader has no image view, so its model is not a generative image model",
            run.display()
        ))
    })?;
    Ok((spec, img))
}

/// Calls `f` with the best model of a run as a generator.
struct WithGenerator<'a, F> {
    run: &'a Path,
    spec: &'a TrainSpec,
    device: &'a Device,
    f: F,
}

impl<R, F: FnOnce(&dyn ImageGenerator) -> Result<R>> ModelVisitor for WithGenerator<'_, F> {
    type Out = Result<R>;
    fn visit<M: JetModel>(self, title: &str, _: Needs, make: Make<M>) -> Result<R> {
        let model = load_model(self.run, "best", make, dims(self.spec, None), self.device)?.valid();
        let g = model.generator().ok_or_else(|| {
            Error::Config(format!(
                "run {}: model {title} does not generate images",
                self.run.display()
            ))
        })?;
        (self.f)(g)
    }
}

/// Up to `n` jets of `subset` of the run's dataset through its image view, in file order.
fn real_images(spec: &TrainSpec, img: &ImageSpec, subset: Subset, n: usize) -> Result<ImageSet> {
    let mut l = spec.loader_for(subset);
    (l.shuffle, l.drop_last, l.rank, l.world_size) = (false, false, 0, 1);
    l.reflect.clear();
    let loader = Loader::open(&l)?;
    let mut set = ImageSet::new(img.dims(), &img.transforms);
    for b in loader.epoch(0)? {
        let b = b?;
        set.images.extend(b.image);
        set.labels.extend(b.labels);
        if set.len() >= n {
            break;
        }
    }
    set.truncate(n);
    Ok(set)
}

/// The range diffusion samplers clamp x̂₀ to: the real jets' smallest pixel value to their
/// largest plus a tenth of the span (model units).
fn data_range(set: &ImageSet) -> (f32, f32) {
    let lo = set.images.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = set.images.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if lo.is_finite() && hi.is_finite() {
        (lo, hi + 0.1 * (hi - lo))
    } else {
        (0.0, 1.0)
    }
}

/// The 1st percentile of the non-zero pixels of `set` (model units).
fn percentile_threshold(set: &ImageSet) -> f32 {
    let mut v: Vec<f32> = set.images.iter().copied().filter(|&x| x > 0.0).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 100]
}

fn bar(quiet: bool, n: usize, what: &str) -> ProgressBar {
    let b = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(n as u64)
    };
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} jets eta {{eta}}"
        ))
        .expect("template"),
    );
    b
}

/// Runs `call` on `labels` in chunks of `batch` jets and collects the images.
fn in_batches(
    labels: &[i8],
    like: &ImageSet,
    batch: usize,
    device: &Device,
    bar: &ProgressBar,
    mut call: impl FnMut(std::ops::Range<usize>, Tensor<1, Int>) -> Tensor<4>,
) -> Result<ImageSet> {
    let mut set = ImageSet::new(like.dims, &like.transforms);
    for start in (0..labels.len()).step_by(batch.max(1)) {
        let r = start..(start + batch).min(labels.len());
        let l: Vec<i64> = labels[r.clone()].iter().map(|&v| i64::from(v)).collect();
        let t = Tensor::from_data(TensorData::new(l, [r.len()]), device);
        let out = call(r.clone(), t);
        let v: Vec<f32> = out
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::Train(format!("reading samples back: {e:?}")))?;
        set.images.extend(v);
        set.labels.extend(&labels[r.clone()]);
        bar.inc(r.len() as u64);
    }
    bar.finish_and_clear();
    Ok(set)
}

/// A set of jets made by a model or a reference.
struct Sampled {
    name: String,
    set: ImageSet,
    seconds: f64,
    threshold: Option<f32>,
}

/// A set name for each run: its directory name (made unique).
fn run_names(runs: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        let base = slug(&r.file_name().map_or("run".into(), |s| s.to_string_lossy()));
        // `real` and `reference…` name the real jets' sets and directories.
        let base = if base == "real" || base.starts_with("reference") {
            format!("run_{base}")
        } else {
            base
        };
        let mut name = base.clone();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        names.push(name);
    }
    names
}

/// A directory name for a set name.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Shared setup: the first run's spec and view (every run must match them), the device, the
/// real test jets and the threshold.
struct Setup {
    spec: TrainSpec,
    img: ImageSpec,
    device: Device,
    real: ImageSet,
    how: Sampling,
}

fn setup(o: &SampleOptions) -> Result<Setup> {
    let first = o
        .runs
        .first()
        .ok_or_else(|| Error::Config("name at least one run".into()))?;
    let (spec, img) = run_spec(first)?;
    for r in &o.runs[1..] {
        let (s, i) = run_spec(r)?;
        let same_view = (&i.channels, i.size, i.pool, s.loader.resolution)
            == (&img.channels, img.size, img.pool, spec.loader.resolution);
        if !same_view || s.loader.dataset != spec.loader.dataset || s.split != spec.split {
            return Err(Error::Config(format!(
                "run {} reads another dataset, split, resolution or image view (channels, size, \
                 pool) than run {}: compare runs of the same data (their transforms may differ)",
                r.display(),
                first.display()
            )));
        }
    }
    let device = device(spec.device)?;
    // The observables must exist before any sampling is spent.
    let names: Vec<String> = report::OBSERVABLES.iter().map(|s| s.to_string()).collect();
    crate::train::jet_inputs::read_jets(&spec.loader.dataset)?
        .columns(&names, &spec.loader.dataset)?;
    let real = real_images(&spec, &img, Subset::Test, o.jets)?;
    if real.is_empty() {
        return Err(Error::Config(format!(
            "dataset {} has no test jets under the run's split",
            spec.loader.dataset.display()
        )));
    }
    let how = Sampling {
        t0: 0.5,
        steps: o.steps,
        guidance: o.guidance,
        threshold: 0.0,
        invert: false,
        clip: None,
    };
    std::fs::create_dir_all(&o.out).map_err(|e| Error::io(&o.out, e))?;
    Ok(Setup {
        spec,
        img,
        device,
        real,
        how,
    })
}

/// Converts every set, measures it against the real jets, draws, writes `metrics.json`.
fn finish(
    o: &SampleOptions,
    s: &Setup,
    kind: &str,
    sets: Vec<Sampled>,
    recon: bool,
) -> Result<SampleSummary> {
    let dataset = &s.spec.loader.dataset;
    let mut datasets = BTreeMap::new();
    let real_dir = to_dataset(&s.real, &s.img, dataset, &o.out.join("real"))?;
    let real_obs = Observables::read(&real_dir)?;
    datasets.insert("real".to_string(), real_dir);
    let mut metrics = BTreeMap::new();
    let mut observed = Vec::new();
    for Sampled {
        name,
        set,
        seconds,
        threshold,
    } in &sets
    {
        let dir = to_dataset(set, &s.img, dataset, &o.out.join(slug(name)))?;
        let obs = Observables::read(&dir)?;
        let m = SetMetrics {
            threshold: *threshold,
            distribution: report::distribution(&real_obs, &obs),
            reconstruction: recon.then(|| report::reconstruction(&s.real, set)),
            seconds: *seconds,
        };
        metrics.insert(name.clone(), m);
        datasets.insert(name.clone(), dir);
        observed.push((name.clone(), obs));
    }
    let title = match kind {
        "generate" => "real test jets and generated jets",
        _ => "real test jets and their reconstructions",
    };
    let named: Vec<(&str, &Observables)> = observed.iter().map(|(n, v)| (n.as_str(), v)).collect();
    report::draw_observables(&o.out.join("observables.png"), title, &real_obs, &named)?;
    let mut pictured: Vec<(&str, &ImageSet)> = vec![("real", &s.real)];
    pictured.extend(sets.iter().map(|x| (x.name.as_str(), &x.set)));
    let png = if recon {
        "reconstructions.png"
    } else {
        "jets.png"
    };
    report::draw_jets(&o.out.join(png), title, &pictured, &s.img.channels, 8)?;
    let summary = SampleSummary {
        kind: kind.into(),
        real_jets: s.real.len(),
        sampler: s
            .how
            .steps
            .map_or("ancestral".into(), |n| format!("ddim {n}")),
        guidance: s.how.guidance,
        sets: metrics,
        datasets,
    };
    let p = o.out.join("metrics.json");
    let json = serde_json::to_string_pretty(&summary).expect("metrics serialise");
    std::fs::write(&p, json).map_err(|e| Error::io(&p, e))?;
    if !o.quiet {
        print_table(&summary);
    }
    Ok(summary)
}

fn print_table(s: &SampleSummary) {
    println!(
        "{} jets vs {} real test jets ({} sampler, guidance {})",
        s.kind, s.real_jets, s.sampler, s.guidance
    );
    println!(
        "{:<28} {:>8} {:>10} {:>9} {:>9} {:>8} {:>10}",
        "set", "W1/σ", "sep.power", "Fréchet", "C2ST AUC", "pix MSE", "seconds"
    );
    for (name, m) in &s.sets {
        let d = &m.distribution;
        println!(
            "{name:<28} {:>8.4} {:>10.4} {:>9.3} {:>9.4} {:>8} {:>10.1}",
            d.mean_w1_over_sd,
            d.mean_separation_power,
            d.frechet,
            d.two_sample_auc,
            m.reconstruction
                .as_ref()
                .map_or("-".into(), |r| format!("{:.5}", r.pixel_mse)),
            m.seconds
        );
    }
}

/// `pipeline generate`: as many jets as real test jets (up to `jets`), with the real jets'
/// labels for conditional models; plus the real-training-jets and mean-image references.
pub fn generate(o: &SampleOptions) -> Result<SampleSummary> {
    let s = setup(o)?;
    let n = s.real.len();
    let mut sets = Vec::new();
    let t = std::time::Instant::now();
    let train = real_images(&s.spec, &s.img, Subset::Train, n)?;
    let seconds = t.elapsed().as_secs_f64();
    let mut mean = ImageSet::new(train.dims, &train.transforms);
    let per = train.per_image();
    // The mean of the energies, in the model's units.
    let mut avg = vec![0f64; per];
    for j in 0..train.len() {
        avg.iter_mut().zip(train.image(j)).for_each(|(a, &v)| {
            *a += f64::from(to_energy(v, &train.transforms)) / train.len() as f64
        });
    }
    let avg: Vec<f32> = avg
        .iter()
        .map(|&e| from_energy(e as f32, &train.transforms))
        .collect();
    for _ in 0..n {
        mean.images.extend(&avg);
        mean.labels.push(-1);
    }
    sets.push(Sampled {
        name: "reference: real train jets".into(),
        set: train,
        seconds,
        threshold: None,
    });
    sets.push(Sampled {
        name: "reference: mean image".into(),
        set: mean,
        seconds: 0.0,
        threshold: None,
    });
    for (run, name) in o.runs.iter().zip(run_names(&o.runs)) {
        let (spec, img) = run_spec(run)?;
        let real = s.real.in_units(&img.transforms);
        let how = Sampling {
            threshold: o.threshold.unwrap_or_else(|| percentile_threshold(&real)),
            clip: Some(data_range(&real)),
            ..s.how
        };
        let bar = bar(o.quiet, n, &format!("generate {name}"));
        let t = std::time::Instant::now();
        let mut noise = Noise::new(o.seed, 0);
        let set = WithGenerator {
            run,
            spec: &spec,
            device: &s.device,
            f: |g: &dyn ImageGenerator| {
                let labels: Vec<i8> = if g.conditional() {
                    s.real.labels.clone()
                } else {
                    vec![-1; n]
                };
                in_batches(&labels, &real, o.batch, &s.device, &bar, |_, l| {
                    g.generate(l, &how, &mut noise)
                })
            },
        };
        let set = spec.model.visit(set)?;
        sets.push(Sampled {
            name,
            set,
            seconds: t.elapsed().as_secs_f64(),
            threshold: Some(how.threshold),
        });
    }
    finish(o, &s, "generate", sets, false)
}

/// `pipeline reconstruct`: every model reconstructs the same real test jets (diffusion models
/// at each t₀, and by DDIM inversion with `invert`).
pub fn reconstruct(o: &SampleOptions) -> Result<SampleSummary> {
    let s = setup(o)?;
    let mut sets = Vec::new();
    for (run, name) in o.runs.iter().zip(run_names(&o.runs)) {
        let (spec, img) = run_spec(run)?;
        let real = s.real.in_units(&img.transforms);
        let base = Sampling {
            threshold: o.threshold.unwrap_or_else(|| percentile_threshold(&real)),
            clip: Some(data_range(&real)),
            ..s.how
        };
        let visit = WithGenerator {
            run,
            spec: &spec,
            device: &s.device,
            f: |g: &dyn ImageGenerator| -> Result<Vec<Sampled>> {
                let mut ways: Vec<(String, Sampling)> = Vec::new();
                if g.noises() {
                    for &t0 in &o.t0 {
                        ways.push((format!("{name} t0={t0}"), Sampling { t0, ..base }));
                        if o.invert {
                            let how = Sampling {
                                t0,
                                invert: true,
                                ..base
                            };
                            ways.push((format!("{name} DDIM-inverted t0={t0}"), how));
                        }
                    }
                } else {
                    ways.push((name.clone(), base));
                }
                let mut out = Vec::new();
                for (set_name, how) in ways {
                    let bar = bar(o.quiet, s.real.len(), &format!("reconstruct {set_name}"));
                    let t = std::time::Instant::now();
                    let mut noise = Noise::new(o.seed, 0);
                    let per = real.per_image();
                    let [c, h, w] = real.dims;
                    let set = in_batches(&real.labels, &real, o.batch, &s.device, &bar, |r, l| {
                        let v = real.images[r.start * per..r.end * per].to_vec();
                        let x =
                            Tensor::from_data(TensorData::new(v, [r.len(), c, h, w]), &s.device);
                        g.reconstruct(x, l, &how, &mut noise)
                    })?;
                    out.push(Sampled {
                        name: set_name,
                        set,
                        seconds: t.elapsed().as_secs_f64(),
                        threshold: Some(how.threshold),
                    });
                }
                Ok(out)
            },
        };
        sets.extend(spec.model.visit(visit)?);
    }
    finish(o, &s, "reconstruct", sets, true)
}
