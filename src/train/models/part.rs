//! The Particle Transformer (ParT; Qu, Li, Qian 2022; weaver-core `ParticleTransformer.py`,
//! paper configuration) on jetpipe's point clouds.
//!
//! - **Embedding**: BatchNorm of the point features, then per width (128, 512, 128)
//!   LayerNorm → Linear → GELU; padding tokens are zeroed.
//! - **Interaction**: the pair features of every two points (ln kT, ln z, ln ΔR, ln m², see
//!   [`pairs`](crate::train::nn::pairs)) embedded by `PairEmbed` (64, 64, 64, heads) into a
//!   per-head bias `[B, H, R, R]` added to every particle block's attention logits.
//! - **Particle blocks** (8): NormFormer-style pre-LN blocks as the reference's `Block`:
//!   LN → multi-head attention (bias, key mask) → per-head scale `c_attn` → LN → dropout →
//!   residual; LN → Linear(d, 4d) → GELU → dropout → LN → Linear(4d, d) → dropout → residual
//!   scaled per channel by `w_resid`.
//! - **Class blocks** (2, no dropout): a learned class token queries LN([cls, particles]).
//! - **Head**: LN of the class token, with the run's jet inputs beside it, → one logit.
//!
//! The pair features need each point's kinematics as stored, so `vectors` names the loader
//! features that hold η, φ and the energy channels, untransformed (the registry checks it);
//! the embedding reads every feature, transformed or not.
//!
//! Differences from the reference, none of which changes what the model can represent: the
//! per-head scale multiplies channels in (head, dim) order (the 2022 code's einsum also
//! permutes them), padding is kept out by the key mask as there, and no sequence trimming is
//! done (the loader already pads to R). Padded pairs enter PairEmbed's batch statistics in
//! training, as in the 2022 reference.

use crate::loader::LoaderSpec;
use crate::train::contract::{Classifier, Dims, Inputs, Needs};
use crate::train::nn::attention::BiasedAttention;
use crate::train::nn::beside_jets;
use crate::train::nn::pairs::PairEmbed;
use crate::train::nn::rows::batch_norm;
use burn::module::Param;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which loader features (by position in the loader's `features` list) hold each point's
/// kinematics for the pair features. They must be the columns as stored (no transforms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Vectors {
    /// Position of the `eta` feature.
    #[serde(default = "three")]
    pub eta: usize,
    /// Position of the `phi` feature.
    #[serde(default = "four")]
    pub phi: usize,
    /// Positions of the energy channels; a point's pT is their sum.
    #[serde(default = "channels")]
    pub energy: Vec<usize>,
}

impl Default for Vectors {
    fn default() -> Self {
        Self {
            eta: 3,
            phi: 4,
            energy: channels(),
        }
    }
}

fn three() -> usize {
    3
}
fn four() -> usize {
    4
}
fn channels() -> Vec<usize> {
    vec![0, 1, 2]
}

/// The model's YAML, e.g. `{particle_transformer: {layers: 8}}`. The defaults are a CPU-sized
/// ParT (6 particle blocks of width 64, 8 heads, the 128 leading points: about 13 training
/// jets/s on 2 cores, under an hour per epoch of 32k jets); the paper's model is
/// `{embed_dims: [128, 512, 128], pair_embed_dims: [64, 64, 64], layers: 8, max_points: null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartConfig {
    /// Widths of the point embedding; the last is the token width.
    #[serde(default = "embed_dims")]
    pub embed_dims: Vec<usize>,
    /// Widths of the pair embedding before the last layer (which has one channel per head).
    #[serde(default = "pair_dims")]
    pub pair_embed_dims: Vec<usize>,
    /// Attention heads (must divide the token width).
    #[serde(default = "eight")]
    pub heads: usize,
    /// Particle blocks.
    #[serde(default = "six")]
    pub layers: usize,
    /// Class-attention blocks.
    #[serde(default = "two")]
    pub cls_layers: usize,
    /// Hidden width of each block's MLP, in token widths.
    #[serde(default = "four")]
    pub ffn_ratio: usize,
    /// Dropout of the particle blocks (attention weights, MLP activation, outputs).
    #[serde(default = "dropout")]
    pub dropout: f64,
    /// Add the pair-interaction bias (`false`: a plain particle transformer, the paper's
    /// ablation).
    #[serde(default = "yes")]
    pub interaction: bool,
    /// Where the pair features' kinematics are among the loader features (defaults: the
    /// default features `[tracks, ecal, hcal, eta, phi]`).
    #[serde(default)]
    pub vectors: Vectors,
    /// Attend over the first `max_points` points of each jet only (the highest-ranked: points
    /// are stored in descending energy order); `null`: all R. Attention and the pair
    /// embedding cost grows with the square of the points.
    #[serde(default = "leading")]
    pub max_points: Option<usize>,
}

fn embed_dims() -> Vec<usize> {
    vec![64, 256, 64]
}
fn pair_dims() -> Vec<usize> {
    vec![32, 32, 32]
}
fn eight() -> usize {
    8
}
fn six() -> usize {
    6
}
fn leading() -> Option<usize> {
    Some(128)
}
fn two() -> usize {
    2
}
fn dropout() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}

impl PartConfig {
    /// E.g. `ParT 6×64 (8 heads, 128 points)`.
    pub fn title(&self) -> String {
        let d = self.embed_dims.last().copied().unwrap_or(0);
        let points = self
            .max_points
            .map_or(String::new(), |m| format!(", {m} points"));
        let plain = if self.interaction {
            ""
        } else {
            ", no interaction"
        };
        format!(
            "ParT {}×{d} ({} heads{points}{plain})",
            self.layers, self.heads
        )
    }

    /// Points and their mask.
    pub fn needs(&self) -> Needs {
        Needs {
            points: true,
            mask: true,
            neighbours: false,
            all_jet_inputs_by_default: false,
            image: false,
        }
    }

    /// Why this configuration cannot be built on these loader settings, if it cannot.
    pub fn invalid(&self, loader: &LoaderSpec) -> Option<String> {
        let d = *self.embed_dims.last()?;
        if self.embed_dims.contains(&0) || self.pair_embed_dims.contains(&0) {
            return Some("widths must be positive".into());
        }
        if self.heads == 0 || d % self.heads != 0 {
            return Some(format!(
                "token width {d} is not divisible by {} heads",
                self.heads
            ));
        }
        if self.max_points == Some(0) {
            return Some("max_points must be positive".into());
        }
        if self.ffn_ratio == 0 || !(0.0..1.0).contains(&self.dropout) {
            return Some("ffn_ratio must be positive and dropout in [0, 1)".into());
        }
        if !self.interaction {
            return None;
        }
        let v = &self.vectors;
        if v.energy.is_empty() {
            return Some("vectors.energy lists no channel".into());
        }
        let f = &loader.features;
        let named = |i: usize, want: Option<&str>, role: &str| -> Option<String> {
            let Some(spec) = f.get(i) else {
                return Some(format!(
                    "vectors.{role} = {i}, but the loader has {} features",
                    f.len()
                ));
            };
            if !spec.transforms().is_empty() {
                return Some(format!(
                    "vectors.{role} = {i} is `{}` with transforms; the pair features need it as stored (list the column once more without transforms)",
                    spec.column()
                ));
            }
            match want {
                Some(w) if spec.column() != w => Some(format!(
                    "vectors.{role} = {i} is `{}`, not `{w}`",
                    spec.column()
                )),
                _ => None,
            }
        };
        named(v.eta, Some("eta"), "eta")
            .or_else(|| named(v.phi, Some("phi"), "phi"))
            .or_else(|| v.energy.iter().find_map(|&i| named(i, None, "energy")))
            .or_else(|| {
                v.energy
                    .iter()
                    .map(|&i| f[i].column())
                    .find(|c| matches!(*c, "eta" | "phi" | "row" | "col" | "point_index"))
                    .map(|c| format!("vectors.energy lists `{c}`, not an energy channel"))
            })
    }
}

/// A particle block, or (with a class token) a class-attention block.
#[derive(Module, Debug)]
struct Block {
    pre_attn_norm: LayerNorm,
    attn: BiasedAttention,
    c_attn: Param<Tensor<1>>,
    post_attn_norm: LayerNorm,
    pre_fc_norm: LayerNorm,
    fc1: Linear,
    post_fc_norm: LayerNorm,
    fc2: Linear,
    w_resid: Param<Tensor<1>>,
    dropout: Dropout,
    heads: usize,
}

impl Block {
    fn new(d: usize, heads: usize, ffn: usize, dropout: f64, device: &Device) -> Self {
        let ones = Initializer::Ones;
        Self {
            pre_attn_norm: LayerNormConfig::new(d).init(device),
            attn: BiasedAttention::new(d, heads, device),
            c_attn: ones.init([heads], device),
            post_attn_norm: LayerNormConfig::new(d).init(device),
            pre_fc_norm: LayerNormConfig::new(d).init(device),
            fc1: LinearConfig::new(d, ffn * d).init(device),
            post_fc_norm: LayerNormConfig::new(ffn * d).init(device),
            fc2: LinearConfig::new(ffn * d, d).init(device),
            w_resid: ones.init([d], device),
            dropout: DropoutConfig::new(dropout).init(),
            heads,
        }
    }

    /// Particle block on `x` `[B, N, d]` (with `bias` and key mask `keys`), or, with `cls`
    /// `[B, 1, d]`, the class block: returns the new class token.
    fn forward(
        &self,
        x: Tensor<3>,
        cls: Option<Tensor<3>>,
        bias: Option<Tensor<4>>,
        keys: Tensor<2>,
    ) -> Tensor<3> {
        let (residual, attended) = match cls {
            Some(c) => {
                let u = self
                    .pre_attn_norm
                    .forward(Tensor::cat(vec![c.clone(), x], 1));
                let [b, _] = keys.dims();
                let keys = Tensor::cat(vec![Tensor::ones([b, 1], &keys.device()), keys], 1);
                (c.clone(), self.attn.forward(c, u, None, Some(keys)))
            }
            None => {
                let xn = self.pre_attn_norm.forward(x.clone());
                (x, self.attn.forward(xn.clone(), xn, bias, Some(keys)))
            }
        };
        let [b, n, d] = attended.dims();
        let h = self.heads;
        let scale = self.c_attn.val().reshape([1, 1, h, 1]);
        let attended = (attended.reshape([b, n, h, d / h]) * scale).reshape([b, n, d]);
        let y = self.dropout.forward(self.post_attn_norm.forward(attended)) + residual;
        let z = gelu(self.fc1.forward(self.pre_fc_norm.forward(y.clone())));
        let z = self
            .fc2
            .forward(self.post_fc_norm.forward(self.dropout.forward(z)));
        self.dropout.forward(z) + y * self.w_resid.val().reshape([1, 1, d])
    }
}

/// The Particle Transformer.
#[derive(Module, Debug)]
pub struct ParT {
    input_bn: BatchNorm,
    embed_norms: Vec<LayerNorm>,
    embed: Vec<Linear>,
    pairs: Option<PairEmbed>,
    blocks: Vec<Block>,
    cls_blocks: Vec<Block>,
    cls: Param<Tensor<3>>,
    norm: LayerNorm,
    head: Linear,
    eta: usize,
    phi: usize,
    energy: Vec<usize>,
    max_points: Option<usize>,
}

impl ParT {
    /// A model of `cfg` for `dims` (the registry has checked `cfg` against the loader).
    pub fn new(cfg: &PartConfig, dims: Dims, device: &Device) -> Self {
        let mut c = dims.features;
        let (mut embed_norms, mut embed) = (Vec::new(), Vec::new());
        for &w in &cfg.embed_dims {
            embed_norms.push(LayerNormConfig::new(c).init(device));
            embed.push(LinearConfig::new(c, w).init(device));
            c = w;
        }
        let mut pair_widths = cfg.pair_embed_dims.clone();
        pair_widths.push(cfg.heads);
        let block = |dropout| Block::new(c, cfg.heads, cfg.ffn_ratio, dropout, device);
        Self {
            input_bn: BatchNormConfig::new(dims.features).init(device),
            embed_norms,
            embed,
            pairs: cfg
                .interaction
                .then(|| PairEmbed::new(&pair_widths, device)),
            blocks: (0..cfg.layers).map(|_| block(cfg.dropout)).collect(),
            cls_blocks: (0..cfg.cls_layers).map(|_| block(0.0)).collect(),
            cls: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([1, 1, c], device),
            norm: LayerNormConfig::new(c).init(device),
            head: LinearConfig::new(c + dims.jet_inputs, 1).init(device),
            eta: cfg.vectors.eta,
            phi: cfg.vectors.phi,
            energy: cfg.vectors.energy.clone(),
            max_points: cfg.max_points,
        }
    }

    /// Logits `[B]` of points `[B, R, F]` with mask `[B, R]` and jet inputs `[B, J]` (the
    /// first `max_points` points only, when set).
    pub fn forward(
        &self,
        points: Tensor<3>,
        mask: Tensor<2>,
        jets: Option<Tensor<2>>,
    ) -> Tensor<1> {
        let (points, mask) = match self.max_points {
            Some(m) if m < points.dims()[1] => (points.narrow(1, 0, m), mask.narrow(1, 0, m)),
            _ => (points, mask),
        };
        let [b, r, f] = points.dims();
        let mut x = batch_norm(&self.input_bn, points.clone().reshape([b * r, f]));
        for (n, l) in self.embed_norms.iter().zip(&self.embed) {
            x = gelu(l.forward(n.forward(x)));
        }
        let d = x.dims()[1];
        let mut x = x.reshape([b, r, d]) * mask.clone().reshape([b, r, 1]);
        let bias = self.pairs.as_ref().map(|p| {
            let col = |i: usize| points.clone().narrow(2, i, 1).reshape([b, r]);
            let pt = (self.energy.iter())
                .map(|&i| col(i))
                .reduce(|a, c| a + c)
                .expect("at least one energy channel (checked)");
            p.forward(pt, col(self.eta), col(self.phi))
        });
        for blk in &self.blocks {
            x = blk.forward(x, None, bias.clone(), mask.clone());
        }
        let mut cls = self.cls.val().expand([b, 1, d]);
        for blk in &self.cls_blocks {
            cls = blk.forward(x.clone(), Some(cls), None, mask.clone());
        }
        let z = self.norm.forward(cls).reshape([b, d]);
        self.head.forward(beside_jets(z, jets)).reshape([b])
    }
}

impl Classifier for ParT {
    fn logits(&self, x: &Inputs) -> Tensor<1> {
        self.forward(x.points(), x.mask(), x.jets.clone())
    }

    fn trainable_params(&self) -> usize {
        let bn = 2 * self.input_bn.gamma.dims()[0];
        let pairs = self.pairs.as_ref().map_or(0, PairEmbed::bn_buffers);
        self.num_params() - bn - pairs
    }
}

#[cfg(test)]
mod tests;
