//! Point-cloud stage: jet image → top-R hit pixels at every resolution, in one pass.
//!
//! Rule (deterministic form of the e2e_sparse selection): a pixel is a point when any channel
//! is > `threshold`; points are ranked by Σ value² (or Σ value) over the rank channels (all by
//! default), accumulated in float32 in channel order, descending; resolution R keeps the
//! first R. One partial sort per jet serves every resolution, so each resolution is a prefix
//! of the next. Invalid pixels (NaN, ±inf, negative in an unsigned channel) are handled by
//! `source.on_invalid`.
//!
//! Ties (equal scores: an HCAL tower is a block of equal pixels) are ordered by [`tie_key`],
//! a hash of the pixel index salted with the jet's hit count, then by pixel index. e2e_sparse
//! breaks them at random (numpy's unstable argsort); breaking them by row-major index, as
//! jetpipe did before, kept the top rows of a tower cut at the last rank, a systematic shift
//! in η (`benches/tie_bias.py` measures it on the sample: before and after). The hash is as
//! unbiased as the random order, but deterministic and a function of the image alone.

use crate::batch::{ImageBatch, JetTables, Rejection};
use crate::config::{OnInvalid, PipelineConfig, RankBy, RowAxis};
use crate::error::{Error, Result};
use crate::profile::{Clock, Stage};
use crate::source::ImageGeometry;
use crate::source::chunks::ChunkDecoder;
use crate::stages::features::{FeatureColumns, FeatureStage};
use crate::stages::knn::{JetPoints, KnnColumns, KnnScratch, KnnStage};
use crate::store::tables::{jets_schema, points_schema};
use arrow::array::{
    ArrayRef, Float32Array, Int8Array, ListArray, PrimitiveArray, StringArray, UInt16Array,
    UInt32Array, UInt64Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{ArrowPrimitiveType, Field, Float32Type, SchemaRef, UInt16Type};
use arrow::record_batch::RecordBatch;
use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::Arc;

/// A hit pixel: its rank score, tie key and row-major index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Σ value² or Σ value over channels (−0 normalised to +0).
    pub score: f32,
    /// [`tie_key`] of the pixel: the order among equal scores.
    pub tie: u32,
    /// Row-major pixel index (row × width + col).
    pub pixel: u32,
}

/// The ranking order: score descending, then tie key ascending, then pixel index ascending.
/// A total order.
pub fn rank_order(a: &Candidate, b: &Candidate) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.tie.cmp(&b.tie))
        .then(a.pixel.cmp(&b.pixel))
}

/// The tie key of row-major pixel `pixel` in a jet with `n_hits` hit pixels: a 32-bit
/// integer hash (multiply–xorshift rounds, all arithmetic modulo 2³²), so pixels of equal
/// score come in an order that carries no preference for any row or column. In numpy, with
/// `p` and `n` as `uint32`: `h = (p * 0x9E3779B1) ^ (n * 0x85EBCA77)`, then `h ^= h >> 15;
/// h *= 0x2C1B3C6D; h ^= h >> 12; h *= 0x297A2D39; h ^= h >> 15`.
#[inline]
pub fn tie_key(pixel: u32, n_hits: u32) -> u32 {
    let mut h = pixel.wrapping_mul(0x9E37_79B1) ^ n_hits.wrapping_mul(0x85EB_CA77);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^ (h >> 15)
}

/// Per-worker buffers reused from jet to jet.
#[derive(Default)]
pub struct Scratch {
    candidates: Vec<Candidate>,
    nonzero: Vec<u32>,
    knn: KnnScratch,
    decoder: ChunkDecoder,
}

/// The configured, ready-to-run stage.
pub struct PointCloudStage {
    geometry: ImageGeometry,
    threshold: f32,
    rank_by: RankBy,
    resolutions: Vec<usize>,
    pixel_size: f32,
    row_axis: RowAxis,
    on_invalid: OnInvalid,
    channels: Vec<String>,
    /// Per channel: may the value be negative?
    signed: Vec<bool>,
    /// Per channel: does it enter the rank score?
    ranked: Vec<bool>,
    labels: Vec<i8>,
    files: Vec<PathBuf>,
    knn: Option<KnnStage>,
    features: Option<FeatureStage>,
    jets_schema: SchemaRef,
    points_schema: SchemaRef,
}

/// Column buffers of one resolution's points table for one batch.
struct PointColumns {
    offsets: Vec<i32>,
    n_points: Vec<u16>,
    row: Vec<u16>,
    col: Vec<u16>,
    eta: Vec<f32>,
    phi: Vec<f32>,
    values: Vec<Vec<f32>>,
}

impl PointColumns {
    fn new(channels: usize, jets: usize, points: usize) -> Self {
        let mut offsets = Vec::with_capacity(jets + 1);
        offsets.push(0);
        Self {
            offsets,
            n_points: Vec::with_capacity(jets),
            row: Vec::with_capacity(points),
            col: Vec::with_capacity(points),
            eta: Vec::with_capacity(points),
            phi: Vec::with_capacity(points),
            values: (0..channels).map(|_| Vec::with_capacity(points)).collect(),
        }
    }
}

fn list_array<T: ArrowPrimitiveType>(
    offsets: &OffsetBuffer<i32>,
    values: Vec<T::Native>,
) -> ArrayRef {
    let item = Arc::new(Field::new("item", T::DATA_TYPE, false));
    let values = Arc::new(PrimitiveArray::<T>::from_iter_values(values));
    Arc::new(ListArray::new(item, offsets.clone(), values, None))
}

/// A pixel value is valid when finite and, unless its channel is signed, >= 0.
fn valid(v: f32, signed: bool) -> bool {
    if signed {
        v.is_finite()
    } else {
        (0.0..f32::INFINITY).contains(&v)
    }
}

impl PointCloudStage {
    /// Builds the stage for a run over images of `geometry` read from `files`.
    pub fn new(cfg: &PipelineConfig, geometry: ImageGeometry, files: Vec<PathBuf>) -> Self {
        let pc = &cfg.stages.pointcloud;
        Self {
            geometry,
            threshold: pc.threshold,
            rank_by: pc.rank_by,
            resolutions: pc.resolutions.iter().map(|&r| r as usize).collect(),
            pixel_size: pc.pixel_size,
            row_axis: pc.row_axis,
            on_invalid: cfg.source.on_invalid,
            channels: cfg.source.channels.clone(),
            signed: (cfg.source.channels.iter())
                .map(|c| cfg.source.signed_channels.contains(c))
                .collect(),
            ranked: (cfg.source.channels.iter())
                .map(|c| pc.rank_channels.as_ref().is_none_or(|r| r.contains(c)))
                .collect(),
            labels: cfg.source.labels.clone(),
            files,
            knn: (cfg.stages.knn.as_ref())
                .map(|k| KnnStage::new(k, &cfg.source.channels, pc.pixel_size)),
            features: (cfg.stages.features.as_ref()).map(|f| FeatureStage::new(cfg, f, geometry)),
            jets_schema: jets_schema(cfg),
            points_schema: points_schema(cfg),
        }
    }

    /// Scans one image: validates pixels (applying `on_invalid`), fills `out` with the top
    /// `max(resolutions)` candidates in rank order, `nonzero` with the row-major index of
    /// every pixel with a nonzero value (in pixel order; what the features stage reads) and
    /// `sums` with per-channel totals. Returns the number of hit pixels, or
    /// `(pixel, channel, value)` of the first invalid value when `on_invalid` is not `zero`.
    ///
    /// Jet images are ~97 % zeros: blocks of 16 pixels that are all ±0 are skipped with one
    /// vectorisable test; zeros change neither sums nor scores, and NaN, ±inf and negative
    /// values are all nonzero, so every invalid value is still seen.
    pub fn select(
        &self,
        image: &mut [f32],
        out: &mut Vec<Candidate>,
        nonzero: &mut Vec<u32>,
        sums: &mut [f32],
        zeroed: &mut u64,
    ) -> std::result::Result<usize, (usize, usize, f32)> {
        const BLOCK: usize = 16;
        let g = self.geometry;
        let (ps, cs) = g.strides();
        let n_ch = g.channels;
        out.clear();
        nonzero.clear();
        sums.iter_mut().for_each(|s| *s = 0.0);
        // A value is zero when its bits without the sign are zero.
        let any_bits = |vals: &[f32]| vals.iter().fold(0u32, |a, &v| a | (v.to_bits() << 1)) != 0;
        let pixels = g.pixels();
        for p0 in (0..pixels).step_by(BLOCK) {
            let p1 = (p0 + BLOCK).min(pixels);
            let busy = if ps == n_ch {
                any_bits(&image[p0 * ps..p1 * ps])
            } else {
                (0..n_ch).any(|c| any_bits(&image[c * cs + p0..c * cs + p1]))
            };
            if !busy {
                continue;
            }
            for p in p0..p1 {
                let base = p * ps;
                if (0..n_ch).all(|c| image[base + c * cs].to_bits() << 1 == 0) {
                    continue;
                }
                nonzero.push(p as u32);
                let mut hit = false;
                let mut score = 0.0f32;
                for (c, sum) in sums.iter_mut().enumerate() {
                    let v = &mut image[base + c * cs];
                    if !valid(*v, self.signed[c]) {
                        match self.on_invalid {
                            OnInvalid::Zero => {
                                *v = 0.0;
                                *zeroed += 1;
                            }
                            _ => return Err((p, c, *v)),
                        }
                    }
                    let v = *v;
                    *sum += v;
                    hit |= v > self.threshold;
                    if self.ranked[c] {
                        score += match self.rank_by {
                            RankBy::SumSq => v * v,
                            RankBy::Sum => v,
                        };
                    }
                }
                if hit {
                    out.push(Candidate {
                        score: score + 0.0,
                        tie: 0,
                        pixel: p as u32,
                    });
                }
            }
        }
        let n_hits = out.len();
        for c in out.iter_mut() {
            c.tie = tie_key(c.pixel, n_hits as u32);
        }
        let keep = *self.resolutions.last().expect("validated non-empty");
        if n_hits > keep {
            out.select_nth_unstable_by(keep - 1, rank_order);
            out.truncate(keep);
        }
        out.sort_unstable_by(rank_order);
        Ok(n_hits)
    }

    fn label_of(&self, raw: f32, file: usize, index: u64) -> Result<i8> {
        let l = raw as i8;
        if raw.fract() == 0.0 && f32::from(l) == raw && self.labels.contains(&l) {
            Ok(l)
        } else {
            Err(Error::Jet {
                file: self.files[file].clone(),
                index,
                msg: format!(
                    "label value {raw} is not one of the allowed labels {:?} (source.labels)",
                    self.labels
                ),
            })
        }
    }

    /// Converts one batch of images into the jets table and one points table per resolution.
    pub fn process(&self, mut batch: ImageBatch, scratch: &mut Scratch) -> Result<JetTables> {
        let g = self.geometry;
        let n_ch = g.channels;
        let per_jet = g.values_per_jet();
        let file = batch.file;
        let centre = |size: usize| (size as f32 - 1.0) / 2.0;
        let (rc, cc) = (centre(g.height), centre(g.width));

        let mut kept: Vec<usize> = Vec::with_capacity(batch.n);
        let mut n_hits: Vec<u32> = Vec::with_capacity(batch.n);
        let mut sums: Vec<Vec<f32>> = (0..n_ch).map(|_| Vec::with_capacity(batch.n)).collect();
        let mut labels: Vec<i8> = Vec::new();
        let mut rejected = Vec::new();
        let mut zeroed = 0u64;
        let mut cols: Vec<PointColumns> = self
            .resolutions
            .iter()
            .map(|&r| PointColumns::new(n_ch, batch.n, batch.n * r.min(64)))
            .collect();
        let mut jet_sums = vec![0.0f32; n_ch];
        let mut feature_cols = FeatureColumns::default();
        let mut knn_cols: Vec<KnnColumns> = self
            .resolutions
            .iter()
            .map(|_| KnnColumns::default())
            .collect();

        let Scratch {
            candidates,
            nonzero,
            knn: knn_scratch,
            decoder,
        } = scratch;
        for j in 0..batch.n {
            let index = batch.start + j as u64;
            crate::fault::panic_if("JETPIPE_FAULT_PANIC_JET", index);
            let mut clock = Clock::start();
            let image: &mut [f32] = match &batch.raw.compressed {
                Some(stored) => {
                    decoder
                        .image(stored, batch.seq, index, per_jet)
                        .map_err(|msg| Error::Jet {
                            file: self.files[file].clone(),
                            index,
                            msg: format!("cannot read the image dataset: {msg}"),
                        })?
                }
                None => &mut batch.raw.images[j * per_jet..(j + 1) * per_jet],
            };
            clock.lap(Stage::Inflate);
            let selected = self.select(image, candidates, nonzero, &mut jet_sums, &mut zeroed);
            clock.lap(Stage::Select);
            let hits = match selected {
                Ok(h) => h,
                Err((p, c, v)) => {
                    let where_ = format!(
                        "pixel (row {}, col {}) channel `{}` is {v}",
                        p / g.width,
                        p % g.width,
                        self.channels[c]
                    );
                    if self.on_invalid == OnInvalid::SkipJet {
                        rejected.push(Rejection {
                            file: self.files[file].display().to_string(),
                            index,
                            reason: where_,
                        });
                        continue;
                    }
                    return Err(Error::Jet {
                        file: self.files[file].clone(),
                        index,
                        msg: format!(
                            "{where_}: pixel values must be finite and >= 0 (list signed channels in source.signed_channels; set source.on_invalid to skip_jet or zero to continue)"
                        ),
                    });
                }
            };
            if let Some(raw) = &batch.raw.label {
                labels.push(self.label_of(raw[j], file, index)?);
            }
            kept.push(j);
            n_hits.push(hits as u32);
            for (s, v) in sums.iter_mut().zip(&jet_sums) {
                s.push(*v);
            }
            let image = &*image;
            if let Some(f) = &self.features {
                f.push(image, nonzero, hits, &mut feature_cols);
            }
            clock.lap(Stage::Features);
            let (ps, cs) = g.strides();
            for (res, pcols) in self.resolutions.iter().zip(cols.iter_mut()) {
                let pts = &candidates[..hits.min(*res)];
                for cand in pts {
                    let p = cand.pixel as usize;
                    let (r, c) = (p / g.width, p % g.width);
                    let (dr, dc) = (
                        (r as f32 - rc) * self.pixel_size,
                        (c as f32 - cc) * self.pixel_size,
                    );
                    let (eta, phi) = match self.row_axis {
                        RowAxis::Eta => (dr, dc),
                        RowAxis::Phi => (dc, dr),
                    };
                    pcols.row.push(r as u16);
                    pcols.col.push(c as u16);
                    pcols.eta.push(eta);
                    pcols.phi.push(phi);
                    for (ch, vals) in pcols.values.iter_mut().enumerate() {
                        vals.push(image[p * ps + ch * cs]);
                    }
                }
                pcols.n_points.push(pts.len() as u16);
                pcols.offsets.push(pcols.row.len() as i32);
            }
            clock.lap(Stage::Points);
            if let Some(knn) = &self.knn {
                let jets: Vec<JetPoints> = cols
                    .iter()
                    .map(|pcols| {
                        let a = pcols.offsets[pcols.offsets.len() - 2] as usize;
                        JetPoints {
                            row: &pcols.row[a..],
                            col: &pcols.col[a..],
                            eta: &pcols.eta[a..],
                            phi: &pcols.phi[a..],
                            values: pcols.values.iter().map(|v| &v[a..]).collect(),
                            shape: (g.height, g.width),
                        }
                    })
                    .collect();
                knn.append_jet(&jets, knn_scratch, &mut knn_cols)
                    .map_err(|e| match e {
                        Error::Jet { msg, .. } => Error::Jet {
                            file: self.files[file].clone(),
                            index,
                            msg,
                        },
                        e => e,
                    })?;
            }
        }
        let mut clock = Clock::start();

        let pick = |v: &Option<Vec<f32>>| -> ArrayRef {
            Arc::new(match v {
                Some(v) => Float32Array::from_iter_values(kept.iter().map(|&j| v[j])),
                None => Float32Array::new_null(kept.len()),
            })
        };
        let jet_id: ArrayRef = Arc::new(UInt64Array::from_iter_values(
            kept.iter()
                .map(|&j| ((file as u64) << 32) | (batch.start + j as u64)),
        ));
        let label: ArrayRef = Arc::new(match &batch.raw.label {
            Some(_) => Int8Array::from(labels),
            None => Int8Array::new_null(kept.len()),
        });
        let pt = pick(&batch.raw.pt);
        let m0 = pick(&batch.raw.m0);
        let n_hits: ArrayRef = Arc::new(UInt32Array::from(n_hits));
        let common = [
            jet_id.clone(),
            label.clone(),
            pt.clone(),
            m0.clone(),
            n_hits.clone(),
        ];

        let mut jet_cols: Vec<ArrayRef> = vec![
            jet_id,
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.files[file].display().to_string(),
                kept.len(),
            ))),
            Arc::new(UInt64Array::from_iter_values(
                kept.iter().map(|&j| batch.start + j as u64),
            )),
            label,
            pt,
            m0,
            n_hits,
        ];
        jet_cols.extend(
            sums.into_iter()
                .map(|s| Arc::new(Float32Array::from(s)) as ArrayRef),
        );
        // Feature columns, matched to the schema by name (none exist for a batch of no jets).
        let mut features = feature_cols.into_arrays();
        for field in self.jets_schema.fields()[jet_cols.len()..].iter() {
            match features.iter().position(|(n, _)| n == field.name()) {
                Some(i) => jet_cols.push(features.swap_remove(i).1),
                None => jet_cols.push(arrow::array::new_empty_array(field.data_type())),
            }
        }
        let jets = RecordBatch::try_new(self.jets_schema.clone(), jet_cols)?;

        let points = cols
            .into_iter()
            .zip(knn_cols)
            .map(|(pc, kc)| {
                let offsets = OffsetBuffer::new(pc.offsets.into());
                let mut arrays: Vec<ArrayRef> = common.to_vec();
                arrays.push(Arc::new(UInt16Array::from(pc.n_points)));
                arrays.push(list_array::<UInt16Type>(&offsets, pc.row));
                arrays.push(list_array::<UInt16Type>(&offsets, pc.col));
                arrays.push(list_array::<Float32Type>(&offsets, pc.eta));
                arrays.push(list_array::<Float32Type>(&offsets, pc.phi));
                for v in pc.values {
                    arrays.push(list_array::<Float32Type>(&offsets, v));
                }
                if let Some(knn) = &self.knn {
                    arrays.extend(kc.into_arrays(knn.stores_distances()));
                }
                RecordBatch::try_new(self.points_schema.clone(), arrays)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;

        clock.lap(Stage::Assemble);
        Ok(JetTables {
            seq: batch.seq,
            unit: batch.unit,
            last_in_unit: batch.last_in_unit,
            jets_in: batch.n,
            jets,
            points,
            rejected,
            zeroed_values: zeroed,
        })
    }
}
