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
mod tests {
    use super::*;
    use crate::loader::spec::parse_loader;
    use burn::tensor::Distribution;

    fn cfg(yaml: &str) -> PartConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn dims(features: usize) -> Dims {
        Dims {
            features,
            jet_inputs: 0,
            resolution: 16,
            image: [0; 3],
        }
    }

    const PAPER: &str =
        "{embed_dims: [128, 512, 128], pair_embed_dims: [64, 64, 64], layers: 8, max_points: null}";

    /// Counts of weaver-core's own `ParticleTransformer` (2022, `use_pre_activation_pair=False`
    /// as in the paper), built with torch, 5 features and one output: 2,140,741 for the
    /// paper's sizes; 2,131,173 without pair inputs; 442,709 for this model's defaults
    /// (embed 64-256-64, pairs 32-32-32, 8 heads, 6 + 2 blocks); 11,809 for a small one.
    #[test]
    fn parameter_counts_match_weaver_core() {
        let d = Device::flex();
        let paper = ParT::new(&cfg(PAPER), dims(5), &d);
        assert_eq!(paper.trainable_params(), 2_140_741);
        let plain = PartConfig {
            interaction: false,
            ..cfg(PAPER)
        };
        assert_eq!(ParT::new(&plain, dims(5), &d).trainable_params(), 2_131_173);
        assert_eq!(
            ParT::new(&cfg("{}"), dims(5), &d).trainable_params(),
            442_709
        );
        let small = cfg(
            "{embed_dims: [16, 32, 16], pair_embed_dims: [8], heads: 2, layers: 2, cls_layers: 1}",
        );
        assert_eq!(ParT::new(&small, dims(5), &d).trainable_params(), 11_809);
    }

    /// In evaluation, a jet's logit does not depend on what its padding points hold.
    #[test]
    fn a_jet_scores_the_same_whatever_its_padding_holds() {
        let d = Device::flex();
        let small = cfg(
            "{embed_dims: [16, 32, 16], pair_embed_dims: [8], heads: 2, layers: 2, cls_layers: 1}",
        );
        let m = ParT::new(&small, dims(5), &d);
        let (b, r) = (3, 16);
        let n = [16usize, 5, 1];
        let mask: Vec<f32> = (0..b * r)
            .map(|i| f32::from(u8::from(i % r < n[i / r])))
            .collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [b, r]), &d);
        let x = Tensor::<3>::random([b, r, 5], Distribution::Uniform(0.0, 1.0), &d);
        let keep = mask.clone().reshape([b, r, 1]);
        let clean = x.clone() * keep.clone();
        let noise = Tensor::<3>::random([b, r, 5], Distribution::Normal(0.0, 10.0), &d);
        let noisy = clean.clone() + noise * (keep.neg() + 1.0);
        let a: Vec<f32> = m
            .forward(clean, mask.clone(), None)
            .try_into_vec_as()
            .unwrap();
        let z: Vec<f32> = m.forward(noisy, mask, None).try_into_vec_as().unwrap();
        for (x, y) in a.iter().zip(&z) {
            assert!((x - y).abs() < 1e-4, "{a:?} vs {z:?}");
        }
        // The pair bias reaches the logits: without it they differ.
        let plain = ParT::new(
            &PartConfig {
                interaction: false,
                ..small
            },
            dims(5),
            &d,
        );
        assert!(plain.pairs.is_none());
    }

    /// `max_points: m` scores a jet by its first m points: the same logits as the jet cut to
    /// them, and other logits than all points give.
    #[test]
    fn max_points_reads_the_leading_points() {
        let d = Device::flex();
        let small = "{embed_dims: [16, 32, 16], pair_embed_dims: [8], heads: 2, layers: 2, cls_layers: 1, max_points: 4}";
        let m = ParT::new(&cfg(small), dims(5), &d);
        let x = Tensor::<3>::random([2, 9, 5], Distribution::Uniform(0.0, 1.0), &d);
        let mask = Tensor::<2>::ones([2, 9], &d);
        let logits = |x: Tensor<3>, mask: Tensor<2>, m: &ParT| -> Vec<f32> {
            m.forward(x, mask, None).try_into_vec_as().unwrap()
        };
        let all = logits(x.clone(), mask.clone(), &m);
        let cut = logits(x.clone().narrow(1, 0, 4), mask.clone().narrow(1, 0, 4), &m);
        assert_eq!(all, cut);
        let mut every = m.clone();
        every.max_points = None;
        assert_ne!(logits(x, mask, &every), all);
    }

    #[test]
    fn vectors_must_name_untransformed_kinematics() {
        let loader = |features: &str| {
            parse_loader(
                &format!("loader:\n  dataset: x\n  resolution: 256\n  features: {features}\n"),
                "t.yaml",
            )
            .unwrap()
        };
        let ok = loader("[tracks, ecal, hcal, eta, phi]");
        assert_eq!(cfg("{}").invalid(&ok), None);
        let logged = loader("[{column: tracks, transforms: [log1p]}, ecal, hcal, eta, phi]");
        let e = cfg("{}").invalid(&logged).unwrap();
        assert!(
            e.contains("vectors.energy = 0 is `tracks` with transforms"),
            "{e}"
        );
        let swapped = loader("[tracks, ecal, hcal, phi, eta]");
        let e = cfg("{}").invalid(&swapped).unwrap();
        assert!(e.contains("vectors.eta = 3 is `phi`, not `eta`"), "{e}");
        let both = loader("[{column: tracks, transforms: [log1p]}, eta, phi, tracks, ecal, hcal]");
        let c = cfg("{vectors: {eta: 1, phi: 2, energy: [3, 4, 5]}}");
        assert_eq!(c.invalid(&both), None);
        assert!(
            cfg("{vectors: {energy: [0, 9]}}")
                .invalid(&ok)
                .unwrap()
                .contains("has 5 features")
        );
        assert!(
            cfg("{heads: 3}")
                .invalid(&ok)
                .unwrap()
                .contains("not divisible")
        );
        assert_eq!(cfg("{interaction: false}").invalid(&logged), None);
    }

    /// Values of a tensor with its shape, for the numpy reference.
    fn arr<const D: usize>(t: Tensor<D>) -> serde_json::Value {
        let shape = t.dims().to_vec();
        let v: Vec<f32> = t.try_into_vec_as().unwrap();
        serde_json::json!({"shape": shape, "data": v})
    }

    fn rand1(n: usize, lo: f64, hi: f64, d: &Device) -> Tensor<1> {
        Tensor::<1>::random([n], Distribution::Uniform(lo, hi), d)
    }

    /// Random γ, β, running mean and variance (the defaults 1, 0, 0, 1 would hide mistakes).
    fn shake_bn(bn: &mut BatchNorm, d: &Device) -> serde_json::Value {
        let n = bn.gamma.dims()[0];
        bn.gamma = Param::from_tensor(rand1(n, 0.5, 1.5, d));
        bn.beta = Param::from_tensor(rand1(n, -0.5, 0.5, d));
        bn.running_mean = burn::module::RunningState::new(rand1(n, -1.0, 1.0, d));
        bn.running_var = burn::module::RunningState::new(rand1(n, 0.5, 2.0, d));
        serde_json::json!({
            "gamma": arr(bn.gamma.val()), "beta": arr(bn.beta.val()),
            "mean": arr(bn.running_mean.value()), "var": arr(bn.running_var.value()),
        })
    }

    fn shake_ln(ln: &mut LayerNorm, d: &Device) -> serde_json::Value {
        let n = ln.gamma.dims()[0];
        ln.gamma = Param::from_tensor(rand1(n, 0.5, 1.5, d));
        ln.beta = Some(Param::from_tensor(rand1(n, -0.5, 0.5, d)));
        serde_json::json!({"gamma": arr(ln.gamma.val()), "beta": arr(ln.beta.as_ref().unwrap().val())})
    }

    fn lin(l: &Linear) -> serde_json::Value {
        serde_json::json!({"w": arr(l.weight.val()), "b": arr(l.bias.as_ref().unwrap().val())})
    }

    fn shake_block(b: &mut Block, d: &Device) -> serde_json::Value {
        b.c_attn = Param::from_tensor(rand1(b.heads, 0.5, 1.5, d));
        let n = b.w_resid.dims()[0];
        b.w_resid = Param::from_tensor(rand1(n, 0.5, 1.5, d));
        serde_json::json!({
            "pre_attn_norm": shake_ln(&mut b.pre_attn_norm, d),
            "q": lin(&b.attn.q), "k": lin(&b.attn.k), "v": lin(&b.attn.v), "out": lin(&b.attn.out),
            "c_attn": arr(b.c_attn.val()),
            "post_attn_norm": shake_ln(&mut b.post_attn_norm, d),
            "pre_fc_norm": shake_ln(&mut b.pre_fc_norm, d),
            "fc1": lin(&b.fc1),
            "post_fc_norm": shake_ln(&mut b.post_fc_norm, d),
            "fc2": lin(&b.fc2),
            "w_resid": arr(b.w_resid.val()),
        })
    }

    /// The whole forward (evaluation mode) against tests/python/part_reference.py, a numpy
    /// implementation written from weaver-core's `ParticleTransformer.py` (2022): every
    /// weight, norm parameter, running statistic, head scale and residual weight random;
    /// jets of 7, 4 and 1 real points among 7; kinematics at the positions `vectors` names.
    #[test]
    fn forward_matches_the_numpy_reference() {
        let d = Device::flex();
        let c = cfg(
            "{embed_dims: [8, 16, 8], pair_embed_dims: [6], heads: 2, layers: 2, cls_layers: 1, vectors: {eta: 0, phi: 1, energy: [2, 4]}}",
        );
        let mut m = ParT::new(&c, dims(5), &d);
        let (b, r, f) = (3usize, 7usize, 5usize);
        let mut weights = serde_json::Map::new();
        weights.insert("input_bn".into(), shake_bn(&mut m.input_bn, &d));
        let norms: Vec<_> = m.embed_norms.iter_mut().map(|n| shake_ln(n, &d)).collect();
        weights.insert("embed_norms".into(), norms.into());
        weights.insert(
            "embed".into(),
            m.embed.iter().map(lin).collect::<Vec<_>>().into(),
        );
        let pairs = m.pairs.as_mut().unwrap();
        let pair_bns: Vec<_> = pairs.bns.iter_mut().map(|bn| shake_bn(bn, &d)).collect();
        weights.insert(
            "pairs".into(),
            serde_json::json!({
                "input_bn": shake_bn(&mut pairs.input_bn, &d),
                "layers": pairs.layers.iter().map(lin).collect::<Vec<_>>(),
                "bns": pair_bns,
            }),
        );
        let blocks: Vec<_> = m.blocks.iter_mut().map(|x| shake_block(x, &d)).collect();
        weights.insert("blocks".into(), blocks.into());
        let cls_blocks: Vec<_> = m
            .cls_blocks
            .iter_mut()
            .map(|x| shake_block(x, &d))
            .collect();
        weights.insert("cls_blocks".into(), cls_blocks.into());
        weights.insert("cls".into(), arr(m.cls.val()));
        weights.insert("norm".into(), shake_ln(&mut m.norm, &d));
        weights.insert("head".into(), lin(&m.head));
        // Points: η, φ in [−0.4, 0.4] (pairs across the φ wrap included), energies ≥ 0,
        // padding zero.
        let n = [7usize, 4, 1];
        let mut x = vec![0f32; b * r * f];
        let mut rng = crate::loader::plan::SplitMix64::new(3);
        let mut u = || (rng.next() >> 40) as f32 / (1u64 << 24) as f32;
        for (jet, &nj) in n.iter().enumerate() {
            for p in 0..nj {
                let at = (jet * r + p) * f;
                x[at] = 0.8 * u() - 0.4;
                x[at + 1] = if p == 1 {
                    3.1
                } else if p == 2 {
                    -3.1
                } else {
                    0.8 * u() - 0.4
                };
                x[at + 2] = 5.0 * u();
                x[at + 3] = u() - 0.5;
                x[at + 4] = if p == 3 { 0.0 } else { 2.0 * u() };
            }
        }
        let mask: Vec<f32> = (0..b * r)
            .map(|i| f32::from(u8::from(i % r < n[i / r])))
            .collect();
        let points = Tensor::<3>::from_data(TensorData::new(x.clone(), [b, r, f]), &d);
        let maskt = Tensor::<2>::from_data(TensorData::new(mask.clone(), [b, r]), &d);
        let logits: Vec<f32> = m.forward(points, maskt, None).try_into_vec_as().unwrap();
        let case = serde_json::json!({
            "heads": 2, "eta": 0, "phi": 1, "energy": [2, 4],
            "points": {"shape": [b, r, f], "data": x},
            "mask": {"shape": [b, r], "data": mask},
            "weights": weights,
            "logits": logits,
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part_case.json");
        std::fs::write(&path, serde_json::to_vec(&case).unwrap()).unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/part_reference.py"
        );
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg(&path)
            .output()
            .expect("python3 with numpy (run under .ci/with-tools)");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "numpy reference disagrees:\n{text}");
        println!("{text}");
    }
}
