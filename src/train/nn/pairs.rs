//! Particle-pair interaction features and their embedding, as the Particle Transformer
//! (weaver-core `ParticleTransformer.py`: `pairwise_lv_fts` with 4 outputs, `PairEmbed`).
//!
//! A point is a massless particle: pT = the sum of its energy channels, at (η, φ). For points
//! i, j with Δ = √(Δη² + Δφ²) (Δφ wrapped into [−π, π)):
//! ln Δ, ln kT = ln(min(pTᵢ, pTⱼ)·Δ), ln z = ln(min(pTᵢ, pTⱼ) / (pTᵢ + pTⱼ)),
//! ln m² = ln(2·pTᵢ·pTⱼ·(cosh Δη − cos Δφ)), each argument clamped at 1e-8 (the reference's
//! eps; the pair of a point with itself gives ln 1e-8 for three of them, as in the reference).
//! The features are symmetric in (i, j), so they are computed and embedded for the pairs
//! i ≥ j only (as the reference does) and the `[B, H, R, R]` bias is gathered from them.

use crate::train::nn::rows::batch_norm;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

/// Clamp of every logarithm's argument.
pub const EPS: f32 = 1e-8;

/// The four pair features `[B, P, 4]` (ln kT, ln z, ln Δ, ln m²) of the pairs `(i, j)` listed
/// in `pairs` (`[P]` each), from per-point `pt`, `eta`, `phi` `[B, R]`.
pub fn pair_features(
    pt: Tensor<2>,
    eta: Tensor<2>,
    phi: Tensor<2>,
    i: Tensor<1, Int>,
    j: Tensor<1, Int>,
) -> Tensor<3> {
    let at = |x: &Tensor<2>, idx: &Tensor<1, Int>| x.clone().select(1, idx.clone());
    let (pti, ptj) = (at(&pt, &i), at(&pt, &j));
    let deta = at(&eta, &i) - at(&eta, &j);
    let dphi = wrap(at(&phi, &i) - at(&phi, &j));
    let delta = (deta.clone().powi_scalar(2) + dphi.clone().powi_scalar(2)).sqrt();
    let ptmin = pti.clone().min_pair(ptj.clone());
    let ln = |x: Tensor<2>| x.clamp_min(EPS).log();
    let lnkt = ln(ptmin.clone() * delta.clone());
    let lnz = ln(ptmin / (pti.clone() + ptj.clone()).clamp_min(EPS));
    let lndelta = ln(delta);
    let cosh = (deta.clone().exp() + deta.neg().exp()) * 0.5;
    let m2 = pti * ptj * (cosh - dphi.cos()) * 2.0;
    let lnm2 = ln(m2);
    Tensor::stack(vec![lnkt, lnz, lndelta, lnm2], 2)
}

/// Δφ wrapped into [−π, π).
fn wrap(d: Tensor<2>) -> Tensor<2> {
    let two_pi = 2.0 * std::f32::consts::PI;
    let shifted = d + std::f32::consts::PI;
    shifted.clone() - (shifted / two_pi).floor() * two_pi - std::f32::consts::PI
}

/// The pairs i ≥ j of `r` points (`[R(R+1)/2]` each, row by row), and for every ordered pair
/// (i, j) of the `R × R` matrix the position of {i, j} among them (`[R·R]`).
pub fn lower_pairs(r: usize, device: &Device) -> (Tensor<1, Int>, Tensor<1, Int>, Tensor<1, Int>) {
    let tri = |i: usize, j: usize| i * (i + 1) / 2 + j;
    let (mut is, mut js) = (Vec::new(), Vec::new());
    for i in 0..r {
        for j in 0..=i {
            is.push(i as i64);
            js.push(j as i64);
        }
    }
    let mut pos = Vec::with_capacity(r * r);
    for i in 0..r {
        for j in 0..r {
            pos.push(tri(i.max(j), i.min(j)) as i64);
        }
    }
    let t = |v: Vec<i64>| {
        let n = v.len();
        Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
    };
    (t(is), t(js), t(pos))
}

/// `PairEmbed` of the reference: BatchNorm of the 4 inputs, then per width a 1×1 convolution
/// (a linear map of each pair), BatchNorm and GELU; the last width is the number of heads
/// (the reference's paper configuration keeps the last GELU: `use_pre_activation_pair=False`).
#[derive(Module, Debug)]
pub struct PairEmbed {
    pub(crate) input_bn: BatchNorm,
    pub(crate) layers: Vec<Linear>,
    pub(crate) bns: Vec<BatchNorm>,
}

impl PairEmbed {
    /// Widths e.g. `[64, 64, 64, heads]`.
    pub fn new(widths: &[usize], device: &Device) -> Self {
        let mut layers = Vec::new();
        let mut bns = Vec::new();
        let mut c = 4;
        for &w in widths {
            layers.push(LinearConfig::new(c, w).init(device));
            bns.push(BatchNormConfig::new(w).init(device));
            c = w;
        }
        Self {
            input_bn: BatchNormConfig::new(4).init(device),
            layers,
            bns,
        }
    }

    /// BatchNorm buffers (running mean and variance): not trainable.
    pub fn bn_buffers(&self) -> usize {
        2 * (4 + self.bns.iter().map(|b| b.gamma.dims()[0]).sum::<usize>())
    }

    /// The attention bias `[B, H, R, R]` of points with `pt`, `eta`, `phi` `[B, R]`.
    pub fn forward(&self, pt: Tensor<2>, eta: Tensor<2>, phi: Tensor<2>) -> Tensor<4> {
        let [b, r] = pt.dims();
        let (i, j, pos) = lower_pairs(r, &pt.device());
        let f = pair_features(pt, eta, phi, i, j);
        let p = f.dims()[1];
        let mut x = batch_norm(&self.input_bn, f.reshape([b * p, 4]));
        for (l, bn) in self.layers.iter().zip(&self.bns) {
            x = gelu(batch_norm(bn, l.forward(x)));
        }
        let h = x.dims()[1];
        // [B, P, H] → [B, H, P] → the full symmetric matrix by one gather.
        let tri = x.reshape([b, p, h]).swap_dims(1, 2);
        tri.select(2, pos).reshape([b, h, r, r])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_two_points_match_the_formulas() {
        let d = Device::flex();
        let t = |v: [f32; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, 2]), &d);
        let (pt, eta, phi) = (t([3.0, 1.0]), t([0.1, -0.2]), t([3.0, -3.0]));
        let (i, j, pos) = lower_pairs(2, &d);
        let f: Vec<f32> = pair_features(pt, eta, phi, i, j).try_into_vec_as().unwrap();
        // Pairs (0,0), (1,0), (1,1); Δφ of (1,0): −6 wrapped to 2π − 6.
        let (deta, dphi) = (-0.3f64, 2.0 * std::f64::consts::PI - 6.0);
        let delta = (deta * deta + dphi * dphi).sqrt();
        let want = [
            (1e-8f64).ln(),
            (3.0f64 / 6.0).ln(),
            (1e-8f64).ln(),
            (1e-8f64).ln(),
            (1.0 * delta).ln(),
            (1.0f64 / 4.0).ln(),
            delta.ln(),
            (2.0 * 3.0 * (deta.cosh() - dphi.cos())).ln(),
        ];
        for (g, w) in f[..8].iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-4, "{f:?} vs {want:?}");
        }
        let pos: Vec<i64> = pos.try_into_vec_as().unwrap();
        assert_eq!(pos, [0, 1, 1, 2]);
    }
}
