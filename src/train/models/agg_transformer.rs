//! The Aggregation Transformer of ML4Sci e2e_sparse (`Supervised/AggregationTransformer/
//! model.py`): per-point LayerNorm → Linear(F, 32) → LayerNorm, a learned CLS token and a
//! learned absolute position embedding (R + 1 positions, meaningful because points are
//! energy-ordered), then "funnel" stages. A stage of width d is a pre-LN transformer block
//! (multi-head attention with 64-wide heads and a bias-free qkv, a 3072-wide GELU MLP, both
//! residual), then LN → GELU → Linear(d, 2d), then a CNN block on the non-CLS tokens (1×1 conv,
//! BN, ReLU, k=3 conv, BN, ReLU, 1×1 conv plus a 1×1 shortcut, ReLU, and a k=2 stride-2 conv
//! halving the token count). The head reads the CLS token (with the run's jet inputs, if any).
//!
//! `mask: false` is the reference: padding points become tokens like any other. `mask: true`
//! (the default) keeps padding out: no token attends to a padded one and padded tokens enter
//! each CNN block as zeros (the token mask is max-pooled with the tokens), so in evaluation a
//! jet's score does not depend on what its padding holds.

use crate::train::contract::{Classifier, Dims, Inputs, Needs};
use crate::train::nn::attention::SelfAttention;
use crate::train::nn::rows;
use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
    PaddingConfig1d,
};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The variants of e2e_sparse (resolution and size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[allow(missing_docs)]
pub enum AggVariant {
    #[serde(rename = "1024_S")]
    R1024S,
    #[serde(rename = "1024_M")]
    R1024M,
    #[serde(rename = "1024_L")]
    R1024L,
    #[serde(rename = "1024_H")]
    R1024H,
    #[serde(rename = "768_S")]
    R768S,
    #[serde(rename = "768_M")]
    R768M,
    #[serde(rename = "768_L")]
    R768L,
    #[serde(rename = "768_H")]
    R768H,
    #[serde(rename = "512_S")]
    R512S,
    #[serde(rename = "512_M")]
    R512M,
    #[serde(rename = "512_L")]
    R512L,
    #[serde(rename = "256_S")]
    R256S,
    #[serde(rename = "256_M")]
    R256M,
    #[serde(rename = "256_L")]
    R256L,
}

/// Width of the point embedding (the first stage's width).
pub const EMBED: usize = 32;
/// Width of each attention head.
pub const DIM_HEAD: usize = 64;
/// Hidden width of every stage's MLP.
pub const MLP: usize = 3072;

impl AggVariant {
    /// Every variant.
    pub const ALL: [AggVariant; 14] = [
        AggVariant::R1024S,
        AggVariant::R1024M,
        AggVariant::R1024L,
        AggVariant::R1024H,
        AggVariant::R768S,
        AggVariant::R768M,
        AggVariant::R768L,
        AggVariant::R768H,
        AggVariant::R512S,
        AggVariant::R512M,
        AggVariant::R512L,
        AggVariant::R256S,
        AggVariant::R256M,
        AggVariant::R256L,
    ];

    /// The attention heads of each stage (stage i has width 32·2^i), as e2e_sparse's table.
    pub fn heads(self) -> &'static [usize] {
        use AggVariant::*;
        match self {
            R1024S | R768S | R512S | R256S => &[16; 5],
            R1024M | R768M | R512M | R256M => &[16; 6],
            R1024L | R768L => &[16; 7],
            R512L | R256L => &[16, 16, 16, 16, 24, 24],
            R1024H | R768H => &[16, 16, 16, 16, 16, 24, 24],
        }
    }

    /// The resolution the variant is made for.
    pub fn resolution(self) -> u32 {
        use AggVariant::*;
        match self {
            R1024S | R1024M | R1024L | R1024H => 1024,
            R768S | R768M | R768L | R768H => 768,
            R512S | R512M | R512L => 512,
            R256S | R256M | R256L => 256,
        }
    }

    /// The name as in the YAML (e.g. `256_S`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// The model's YAML: `{variant: 256_S, mask: true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggConfig {
    /// The e2e_sparse variant (`1024_S` … `256_L`).
    pub variant: AggVariant,
    /// Keep padding out of attention and the CNN blocks (`false`: the reference, where
    /// padding points are tokens like any other).
    #[serde(default = "yes")]
    pub mask: bool,
}

fn yes() -> bool {
    true
}

impl AggConfig {
    /// E.g. `Aggregation Transformer 256_S (masked)`.
    pub fn title(&self) -> String {
        let m = if self.mask { "masked" } else { "unmasked" };
        format!("Aggregation Transformer {} ({m})", self.variant.name())
    }

    /// Points always; the point mask when masking.
    pub fn needs(&self) -> Needs {
        Needs {
            points: true,
            mask: self.mask,
            neighbours: false,
            all_jet_inputs_by_default: false,
            image: false,
        }
    }
}

/// The CNN block of a stage on `[B, L, C]` tokens (the CLS token excluded).
#[derive(Module, Debug)]
struct CnnBlock {
    conv1: Conv1d,
    bn1: BatchNorm,
    conv2: Conv1d,
    bn2: BatchNorm,
    conv3: Conv1d,
    shortcut: Conv1d,
    pool: Conv1d,
}

impl CnnBlock {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            conv1: Conv1dConfig::new(c, c, 1).init(device),
            bn1: BatchNormConfig::new(c).init(device),
            conv2: Conv1dConfig::new(c, c, 3)
                .with_padding(PaddingConfig1d::Explicit(1, 1))
                .init(device),
            bn2: BatchNormConfig::new(c).init(device),
            conv3: Conv1dConfig::new(c, c, 1).init(device),
            shortcut: Conv1dConfig::new(c, c, 1).init(device),
            pool: Conv1dConfig::new(c, c, 2).with_stride(2).init(device),
        }
    }

    /// `[B, L, C]` → `[B, L/2, C]`: the residual body shared with ResNet-PC, then the
    /// pooling convolution.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = rows::residual(
            &self.conv1,
            &self.bn1,
            &self.conv2,
            &self.bn2,
            &self.conv3,
            &self.shortcut,
            x,
        );
        rows::conv_pool2(&self.pool, y)
    }
}

/// One funnel stage of width `d`: transformer block, widening to `2d`, CNN block.
#[derive(Module, Debug)]
struct Stage {
    attn: SelfAttention,
    ff_norm: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    norm: LayerNorm,
    widen: Linear,
    cnn: CnnBlock,
}

impl Stage {
    fn new(d: usize, heads: usize, device: &Device) -> Self {
        Self {
            attn: SelfAttention::new(d, heads, DIM_HEAD, device),
            ff_norm: LayerNormConfig::new(d).init(device),
            ff1: LinearConfig::new(d, MLP).init(device),
            ff2: LinearConfig::new(MLP, d).init(device),
            norm: LayerNormConfig::new(d).init(device),
            widen: LinearConfig::new(d, 2 * d).init(device),
            cnn: CnnBlock::new(2 * d, device),
        }
    }

    /// `[B, 1 + L, d]` tokens (CLS first) and their `[B, 1 + L]` mask → `[B, 1 + L/2, 2d]`.
    fn forward(&self, x: Tensor<3>, mask: Option<Tensor<2>>) -> Tensor<3> {
        let x = self.attn.forward(x.clone(), mask.clone()) + x;
        let x = self
            .ff2
            .forward(gelu(self.ff1.forward(self.ff_norm.forward(x.clone()))))
            + x;
        let x = self.widen.forward(gelu(self.norm.forward(x)));
        let [b, n, _] = x.dims();
        let cls = x.clone().narrow(1, 0, 1);
        let mut tokens = x.narrow(1, 1, n - 1);
        if let Some(m) = mask {
            tokens = tokens * m.narrow(1, 1, n - 1).reshape([b, n - 1, 1]);
        }
        Tensor::cat(vec![cls, self.cnn.forward(tokens)], 1)
    }
}

/// The Aggregation Transformer.
#[derive(Module, Debug)]
pub struct AggTransformer {
    embed_norm_in: LayerNorm,
    embed: Linear,
    embed_norm_out: LayerNorm,
    pos: Param<Tensor<3>>,
    cls: Param<Tensor<3>>,
    stages: Vec<Stage>,
    head: Linear,
    masked: bool,
    bn_channels: usize,
}

impl AggTransformer {
    /// A model of `cfg` for the sizes `dims` (its resolution must be the variant's: the
    /// registry checks it).
    pub fn new(cfg: AggConfig, dims: Dims, device: &Device) -> Self {
        let r = cfg.variant.resolution() as usize;
        let normal = Initializer::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let mut d = EMBED;
        let mut stages = Vec::new();
        let mut bn_channels = 0;
        for &h in cfg.variant.heads() {
            stages.push(Stage::new(d, h, device));
            bn_channels += 2 * (2 * d);
            d *= 2;
        }
        Self {
            embed_norm_in: LayerNormConfig::new(dims.features).init(device),
            embed: LinearConfig::new(dims.features, EMBED).init(device),
            embed_norm_out: LayerNormConfig::new(EMBED).init(device),
            pos: normal.init([1, r + 1, EMBED], device),
            cls: normal.init([1, 1, EMBED], device),
            stages,
            head: LinearConfig::new(d + dims.jet_inputs, 1).init(device),
            masked: cfg.mask,
            bn_channels,
        }
    }

    /// Logits `[B]` of points `[B, R, F]`, their mask `[B, R]` (used when the model masks)
    /// and jet inputs `[B, J]`.
    pub fn forward(
        &self,
        points: Tensor<3>,
        mask: Option<Tensor<2>>,
        jets: Option<Tensor<2>>,
    ) -> Tensor<1> {
        let [b, r, _] = points.dims();
        let x = self
            .embed_norm_out
            .forward(self.embed.forward(self.embed_norm_in.forward(points)));
        let cls = self.cls.val().expand([b, 1, EMBED]);
        let mut x = Tensor::cat(vec![cls, x], 1) + self.pos.val().narrow(1, 0, r + 1);
        let device = x.device();
        let mut m = mask.filter(|_| self.masked).map(|m| {
            let one = Tensor::<2>::ones([b, 1], &device);
            Tensor::cat(vec![one, m], 1)
        });
        for s in &self.stages {
            x = s.forward(x, m.clone());
            m = m.map(|m| {
                let n = m.dims()[1] - 1;
                let cls = m.clone().narrow(1, 0, 1);
                let pooled = rows::max_pool2(m.narrow(1, 1, n).reshape([b, n, 1]));
                Tensor::cat(vec![cls, pooled.reshape([b, n / 2])], 1)
            });
        }
        let c = x.dims()[2];
        let x = x.narrow(1, 0, 1).reshape([b, c]);
        let x = crate::train::nn::beside_jets(x, jets);
        self.head.forward(x).squeeze_dim::<1>(1)
    }
}

impl Classifier for AggTransformer {
    fn logits(&self, x: &Inputs) -> Tensor<1> {
        let mask = self.masked.then(|| x.mask());
        self.forward(x.points(), mask, x.jets.clone())
    }

    /// Burn also counts BatchNorm's running mean and variance, buffers in PyTorch.
    fn trainable_params(&self) -> usize {
        self.num_params() - 2 * self.bn_channels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Trainable parameters of e2e_sparse's `PointCloudTransformer`, summed from the shapes
    /// of its PyTorch layers (`model.py`), with `f` input features and `n` points:
    /// `to_embedding` LayerNorm(f) + Linear(f, 32) + LayerNorm(32); `pos_embedding`
    /// (1, n+1, 32); `cls_token` (1, 1, 32); per FunnelBlock of `dim` d and `heads` h
    /// (inner = 64h): Attention LayerNorm(d) + Linear(d, 3·inner, bias=False) +
    /// Linear(inner, d); FeedForward LayerNorm(d) + Linear(d, 3072) + Linear(3072, d);
    /// TransformerBlock LayerNorm(d) + projection Linear(d, 2d); CNNBlock (c = 2d) conv1 1×1,
    /// conv2 k3, conv3 1×1, shortcut 1×1, pooling k2 (each c→c with bias), two BatchNorm1d(c);
    /// head LazyLinear(→1) on the last width.
    fn reference_params(f: usize, n: usize, heads: &[usize]) -> usize {
        let linear = |i: usize, o: usize, bias: bool| i * o + if bias { o } else { 0 };
        let ln = |d: usize| 2 * d;
        let conv = |c: usize, k: usize| c * c * k + c;
        let mut p = ln(f) + linear(f, 32, true) + ln(32) + (n + 1) * 32 + 32;
        let mut d = 32;
        for &h in heads {
            let inner = 64 * h;
            p += ln(d) + linear(d, 3 * inner, false) + linear(inner, d, true);
            p += ln(d) + linear(d, 3072, true) + linear(3072, d, true);
            p += ln(d) + linear(d, 2 * d, true);
            let c = 2 * d;
            p += conv(c, 1) + conv(c, 3) + conv(c, 1) + conv(c, 1) + conv(c, 2) + 2 * (2 * c);
            d *= 2;
        }
        p + linear(d, 1, true)
    }

    #[test]
    fn parameter_counts_match_the_reference_implementation() {
        let device = Device::flex();
        // The reference's table as written in model.py (heads per block).
        assert_eq!(AggVariant::R256L.heads(), [16, 16, 16, 16, 24, 24]);
        assert_eq!(AggVariant::R1024H.heads(), [16, 16, 16, 16, 16, 24, 24]);
        for v in AggVariant::ALL {
            let r = v.resolution() as usize;
            let dims = Dims {
                features: 5,
                jet_inputs: 0,
                resolution: r,
                image: [0; 3],
            };
            let cfg = AggConfig {
                variant: v,
                mask: true,
            };
            let m = AggTransformer::new(cfg, dims, &device);
            assert_eq!(
                m.trainable_params(),
                reference_params(5, r, v.heads()),
                "{}",
                v.name()
            );
        }
        // One absolute value, so the formula itself is pinned: 256_S with 5 features.
        assert_eq!(reference_params(5, 256, &[16; 5]), 22_083_019);
    }

    fn small() -> (AggTransformer, Device) {
        let device = Device::flex();
        let dims = Dims {
            features: 4,
            jet_inputs: 0,
            resolution: 256,
            image: [0; 3],
        };
        let cfg = AggConfig {
            variant: AggVariant::R256S,
            mask: true,
        };
        (AggTransformer::new(cfg, dims, &device), device)
    }

    #[test]
    fn a_masked_jet_scores_the_same_whatever_its_padding_holds() {
        let (m, device) = small();
        let m = m.valid();
        let x = Tensor::<3>::random([2, 256, 4], Distribution::Normal(0.0, 1.0), &device);
        // Jet 0 has 37 points, jet 1 has 200.
        let mut mv = vec![0f32; 512];
        mv[..37].fill(1.0);
        mv[256..456].fill(1.0);
        let mask = Tensor::<2>::from_data(TensorData::new(mv, [2, 256]), &device);
        let keep = mask.clone().reshape([2, 256, 1]);
        let clean = x.clone() * keep.clone();
        let noise = Tensor::<3>::random([2, 256, 4], Distribution::Normal(0.0, 5.0), &device);
        let dirty = clean.clone() + noise * (keep.neg() + 1.0);
        let a: Vec<f32> = m
            .forward(clean.clone(), Some(mask.clone()), None)
            .try_into_vec_as()
            .unwrap();
        let b: Vec<f32> = m
            .forward(dirty.clone(), Some(mask), None)
            .try_into_vec_as()
            .unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4 * x.abs().max(1.0), "{x} vs {y}");
        }
        // Without the mask (the reference) the padding does change the score.
        let c: Vec<f32> = m.forward(clean, None, None).try_into_vec_as().unwrap();
        let d: Vec<f32> = m.forward(dirty, None, None).try_into_vec_as().unwrap();
        assert!(c.iter().zip(&d).any(|(x, y)| (x - y).abs() > 1e-3));
    }

    #[test]
    fn the_token_count_halves_per_stage_and_the_head_reads_cls() {
        let (m, device) = small();
        let x = Tensor::<3>::random([3, 256, 4], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(m.forward(x, None, None).dims(), [3]);
        // 5 stages: 256 → 8 tokens, widths 32 → 1024.
        assert_eq!(m.head.weight.dims(), [1024, 1]);
    }
}
