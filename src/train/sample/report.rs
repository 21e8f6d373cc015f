//! What `pipeline generate` and `pipeline reconstruct` measure and draw.
//!
//! - **Observables** of each set of jets are the `jets` table that jetpipe's own features
//!   code (`stages::features`) wrote when the set was converted: hits and summed energy per
//!   channel, widths (girth), pT_D, leading and core fractions, shape axes ([`OBSERVABLES`]).
//! - **Distribution metrics** of a set against the real jets: per observable the 1-D
//!   Wasserstein distance W1 (also divided by the real jets' standard deviation, so
//!   observables compare) and CaloDiffusion's separation power over 40 bins; the Fréchet
//!   distance between Gaussians fitted to the observable vectors standardised with the real
//!   jets' mean and deviation (FPD-like); and a classifier two-sample test: logistic
//!   regression on the same standardised observables told to separate real from the set,
//!   scored by its ROC AUC with two-fold cross-fitting (0.5: indistinguishable).
//! - **Reconstruction metrics** of reconstructions against their originals: the mean squared
//!   pixel error of log(1 + E) (one unit for every model), and per channel the mean and standard deviation of the
//!   relative error of the jet's total energy.
//! - **Pictures**: jets of every set side by side per channel with one colour scale per
//!   channel (log of energy), and histograms of the observables, real against every set.

use crate::error::Result;
use crate::generative::metrics::{Edges, frechet_distance, separation_power, wasserstein1};
use crate::plot::{DrawResult, FONT, Figure, e, heat};
use crate::train::jet_inputs::read_jets;
use crate::train::metrics::auc;
use crate::train::plot::legend;
use crate::train::sample::images::ImageSet;
use plotters::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The observables compared (columns of the `jets` table).
pub const OBSERVABLES: &[&str] = &[
    "n_hits",
    "hits_tracks",
    "hits_ecal",
    "hits_hcal",
    "sum_tracks",
    "sum_ecal",
    "sum_hcal",
    "sum_total",
    "width_total",
    "ptd_total",
    "lead_frac",
    "core_frac",
    "axis_major",
    "axis_minor",
];

/// The observables of a set of jets: one column per name of [`OBSERVABLES`].
#[derive(Debug, Clone)]
pub struct Observables {
    /// `[observable][jet]`.
    pub columns: Vec<Vec<f64>>,
}

impl Observables {
    /// Reads the observables from the `jets` table of `dataset`.
    pub fn read(dataset: &Path) -> Result<Self> {
        let t = read_jets(dataset)?;
        let names: Vec<String> = OBSERVABLES.iter().map(|s| s.to_string()).collect();
        let cols = t.columns(&names, dataset)?;
        let w = t.names.len();
        let n = t.ids.len();
        let columns = cols
            .iter()
            .map(|&c| (0..n).map(|j| f64::from(t.x[j * w + c])).collect())
            .collect();
        Ok(Self { columns })
    }

    /// Jets.
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// Whether there are no jets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row-major `[jet, observable]` standardised with `(mean, sd)` per observable.
    fn standardised(&self, norm: &[(f64, f64)]) -> Vec<f64> {
        let mut rows = Vec::with_capacity(self.len() * norm.len());
        for j in 0..self.len() {
            for (c, &(m, s)) in self.columns.iter().zip(norm) {
                rows.push((c[j] - m) / s);
            }
        }
        rows
    }

    /// Mean and standard deviation (1 where 0) of each observable.
    fn norm(&self) -> Vec<(f64, f64)> {
        self.columns
            .iter()
            .map(|c| {
                let n = c.len().max(1) as f64;
                let m = c.iter().sum::<f64>() / n;
                let s = (c.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt();
                (m, if s > 0.0 { s } else { 1.0 })
            })
            .collect()
    }
}

/// A set's distribution metrics against the real jets.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// Jets compared (the set; the real jets are as many or more).
    pub jets: usize,
    /// W1 per observable.
    pub w1: BTreeMap<String, f64>,
    /// W1 / σ_real per observable.
    pub w1_over_sd: BTreeMap<String, f64>,
    /// Mean of `w1_over_sd` over the observables.
    pub mean_w1_over_sd: f64,
    /// Separation power per observable (40 bins spanning both samples).
    pub separation_power: BTreeMap<String, f64>,
    /// Mean separation power over the observables.
    pub mean_separation_power: f64,
    /// Fréchet distance of the standardised observable vectors.
    pub frechet: f64,
    /// Classifier two-sample test: ROC AUC of real vs set (0.5: indistinguishable).
    pub two_sample_auc: f64,
}

/// Bins of the separation power.
const BINS: usize = 40;

/// The distribution metrics of `set` against `real`.
pub fn distribution(real: &Observables, set: &Observables) -> Distribution {
    let norm = real.norm();
    let mut w1 = BTreeMap::new();
    let mut w1n = BTreeMap::new();
    let mut sep = BTreeMap::new();
    for (k, name) in OBSERVABLES.iter().enumerate() {
        let w = wasserstein1(&real.columns[k], &set.columns[k]);
        w1.insert(name.to_string(), w);
        w1n.insert(name.to_string(), w / norm[k].1);
        sep.insert(
            name.to_string(),
            separation_power(&real.columns[k], &set.columns[k], BINS),
        );
    }
    let mean = |m: &BTreeMap<String, f64>| m.values().sum::<f64>() / m.len() as f64;
    let (a, b) = (real.standardised(&norm), set.standardised(&norm));
    Distribution {
        jets: set.len(),
        mean_w1_over_sd: mean(&w1n),
        mean_separation_power: mean(&sep),
        w1,
        w1_over_sd: w1n,
        separation_power: sep,
        frechet: frechet_distance(&a, &b, OBSERVABLES.len()),
        two_sample_auc: two_sample_auc(&a, &b, OBSERVABLES.len()),
    }
}

/// Logistic regression (full-batch gradient descent on the mean log-loss, 500 steps of
/// 0.5, L2 1e-3) of label 1 = row of `b` against 0 = row of `a` (`d` standardised values per
/// row), trained on one half of each sample and scored on the other, both ways: the AUC of
/// the pooled out-of-fold scores.
pub fn two_sample_auc(a: &[f64], b: &[f64], d: usize) -> f64 {
    let rows: Vec<(&[f64], f64)> = a
        .chunks_exact(d)
        .map(|r| (r, 0.0))
        .chain(b.chunks_exact(d).map(|r| (r, 1.0)))
        .collect();
    let fold = |i: usize| i % 2;
    let mut scores = vec![0f32; rows.len()];
    for k in 0..2 {
        let train: Vec<&(&[f64], f64)> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| fold(*i) != k)
            .map(|(_, r)| r)
            .collect();
        let mut w = vec![0.0; d + 1];
        for _ in 0..500 {
            let mut g = vec![0.0; d + 1];
            for (x, y) in &train {
                let z = w[d] + x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
                let err = 1.0 / (1.0 + (-z).exp()) - y;
                g.iter_mut()
                    .zip(x.iter())
                    .for_each(|(gi, xi)| *gi += err * xi);
                g[d] += err;
            }
            let n = train.len().max(1) as f64;
            for (i, wi) in w.iter_mut().enumerate() {
                let l2 = if i < d { 1e-3 * *wi } else { 0.0 };
                *wi -= 0.5 * (g[i] / n + l2);
            }
        }
        for (i, (x, _)) in rows.iter().enumerate().filter(|(i, _)| fold(*i) == k) {
            scores[i] = (w[d] + x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()) as f32;
        }
    }
    let labels: Vec<i8> = rows.iter().map(|(_, y)| *y as i8).collect();
    auc(&scores, &labels).unwrap_or(f64::NAN)
}

/// Reconstructions against their originals.
#[derive(Debug, Clone, Serialize)]
pub struct Reconstruction {
    /// Mean squared pixel error of log(1 + E) (the same units for every model).
    pub pixel_mse: f64,
    /// Per channel: mean relative error of the jet's total energy, (E_rec − E)/E.
    pub energy_bias: Vec<f64>,
    /// Per channel: standard deviation of that relative error.
    pub energy_resolution: Vec<f64>,
}

/// The reconstruction metrics of `rec` against `orig` (same jets, same order).
pub fn reconstruction(orig: &ImageSet, rec: &ImageSet) -> Reconstruction {
    let n = orig.len().min(rec.len());
    let [c, h, w] = orig.dims;
    let mut se = 0.0;
    let mut rel: Vec<Vec<f64>> = vec![Vec::new(); c];
    for j in 0..n {
        for (ch, r) in rel.iter_mut().enumerate() {
            let (mut e0, mut e1) = (0.0, 0.0);
            for p in 0..h * w {
                let (a, b) = (orig.energy(j, ch, p), rec.energy(j, ch, p));
                se += f64::from(a.ln_1p() - b.ln_1p()).powi(2);
                e0 += f64::from(a);
                e1 += f64::from(b);
            }
            if e0 > 0.0 {
                r.push((e1 - e0) / e0);
            }
        }
    }
    let stats = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt();
        (m, s)
    };
    Reconstruction {
        pixel_mse: se / (n * c * h * w).max(1) as f64,
        energy_bias: rel.iter().map(|v| stats(v).0).collect(),
        energy_resolution: rel.iter().map(|v| stats(v).1).collect(),
    }
}

/// Pixels per image pixel in the jet picture.
const SCALE: usize = 3;
const GAP: usize = 4;
const GROUP_GAP: usize = 14;
const HEAD: usize = 58;
const LEFT: usize = 44;

/// Draws `rows` jets of every set side by side: rows are jets, one group of panels per set
/// (the first set is the real jets) with one panel per channel. Each channel has one log
/// colour scale over the whole figure, black 0 to white the real jets' largest energy
/// (brighter values are clipped to white).
pub fn draw_jets(
    path: &Path,
    title: &str,
    sets: &[(&str, &ImageSet)],
    channels: &[String],
    rows: usize,
) -> Result<()> {
    let [c, h, w] = sets[0].1.dims;
    let rows = sets
        .iter()
        .map(|(_, s)| s.len())
        .min()
        .unwrap_or(0)
        .min(rows);
    let real = sets[0].1;
    let mut max = vec![1e-12f32; c];
    for j in 0..rows {
        for (ch, m) in max.iter_mut().enumerate() {
            for p in 0..h * w {
                *m = m.max(real.energy(j, ch, p));
            }
        }
    }
    let (pw, ph) = (w * SCALE, h * SCALE);
    let group = c * (pw + GAP) + GROUP_GAP;
    let (fw, fh) = (LEFT + sets.len() * group, HEAD + rows * (ph + GAP));
    let x_of = |k: usize, ch: usize| LEFT + k * group + ch * (pw + GAP);
    let mut px = vec![255u8; fw * fh * 3];
    for (k, (_, s)) in sets.iter().enumerate() {
        for j in 0..rows {
            for (ch, &top) in max.iter().enumerate() {
                let (x0, y0) = (x_of(k, ch), HEAD + j * (ph + GAP));
                for p in 0..h * w {
                    let v = s.energy(j, ch, p).min(top);
                    let rgb = heat((1.0 + 1000.0 * v / top).ln() / 1001f32.ln());
                    for dy in 0..SCALE {
                        for dx in 0..SCALE {
                            let (x, y) = (x0 + (p % w) * SCALE + dx, y0 + (p / w) * SCALE + dy);
                            px[(y * fw + x) * 3..(y * fw + x) * 3 + 3].copy_from_slice(&rgb);
                        }
                    }
                }
            }
        }
    }
    let mut fig = Figure::from_pixels(px, fw as u32, fh as u32)?;
    fig.draw(path, |root| -> DrawResult {
        e(root.draw(&Text::new(title.to_string(), (4, 2), (FONT, 15))))?;
        for (k, (name, _)) in sets.iter().enumerate() {
            let x = x_of(k, 0) as i32;
            e(root.draw(&Text::new(name.to_string(), (x, 21), (FONT, 13))))?;
            for ch in 0..c {
                let text = channels.get(ch).cloned().unwrap_or_default();
                e(root.draw(&Text::new(text, (x_of(k, ch) as i32, 39), (FONT, 11))))?;
            }
        }
        for j in 0..rows {
            let label = sets[0].1.labels[j];
            let text = if label >= 0 {
                format!("y={label}")
            } else {
                String::new()
            };
            let y = (HEAD + j * (ph + GAP) + ph / 2) as i32;
            e(root.draw(&Text::new(text, (4, y), (FONT, 12))))?;
        }
        Ok(())
    })?;
    fig.write(path)
}

/// Line colours of the sets after the real jets (black).
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];

/// Histograms of every observable over the real jets' range: the real jets (black) against
/// each set, values beyond the range in the edge bins.
pub fn draw_observables(
    path: &Path,
    title: &str,
    real: &Observables,
    sets: &[(&str, &Observables)],
) -> Result<()> {
    let per_row = 4;
    let grid = OBSERVABLES.len().div_ceil(per_row);
    let mut fig = Figure::new(1400, (300 * grid + 40) as u32)?;
    fig.draw(path, |root| -> DrawResult {
        e(root.fill(&WHITE))?;
        let root = e(root.titled(title, (FONT, 20)))?;
        let panels = root.split_evenly((grid, per_row));
        for (k, area) in panels.iter().enumerate().take(OBSERVABLES.len()) {
            // The range of the real jets (0.5th to 99.5th percentile, widened by a quarter
            // each side); other values land in the edge bins, so a far-off set shows there.
            let mut r = real.columns[k].clone();
            r.sort_by(f64::total_cmp);
            let q = |f: f64| {
                r.get((r.len().saturating_sub(1) as f64 * f) as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            let (a, b) = (q(0.005), q(0.995));
            let pad = 0.25 * (b - a).max(1e-9);
            let edges = Edges::spanning(&[a - pad], &[b + pad], BINS);
            let clamp = |v: &Vec<f64>| -> Vec<f64> {
                v.iter().map(|x| x.clamp(edges.lo, edges.hi)).collect()
            };
            let hists: Vec<Vec<f64>> = std::iter::once(&real.columns[k])
                .chain(sets.iter().map(|(_, s)| &s.columns[k]))
                .map(|v| edges.histogram(&clamp(v)))
                .collect();
            let top = hists
                .iter()
                .flatten()
                .fold(0f64, |a, &b| a.max(b))
                .max(1e-9)
                * 1.15;
            let (lo, hi) = (
                edges.lo,
                if edges.hi > edges.lo {
                    edges.hi
                } else {
                    edges.lo + 1.0
                },
            );
            let mut chart = e(ChartBuilder::on(area)
                .margin(8)
                .caption(OBSERVABLES[k], (FONT, 15))
                .x_label_area_size(28)
                .y_label_area_size(40)
                .build_cartesian_2d(lo..hi, 0f64..top))?;
            e(chart
                .configure_mesh()
                .light_line_style(WHITE.mix(0.0))
                .label_style((FONT, 11))
                .x_labels(5)
                .y_labels(4)
                .draw())?;
            let width = (hi - lo) / BINS as f64;
            for (i, h) in hists.iter().enumerate() {
                let colour = if i == 0 {
                    BLACK
                } else {
                    COLOURS[(i - 1) % COLOURS.len()]
                };
                let mut pts = Vec::with_capacity(2 * BINS + 2);
                for (b, v) in h.iter().enumerate() {
                    pts.push((lo + b as f64 * width, *v));
                    pts.push((lo + (b + 1) as f64 * width, *v));
                }
                let name = if i == 0 { "real" } else { sets[i - 1].0 };
                let style = colour.stroke_width(if i == 0 { 3 } else { 2 });
                e(chart.draw_series(LineSeries::new(pts, style)))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
            }
            if k == 0 {
                legend(&mut chart, SeriesLabelPosition::UpperRight, 11)?;
            }
        }
        Ok(())
    })?;
    fig.write(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normals(seed: u64, n: usize) -> Vec<f64> {
        let mut noise = crate::train::contract::Noise::new(seed, 0);
        noise.normals(n).into_iter().map(f64::from).collect()
    }

    #[test]
    fn the_two_sample_test_separates_shifted_samples_and_not_equal_ones() {
        let d = 3;
        let a = normals(1, 3000);
        let b = normals(2, 3000);
        let same = two_sample_auc(&a, &b, d);
        assert!((same - 0.5).abs() < 0.04, "{same}");
        // Shift the first coordinate by 1σ: the optimal AUC is Φ(1/√2) = 0.760.
        let c: Vec<f64> = b
            .iter()
            .enumerate()
            .map(|(i, x)| if i % d == 0 { x + 1.0 } else { *x })
            .collect();
        let shifted = two_sample_auc(&a, &c, d);
        assert!((shifted - 0.760).abs() < 0.03, "{shifted}");
    }

    use crate::loader::preprocess::Transform;

    #[test]
    fn reconstruction_metrics_of_a_scaled_copy() {
        // Every energy doubled (log1p units): relative energy error exactly 1, no spread.
        let t = [Transform::Log1p];
        let energies = [0.0f32, 1.0, 3.0, 0.5, 2.0, 0.0, 4.0, 1.5];
        let orig = ImageSet {
            dims: [2, 2, 2],
            images: energies.iter().map(|e| e.ln_1p()).collect(),
            labels: vec![0],
            transforms: t.to_vec(),
        };
        let rec = ImageSet {
            images: energies.iter().map(|e| (2.0 * e).ln_1p()).collect(),
            ..orig.clone()
        };
        let r = reconstruction(&orig, &rec);
        for ch in 0..2 {
            assert!((r.energy_bias[ch] - 1.0).abs() < 1e-5);
            assert!(r.energy_resolution[ch] < 1e-5);
        }
        let mse: f64 = energies
            .iter()
            .map(|e| f64::from((2.0 * e).ln_1p() - e.ln_1p()).powi(2))
            .sum::<f64>()
            / 8.0;
        assert!((r.pixel_mse - mse).abs() < 1e-6);
    }
}
