//! Multi-head scaled dot-product self-attention on `[B, N, D]` tokens, as ViT-style code writes
//! it (pre-LayerNorm, one bias-free `qkv` projection, an output projection), with an optional
//! key mask: masked keys get −1e9 before the softmax, so no token attends to them (their
//! weight underflows to exactly 0). At least one key per jet must stay unmasked.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// Self-attention with `heads` heads of `dim_head` each.
#[derive(Module, Debug)]
pub struct SelfAttention {
    norm: LayerNorm,
    qkv: Linear,
    out: Linear,
    heads: usize,
    dim_head: usize,
}

impl SelfAttention {
    /// Attention over `dim`-wide tokens; the inner width is `heads · dim_head`.
    pub fn new(dim: usize, heads: usize, dim_head: usize, device: &Device) -> Self {
        let inner = heads * dim_head;
        Self {
            norm: LayerNormConfig::new(dim).init(device),
            qkv: LinearConfig::new(dim, 3 * inner)
                .with_bias(false)
                .init(device),
            out: LinearConfig::new(inner, dim).init(device),
            heads,
            dim_head,
        }
    }

    /// `[B, N, D]` → `[B, N, D]` (without the residual); `keys`: `[B, N]` 1.0 for tokens that
    /// may be attended to, 0.0 for masked ones.
    pub fn forward(&self, x: Tensor<3>, keys: Option<Tensor<2>>) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let (h, dh) = (self.heads, self.dim_head);
        let qkv = self.qkv.forward(self.norm.forward(x));
        // The last axis holds (q | k | v), each (head, dim_head) as in `b n (h d)`.
        let qkv = qkv.reshape([b, n, 3, h, dh]);
        let part = |i: usize| {
            qkv.clone()
                .narrow(2, i, 1)
                .reshape([b, n, h, dh])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (part(0), part(1), part(2));
        let scale = (dh as f64).powf(-0.5);
        let mut dots = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
        if let Some(m) = keys {
            let bias = (m.neg() + 1.0).mul_scalar(-1e9).reshape([b, 1, 1, n]);
            dots = dots + bias;
        }
        let out = softmax(dots, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, n, h * dh]);
        self.out.forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Plain loops over the same weights: softmax(q·kᵀ/√d + mask)·v per head.
    fn reference(a: &SelfAttention, x: &Tensor<3>, keys: Option<&[f32]>) -> Vec<f32> {
        let [b, n, d] = x.dims();
        let (h, dh) = (a.heads, a.dim_head);
        let xn: Vec<f32> = a.norm.forward(x.clone()).try_into_vec_as().unwrap();
        let w: Vec<f32> = a.qkv.weight.val().try_into_vec_as().unwrap(); // [d, 3·h·dh]
        let proj = |t: usize, c: usize| -> f32 {
            (0..d).map(|i| xn[t * d + i] * w[i * 3 * h * dh + c]).sum()
        };
        let mut cat = vec![0f32; b * n * h * dh];
        for bb in 0..b {
            for hh in 0..h {
                for i in 0..n {
                    let ti = bb * n + i;
                    let mut s: Vec<f64> = (0..n)
                        .map(|j| {
                            let tj = bb * n + j;
                            let dot: f32 = (0..dh)
                                .map(|e| proj(ti, hh * dh + e) * proj(tj, h * dh + hh * dh + e))
                                .sum();
                            let masked = keys.is_some_and(|k| k[bb * n + j] == 0.0);
                            f64::from(dot) / (dh as f64).sqrt() - if masked { 1e9 } else { 0.0 }
                        })
                        .collect();
                    let mx = s.iter().cloned().fold(f64::MIN, f64::max);
                    s.iter_mut().for_each(|v| *v = (*v - mx).exp());
                    let z: f64 = s.iter().sum();
                    for e in 0..dh {
                        let val: f64 = (0..n)
                            .map(|j| {
                                s[j] / z * f64::from(proj(bb * n + j, 2 * h * dh + hh * dh + e))
                            })
                            .sum();
                        cat[ti * h * dh + hh * dh + e] = val as f32;
                    }
                }
            }
        }
        let t = Tensor::<3>::from_data(TensorData::new(cat, [b, n, h * dh]), &x.device());
        a.out.forward(t).try_into_vec_as().unwrap()
    }

    #[test]
    fn attention_matches_loops_with_and_without_a_key_mask() {
        let device = Device::flex();
        let a = SelfAttention::new(6, 2, 4, &device);
        let x = Tensor::<3>::random([2, 5, 6], Distribution::Normal(0.0, 1.0), &device);
        let keys = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0];
        for k in [None, Some(&keys[..])] {
            let m = k.map(|k| Tensor::<2>::from_data(TensorData::new(k.to_vec(), [2, 5]), &device));
            let got: Vec<f32> = a.forward(x.clone(), m).try_into_vec_as().unwrap();
            let want = reference(&a, &x, k);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{g} vs {w} (mask {})", k.is_some());
            }
        }
    }
}
