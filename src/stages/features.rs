//! Jet features for the `jets` table, computed in one pass over each image.
//!
//! Conventions (also in the column descriptions and the README):
//! - ΔR of a pixel = √(Δη² + Δφ²) from the image centre (the jet axis), in η–φ units.
//! - "total" sums the unsigned channels (energies); channels listed in
//!   `source.signed_channels` (e.g. times) get only their per-channel features.
//! - Sums of products are accumulated in float64 (moments subtract nearly equal numbers) and
//!   stored as float32.
//! - An empty jet (no energy) gets 0 for every ratio, width, pT_D and moment, and 1 for the
//!   kept fractions: no value is NaN.

use crate::config::{FeatureGroup, FeaturesConfig, PipelineConfig};
use crate::source::ImageGeometry;
use arrow::array::{ArrayRef, Float32Array, UInt32Array};
use std::sync::Arc;

/// The configured stage.
pub struct FeatureStage {
    groups: Vec<FeatureGroup>,
    signed: Vec<bool>,
    threshold: f32,
    resolutions: Vec<u32>,
    core_r2: f64,
    geometry: ImageGeometry,
    /// Per pixel: (Δη, Δφ, ΔR).
    coords: Vec<(f64, f64, f64)>,
    names: Names,
}

/// One feature column of a batch.
enum Values {
    U32(Vec<u32>),
    F32(Vec<f32>),
}

/// Feature columns of one batch, in the order a jet's features are pushed (every jet pushes
/// the same columns in the same order, so a cursor finds the column without a lookup).
#[derive(Default)]
pub struct FeatureColumns {
    cols: Vec<(String, Values)>,
    cursor: usize,
}

impl FeatureColumns {
    fn next(&mut self, name: &str, make: impl FnOnce() -> Values) -> &mut Values {
        if self.cursor == self.cols.len() {
            self.cols.push((name.to_string(), make()));
        }
        self.cursor += 1;
        &mut self.cols[self.cursor - 1].1
    }
    fn u32(&mut self, name: &str, v: u32) {
        if let Values::U32(c) = self.next(name, || Values::U32(Vec::new())) {
            c.push(v);
        }
    }
    fn f32(&mut self, name: &str, v: f64) {
        if let Values::F32(c) = self.next(name, || Values::F32(Vec::new())) {
            c.push(v as f32);
        }
    }
    fn end_jet(&mut self) {
        self.cursor = 0;
    }

    /// Named Arrow arrays of every feature column.
    pub fn into_arrays(self) -> Vec<(String, ArrayRef)> {
        (self.cols.into_iter())
            .map(|(n, v)| {
                let a: ArrayRef = match v {
                    Values::U32(v) => Arc::new(UInt32Array::from(v)),
                    Values::F32(v) => Arc::new(Float32Array::from(v)),
                };
                (n, a)
            })
            .collect()
    }
}

/// Column names, built once per run.
struct Names {
    hits: Vec<String>,
    frac: Vec<String>,
    width: Vec<String>,
    ptd: Vec<String>,
    kept: Vec<String>,
}

fn names(prefix: &str, items: impl Iterator<Item = String>) -> Vec<String> {
    items.map(|i| format!("{prefix}_{i}")).collect()
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Major and minor axis and eccentricity of a 2×2 covariance [[a, b], [b, c]].
pub fn axes(a: f64, b: f64, c: f64) -> (f64, f64, f64) {
    let mean = (a + c) / 2.0;
    let r = (((a - c) / 2.0).powi(2) + b * b).sqrt();
    let (l1, l2) = (mean + r, (mean - r).max(0.0));
    let ecc = if l1 > 0.0 {
        (1.0 - l2 / l1).max(0.0).sqrt()
    } else {
        0.0
    };
    (l1.max(0.0).sqrt(), l2.sqrt(), ecc)
}

impl FeatureStage {
    /// Builds the stage for images of `geometry`.
    pub fn new(cfg: &PipelineConfig, f: &FeaturesConfig, geometry: ImageGeometry) -> Self {
        let pc = &cfg.stages.pointcloud;
        let px = f64::from(pc.pixel_size);
        let (rc, cc) = (
            (geometry.height as f64 - 1.0) / 2.0,
            (geometry.width as f64 - 1.0) / 2.0,
        );
        let coords = (0..geometry.pixels())
            .map(|p| {
                let (r, c) = ((p / geometry.width) as f64, (p % geometry.width) as f64);
                let (dr, dc) = ((r - rc) * px, (c - cc) * px);
                (dr, dc, (dr * dr + dc * dc).sqrt())
            })
            .collect();
        Self {
            groups: f.groups.clone(),
            signed: (cfg.source.channels.iter())
                .map(|c| cfg.source.signed_channels.contains(c))
                .collect(),
            threshold: pc.threshold,
            resolutions: pc.resolutions.clone(),
            core_r2: f64::from(f.core_radius).powi(2),
            geometry,
            coords,
            names: Names {
                hits: names("hits", cfg.source.channels.iter().cloned()),
                frac: names("frac", cfg.source.channels.iter().cloned()),
                width: names("width", cfg.source.channels.iter().cloned()),
                ptd: names("ptd", cfg.source.channels.iter().cloned()),
                kept: names("kept_frac", pc.resolutions.iter().map(|r| r.to_string())),
            },
        }
    }

    fn has(&self, g: FeatureGroup) -> bool {
        self.groups.contains(&g)
    }

    /// Computes one jet's features from its image (file layout), the row-major indices of
    /// its pixels with a nonzero value (from the point-cloud scan) and its hit count.
    pub fn push(&self, image: &[f32], nonzero: &[u32], n_hits: usize, cols: &mut FeatureColumns) {
        let g = self.geometry;
        let (ps, cs) = g.strides();
        let nc = g.channels;
        let mut hits = vec![0u32; nc];
        let (mut sum, mut sum_dr, mut sum_sq) = (vec![0f64; nc], vec![0f64; nc], vec![0f64; nc]);
        let (mut e_tot, mut e_dr, mut e_sq, mut e_max, mut e_core) = (0f64, 0f64, 0f64, 0f64, 0f64);
        let (mut m_x, mut m_y, mut m_xx, mut m_yy, mut m_xy) = (0f64, 0f64, 0f64, 0f64, 0f64);
        // Pixels with every value zero add nothing to any sum: visit only the others.
        for &p in nonzero {
            let p = p as usize;
            let base = p * ps;
            let mut e = 0f64;
            let mut any = false;
            for c in 0..nc {
                let v = image[base + c * cs];
                if v == 0.0 {
                    continue;
                }
                any = true;
                let (v64, dr) = (f64::from(v), self.coords[p].2);
                hits[c] += u32::from(v > self.threshold);
                sum[c] += v64;
                sum_dr[c] += v64 * dr;
                sum_sq[c] += v64 * v64;
                if !self.signed[c] {
                    e += v64;
                }
            }
            if !any || e == 0.0 {
                continue;
            }
            let (x, y, dr) = self.coords[p];
            e_tot += e;
            e_dr += e * dr;
            e_sq += e * e;
            e_max = e_max.max(e);
            if dr * dr < self.core_r2 {
                e_core += e;
            }
            m_x += e * x;
            m_y += e * y;
            m_xx += e * x * x;
            m_yy += e * y * y;
            m_xy += e * x * y;
        }
        let n = &self.names;
        if self.has(FeatureGroup::Hits) {
            for (i, name) in n.hits.iter().enumerate() {
                cols.u32(name, hits[i]);
            }
        }
        if self.has(FeatureGroup::Energy) {
            cols.f32("sum_total", e_tot);
            for (i, name) in n.frac.iter().enumerate() {
                if !self.signed[i] {
                    cols.f32(name, ratio(sum[i], e_tot));
                }
            }
        }
        if self.has(FeatureGroup::Width) {
            for (i, name) in n.width.iter().enumerate() {
                cols.f32(name, ratio(sum_dr[i], sum[i]));
            }
            cols.f32("width_total", ratio(e_dr, e_tot));
        }
        if self.has(FeatureGroup::Ptd) {
            for (i, name) in n.ptd.iter().enumerate() {
                cols.f32(name, ratio(sum_sq[i], sum[i] * sum[i]));
            }
            cols.f32("ptd_total", ratio(e_sq, e_tot * e_tot));
        }
        if self.has(FeatureGroup::Leading) {
            cols.f32("lead_frac", ratio(e_max, e_tot));
        }
        if self.has(FeatureGroup::Core) {
            cols.f32("core_frac", ratio(e_core, e_tot));
        }
        if self.has(FeatureGroup::Moments) {
            let (mx, my) = (ratio(m_x, e_tot), ratio(m_y, e_tot));
            let a = ratio(m_xx, e_tot) - mx * mx;
            let c = ratio(m_yy, e_tot) - my * my;
            let b = ratio(m_xy, e_tot) - mx * my;
            let (major, minor, ecc) = axes(a.max(0.0), b, c.max(0.0));
            cols.f32("axis_major", major);
            cols.f32("axis_minor", minor);
            cols.f32("eccentricity", ecc);
        }
        if self.has(FeatureGroup::Kept) {
            for (&r, name) in self.resolutions.iter().zip(&n.kept) {
                let kept = if n_hits == 0 {
                    1.0
                } else {
                    n_hits.min(r as usize) as f64 / n_hits as f64
                };
                cols.f32(name, kept);
            }
        }
        cols.end_jet();
    }
}
