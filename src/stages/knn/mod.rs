//! kNN stage: the k nearest neighbours of every point of a jet, at every resolution, with
//! the graph's statistics. Runs inside the point-cloud worker on the points just selected.
//!
//! Storage (points table): `knn` holds `k` neighbour indices per point, point-major (point
//! i's at `[i*k, (i+1)*k)`), ordered by (distance, index). A jet with fewer than k other
//! points has `knn_k = n − 1` real neighbours per point (n with `include_self`); entries from
//! `knn_k` on are padding: the point's own index, distance 0. `knn_dist` (optional) holds the
//! distances in the coordinates' units.
//!
//! Method (chosen by `benches/knn.rs`): on the default (η, φ) coordinates the points are
//! distinct pixels, so an exact integer grid search is used; other coordinates use float32
//! brute force for small clouds and a kiddo kd-tree with exact re-ranking above that.

pub mod general;
pub mod grid;
pub mod key;
pub mod lanes;
pub mod network;
#[cfg(target_arch = "x86_64")]
pub mod sort8;
pub mod stats;
#[cfg(test)]
mod tests;
pub mod vwalk;

use crate::config::KnnConfig;
use crate::error::{Error, Result};
use crate::profile::{Clock, Stage};
use arrow::array::{ArrayRef, Float32Array, ListArray, UInt16Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};
use grid::GridKnn;
use key::{key_d2, key_index};
use stats::{GraphStats, by_rank, by_search, graph_stats};
use std::sync::Arc;

/// Largest coordinate magnitude the float search accepts: squared distances of up to 80
/// coordinates stay finite (the kd-tree refuses non-finite points).
const MAX_COORD: f32 = 1e18;

/// One per-point quantity of a coordinate vector.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Coord {
    Eta,
    Phi,
    Row,
    Col,
    Channel(usize),
}

/// How neighbours are searched.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Exact integer search on the pixel grid; distances scaled by `unit`.
    Grid { unit: f32 },
    /// Float32 coordinates.
    General {
        coords: Vec<Coord>,
        scales: Vec<f32>,
        /// The coordinates' names, as configured (for error messages).
        names: Vec<String>,
    },
}

/// The configured stage.
#[derive(Debug, Clone)]
pub struct KnnStage {
    k: usize,
    include_self: bool,
    distances: bool,
    mode: Mode,
}

/// A jet's points as the point-cloud stage laid them out.
pub struct JetPoints<'a> {
    /// Pixel rows.
    pub row: &'a [u16],
    /// Pixel columns.
    pub col: &'a [u16],
    /// Δη per point.
    pub eta: &'a [f32],
    /// Δφ per point.
    pub phi: &'a [f32],
    /// Per channel, the value per point.
    pub values: Vec<&'a [f32]>,
    /// Image height and width.
    pub shape: (usize, usize),
}

/// Per-worker buffers.
#[derive(Default)]
pub struct KnnScratch {
    grid: GridKnn,
    keys: Vec<Vec<key::Key>>,
    sizes: Vec<usize>,
    k_eff: Vec<usize>,
    pairs: Vec<(f32, u16)>,
    coords: Vec<f32>,
    degree: Vec<u16>,
}

/// kNN columns of one batch at one resolution.
#[derive(Default)]
pub struct KnnColumns {
    offsets: Vec<i32>,
    knn: Vec<u16>,
    dist: Vec<f32>,
    k_eff: Vec<u16>,
    components: Vec<u16>,
    largest: Vec<u16>,
    mean_degree: Vec<f32>,
    max_degree: Vec<u16>,
}

impl KnnStage {
    /// Builds the stage; `channels` name the image channels, `pixel_size` the pitch.
    pub fn new(cfg: &KnnConfig, channels: &[String], pixel_size: f32) -> Self {
        let coords: Vec<Coord> = cfg
            .coordinates
            .iter()
            .map(|c| match c.as_str() {
                "eta" => Coord::Eta,
                "phi" => Coord::Phi,
                "row" => Coord::Row,
                "col" => Coord::Col,
                ch => Coord::Channel(channels.iter().position(|x| x == ch).expect("validated")),
            })
            .collect();
        let scales = cfg
            .scales
            .clone()
            .unwrap_or_else(|| vec![1.0; coords.len()]);
        let same_scale = scales.iter().all(|&s| s == scales[0] && s > 0.0);
        let plane = |a, b| coords.len() == 2 && coords.contains(&a) && coords.contains(&b);
        let mode = if same_scale && plane(Coord::Eta, Coord::Phi) {
            Mode::Grid {
                unit: pixel_size * scales[0],
            }
        } else if same_scale && plane(Coord::Row, Coord::Col) {
            Mode::Grid { unit: scales[0] }
        } else {
            Mode::General {
                coords,
                scales,
                names: cfg.coordinates.clone(),
            }
        };
        Self {
            k: cfg.k,
            include_self: cfg.include_self,
            distances: cfg.distances,
            mode,
        }
    }

    /// Whether `knn_dist` is stored.
    pub fn stores_distances(&self) -> bool {
        self.distances
    }

    /// Computes one jet's neighbours and graph statistics at every resolution and appends
    /// them to `cols` (one per resolution). `jets[r]` holds the jet's points at resolution r;
    /// each resolution's points are a prefix of the next one's.
    pub fn append_jet(
        &self,
        jets: &[JetPoints],
        s: &mut KnnScratch,
        cols: &mut [KnnColumns],
    ) -> Result<()> {
        let mut clock = Clock::start();
        match &self.mode {
            Mode::Grid { unit } => {
                let Some(all) = jets.last() else {
                    return Ok(());
                };
                s.sizes.clear();
                s.sizes.extend(jets.iter().map(|p| p.row.len()));
                s.keys.resize_with(jets.len(), Vec::new);
                s.keys.iter_mut().for_each(Vec::clear);
                s.k_eff.resize(jets.len(), 0);
                s.grid.run_multi(
                    all.row,
                    all.col,
                    all.shape,
                    &s.sizes,
                    self.k,
                    self.include_self,
                    &mut s.keys,
                    &mut s.k_eff,
                );
                clock.lap(Stage::KnnSearch);
                for (r, c) in cols.iter_mut().enumerate() {
                    let (n, k_eff, keys) = (s.sizes[r], s.k_eff[r], &s.keys[r]);
                    let start = c.knn.len();
                    for i in 0..n {
                        let nb = &keys[i * k_eff..(i + 1) * k_eff];
                        let nb = nb
                            .iter()
                            .map(|&key| (key_index(key), (key_d2(key) as f32).sqrt() * unit));
                        self.push_point(i, k_eff, nb, c);
                    }
                    let mutual = by_rank(keys, k_eff);
                    let st = graph_stats(n, &c.knn[start..], self.k, k_eff, &mut s.degree, mutual);
                    c.finish_jet(k_eff, st)?;
                }
                clock.lap(Stage::KnnStats);
            }
            Mode::General {
                coords,
                scales,
                names,
            } => {
                for (p, c) in jets.iter().zip(cols.iter_mut()) {
                    self.append_general(p, (coords, scales, names), s, c)?;
                }
                clock.lap(Stage::KnnSearch);
            }
        }
        Ok(())
    }

    /// One jet at one resolution in arbitrary coordinates.
    fn append_general(
        &self,
        p: &JetPoints,
        (coords, scales, names): (&[Coord], &[f32], &[String]),
        s: &mut KnnScratch,
        cols: &mut KnnColumns,
    ) -> Result<()> {
        let n = p.row.len();
        let start = cols.knn.len();
        s.coords.clear();
        for i in 0..n {
            for ((c, scale), name) in coords.iter().zip(scales).zip(names) {
                let v = match c {
                    Coord::Eta => p.eta[i],
                    Coord::Phi => p.phi[i],
                    Coord::Row => f32::from(p.row[i]),
                    Coord::Col => f32::from(p.col[i]),
                    Coord::Channel(ch) => p.values[*ch][i],
                };
                let x = v * scale;
                if !x.is_finite() || x.abs() > MAX_COORD {
                    return Err(Error::Jet {
                        file: Default::default(),
                        index: 0,
                        msg: format!(
                            "kNN coordinate `{name}` of point {i} (pixel row {}, col {}) is {v} × scale {scale} = {x}: coordinates must be finite and within ±{MAX_COORD:e} (lower knn.scales)",
                            p.row[i], p.col[i]
                        ),
                    });
                }
                s.coords.push(x);
            }
        }
        s.pairs.clear();
        let k_eff = general::knn(
            &s.coords,
            coords.len(),
            self.k,
            self.include_self,
            &mut s.pairs,
        );
        for i in 0..n {
            let nb = &s.pairs[i * k_eff..(i + 1) * k_eff];
            self.push_point(i, k_eff, nb.iter().map(|&(d2, j)| (j, d2.sqrt())), cols);
        }
        let nbrs = &cols.knn[start..];
        let st = graph_stats(
            n,
            nbrs,
            self.k,
            k_eff,
            &mut s.degree,
            by_search(nbrs, self.k, k_eff),
        );
        cols.finish_jet(k_eff, st)
    }

    /// Appends point `i`'s `k_eff` real neighbours and its padding.
    fn push_point(
        &self,
        i: usize,
        k_eff: usize,
        nb: impl Iterator<Item = (u16, f32)>,
        cols: &mut KnnColumns,
    ) {
        for (j, d) in nb.take(k_eff) {
            cols.knn.push(j);
            if self.distances {
                cols.dist.push(d);
            }
        }
        for _ in k_eff..self.k {
            cols.knn.push(i as u16);
            if self.distances {
                cols.dist.push(0.0);
            }
        }
    }
}

/// The kNN columns of the points table, in schema order, for a batch of `jets` jets.
impl KnnColumns {
    /// Closes the current jet: its `k_eff`, graph statistics and list offset.
    fn finish_jet(&mut self, k_eff: usize, st: GraphStats) -> Result<()> {
        self.k_eff.push(k_eff as u16);
        self.components.push(st.components);
        self.largest.push(st.largest);
        self.mean_degree.push(st.mean_degree);
        self.max_degree.push(st.max_degree);
        let end = i32::try_from(self.knn.len()).map_err(|_| {
            Error::Config("a batch's kNN lists exceed 2^31 entries: lower engine.batch_size".into())
        })?;
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.offsets.push(end);
        Ok(())
    }

    /// Arrow arrays: `knn_k, knn, [knn_dist], n_components, largest_component, mean_degree,
    /// max_degree`.
    pub fn into_arrays(mut self, distances: bool) -> Vec<ArrayRef> {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let offsets = OffsetBuffer::new(self.offsets.into());
        let item = |t: DataType| Arc::new(Field::new("item", t, false));
        let mut out: Vec<ArrayRef> = vec![
            Arc::new(UInt16Array::from(self.k_eff)),
            Arc::new(ListArray::new(
                item(DataType::UInt16),
                offsets.clone(),
                Arc::new(UInt16Array::from(self.knn)),
                None,
            )),
        ];
        if distances {
            out.push(Arc::new(ListArray::new(
                item(DataType::Float32),
                offsets,
                Arc::new(Float32Array::from(self.dist)),
                None,
            )));
        }
        out.push(Arc::new(UInt16Array::from(self.components)));
        out.push(Arc::new(UInt16Array::from(self.largest)));
        out.push(Arc::new(Float32Array::from(self.mean_degree)));
        out.push(Arc::new(UInt16Array::from(self.max_degree)));
        out
    }
}
