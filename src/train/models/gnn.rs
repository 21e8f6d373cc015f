//! Graph neural network classifiers on the stored kNN graphs, in the form of GINIE's
//! (tanishmohokar/ML4SCI_GSOC25_GINIE_DIFFUSION, `GNN_Classification_Common_Task_02`) GCN,
//! GraphSAGE, GIN and GAT models: three graph convolutions (64 → 128 → 64 by default), each
//! followed by ReLU, a masked global mean (or max) pool over the jet's points, the run's jet
//! inputs beside it, then Linear(·, 16) → ReLU → Linear(16, 1). GINIE rebuilds its graphs from
//! the images every run; here they are the loader's `[B, R, k]` lists, read as stored
//! (directed: a point aggregates over its own k nearest neighbours).
//!
//! YAML: `{gnn: {conv: gcn}}`; `sage`, `gin` and `gat` likewise; optional `widths`, `head`,
//! `heads` (GAT: the widths are split over the heads and the heads concatenated, so the
//! layer widths stay those of `widths`), `eps` (GIN), `pool`, `dropout` (before the head) and
//! `aggregate` (how neighbour sums are computed: the same values either way).

use crate::train::contract::{Classifier, Dims, Inputs, Needs};
use crate::train::nn::graph::{Graph, max_pool, mean_pool};
use crate::train::nn::message::{GatConv, GcnConv, GinConv, SageConv};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which graph convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConvKind {
    /// PyG `GCNConv` (symmetric normalisation, self-loops).
    Gcn,
    /// PyG `SAGEConv` with mean aggregation.
    Sage,
    /// PyG `GINConv` with a two-layer MLP.
    Gin,
    /// PyG `GATConv` (multi-head attention over the neighbours and the point itself).
    Gat,
}

/// Global pooling over a jet's points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Mean over the real points (GINIE).
    Mean,
    /// Maximum over the real points.
    Max,
}

/// The model's YAML.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GnnConfig {
    /// The graph convolution.
    pub conv: ConvKind,
    /// Output widths of the three convolutions.
    #[serde(default = "widths")]
    pub widths: [usize; 3],
    /// Width of the head's hidden layer.
    #[serde(default = "head")]
    pub head: usize,
    /// GAT: attention heads (each convolution's width must be a multiple).
    #[serde(default = "heads")]
    pub heads: usize,
    /// GIN: ε (fixed, as PyG's default `train_eps=False`).
    #[serde(default)]
    pub eps: f64,
    /// Global pooling.
    #[serde(default = "mean")]
    pub pool: Pool,
    /// Dropout before the head (0: none).
    #[serde(default)]
    pub dropout: f64,
    /// How GCN, SAGE and GIN sum over neighbours (same values, different speed; GAT always
    /// uses the lists).
    #[serde(default = "auto")]
    pub aggregate: Aggregate,
}

/// How sums over neighbours are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// `dense` up to resolution 512, else `lists`.
    Auto,
    /// A `[B, R, R]` adjacency per batch and batched matrix products.
    Dense,
    /// Gathers of `[B, R, k, F]` neighbour features.
    Lists,
}

/// The largest resolution at which `aggregate: auto` builds the dense adjacency.
pub const DENSE_UP_TO: usize = 512;

fn widths() -> [usize; 3] {
    [64, 128, 64]
}
fn head() -> usize {
    16
}
fn heads() -> usize {
    4
}
fn mean() -> Pool {
    Pool::Mean
}
fn auto() -> Aggregate {
    Aggregate::Auto
}

impl GnnConfig {
    /// E.g. `GNN gcn 64-128-64`.
    pub fn title(&self) -> String {
        let [a, b, c] = self.widths;
        let conv = serde_json::to_value(self.conv)
            .ok()
            .and_then(|v| v.as_str().map(str::to_uppercase))
            .unwrap_or_default();
        let how = match self.aggregate {
            Aggregate::Auto => "",
            Aggregate::Dense => " (dense)",
            Aggregate::Lists => " (lists)",
        };
        format!("GNN {conv} {a}-{b}-{c}{how}")
    }

    /// Points, their mask and the kNN graph.
    pub fn needs(&self) -> Needs {
        Needs {
            points: true,
            mask: true,
            neighbours: true,
            all_jet_inputs_by_default: false,
            image: false,
        }
    }

    /// Sizes the layers cannot be built with, as a message.
    pub fn invalid(&self) -> Option<String> {
        if self.widths.contains(&0) || self.head == 0 {
            return Some("gnn: `widths` and `head` must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Some(format!("gnn: `dropout` {} is not in [0, 1)", self.dropout));
        }
        if self.conv == ConvKind::Gat
            && (self.heads == 0 || self.widths.iter().any(|w| w % self.heads != 0))
        {
            return Some(format!(
                "gnn: every width of {:?} must be a multiple of `heads` ({})",
                self.widths, self.heads
            ));
        }
        None
    }
}

/// One graph convolution of any kind.
#[derive(Module, Debug)]
#[allow(missing_docs)]
pub enum Conv {
    Gcn(GcnConv),
    Sage(SageConv),
    Gin(GinConv),
    Gat(GatConv),
}

impl Conv {
    fn new(cfg: &GnnConfig, i: usize, o: usize, device: &Device) -> Self {
        match cfg.conv {
            ConvKind::Gcn => Conv::Gcn(GcnConv::new(i, o, device)),
            ConvKind::Sage => Conv::Sage(SageConv::new(i, o, device)),
            ConvKind::Gin => Conv::Gin(GinConv::new(i, o, cfg.eps, device)),
            ConvKind::Gat => Conv::Gat(GatConv::new(i, o / cfg.heads, cfg.heads, device)),
        }
    }

    fn forward(&self, x: Tensor<3>, g: &Graph) -> Tensor<3> {
        match self {
            Conv::Gcn(c) => c.forward(x, g),
            Conv::Sage(c) => c.forward(x, g),
            Conv::Gin(c) => c.forward(x, g),
            Conv::Gat(c) => c.forward(x, g),
        }
    }
}

/// A GINIE-style GNN classifier.
#[derive(Module, Debug)]
pub struct Gnn {
    convs: Vec<Conv>,
    dropout: Dropout,
    hidden: Linear,
    out: Linear,
    max_pool: bool,
    /// Largest resolution for the dense adjacency (0: never).
    dense_up_to: usize,
}

impl Gnn {
    /// A model of `cfg` for the sizes `dims` (any resolution).
    pub fn new(cfg: GnnConfig, dims: Dims, device: &Device) -> Self {
        let mut i = dims.features;
        let mut convs = Vec::new();
        for &o in &cfg.widths {
            convs.push(Conv::new(&cfg, i, o, device));
            i = o;
        }
        Self {
            convs,
            dropout: DropoutConfig::new(cfg.dropout).init(),
            hidden: LinearConfig::new(i + dims.jet_inputs, cfg.head).init(device),
            out: LinearConfig::new(cfg.head, 1).init(device),
            max_pool: cfg.pool == Pool::Max,
            dense_up_to: match (cfg.conv, cfg.aggregate) {
                (ConvKind::Gat, _) | (_, Aggregate::Lists) => 0,
                (_, Aggregate::Dense) => usize::MAX,
                (_, Aggregate::Auto) => DENSE_UP_TO,
            },
        }
    }

    /// Logits `[B]` of points `[B, R, F]` on graph `g`, with jet inputs `[B, J]`.
    pub fn forward(&self, points: Tensor<3>, g: Graph, jets: Option<Tensor<2>>) -> Tensor<1> {
        let g = if g.dims()[1] <= self.dense_up_to {
            &g.with_adjacency()
        } else {
            &g
        };
        let mut x = g.keep_points(points);
        for c in &self.convs {
            x = relu(c.forward(x, g));
        }
        let x = if self.max_pool {
            max_pool(x, g.mask.clone())
        } else {
            mean_pool(x, g.mask.clone())
        };
        let x = crate::train::nn::beside_jets(x, jets);
        let x = relu(self.hidden.forward(self.dropout.forward(x)));
        self.out.forward(x).squeeze_dim::<1>(1)
    }
}

impl Classifier for Gnn {
    fn logits(&self, x: &Inputs) -> Tensor<1> {
        self.forward(x.points(), Graph::of(x), x.jets.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(conv: ConvKind) -> GnnConfig {
        serde_json::from_value(serde_json::json!({ "conv": conv })).unwrap()
    }

    /// Trainable parameters of GINIE's models with PyG's layer shapes: F inputs, widths
    /// 64/128/64, head 16, no jet inputs.
    #[test]
    fn parameter_counts_match_the_pyg_layers() {
        let device = Device::flex();
        let f = 5;
        let dims = Dims {
            features: f,
            jet_inputs: 0,
            resolution: 256,
            image: [0; 3],
        };
        let lin = |i: usize, o: usize, bias: bool| i * o + if bias { o } else { 0 };
        let head = lin(64, 16, true) + lin(16, 1, true);
        let pairs = [(f, 64), (64, 128), (128, 64)];
        let sum = |layer: &dyn Fn(usize, usize) -> usize| {
            pairs.iter().map(|&(i, o)| layer(i, o)).sum::<usize>() + head
        };
        let want = [
            // GCNConv: lin (no bias) + bias.
            (ConvKind::Gcn, sum(&|i, o| lin(i, o, false) + o)),
            // SAGEConv: lin_l (bias) + lin_r (no bias).
            (
                ConvKind::Sage,
                sum(&|i, o| lin(i, o, true) + lin(i, o, false)),
            ),
            // GINConv: Linear(i, o) + Linear(o, o).
            (
                ConvKind::Gin,
                sum(&|i, o| lin(i, o, true) + lin(o, o, true)),
            ),
            // GATConv, 4 heads of o/4: lin (no bias) + att_src + att_dst + bias.
            (ConvKind::Gat, sum(&|i, o| lin(i, o, false) + 3 * o)),
        ];
        for (kind, n) in want {
            let m = Gnn::new(cfg(kind), dims, &device);
            assert_eq!(m.trainable_params(), n, "{kind:?}");
        }
        assert_eq!(
            want[0].1,
            5 * 64 + 64 + 64 * 128 + 128 + 128 * 64 + 64 + 64 * 16 + 16 + 17
        );
    }

    /// The dense adjacency and the neighbour lists give the same logits, for a batch with
    /// short jets and padding entries; other neighbour lists give other logits.
    #[test]
    fn dense_and_list_aggregation_agree() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        let (b, r, k) = (3, 12, 4);
        let n = [12usize, 4, 1];
        let mut idx = vec![0i64; b * r * k];
        let mut nm = vec![0f32; b * r * k];
        let mut mask = vec![0f32; b * r];
        for jet in 0..b {
            for i in 0..n[jet] {
                mask[jet * r + i] = 1.0;
                for s in 0..k {
                    let at = (jet * r + i) * k + s;
                    let real = s + 1 < n[jet];
                    idx[at] = if real {
                        ((i + 2 * s + 1) % n[jet]) as i64
                    } else {
                        i as i64
                    };
                    nm[at] = f32::from(u8::from(real));
                }
            }
        }
        // The same jets with other neighbours (each real entry moved to the next point).
        let shifted: Vec<i64> = idx
            .iter()
            .enumerate()
            .map(|(at, &j)| {
                let (jet, i) = (at / (r * k), (at / k % r) as i64);
                let n = n[jet] as i64;
                let moved = (j + 1) % n.max(1);
                if nm[at] > 0.0 && moved != i { moved } else { j }
            })
            .collect();
        let other = Graph::new(
            Tensor::from_data(TensorData::new(shifted, [b, r, k]), &device),
            Tensor::from_data(TensorData::new(nm.clone(), [b, r, k]), &device),
            Tensor::from_data(TensorData::new(mask.clone(), [b, r]), &device),
        );
        let g = || {
            Graph::new(
                Tensor::from_data(TensorData::new(idx.clone(), [b, r, k]), &device),
                Tensor::from_data(TensorData::new(nm.clone(), [b, r, k]), &device),
                Tensor::from_data(TensorData::new(mask.clone(), [b, r]), &device),
            )
        };
        let x = Tensor::<3>::random([b, r, 5], Distribution::Normal(0.0, 1.0), &device);
        let dims = Dims {
            features: 5,
            jet_inputs: 0,
            resolution: r,
            image: [0; 3],
        };
        for kind in [ConvKind::Gcn, ConvKind::Sage, ConvKind::Gin] {
            let mut m = Gnn::new(cfg(kind), dims, &device);
            m.dense_up_to = usize::MAX;
            let dense: Vec<f32> = m.forward(x.clone(), g(), None).try_into_vec_as().unwrap();
            m.dense_up_to = 0;
            let lists: Vec<f32> = m.forward(x.clone(), g(), None).try_into_vec_as().unwrap();
            for (d, l) in dense.iter().zip(&lists) {
                assert!(
                    (d - l).abs() <= 1e-5 * d.abs().max(1.0),
                    "{kind:?}: {d} vs {l}"
                );
            }
            // The graph matters: other neighbours, other logits.
            let moved: Vec<f32> = m
                .forward(x.clone(), other.clone(), None)
                .try_into_vec_as()
                .unwrap();
            assert!(
                moved.iter().zip(&lists).any(|(a, l)| (a - l).abs() > 1e-4),
                "{kind:?}: the logits ignore the graph"
            );
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        let mut c = cfg(ConvKind::Gat);
        c.widths = [64, 130, 64];
        assert!(c.invalid().unwrap().contains("multiple of `heads`"));
        assert!(cfg(ConvKind::Gcn).invalid().is_none());
        let e = serde_json::from_value::<GnnConfig>(serde_json::json!({"conv": "gcn", "width": 3}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `width`"), "{e}");
    }
}
