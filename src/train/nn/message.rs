//! Graph convolutions on a batch's kNN lists ([`Graph`]), each matching its PyTorch Geometric
//! definition with the default options, on the directed graph as stored (point i aggregates
//! over its listed neighbours j): `GCNConv`, `SAGEConv` (mean), `GINConv` and `GATConv`
//! (multi-head, concatenated), and ParticleNet's `EdgeConv` block (weaver-core). Inputs and
//! outputs are `[B, R, F]`; padding points come out as zeros. GCN's and GAT's Θ start from
//! Glorot, as PyG's; the other linear maps from Burn's default, which is PyTorch's. `tests/it/gnn.rs` checks every
//! layer against numpy implementations of the PyG formulas on edge lists.

use crate::train::nn::graph::Graph;
use crate::train::nn::rows::batch_norm;
use burn::module::Param;
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, softmax};

/// Applies `lin` to every point of `[B, R, F]` (Burn's `Linear` works on any rank; a
/// reshape to rows first keeps one matrix product).
fn rows(lin: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, r, f] = x.dims();
    let y = lin.forward(x.reshape([b * r, f]));
    let o = y.dims()[1];
    y.reshape([b, r, o])
}

/// `GCNConv(in, out)`: `x'_i = Σ_{j ∈ N(i) ∪ {i}} (d_i d_j)^{-1/2} Θ x_j + b`, where `d` is
/// the in-degree with the self-loop (PyG's `gcn_norm` with `add_self_loops=True`).
#[derive(Module, Debug)]
pub struct GcnConv {
    /// Θ (no bias).
    pub lin: Linear,
    /// b, added after aggregation.
    pub bias: Param<Tensor<1>>,
}

impl GcnConv {
    /// A layer from `i` to `o` features.
    pub fn new(i: usize, o: usize, device: &Device) -> Self {
        Self {
            lin: LinearConfig::new(i, o)
                .with_bias(false)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device),
            bias: Initializer::Zeros.init([o], device),
        }
    }

    /// `[B, R, i]` → `[B, R, o]`.
    pub fn forward(&self, x: Tensor<3>, g: &Graph) -> Tensor<3> {
        let inv = (g.degree() + 1.0).sqrt().recip(); // d^{-1/2}, [B, R, 1]
        let propagate = |v: Tensor<3>| {
            g.gather_sum(v.clone() * inv.clone()) * inv.clone() + v * inv.clone().powi_scalar(2)
        };
        // Θ is linear: propagate on the narrower side of it.
        let [i, o] = self.lin.weight.dims();
        let out = if i <= o {
            rows(&self.lin, propagate(x))
        } else {
            propagate(rows(&self.lin, x))
        };
        g.keep_points(out + self.bias.val().reshape([1, 1, -1]))
    }
}

/// `SAGEConv(in, out)` with mean aggregation: `x'_i = W₁ mean_{j ∈ N(i)} x_j + b + W₂ x_i`.
#[derive(Module, Debug)]
pub struct SageConv {
    /// W₁ and b (PyG's `lin_l`), on the aggregated neighbours.
    pub lin_l: Linear,
    /// W₂ (PyG's `lin_r`, no bias), on the point itself.
    pub lin_r: Linear,
}

impl SageConv {
    /// A layer from `i` to `o` features.
    pub fn new(i: usize, o: usize, device: &Device) -> Self {
        Self {
            lin_l: LinearConfig::new(i, o).init(device),
            lin_r: LinearConfig::new(i, o).with_bias(false).init(device),
        }
    }

    /// `[B, R, i]` → `[B, R, o]`.
    pub fn forward(&self, x: Tensor<3>, g: &Graph) -> Tensor<3> {
        // W₁ is linear: average on the narrower side of it (b is added after).
        let [i, o] = self.lin_l.weight.dims();
        let neighbours = if i <= o {
            rows(&self.lin_l, g.gather_mean(x.clone()))
        } else {
            let w = self.lin_l.weight.val().unsqueeze_dim::<3>(0);
            let mean = g.gather_mean(x.clone().matmul(w));
            match &self.lin_l.bias {
                Some(bias) => mean + bias.val().reshape([1, 1, -1]),
                None => mean,
            }
        };
        g.keep_points(neighbours + rows(&self.lin_r, x))
    }
}

/// `GINConv(nn, eps)` with `nn` = Linear → ReLU → Linear:
/// `x'_i = nn((1 + ε) x_i + Σ_{j ∈ N(i)} x_j)`; ε fixed (PyG's default `train_eps=False`).
#[derive(Module, Debug)]
pub struct GinConv {
    /// The MLP's first layer.
    pub lin1: Linear,
    /// The MLP's second layer.
    pub lin2: Linear,
    /// ε.
    pub eps: f64,
}

impl GinConv {
    /// A layer from `i` to `o` features (both MLP layers `o` wide).
    pub fn new(i: usize, o: usize, eps: f64, device: &Device) -> Self {
        Self {
            lin1: LinearConfig::new(i, o).init(device),
            lin2: LinearConfig::new(o, o).init(device),
            eps,
        }
    }

    /// `[B, R, i]` → `[B, R, o]`.
    pub fn forward(&self, x: Tensor<3>, g: &Graph) -> Tensor<3> {
        let s = g.gather_sum(x.clone()) + x * (1.0 + self.eps);
        g.keep_points(rows(&self.lin2, relu(rows(&self.lin1, s))))
    }
}

/// `GATConv(in, out, heads)` (concatenated heads, self-loops, LeakyReLU slope 0.2, no
/// attention dropout): per head, `α_ij = softmax_{j ∈ N(i) ∪ {i}} LeakyReLU(a_s·Θx_j +
/// a_d·Θx_i)` and `x'_i = Σ_j α_ij Θ x_j`; heads concatenated, plus b.
#[derive(Module, Debug)]
pub struct GatConv {
    /// Θ for all heads, `in → heads·out` (no bias).
    pub lin: Linear,
    /// a_s `[heads, out]`.
    pub att_src: Param<Tensor<2>>,
    /// a_d `[heads, out]`.
    pub att_dst: Param<Tensor<2>>,
    /// b `[heads·out]`.
    pub bias: Param<Tensor<1>>,
    /// Heads.
    pub heads: usize,
}

impl GatConv {
    /// A layer from `i` features to `heads` heads of `o` features each.
    pub fn new(i: usize, o: usize, heads: usize, device: &Device) -> Self {
        // PyG initialises the attention vectors with Glorot (fan-in heads, fan-out o).
        let a = (6.0 / (heads + o) as f64).sqrt();
        let glorot = Initializer::Uniform { min: -a, max: a };
        Self {
            lin: LinearConfig::new(i, heads * o)
                .with_bias(false)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device),
            att_src: glorot.init([heads, o], device),
            att_dst: glorot.init([heads, o], device),
            bias: Initializer::Zeros.init([heads * o], device),
            heads,
        }
    }

    /// `[B, R, i]` → `[B, R, heads·o]`.
    pub fn forward(&self, x: Tensor<3>, g: &Graph) -> Tensor<3> {
        let [b, r, k] = g.dims();
        let (h, c) = (self.heads, self.att_src.dims()[1]);
        let theta = rows(&self.lin, x); // [B, R, H·C]
        let score = |a: &Param<Tensor<2>>| {
            (theta.clone().reshape([b, r, h, c]) * a.val().reshape([1, 1, h, c]))
                .sum_dim(3)
                .reshape([b, r, h])
        };
        let (src, dst) = (score(&self.att_src), score(&self.att_dst));
        // Logits over the k neighbours and the self-loop (last): [B, R, k + 1, H].
        let e = Tensor::cat(
            vec![
                g.gather(src.clone()) + dst.clone().reshape([b, r, 1, h]),
                (src + dst).reshape([b, r, 1, h]),
            ],
            2,
        );
        let device = e.device();
        let valid = Tensor::cat(
            vec![
                g.neighbour_mask.clone().reshape([b, r, k, 1]),
                Tensor::<4>::ones([b, r, 1, 1], &device),
            ],
            2,
        );
        let pad = valid.lower_elem(0.5).expand([b, r, k + 1, h]);
        let alpha = softmax(leaky_relu(e, 0.2).mask_fill(pad, -1e9), 2);
        let values = Tensor::cat(
            vec![
                g.gather(theta.clone()).reshape([b, r, k, h, c]),
                theta.reshape([b, r, 1, h, c]),
            ],
            2,
        );
        let out = (values * alpha.reshape([b, r, k + 1, h, 1]))
            .sum_dim(2)
            .reshape([b, r, h * c]);
        g.keep_points(out + self.bias.val().reshape([1, 1, -1]))
    }
}

/// ParticleNet's `EdgeConvBlock` (weaver-core): edge features `[x_i, x_j − x_i]`, then per
/// width a 1×1 convolution (no bias) → BatchNorm → ReLU, the mean over the real neighbours,
/// a shortcut (1×1 convolution + BatchNorm when the width changes, else the input), ReLU.
/// A padding entry of a neighbour list is a zero neighbour (edge `[x_i, −x_i]`, as weaver-core's
/// padded particles); it is left out of the mean but, like the padding points' rows (all
/// zeros), it enters the batch statistics in training, as in weaver-core. In evaluation a
/// jet's output does not depend on its padding.
#[derive(Module, Debug)]
pub struct EdgeConv {
    /// The 1×1 convolutions on edge features (no bias).
    pub convs: Vec<Linear>,
    /// Their batch norms.
    pub bns: Vec<BatchNorm>,
    /// Shortcut convolution and batch norm, when the width changes.
    pub shortcut: Option<(Linear, BatchNorm)>,
}

impl EdgeConv {
    /// A block from `i` features through `widths`.
    pub fn new(i: usize, widths: &[usize], device: &Device) -> Self {
        let mut inp = 2 * i;
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for &w in widths {
            convs.push(LinearConfig::new(inp, w).with_bias(false).init(device));
            bns.push(BatchNormConfig::new(w).init(device));
            inp = w;
        }
        let shortcut = (i != inp).then(|| {
            (
                LinearConfig::new(i, inp).with_bias(false).init(device),
                BatchNormConfig::new(inp).init(device),
            )
        });
        Self {
            convs,
            bns,
            shortcut,
        }
    }

    /// Values that Burn's `num_params` counts but PyTorch does not (the batch norms' running
    /// mean and variance, buffers in PyTorch).
    pub fn bn_buffers(&self) -> usize {
        let sc = self
            .shortcut
            .as_ref()
            .map_or(0, |(_, bn)| bn.gamma.dims()[0]);
        2 * (self.bns.iter().map(|bn| bn.gamma.dims()[0]).sum::<usize>() + sc)
    }

    /// `[B, R, i]` → `[B, R, widths.last()]`.
    pub fn forward(&self, x: Tensor<3>, g: &Graph) -> Tensor<3> {
        let [b, r, k] = g.dims();
        let f = x.dims()[2];
        // The first convolution of `[x_i, x_j − x_i]` with W = [W_a; W_b] is
        // x_i (W_a − W_b) + x_j W_b: two products per point instead of one per edge, and the
        // edge tensor is never built (a padding entry gathers 0, i.e. x_j = 0).
        let w = self.convs[0].weight.val();
        let (wa, wb) = (w.clone().narrow(0, 0, f), w.narrow(0, f, f));
        let c0 = wb.dims()[1];
        let rows = x.clone().reshape([b * r, f]);
        let own = rows.clone().matmul(wa - wb.clone()).reshape([b, r, 1, c0]);
        let neighbour = g.gather(rows.matmul(wb).reshape([b, r, c0]));
        let mut e = (neighbour + own).reshape([b * r * k, c0]);
        e = relu(batch_norm(&self.bns[0], e));
        for (conv, bn) in self.convs.iter().zip(&self.bns).skip(1) {
            e = relu(batch_norm(bn, conv.forward(e)));
        }
        let c = e.dims()[1];
        let fts = g.mean(e.reshape([b, r, k, c]));
        let sc = match &self.shortcut {
            Some((conv, bn)) => {
                batch_norm(bn, conv.forward(x.reshape([b * r, f]))).reshape([b, r, c])
            }
            None => x,
        };
        g.keep_points(relu(sc + fts))
    }
}
