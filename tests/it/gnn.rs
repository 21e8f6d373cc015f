//! The graph layers (`train::nn::message`) against numpy implementations of the PyTorch
//! Geometric / weaver-core formulas on edge lists (`tests/python/gnn_reference.py`, written
//! from those libraries' documentation): the same random graphs, features and weights go to
//! both, outputs must agree to 1e-5. The batch has a full jet, a jet with fewer points than
//! k + 1 (`knn_k < k`: padding entries in its lists) and a one-point jet (no neighbours);
//! padding points hold random values that must not reach any output.

use crate::common::{Rng, python};
use burn::module::Param;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;
use burn::tensor::Distribution;
use jetpipe::train::nn::graph::Graph;
use jetpipe::train::nn::message::{EdgeConv, GatConv, GcnConv, GinConv, SageConv};
use serde_json::{Value, json};
use std::path::Path;

const B: usize = 3;
const R: usize = 10;
const K: usize = 4;
const F: usize = 5;
/// Real points per jet.
const N: [usize; B] = [10, 4, 1];

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().unwrap()
}

fn weight(l: &Linear) -> Value {
    json!({
        "w": vals(l.weight.val()),
        "shape": l.weight.dims(),
        "b": l.bias.as_ref().map(|b| vals(b.val())),
    })
}

fn param1(p: &Param<Tensor<1>>) -> Vec<f32> {
    vals(p.val())
}

fn bn(b: &BatchNorm) -> Value {
    json!({"gamma": param1(&b.gamma), "beta": param1(&b.beta), "eps": b.epsilon})
}

/// Random neighbour lists: each real point lists `min(K, n − 1)` distinct other real points
/// of its jet (a deterministic shuffle), padding entries point at the point itself (as the
/// loader's) or anywhere, and padding points list arbitrary indices with mask 0.
fn lists() -> (Vec<i64>, Vec<f32>, Vec<f32>) {
    let mut idx = vec![0i64; B * R * K];
    let mut nm = vec![0f32; B * R * K];
    let mut mask = vec![0f32; B * R];
    let mut rng = Rng(12345);
    let mut next = |m: usize| rng.below(m as u64) as usize;
    for (b, &n) in N.iter().enumerate() {
        for i in 0..R {
            let row = (b * R + i) * K;
            if i >= n {
                for s in 0..K {
                    idx[row + s] = next(R) as i64;
                }
                continue;
            }
            mask[b * R + i] = 1.0;
            let mut others: Vec<usize> = (0..n).filter(|&p| p != i).collect();
            for s in 0..K {
                if others.is_empty() {
                    // Padding entries: the point itself (the loader's convention) or any
                    // index, padding points (large random values) included.
                    idx[row + s] = if s % 2 == 0 { i as i64 } else { next(R) as i64 };
                } else {
                    idx[row + s] = others.swap_remove(next(others.len())) as i64;
                    nm[row + s] = 1.0;
                }
            }
        }
    }
    (idx, nm, mask)
}

fn graph(device: &Device) -> (Graph, Value) {
    let (idx, nm, mask) = lists();
    let g = Graph::new(
        Tensor::from_data(TensorData::new(idx.clone(), [B, R, K]), device),
        Tensor::from_data(TensorData::new(nm.clone(), [B, R, K]), device),
        Tensor::from_data(TensorData::new(mask.clone(), [B, R]), device),
    );
    let v = json!({"B": B, "R": R, "K": K, "F": F, "idx": idx, "nm": nm, "mask": mask});
    (g, v)
}

fn run_reference(case: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.json");
    std::fs::write(&path, serde_json::to_vec(case).unwrap()).unwrap();
    // Kept for benches/gnn_pyg_check.py (PyTorch Geometric's own layers) when asked.
    if let Ok(keep) = std::env::var("JETPIPE_GNN_CASE") {
        std::fs::copy(&path, keep).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/gnn_reference.py");
    let text = python(&[script.to_str().unwrap(), path.to_str().unwrap()]);
    for layer in [
        "gcn",
        "sage",
        "gin",
        "gat",
        "edgeconv",
        "edgeconv_same_width",
    ] {
        assert!(
            text.contains(&format!("{layer}: ok")),
            "{layer} not checked:\n{text}"
        );
    }
}

#[test]
fn graph_layers_match_the_numpy_reference_of_the_pyg_formulas() {
    let device = Device::flex();
    let (g, mut case) = graph(&device);
    // Padding points hold large random values: none may reach an output.
    let x = Tensor::<3>::random([B, R, F], Distribution::Normal(0.0, 1.0), &device);
    let pad = (g.mask.clone().neg() + 1.0).reshape([B, R, 1]);
    let x = x.clone() + pad * Tensor::random([B, R, F], Distribution::Normal(0.0, 100.0), &device);
    case["x"] = json!(vals(x.clone()));

    let gcn = GcnConv::new(F, 6, &device);
    let gcn_bias = Tensor::<1>::random([6], Distribution::Normal(0.0, 1.0), &device);
    let gcn = GcnConv {
        bias: Param::from_tensor(gcn_bias),
        ..gcn
    };
    case["gcn"] = json!({"lin": weight(&gcn.lin), "bias": param1(&gcn.bias),
        "out": vals(gcn.forward(x.clone(), &g))});

    let sage = SageConv::new(F, 6, &device);
    case["sage"] = json!({"lin_l": weight(&sage.lin_l), "lin_r": weight(&sage.lin_r),
        "out": vals(sage.forward(x.clone(), &g))});

    // Narrowing layers aggregate after their linear map (the other branch).
    let gcn = GcnConv::new(F, 3, &device);
    case["gcn_narrowing"] = json!({"lin": weight(&gcn.lin), "bias": param1(&gcn.bias),
        "out": vals(gcn.forward(x.clone(), &g))});
    let sage = SageConv::new(F, 3, &device);
    case["sage_narrowing"] = json!({"lin_l": weight(&sage.lin_l), "lin_r": weight(&sage.lin_r),
        "out": vals(sage.forward(x.clone(), &g))});

    let gin = GinConv::new(F, 6, 0.25, &device);
    case["gin"] = json!({"lin1": weight(&gin.lin1), "lin2": weight(&gin.lin2), "eps": gin.eps,
        "out": vals(gin.forward(x.clone(), &g))});

    let gat = GatConv::new(F, 3, 2, &device);
    let gat_bias = Tensor::<1>::random([6], Distribution::Normal(0.0, 1.0), &device);
    let gat = GatConv {
        bias: Param::from_tensor(gat_bias),
        ..gat
    };
    case["gat"] = json!({"lin": weight(&gat.lin), "att_src": vals(gat.att_src.val()),
        "att_dst": vals(gat.att_dst.val()), "bias": param1(&gat.bias), "heads": 2, "C": 3,
        "out": vals(gat.forward(x.clone(), &g))});

    // EdgeConv in training mode (batch statistics, an autodiff device), on inputs whose
    // padding points are zero as the model passes them (ParticleNet masks its inputs first).
    let ad = Device::flex().autodiff();
    let (g2, _) = graph(&ad);
    let x0 = g.keep_points(x.clone());
    let x2 = Tensor::<3>::from_data(x0.clone().into_data(), &ad);
    let edge = |widths: &[usize], fin: usize, xin: Tensor<3>| {
        let e = EdgeConv::new(fin, widths, &ad);
        let out = vals(e.forward(xin.clone(), &g2));
        let sc = e
            .shortcut
            .as_ref()
            .map(|(l, b)| json!({"lin": weight(l), "bn": bn(b)}));
        json!({
            "x": vals(xin),
            "F": fin,
            "convs": e.convs.iter().map(weight).collect::<Vec<_>>(),
            "bns": e.bns.iter().map(bn).collect::<Vec<_>>(),
            "shortcut": sc,
            "out": out,
        })
    };
    case["edgeconv"] = edge(&[8, 8, 7], F, x2.clone());
    let x7 = Tensor::<3>::random([B, R, 7], Distribution::Normal(0.0, 1.0), &ad);
    let x7 = g2.keep_points(x7);
    case["edgeconv_same_width"] = edge(&[6, 7], 7, x7);
    run_reference(&case);
}
