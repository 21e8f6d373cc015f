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

/// Multi-head attention as PyTorch's `nn.MultiheadAttention` (query, key and value
/// projections with biases, an output projection) with an additive per-head bias
/// `[B, H, Nq, N]` on the logits and a key mask: the attention of the Particle Transformer,
/// whose bias comes from the particle pairs and whose class token queries the particles.
#[derive(Module, Debug)]
pub struct BiasedAttention {
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) out: Linear,
    heads: usize,
}

impl BiasedAttention {
    /// `heads` heads over `dim`-wide tokens (`dim` divisible by `heads`).
    pub fn new(dim: usize, heads: usize, device: &Device) -> Self {
        assert_eq!(
            dim % heads,
            0,
            "attention width {dim} not divisible by {heads} heads"
        );
        let lin = || LinearConfig::new(dim, dim).init(device);
        Self {
            q: lin(),
            k: lin(),
            v: lin(),
            out: lin(),
            heads,
        }
    }

    /// Queries `[B, Nq, D]` over keys/values `[B, N, D]` → `[B, Nq, D]` (after the output
    /// projection). `keys`: `[B, N]` 1.0 for keys that may be attended to (masked ones get
    /// −1e9, so their weight is exactly 0); at least one key per jet must stay.
    pub fn forward(
        &self,
        query: Tensor<3>,
        kv: Tensor<3>,
        bias: Option<Tensor<4>>,
        keys: Option<Tensor<2>>,
    ) -> Tensor<3> {
        let [b, nq, d] = query.dims();
        let n = kv.dims()[1];
        let h = self.heads;
        let dh = d / h;
        let split = |x: Tensor<3>, len: usize| x.reshape([b, len, h, dh]).swap_dims(1, 2);
        let q = split(self.q.forward(query), nq);
        let k = split(self.k.forward(kv.clone()), n);
        let v = split(self.v.forward(kv), n);
        let mut dots = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar((dh as f64).powf(-0.5));
        if let Some(bias) = bias {
            dots = dots + bias;
        }
        if let Some(m) = keys {
            dots = dots + (m.neg() + 1.0).mul_scalar(-1e9).reshape([b, 1, 1, n]);
        }
        let o = softmax(dots, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, nq, d]);
        self.out.forward(o)
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

    /// `BiasedAttention` against loops: a class-token-like query over other keys, a per-head
    /// bias and a key mask.
    #[test]
    fn biased_attention_matches_loops() {
        let device = Device::flex();
        let (b, nq, n, d, h) = (2, 2, 4, 6, 3);
        let a = BiasedAttention::new(d, h, &device);
        let q = Tensor::<3>::random([b, nq, d], Distribution::Normal(0.0, 1.0), &device);
        let kv = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &device);
        let bias = Tensor::<4>::random([b, h, nq, n], Distribution::Normal(0.0, 2.0), &device);
        let keys = [1.0f32, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0];
        let m = Tensor::<2>::from_data(TensorData::new(keys.to_vec(), [b, n]), &device);
        let got: Vec<f32> = (a.forward(q.clone(), kv.clone(), Some(bias.clone()), Some(m)))
            .try_into_vec_as()
            .unwrap();
        let lin = |l: &Linear, x: &Tensor<3>| -> Vec<f32> {
            l.forward(x.clone()).try_into_vec_as().unwrap()
        };
        let (qp, kp, vp) = (lin(&a.q, &q), lin(&a.k, &kv), lin(&a.v, &kv));
        let bias: Vec<f32> = bias.try_into_vec_as().unwrap();
        let dh = d / h;
        let mut cat = vec![0f32; b * nq * d];
        for bb in 0..b {
            for hh in 0..h {
                for i in 0..nq {
                    let logits: Vec<f64> = (0..n)
                        .map(|j| {
                            let dot: f64 = (0..dh)
                                .map(|e| {
                                    f64::from(qp[(bb * nq + i) * d + hh * dh + e])
                                        * f64::from(kp[(bb * n + j) * d + hh * dh + e])
                                })
                                .sum();
                            dot / (dh as f64).sqrt()
                                + f64::from(bias[((bb * h + hh) * nq + i) * n + j])
                        })
                        .collect();
                    let real: Vec<usize> = (0..n).filter(|&j| keys[bb * n + j] > 0.5).collect();
                    let top = real.iter().map(|&j| logits[j]).fold(f64::MIN, f64::max);
                    let z: f64 = real.iter().map(|&j| (logits[j] - top).exp()).sum();
                    for e in 0..dh {
                        let v: f64 = (real.iter())
                            .map(|&j| {
                                (logits[j] - top).exp() / z
                                    * f64::from(vp[(bb * n + j) * d + hh * dh + e])
                            })
                            .sum();
                        cat[(bb * nq + i) * d + hh * dh + e] = v as f32;
                    }
                }
            }
        }
        let t = Tensor::<3>::from_data(TensorData::new(cat, [b, nq, d]), &device);
        let want: Vec<f32> = a.out.forward(t).try_into_vec_as().unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
        }
    }
}
