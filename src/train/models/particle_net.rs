//! ParticleNet (weaver-core `ParticleNet.py`, Qu & Gouskos 2020) on jetpipe's point clouds:
//! BatchNorm of the input features, EdgeConv blocks (by default ParticleNet's three,
//! (64,64,64), (128,128,128), (256,256,256), k = 16; ParticleNet-Lite's two, (32,32,32),
//! (64,64,64), k = 7, FC 128, are `pipelines/qg_train_particlenet_lite.yaml`), a fusion 1×1
//! convolution of the blocks' outputs (448 → 384, BatchNorm, ReLU), the masked mean over the
//! points, then FC 256 → ReLU → dropout 0.1 → one logit (the run's jet inputs join before the
//! FC layer).
//!
//! The first block's graph is the stored kNN graph (neighbours in (η, φ) pixel space, as
//! ParticleNet's first block), cut to its first `k` entries (the store orders each list by
//! distance) when it holds more. With `dynamic: true` (ParticleNet) the later blocks
//! recompute the k nearest neighbours in the previous block's feature space; with
//! `dynamic: false` every block reuses the stored graph (cheaper: no `[B, R, R]` distances).
//! Where weaver-core lets padding points fill up the neighbour lists of jets with fewer than
//! k + 1 points, here only real neighbours count.

use crate::train::contract::{Classifier, Dims, Inputs, Needs};
use crate::train::nn::graph::{Graph, knn_in_features, mean_pool};
use crate::train::nn::message::EdgeConv;
use crate::train::nn::rows::batch_norm;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The model's YAML: `{particle_net: {dynamic: true}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticleNetConfig {
    /// Recompute the graph in feature space for the second and third blocks (ParticleNet);
    /// `false` reuses the stored graph in every block.
    #[serde(default = "yes")]
    pub dynamic: bool,
    /// Neighbours per point in every block: the dynamic graphs' k, and the first k entries of
    /// the stored graph's lists (all of them where the store has fewer).
    #[serde(default = "sixteen")]
    pub k: usize,
    /// Widths of the 1×1 convolutions of each EdgeConv block, one list per block.
    #[serde(default = "blocks")]
    pub blocks: Vec<Vec<usize>>,
    /// Width of the fully connected layer.
    #[serde(default = "fc")]
    pub fc: usize,
    /// Dropout after the fully connected layer.
    #[serde(default = "dropout")]
    pub dropout: f64,
}

fn yes() -> bool {
    true
}
fn sixteen() -> usize {
    16
}
fn blocks() -> Vec<Vec<usize>> {
    vec![vec![64, 64, 64], vec![128, 128, 128], vec![256, 256, 256]]
}
fn fc() -> usize {
    256
}
fn dropout() -> f64 {
    0.1
}

impl ParticleNetConfig {
    /// E.g. `ParticleNet (dynamic kNN)`.
    pub fn title(&self) -> String {
        let g = if self.dynamic {
            "dynamic kNN"
        } else {
            "static kNN"
        };
        let lite = self.k == 7 && self.blocks == [[32; 3], [64; 3]] && self.fc == 128;
        let name = if lite {
            "ParticleNet-Lite".to_string()
        } else if self.k == 16 && self.blocks == blocks() && self.fc == 256 {
            "ParticleNet".to_string()
        } else {
            let widths: Vec<String> = self
                .blocks
                .iter()
                .filter_map(|b| b.last())
                .map(|w| w.to_string())
                .collect();
            format!("ParticleNet {} k{} fc{}", widths.join("-"), self.k, self.fc)
        };
        format!("{name} ({g})")
    }

    /// Points, their mask and the stored kNN graph.
    pub fn needs(&self) -> Needs {
        Needs {
            points: true,
            mask: true,
            neighbours: true,
            all_jet_inputs_by_default: false,
            image: false,
        }
    }

    /// Sizes the layers cannot be built with (or a `k` the resolution cannot give), as a
    /// message.
    pub fn invalid(&self, resolution: u32) -> Option<String> {
        if self.blocks.is_empty() || self.blocks.iter().any(|b| b.is_empty()) {
            return Some("particle_net: `blocks` needs at least one block of widths".into());
        }
        if self.blocks.iter().flatten().any(|&w| w == 0) || self.fc == 0 {
            return Some("particle_net: `blocks` and `fc` must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Some(format!(
                "particle_net: `dropout` {} is not in [0, 1)",
                self.dropout
            ));
        }
        if self.k == 0 || (self.dynamic && self.k >= resolution as usize) {
            return Some(format!(
                "particle_net: `k` {} must be in 1..{resolution} (the loader's resolution)",
                self.k
            ));
        }
        None
    }
}

/// ParticleNet's fusion width: the blocks' summed width rounded down to a multiple of 128,
/// within 128..=1024 (weaver-core).
pub fn fusion_width(blocks: &[Vec<usize>]) -> usize {
    let sum: usize = blocks.iter().filter_map(|b| b.last()).sum();
    (sum / 128 * 128).clamp(128, 1024)
}

/// ParticleNet.
#[derive(Module, Debug)]
pub struct ParticleNet {
    bn_fts: BatchNorm,
    blocks: Vec<EdgeConv>,
    fusion: Linear,
    fusion_bn: BatchNorm,
    fc: Linear,
    dropout: Dropout,
    out: Linear,
    dynamic: bool,
    k: usize,
}

impl ParticleNet {
    /// A model of `cfg` for the sizes `dims` (any resolution above `k`).
    pub fn new(cfg: ParticleNetConfig, dims: Dims, device: &Device) -> Self {
        let mut i = dims.features;
        let mut blocks = Vec::new();
        for w in &cfg.blocks {
            blocks.push(EdgeConv::new(i, w, device));
            i = w[w.len() - 1];
        }
        let cat: usize = cfg.blocks.iter().filter_map(|b| b.last()).sum();
        let fw = fusion_width(&cfg.blocks);
        Self {
            bn_fts: BatchNormConfig::new(dims.features).init(device),
            blocks,
            fusion: LinearConfig::new(cat, fw).with_bias(false).init(device),
            fusion_bn: BatchNormConfig::new(fw).init(device),
            fc: LinearConfig::new(fw + dims.jet_inputs, cfg.fc).init(device),
            dropout: DropoutConfig::new(cfg.dropout).init(),
            out: LinearConfig::new(cfg.fc, 1).init(device),
            dynamic: cfg.dynamic,
            k: cfg.k,
        }
    }

    /// Logits `[B]` of points `[B, R, F]` on the stored graph `g`, with jet inputs `[B, J]`.
    pub fn forward(&self, points: Tensor<3>, g: &Graph, jets: Option<Tensor<2>>) -> Tensor<1> {
        let [b, r, f] = points.dims();
        let x = batch_norm(&self.bn_fts, points.reshape([b * r, f]));
        let mut x = g.keep_points(x.reshape([b, r, f]));
        let stored = g.nearest(self.k);
        let mut outputs = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            x = if i > 0 && self.dynamic {
                let dg = knn_in_features(x.clone(), g.mask.clone(), self.k);
                block.forward(x, &dg)
            } else {
                block.forward(x, &stored)
            };
            outputs.push(x.clone());
        }
        let cat = Tensor::cat(outputs, 2);
        let c = cat.dims()[2];
        let fused = relu(batch_norm(
            &self.fusion_bn,
            self.fusion.forward(cat.reshape([b * r, c])),
        ));
        let fw = fused.dims()[1];
        let x = mean_pool(g.keep_points(fused.reshape([b, r, fw])), g.mask.clone());
        let x = crate::train::nn::beside_jets(x, jets);
        let x = self.dropout.forward(relu(self.fc.forward(x)));
        self.out.forward(x).squeeze_dim::<1>(1)
    }
}

impl Classifier for ParticleNet {
    fn logits(&self, x: &Inputs) -> Tensor<1> {
        self.forward(x.points(), &Graph::of(x), x.jets.clone())
    }

    /// Burn also counts BatchNorm's running mean and variance, buffers in PyTorch.
    fn trainable_params(&self) -> usize {
        let bn = |bn: &BatchNorm| 2 * bn.gamma.dims()[0];
        let blocks: usize = self.blocks.iter().map(EdgeConv::bn_buffers).sum();
        self.num_params() - blocks - bn(&self.bn_fts) - bn(&self.fusion_bn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trainable parameters of weaver-core's `ParticleNet` as its example configuration builds
    /// it (`conv_params` (16, (64,64,64)), (16, (128,128,128)), (16, (256,256,256)),
    /// `fc_params=[(256, 0.1)]`, `use_fusion=True`, `use_fts_bn=True`) from its PyTorch layer
    /// shapes, with one output instead of `num_classes`: `bn_fts` BatchNorm1d(F); per
    /// EdgeConvBlock (in → c1, c2, c3): Conv2d(2·in, c1, 1, bias=False), Conv2d(c1, c2),
    /// Conv2d(c2, c3), a BatchNorm2d each, and when in ≠ c3 Conv1d(in, c3, 1, bias=False) +
    /// BatchNorm1d(c3); fusion Conv1d(448, 384, 1, bias=False) + BatchNorm1d(384); Linear(384,
    /// 256); Linear(256, 1).
    #[test]
    fn parameter_count_matches_weaver_core() {
        let f = 7;
        let bn = |c: usize| 2 * c;
        let block = |i: usize, c: usize| {
            2 * i * c + c * c + c * c + 3 * bn(c) + if i != c { i * c + bn(c) } else { 0 }
        };
        let want = bn(f)
            + block(f, 64)
            + block(64, 128)
            + block(128, 256)
            + 448 * 384
            + bn(384)
            + 384 * 256
            + 256
            + 257;
        let cfg: ParticleNetConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(fusion_width(&cfg.blocks), 384);
        let dims = Dims {
            features: f,
            jet_inputs: 0,
            resolution: 256,
            image: [0; 3],
        };
        let m = ParticleNet::new(cfg, dims, &Device::flex());
        assert_eq!(m.trainable_params(), want);
        assert_eq!(want, 571_471);
    }

    /// ParticleNet-Lite as weaver-core's example builds it: `conv_params` (7, (32,32,32)),
    /// (7, (64,64,64)), `fc_params=[(128, 0.1)]`, fusion Conv1d(96, 128) (96 rounds up to the
    /// smallest fusion width, 128) + BatchNorm1d(128); Linear(128, 128); Linear(128, 1).
    #[test]
    fn lite_parameter_count_matches_weaver_core() {
        let f = 7;
        let bn = |c: usize| 2 * c;
        let block = |i: usize, c: usize| {
            2 * i * c + c * c + c * c + 3 * bn(c) + if i != c { i * c + bn(c) } else { 0 }
        };
        let want =
            bn(f) + block(f, 32) + block(32, 64) + 96 * 128 + bn(128) + 128 * 128 + 128 + 129;
        let cfg: ParticleNetConfig =
            serde_json::from_str(r#"{"k": 7, "blocks": [[32, 32, 32], [64, 64, 64]], "fc": 128}"#)
                .unwrap();
        assert_eq!(fusion_width(&cfg.blocks), 128);
        assert!(cfg.invalid(256).is_none());
        let dims = Dims {
            features: f,
            jet_inputs: 0,
            resolution: 256,
            image: [0; 3],
        };
        let m = ParticleNet::new(cfg.clone(), dims, &Device::flex());
        assert_eq!(m.trainable_params(), want);
        assert_eq!(want, 47_023);
        assert_eq!(cfg.title(), "ParticleNet-Lite (dynamic kNN)");
        let odd: ParticleNetConfig =
            serde_json::from_str(r#"{"dynamic": false, "blocks": [[8, 16]], "fc": 32}"#).unwrap();
        assert_eq!(odd.title(), "ParticleNet 16 k16 fc32 (static kNN)");
    }

    #[test]
    fn bad_sizes_are_refused() {
        let cfg: ParticleNetConfig = serde_json::from_str(r#"{"k": 256}"#).unwrap();
        assert!(cfg.invalid(256).unwrap().contains("must be in 1..256"));
        assert!(cfg.invalid(1024).is_none());
        let stat: ParticleNetConfig =
            serde_json::from_str(r#"{"k": 256, "dynamic": false}"#).unwrap();
        assert!(stat.invalid(256).is_none());
        for bad in [
            r#"{"blocks": []}"#,
            r#"{"blocks": [[32], []]}"#,
            r#"{"k": 0}"#,
        ] {
            let c: ParticleNetConfig = serde_json::from_str(bad).unwrap();
            assert!(c.invalid(256).is_some(), "{bad}");
        }
    }
}
