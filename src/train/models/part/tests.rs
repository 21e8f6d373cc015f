//! Unit tests of the particle transformer: parameter counts against weaver-core's layer
//! shapes, padding invariance, `max_points`, the `vectors` check, and the whole forward
//! against the numpy reference `tests/python/part_reference.py`.

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
    let small =
        cfg("{embed_dims: [16, 32, 16], pair_embed_dims: [8], heads: 2, layers: 2, cls_layers: 1}");
    assert_eq!(ParT::new(&small, dims(5), &d).trainable_params(), 11_809);
}

/// In evaluation, a jet's logit does not depend on what its padding points hold.
#[test]
fn a_jet_scores_the_same_whatever_its_padding_holds() {
    let d = Device::flex();
    let small =
        cfg("{embed_dims: [16, 32, 16], pair_embed_dims: [8], heads: 2, layers: 2, cls_layers: 1}");
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
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "numpy reference disagrees:\n{text}");
    println!("{text}");
}
