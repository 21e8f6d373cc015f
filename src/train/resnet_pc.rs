//! ResNet-PC, the sparse 1-D CNN of ML4Sci e2e_sparse (`Supervised/CNN/model.py`): a 1-D
//! convolution over the energy-ordered point list, residual blocks each followed by ReLU and
//! MaxPool(2), a global max pool and a single-logit head. Input `[B, R, F]` (points × features),
//! output `[B]` logits.

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig1d, Relu};
use burn::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The variants of e2e_sparse (name: resolution and size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Variant {
    #[serde(rename = "1024_S")]
    R1024S,
    #[serde(rename = "1024_M")]
    R1024M,
    #[serde(rename = "1024_L")]
    R1024L,
    #[serde(rename = "768_S")]
    R768S,
    #[serde(rename = "768_M")]
    R768M,
    #[serde(rename = "512_S")]
    R512S,
    #[serde(rename = "512_M")]
    R512M,
    #[serde(rename = "256_S")]
    R256S,
    #[serde(rename = "256_M")]
    R256M,
}

/// Base convolution (kernel, stride, padding, channels) and block output channels.
pub struct Shape {
    /// Base Conv1d kernel size.
    pub kernel: usize,
    /// Base Conv1d stride.
    pub stride: usize,
    /// Base Conv1d padding (both sides).
    pub padding: usize,
    /// Base Conv1d output channels.
    pub channels: usize,
    /// Output channels of each residual block.
    pub blocks: &'static [usize],
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 9] = [
        Variant::R1024S,
        Variant::R1024M,
        Variant::R1024L,
        Variant::R768S,
        Variant::R768M,
        Variant::R512S,
        Variant::R512M,
        Variant::R256S,
        Variant::R256M,
    ];

    /// The layer sizes (the e2e_sparse table).
    pub fn shape(self) -> Shape {
        let s = |kernel, stride, padding, channels, blocks| Shape {
            kernel,
            stride,
            padding,
            channels,
            blocks,
        };
        match self {
            Variant::R1024S => s(6, 2, 2, 32, &[64, 64, 64, 128, 512, 1024]),
            Variant::R1024M => s(1, 1, 0, 8, &[16, 32, 64, 128, 128, 256, 1024]),
            Variant::R1024L => s(1, 1, 0, 8, &[32, 128, 256, 512, 1024, 2048, 2048]),
            Variant::R768S => s(5, 2, 2, 16, &[32, 64, 128, 256, 512, 1024]),
            Variant::R768M => s(5, 1, 2, 16, &[32, 64, 128, 256, 512, 1024, 2048]),
            Variant::R512S => s(3, 1, 2, 16, &[32, 64, 128, 256, 512, 1024]),
            Variant::R512M => s(3, 1, 2, 16, &[32, 64, 128, 256, 512, 1024, 2048]),
            Variant::R256S => s(3, 1, 2, 16, &[32, 64, 128, 512, 1024]),
            Variant::R256M => s(3, 1, 2, 16, &[32, 64, 128, 512, 1024, 2048]),
        }
    }

    /// The resolution the variant is made for.
    pub fn resolution(self) -> u32 {
        match self {
            Variant::R1024S | Variant::R1024M | Variant::R1024L => 1024,
            Variant::R768S | Variant::R768M => 768,
            Variant::R512S | Variant::R512M => 512,
            Variant::R256S | Variant::R256M => 256,
        }
    }

    /// The name as in the YAML (e.g. `1024_S`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// A residual block: 1×1 conv → BN → ReLU → k=3 conv → BN → ReLU → 1×1 conv, plus a 1×1
/// shortcut; then ReLU and MaxPool(2, 2).
#[derive(Module, Debug)]
pub struct Block {
    conv1: Conv1d,
    bn1: BatchNorm,
    conv2: Conv1d,
    bn2: BatchNorm,
    conv3: Conv1d,
    shortcut: Conv1d,
    pool: MaxPool1d,
    relu: Relu,
}

impl Block {
    fn new(c: usize, o: usize, device: &Device) -> Self {
        Self {
            conv1: Conv1dConfig::new(c, c, 1).init(device),
            bn1: BatchNormConfig::new(c).init(device),
            conv2: Conv1dConfig::new(c, c, 3)
                .with_padding(PaddingConfig1d::Explicit(1, 1))
                .init(device),
            bn2: BatchNormConfig::new(c).init(device),
            conv3: Conv1dConfig::new(c, o, 1).init(device),
            shortcut: Conv1dConfig::new(c, o, 1).init(device),
            pool: MaxPool1dConfig::new(2).with_stride(2).init(),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = self
            .relu
            .forward(self.bn1.forward(self.conv1.forward(x.clone())));
        let y = self.relu.forward(self.bn2.forward(self.conv2.forward(y)));
        let y = self.conv3.forward(y) + self.shortcut.forward(x);
        self.pool.forward(self.relu.forward(y))
    }
}

/// ResNet-PC.
#[derive(Module, Debug)]
pub struct ResNetPc {
    base: Conv1d,
    blocks: Vec<Block>,
    head: Linear,
    bn_channels: usize,
}

impl ResNetPc {
    /// A new model for `features` input features per point.
    pub fn new(variant: Variant, features: usize, device: &Device) -> Self {
        let s = variant.shape();
        let base = Conv1dConfig::new(features, s.channels, s.kernel)
            .with_stride(s.stride)
            .with_padding(PaddingConfig1d::Explicit(s.padding, s.padding))
            .init(device);
        let mut c = s.channels;
        let mut blocks = Vec::new();
        let mut bn_channels = 0;
        for &o in s.blocks {
            blocks.push(Block::new(c, o, device));
            bn_channels += 2 * c;
            c = o;
        }
        Self {
            base,
            blocks,
            head: LinearConfig::new(c, 1).init(device),
            bn_channels,
        }
    }

    /// Logits `[B]` of points `[B, R, F]`.
    pub fn forward(&self, points: Tensor<3>) -> Tensor<1> {
        let mut x = self.base.forward(points.swap_dims(1, 2));
        for b in &self.blocks {
            x = b.forward(x);
        }
        let x = x.max_dim(2).squeeze_dim::<2>(2);
        self.head.forward(x).squeeze_dim::<1>(1)
    }

    /// Trainable parameters, counted as PyTorch does: Burn's `num_params` also counts the
    /// BatchNorm running mean and variance (2 per channel), which are buffers in PyTorch.
    pub fn trainable_params(&self) -> usize {
        self.num_params() - 2 * self.bn_channels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_reference_implementation() {
        let want = [
            (Variant::R1024S, 2_394_785),
            (Variant::R1024M, 1_067_489),
            (Variant::R1024L, 36_358_241),
            (Variant::R768S, 2_807_041),
            (Variant::R768M, 11_206_913),
            (Variant::R512S, 2_806_881),
            (Variant::R512M, 11_206_753),
            (Variant::R256S, 2_346_081),
            (Variant::R256M, 10_745_953),
        ];
        let device = Device::flex();
        for (v, n) in want {
            assert_eq!(
                ResNetPc::new(v, 5, &device).trainable_params(),
                n,
                "{}",
                v.name()
            );
        }
    }

    #[test]
    fn forward_gives_one_logit_per_jet_at_every_resolution() {
        let device = Device::flex();
        for v in [Variant::R256S, Variant::R512S, Variant::R1024M] {
            let m = ResNetPc::new(v, 5, &device);
            let x = Tensor::<3>::ones([2, v.resolution() as usize, 5], &device);
            assert_eq!(m.forward(x).dims(), [2], "{}", v.name());
        }
    }
}
