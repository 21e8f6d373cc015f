//! Batches: plain, framework-neutral buffers (points `[B, R, F]` zero-padded, mask `[B, R]`,
//! labels, jet ids, neighbours `[B, R, k]`), and their assembly from decoded row groups.

use crate::error::{Error, Result};
use crate::loader::preprocess::Op;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Float32Type, Int8Type, UInt16Type, UInt64Type};

/// One batch. Row-major buffers; `b` indexes jets, `p` points, `f` features, `j` neighbours.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Jets in this batch (B; the last batch of an epoch may be shorter than `batch_size`).
    pub size: usize,
    /// Points per jet after padding (R).
    pub res: usize,
    /// Features per point (F).
    pub features: usize,
    /// `[B, R, F]`: feature f of point p of jet b at `(b·R + p)·F + f`; 0 for padding points.
    pub points: Vec<f32>,
    /// `[B, R]`: 1 for a real point, 0 for padding.
    pub mask: Vec<u8>,
    /// `[B]`: the label stored with the jet (`y` of the source), −1 where the source had none.
    pub labels: Vec<i8>,
    /// `[B]`: jet ids, to join predictions with the `jets` table.
    pub jet_ids: Vec<u64>,
    /// `[B]`: real points per jet.
    pub n_points: Vec<u16>,
    /// Neighbours per point (k), 0 when neighbours are not loaded.
    pub k: usize,
    /// `[B, R, k]` neighbour indices into the jet's points, when loaded. Neighbour j of point p
    /// is real iff `mask[b, p] == 1` and `j < knn_k[b]`; padded entries hold the point's own
    /// index p, so a gather with them stays in range.
    pub neighbours: Vec<u16>,
    /// `[B]`: real neighbours per point, min(k, n_points − 1) (empty when not loaded).
    pub knn_k: Vec<u16>,
}

impl Batch {
    /// `[B, R, k]` 1/0 mask of real neighbours (derived from `mask` and `knn_k`).
    pub fn neighbour_mask(&self) -> Vec<u8> {
        let (r, k) = (self.res, self.k);
        let mut out = vec![0u8; self.size * r * k];
        for b in 0..self.knn_k.len().min(self.size) {
            let real = self.knn_k[b] as usize;
            for p in 0..self.n_points[b] as usize {
                out[(b * r + p) * k..][..real].fill(1);
            }
        }
        out
    }

    fn reset(&mut self, size: usize, res: usize, features: usize, k: usize) {
        self.size = size;
        self.res = res;
        self.features = features;
        self.k = k;
        self.points.resize(size * res * features, 0.0);
        self.mask.resize(size * res, 0);
        self.neighbours.resize(size * res * k, 0);
        self.labels.clear();
        self.jet_ids.clear();
        self.n_points.clear();
        self.knn_k.clear();
    }
}

/// A per-point list column, as decoded.
enum Values {
    F32(ScalarBuffer<f32>),
    U16(ScalarBuffer<u16>),
}

/// A decoded row group with typed views of the columns the loader uses.
pub struct Decoded {
    jet_ids: ScalarBuffer<u64>,
    labels: arrow::array::PrimitiveArray<Int8Type>,
    n_points: ScalarBuffer<u16>,
    features: Vec<(OffsetBuffer<i32>, Values)>,
    knn: Option<(OffsetBuffer<i32>, ScalarBuffer<u16>, ScalarBuffer<u16>)>,
}

/// Which columns to read and in which order they come back (see [`Decoded::new`]).
pub struct Columns {
    /// Schema positions to read, ascending (the projection).
    pub read: Vec<usize>,
    /// Position in the projected batch of jet_id, label, n_points.
    pub meta: [usize; 3],
    /// Position in the projected batch of each feature, in feature order.
    pub features: Vec<usize>,
    /// Position in the projected batch of knn and knn_k, when neighbours are loaded.
    pub knn: Option<[usize; 2]>,
}

impl Columns {
    /// Projection of schema positions `meta` (jet_id, label, n_points), `features` and `knn`.
    pub fn new(meta: [usize; 3], features: &[usize], knn: Option<[usize; 2]>) -> Self {
        let mut read: Vec<usize> = meta.iter().chain(features).copied().collect();
        read.extend(knn.iter().flatten());
        read.sort_unstable();
        read.dedup();
        let at = |c: usize| read.binary_search(&c).expect("projected");
        Self {
            meta: meta.map(at),
            features: features.iter().map(|&c| at(c)).collect(),
            knn: knn.map(|k| k.map(at)),
            read,
        }
    }
}

fn list(b: &RecordBatch, i: usize, what: &str) -> Result<(OffsetBuffer<i32>, Values)> {
    let bad = || Error::Output {
        path: Default::default(),
        msg: format!("column `{what}` is not a list of float32 or uint16"),
    };
    let l = b.column(i).as_list_opt::<i32>().ok_or_else(bad)?;
    let v = l.values();
    let values = match v.data_type() {
        DataType::Float32 => Values::F32(v.as_primitive::<Float32Type>().values().clone()),
        DataType::UInt16 => Values::U16(v.as_primitive::<UInt16Type>().values().clone()),
        _ => return Err(bad()),
    };
    // Offsets relative to the sliced values: a list array may start at a nonzero offset.
    Ok((l.offsets().clone(), values))
}

impl Decoded {
    /// Typed views of a projected row group.
    pub fn new(b: &RecordBatch, c: &Columns, names: &[String]) -> Result<Self> {
        let [id, label, n] = c.meta;
        let knn = match c.knn {
            Some([list_at, k_at]) => {
                let (off, v) = list(b, list_at, "knn")?;
                let Values::U16(v) = v else {
                    return Err(Error::Output {
                        path: Default::default(),
                        msg: "column `knn` is not a list of uint16".into(),
                    });
                };
                let k = b.column(k_at).as_primitive::<UInt16Type>().values().clone();
                Some((off, v, k))
            }
            None => None,
        };
        Ok(Self {
            jet_ids: b.column(id).as_primitive::<UInt64Type>().values().clone(),
            labels: b.column(label).as_primitive::<Int8Type>().clone(),
            n_points: b.column(n).as_primitive::<UInt16Type>().values().clone(),
            features: c
                .features
                .iter()
                .zip(names)
                .map(|(&i, name)| list(b, i, name))
                .collect::<Result<_>>()?,
            knn,
        })
    }
}

/// Fills batches from decoded row groups, applying each feature's transforms.
pub struct Assembler {
    /// Padded points per jet.
    pub res: usize,
    /// Neighbours per point when loaded, else 0.
    pub k: usize,
    /// Transforms of each feature.
    pub ops: Vec<Vec<Op>>,
}

impl Assembler {
    /// Prepares `out` for `size` jets (reusing its buffers).
    pub fn start(&self, out: &mut Batch, size: usize) {
        out.reset(size, self.res, self.ops.len(), self.k);
    }

    /// Writes row `row` of `d` as jet `b` of `out`.
    pub fn put(&self, d: &Decoded, row: usize, b: usize, out: &mut Batch) -> Result<()> {
        let (r, nf) = (self.res, self.ops.len());
        let n = d.n_points[row] as usize;
        if n > r {
            return Err(Error::Output {
                path: Default::default(),
                msg: format!(
                    "jet {} has {n} points, more than the resolution {r}",
                    d.jet_ids[row]
                ),
            });
        }
        out.jet_ids.push(d.jet_ids[row]);
        out.labels.push(if d.labels.is_null(row) {
            -1
        } else {
            d.labels.value(row)
        });
        out.n_points.push(n as u16);
        let pts = &mut out.points[b * r * nf..(b + 1) * r * nf];
        for (f, ((off, values), ops)) in d.features.iter().zip(&self.ops).enumerate() {
            let range = off[row] as usize..off[row + 1] as usize;
            if range.len() != n {
                return Err(Error::Output {
                    path: Default::default(),
                    msg: format!(
                        "jet {}: feature {f} has {} values for {n} points",
                        d.jet_ids[row],
                        range.len()
                    ),
                });
            }
            match values {
                Values::F32(v) => {
                    for (p, &x) in v[range].iter().enumerate() {
                        pts[p * nf + f] = apply(ops, x);
                    }
                }
                Values::U16(v) => {
                    for (p, &x) in v[range].iter().enumerate() {
                        pts[p * nf + f] = apply(ops, f32::from(x));
                    }
                }
            }
        }
        pts[n * nf..].fill(0.0);
        let mask = &mut out.mask[b * r..(b + 1) * r];
        mask[..n].fill(1);
        mask[n..].fill(0);
        if let Some((off, v, kk)) = &d.knn {
            let k = self.k;
            let src = &v[off[row] as usize..off[row + 1] as usize];
            if src.len() != n * k {
                return Err(Error::Output {
                    path: Default::default(),
                    msg: format!(
                        "jet {}: {} kNN entries for {n} points × k={k}",
                        d.jet_ids[row],
                        src.len()
                    ),
                });
            }
            let dst = &mut out.neighbours[b * r * k..(b + 1) * r * k];
            dst[..n * k].copy_from_slice(src);
            for p in n..r {
                dst[p * k..(p + 1) * k].fill(p as u16);
            }
            out.knn_k.push(kk[row]);
        }
        Ok(())
    }
}

#[inline]
fn apply(ops: &[Op], mut x: f32) -> f32 {
    for op in ops {
        x = op.apply(x);
    }
    x
}
