//! ResNet-PC, the sparse 1-D CNN of ML4Sci e2e_sparse (`Supervised/CNN/model.py`): a 1-D
//! convolution over the energy-ordered point list, residual blocks each followed by ReLU and
//! MaxPool(2), a global max pool and a single-logit head. Input `[B, R, F]` (points × features),
//! output `[B]` logits. Optionally, jet-level inputs `[B, J]` join the pooled features before
//! the head (`jet_inputs` of the training YAML; J = 0 is e2e_sparse's model).

use crate::train::contract::{Classifier, Inputs, Needs};
use crate::train::nn::rows;
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

    /// The block with Burn's modules on `[B, C, L]`: the reference for [`Block::forward_rows`].
    /// Batch norm is [`rows::batch_norm`] in both, so that the two agree to rounding and
    /// ReLU and max-pooling route the gradients alike (a batch norm that rounds differently
    /// flips a few near-zero activations or near-tied maxima per batch, which moves weight
    /// gradients by up to 2 %); that function is tested against Burn's `BatchNorm` itself.
    fn forward_modules(&self, x: Tensor<3>) -> Tensor<3> {
        let bn = |bn: &BatchNorm, y: Tensor<3>| {
            let [b, c, l] = y.dims();
            let rows = y.swap_dims(1, 2).reshape([b * l, c]);
            rows::batch_norm(bn, rows)
                .reshape([b, l, c])
                .swap_dims(1, 2)
        };
        let y = self
            .relu
            .forward(bn(&self.bn1, self.conv1.forward(x.clone())));
        let y = self.relu.forward(bn(&self.bn2, self.conv2.forward(y)));
        let y = self.conv3.forward(y) + self.shortcut.forward(x);
        self.pool.forward(self.relu.forward(y))
    }

    /// The same block on `[B, L, C]` (one row per point), through [`rows::residual`].
    fn forward_rows(&self, x: Tensor<3>) -> Tensor<3> {
        rows::max_pool2(rows::residual(
            &self.conv1,
            &self.bn1,
            &self.conv2,
            &self.bn2,
            &self.conv3,
            &self.shortcut,
            x,
        ))
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
    /// A new model for `features` input features per point and `jet_inputs` jet-level inputs
    /// (0 for the e2e_sparse model), which join the pooled point features before the head.
    pub fn new(variant: Variant, features: usize, jet_inputs: usize, device: &Device) -> Self {
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
            head: LinearConfig::new(c + jet_inputs, 1).init(device),
            bn_channels,
        }
    }

    /// Logits `[B]` of points `[B, R, F]` of a model built without jet inputs.
    ///
    /// Computed on `[B, L, C]` rows ([`rows`]); the same function of the same parameters as
    /// [`ResNetPc::forward_modules`], which a test checks, values and gradients.
    pub fn forward(&self, points: Tensor<3>) -> Tensor<1> {
        self.forward_with_jets(points, None)
    }

    /// Logits `[B]` of points `[B, R, F]` and jet-level inputs `[B, J]` (the `J` the model was
    /// built for; `None` when 0): the pooled point features and the jet inputs, concatenated,
    /// go through the head.
    pub fn forward_with_jets(&self, points: Tensor<3>, jets: Option<Tensor<2>>) -> Tensor<1> {
        let [b, r, f] = points.dims();
        let s = &self.base;
        let unpadded = matches!(
            s.padding,
            PaddingConfig1d::Valid | PaddingConfig1d::Explicit(0, 0)
        );
        let mut x = if s.kernel_size == 1 && s.stride == 1 && unpadded {
            let c = s.weight.dims()[0];
            rows::pointwise(s, points.reshape([b * r, f])).reshape([b, r, c])
        } else {
            s.forward(points.swap_dims(1, 2)).swap_dims(1, 2)
        };
        for blk in &self.blocks {
            x = blk.forward_rows(x);
        }
        let c = x.dims()[2];
        let x = x.max_dim(1).reshape([b, c]);
        let x = crate::train::nn::beside_jets(x, jets);
        self.head.forward(x).squeeze_dim::<1>(1)
    }

    /// Logits `[B]` of points `[B, R, F]` with Burn's `Conv1d` and `MaxPool1d` modules on
    /// `[B, C, L]`, as e2e_sparse writes the model: the reference that [`ResNetPc::forward`]
    /// is tested and benchmarked against (a model built without jet inputs).
    pub fn forward_modules(&self, points: Tensor<3>) -> Tensor<1> {
        let mut x = self.base.forward(points.swap_dims(1, 2));
        for b in &self.blocks {
            x = b.forward_modules(x);
        }
        let x = x.max_dim(2).squeeze_dim::<2>(2);
        self.head.forward(x).squeeze_dim::<1>(1)
    }
}

/// ResNet-PC reads the points only.
pub const NEEDS: Needs = Needs {
    points: true,
    mask: false,
    neighbours: false,
    all_jet_inputs_by_default: false,
    image: false,
};

impl Classifier for ResNetPc {
    fn logits(&self, x: &Inputs) -> Tensor<1> {
        self.forward_with_jets(x.points(), x.jets.clone())
    }

    /// Trainable parameters, counted as PyTorch does: Burn's `num_params` also counts the
    /// BatchNorm running mean and variance (2 per channel), which are buffers in PyTorch.
    fn trainable_params(&self) -> usize {
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
                ResNetPc::new(v, 5, 0, &device).trainable_params(),
                n,
                "{}",
                v.name()
            );
        }
    }

    /// Largest absolute difference between two tensors, relative to the larger magnitude.
    fn rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        let scale = a.clone().abs().max().into_scalar::<f32>().max(1e-6);
        (a - b).abs().max().into_scalar::<f32>() / scale
    }

    #[test]
    fn row_forward_equals_the_module_forward_in_value_and_gradient() {
        use burn::tensor::Distribution;
        let device = Device::flex().autodiff();
        // Odd lengths reach every pooling (768_S: 384 → 192 → … → 3 → 1) and a strided base.
        for v in [
            Variant::R1024S,
            Variant::R1024M,
            Variant::R768S,
            Variant::R256S,
        ] {
            let m = ResNetPc::new(v, 5, 0, &device);
            let r = v.resolution() as usize;
            let x = Tensor::<3>::random([3, r, 5], Distribution::Normal(0.0, 1.0), &device);
            let a = m.forward(x.clone());
            let b = m.forward_modules(x);
            let d = rel_diff(a.clone(), b.clone());
            assert!(d < 1e-4, "{}: logits differ by {d}", v.name());
            // A non-uniform loss, so every gradient depends on which jet is which.
            let w = Tensor::<1>::from_floats([1.0, -2.0, 0.5], &device);
            let ga = (a * w.clone()).sum().backward();
            let gb = (b * w).sum().backward();
            let mut checked = 0;
            for blk in &m.blocks {
                for p in [&blk.conv1, &blk.conv2, &blk.conv3, &blk.shortcut] {
                    let (x, y) = (p.weight.val().grad(&ga), p.weight.val().grad(&gb));
                    let d = rel_diff(x.unwrap(), y.unwrap());
                    assert!(d < 1e-3, "{}: weight gradients differ by {d}", v.name());
                    checked += 1;
                }
                let (x, y) = (blk.bn2.gamma.val().grad(&ga), blk.bn2.gamma.val().grad(&gb));
                assert!(rel_diff(x.unwrap(), y.unwrap()) < 1e-3, "{}", v.name());
            }
            let (x, y) = (m.base.weight.val().grad(&ga), m.base.weight.val().grad(&gb));
            assert!(rel_diff(x.unwrap(), y.unwrap()) < 1e-3, "{}", v.name());
            assert_eq!(checked, 4 * v.shape().blocks.len());
        }
    }

    #[test]
    fn forward_gives_one_logit_per_jet_at_every_resolution() {
        let device = Device::flex();
        for v in [Variant::R256S, Variant::R512S, Variant::R1024M] {
            let m = ResNetPc::new(v, 5, 0, &device);
            let x = Tensor::<3>::ones([2, v.resolution() as usize, 5], &device);
            assert_eq!(m.forward(x).dims(), [2], "{}", v.name());
        }
    }

    #[test]
    fn jet_inputs_enter_the_head_linearly_beside_the_pooled_points() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        let v = Variant::R256S;
        let m = ResNetPc::new(v, 5, 2, &device);
        assert_eq!(m.trainable_params(), 2_346_081 + 2);
        let m = m.valid();
        let x = Tensor::<3>::random([3, 256, 5], Distribution::Normal(0.0, 1.0), &device);
        let j1 = Tensor::<2>::random([3, 2], Distribution::Normal(0.0, 1.0), &device);
        let j2 = Tensor::<2>::random([3, 2], Distribution::Normal(0.0, 1.0), &device);
        let z1 = m.forward_with_jets(x.clone(), Some(j1.clone()));
        let z2 = m.forward_with_jets(x, Some(j2.clone()));
        // The head weight is [pooled + 2, 1]; its last two rows weigh the jet inputs.
        let w = m.head.weight.val();
        let n = w.dims()[0];
        let w = w.slice([n - 2..n, 0..1]);
        let want = (j2 - j1).matmul(w).reshape([3]);
        let got = z2 - z1;
        assert!(rel_diff(got, want) < 1e-5);
    }
}
