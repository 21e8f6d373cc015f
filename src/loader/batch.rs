//! Batches: plain, framework-neutral buffers (points `[B, R, F]` zero-padded, mask `[B, R]`,
//! labels, jet ids, neighbours `[B, R, k]`), and their assembly from decoded row groups.

use crate::error::{Error, Result};
use crate::loader::decode::Decoded;
use crate::loader::plan::mix64;
use crate::loader::preprocess::{Op, apply_jet, apply_ops};

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
    /// `[C, H, W]` of each jet's image, all 0 when the loader serves no images.
    pub image_dims: [usize; 3],
    /// `[B, C, H, W]` images (the loader's `image:` view), empty when not served.
    pub image: Vec<f32>,
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

    fn reset(
        &mut self,
        size: usize,
        res: usize,
        features: usize,
        k: usize,
        image_dims: [usize; 3],
    ) {
        self.image_dims = image_dims;
        self.image
            .resize(size * image_dims.iter().product::<usize>(), 0.0);
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

/// Fills batches from decoded row groups, applying each feature's transforms.
pub struct Assembler {
    /// Padded points per jet.
    pub res: usize,
    /// Neighbours per point when loaded, else 0.
    pub k: usize,
    /// Transforms of each feature.
    pub ops: Vec<Vec<Op>>,
    /// Features negated for a random half of the jets each epoch (`reflect`).
    reflect: Vec<bool>,
    /// Seed of the reflections.
    seed: u64,
    /// Features with a per-jet transform (`jet_fraction`).
    jetwise: Vec<bool>,
    /// The image view, when served.
    image: Option<ImageView>,
}

/// How the image view is assembled: which decoded columns hold `row`, `col` and the channels
/// (after the features), the served `[C, H, W]`, the pooling and the pixel transforms.
#[derive(Debug, Clone)]
pub struct ImageView {
    /// Index among the decoded columns of `row`; `col` and the channels follow it.
    pub first: usize,
    /// Source image height and width (rows and columns must be below them).
    pub size: [usize; 2],
    /// Pixels per pooled block side.
    pub pool: usize,
    /// Served `[C, H, W]`.
    pub dims: [usize; 3],
    /// Transforms of every pixel.
    pub ops: Vec<Op>,
}

impl Assembler {
    /// An assembler of `res` points per jet, `k` neighbours (0: none), the features' `ops`,
    /// and which features `reflect` with which `seed`.
    pub fn new(res: usize, k: usize, ops: Vec<Vec<Op>>, reflect: Vec<bool>, seed: u64) -> Self {
        let jetwise = ops
            .iter()
            .map(|o| o.iter().any(|op| op.per_jet()))
            .collect();
        Self {
            res,
            k,
            ops,
            reflect,
            seed,
            jetwise,
            image: None,
        }
    }

    /// Also assembles each jet's image.
    pub fn with_image(mut self, view: ImageView) -> Self {
        self.image = Some(view);
        self
    }

    /// Prepares `out` for `size` jets (reusing its buffers).
    pub fn start(&self, out: &mut Batch, size: usize) {
        let dims = self.image.as_ref().map_or([0; 3], |v| v.dims);
        out.reset(size, self.res, self.ops.len(), self.k, dims);
    }

    /// Scatters row `row`'s `n` points (from decoded index `first`) into jet `b`'s image.
    fn put_image(
        &self,
        v: &ImageView,
        d: &Decoded,
        row: usize,
        b: usize,
        out: &mut Batch,
    ) -> Result<()> {
        let [c, h, w] = v.dims;
        let img = &mut out.image[b * c * h * w..(b + 1) * c * h * w];
        img.fill(0.0);
        let (start, end) = (d.starts[row], d.starts[row + 1]);
        let (rows, cols) = (&d.features[v.first], &d.features[v.first + 1]);
        for p in start..end {
            let (r, col) = (rows[p] as usize, cols[p] as usize);
            if r >= v.size[0] || col >= v.size[1] {
                return Err(Error::Loader(format!(
                    "jet {}: point at row {r}, column {col} lies outside the {}×{} image of the loader's `image.size`",
                    d.jet_ids[row], v.size[0], v.size[1]
                )));
            }
            let at = (r / v.pool) * w + col / v.pool;
            for ch in 0..c {
                img[ch * h * w + at] += d.features[v.first + 2 + ch][p];
            }
        }
        if !v.ops.is_empty() {
            for x in img.iter_mut() {
                *x = apply_ops(&v.ops, *x);
            }
        }
        Ok(())
    }

    /// The sign of each feature of jet `id` in `epoch` into `out`: −1 for a reflected one.
    fn signs(&self, id: u64, epoch: u64, out: &mut Vec<f32>) {
        out.clear();
        out.extend((0..self.ops.len()).map(|f| {
            if !self.reflect.get(f).copied().unwrap_or(false) {
                return 1.0;
            }
            let h = mix64(id ^ mix64(self.seed ^ mix64(epoch ^ mix64(f as u64 + 0x5EF1))));
            if h >> 63 == 1 { -1.0 } else { 1.0 }
        }));
    }

    /// Writes row `row` of `d` as jet `b` of `out` (reflections of `epoch`).
    pub fn put(
        &self,
        d: &Decoded,
        row: usize,
        b: usize,
        epoch: u64,
        out: &mut Batch,
    ) -> Result<()> {
        let (r, nf) = (self.res, self.ops.len());
        let n = d.n_points[row] as usize;
        if n > r {
            return Err(Error::Loader(format!(
                "jet {} has {n} points, more than the resolution {r}",
                d.jet_ids[row]
            )));
        }
        out.jet_ids.push(d.jet_ids[row]);
        out.labels.push(d.labels[row]);
        out.n_points.push(n as u16);
        let pts = &mut out.points[b * r * nf..(b + 1) * r * nf];
        let first = d.starts[row];
        SCRATCH.with_borrow_mut(|(signs, jet)| {
            self.signs(d.jet_ids[row], epoch, signs);
            // Point-major: each point's F values are written side by side (sequential stores).
            for (p, out) in pts[..n * nf].chunks_exact_mut(nf).enumerate() {
                for ((((o, values), ops), &sign), &jw) in out
                    .iter_mut()
                    .zip(&d.features)
                    .zip(&self.ops)
                    .zip(signs.iter())
                    .zip(&self.jetwise)
                {
                    if !jw {
                        *o = apply_ops(ops, sign * values[first + p]);
                    }
                }
            }
            // Features with per-jet transforms, through a copy of the jet's values.
            for (f, (values, ops)) in d.features.iter().zip(&self.ops).enumerate() {
                if self.jetwise[f] {
                    jet.clear();
                    jet.extend(values[first..first + n].iter().map(|&x| signs[f] * x));
                    apply_jet(ops, jet);
                    for (p, &x) in jet.iter().enumerate() {
                        pts[p * nf + f] = x;
                    }
                }
            }
        });
        pts[n * nf..].fill(0.0);
        let mask = &mut out.mask[b * r..(b + 1) * r];
        mask[..n].fill(1);
        mask[n..].fill(0);
        if let Some((list, kk)) = &d.knn {
            let k = self.k;
            let dst = &mut out.neighbours[b * r * k..(b + 1) * r * k];
            dst[..n * k].copy_from_slice(&list[first * k..(first + n) * k]);
            for p in n..r {
                dst[p * k..(p + 1) * k].fill(p as u16);
            }
            out.knn_k.push(kk[row]);
        }
        if let Some(v) = &self.image {
            self.put_image(v, d, row, b, out)?;
        }
        Ok(())
    }
}

thread_local! {
    /// Per-thread buffers of `put`: the jet's feature signs, and one feature of the jet for
    /// per-jet transforms.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}
