//! The distribution metrics against hand-computed cases, known distributions and an
//! independent Python reference (scipy's `wasserstein_distance` and `sqrtm`, numpy
//! histograms) on random samples.

use super::metrics::*;

/// Standard normal draws (Box–Muller on a SplitMix64 sequence).
fn normals(seed: u64, n: usize) -> Vec<f64> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut u = || ((next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    (0..n)
        .map(|_| (-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos())
        .collect()
}

#[test]
fn wasserstein_of_hand_computed_cases() {
    assert_eq!(wasserstein1(&[0.0, 1.0], &[0.5, 1.5]), 0.5);
    assert_eq!(wasserstein1(&[0.0], &[1.0, 2.0]), 1.5);
    assert_eq!(wasserstein1(&[0.0, 2.0], &[1.0]), 1.0);
    assert_eq!(wasserstein1(&[3.0, 1.0, 2.0], &[1.0, 2.0, 3.0]), 0.0);
    assert!(wasserstein1(&[], &[1.0]).is_nan());
}

#[test]
fn wasserstein_of_shifted_normals_is_the_shift() {
    let a = normals(1, 20_000);
    let b: Vec<f64> = normals(2, 30_000).iter().map(|x| x + 0.7).collect();
    let w = wasserstein1(&a, &b);
    assert!((w - 0.7).abs() < 0.03, "{w}");
    // Scaled: W1(N(0,1), N(0,4)) = E|X|·(2 − 1) = √(2/π).
    let c: Vec<f64> = normals(3, 30_000).iter().map(|x| 2.0 * x).collect();
    let w = wasserstein1(&a, &c);
    assert!(
        (w - (2.0 / std::f64::consts::PI).sqrt()).abs() < 0.03,
        "{w}"
    );
}

#[test]
fn separation_power_is_0_for_equal_and_1_for_disjoint_histograms() {
    let a = normals(4, 5_000);
    assert!(separation_power(&a, &a, 30).abs() < 1e-12);
    let low: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
    let high: Vec<f64> = low.iter().map(|x| x + 2.0).collect();
    assert!((separation_power(&low, &high, 10) - 1.0).abs() < 1e-12);
    let h = Edges::spanning(&low, &high, 10).histogram(&low);
    assert!((h.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn frechet_distance_of_gaussians_matches_the_closed_form() {
    // Diagonal covariances: ‖Δμ‖² + Σ (√a − √b)².
    let (ma, mb) = ([0.0, 1.0, -1.0], [0.5, 1.0, 0.0]);
    let (da, db) = ([1.0, 4.0, 0.25], [2.0, 1.0, 0.25]);
    let diag = |v: [f64; 3]| {
        let mut c = vec![0.0; 9];
        (0..3).for_each(|i| c[i * 4] = v[i]);
        c
    };
    let want = 0.25 + 1.0 + (1.0 - 2f64.sqrt()).powi(2) + (2.0 - 1.0f64).powi(2);
    let got = frechet_gaussians(&ma, &diag(da), &mb, &diag(db), 3);
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    // Equal Gaussians: 0, also with correlations.
    let c = [2.0, 0.8, 0.3, 0.8, 1.0, -0.2, 0.3, -0.2, 0.5];
    assert!(frechet_gaussians(&ma, &c, &ma, &c, 3).abs() < 1e-9);
    // From samples: the fitted Gaussians' distance converges to the true one.
    let n = 40_000;
    let (x, y) = (normals(5, 3 * n), normals(6, 3 * n));
    let rows = |z: &[f64], m: [f64; 3], v: [f64; 3]| -> Vec<f64> {
        (z.chunks_exact(3))
            .flat_map(|r| (0..3).map(move |i| m[i] + v[i].sqrt() * r[i]))
            .collect()
    };
    let got = frechet_distance(&rows(&x, ma, da), &rows(&y, mb, db), 3);
    assert!((got - want).abs() < 0.05, "{got} vs {want}");
}

#[test]
fn eigendecomposition_rebuilds_the_matrix() {
    let d = 5;
    let z = normals(7, d * d);
    let m: Vec<f64> = (0..d * d).map(|x| z[x] + z[(x % d) * d + x / d]).collect();
    let (w, v) = sym_eigen(&m, d);
    for i in 0..d {
        for j in 0..d {
            let back: f64 = (0..d).map(|k| v[i * d + k] * w[k] * v[j * d + k]).sum();
            assert!((back - m[i * d + j]).abs() < 1e-9, "({i}, {j})");
        }
    }
}

/// Random samples of different sizes against scipy and numpy (needs python3 with scipy:
/// `.ci/with-tools` installs it).
#[test]
fn metrics_agree_with_scipy_on_random_samples() {
    let a: Vec<f64> = normals(8, 3_001).iter().map(|x| x.exp()).collect();
    let b: Vec<f64> = normals(9, 2_000)
        .iter()
        .map(|x| 1.2 * x.exp() + 0.1)
        .collect();
    let d = 4;
    let za = normals(10, 500 * d);
    let zb = normals(11, 700 * d);
    // Correlated rows: x_i + 0.5 x_{i+1}.
    let mix = |z: &[f64], s: f64| -> Vec<f64> {
        (z.chunks_exact(d))
            .flat_map(|r| (0..d).map(move |i| s * (r[i] + 0.5 * r[(i + 1) % d]) + i as f64))
            .collect()
    };
    let (ra, rb) = (mix(&za, 1.0), mix(&zb, 1.3));
    let case = serde_json::json!({
        "a": a, "b": b, "bins": 40, "d": d, "rows_a": ra, "rows_b": rb,
        "w1": wasserstein1(&a, &b),
        "sep": separation_power(&a, &b, 40),
        "fd": frechet_distance(&ra, &rb, d),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("case.json");
    std::fs::write(&path, serde_json::to_vec(&case).unwrap()).unwrap();
    let code = r#"
import json, sys
import numpy as np
from scipy.linalg import sqrtm
from scipy.stats import wasserstein_distance
c = json.load(open(sys.argv[1]))
a, b = np.array(c["a"]), np.array(c["b"])
w1 = wasserstein_distance(a, b)
edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), c["bins"] + 1)
h, _ = np.histogram(a, edges); g, _ = np.histogram(b, edges)
h, g = h / h.sum(), g / g.sum()
m = (h + g) > 0
sep = 0.5 * np.sum((h[m] - g[m]) ** 2 / (h[m] + g[m]))
d = c["d"]
xa, xb = np.array(c["rows_a"]).reshape(-1, d), np.array(c["rows_b"]).reshape(-1, d)
ca, cb = np.cov(xa, rowvar=False), np.cov(xb, rowvar=False)
fd = np.sum((xa.mean(0) - xb.mean(0)) ** 2) + np.trace(ca + cb - 2 * np.real(sqrtm(ca @ cb)))
for name, want in [("w1", w1), ("sep", sep), ("fd", fd)]:
    got = c[name]
    print(f"{name}: jetpipe {got:.10f}, scipy/numpy {want:.10f}")
    assert abs(got - want) <= 1e-9 * max(1.0, abs(want)), name
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", code])
        .arg(&path)
        .output()
        .expect("python3 with numpy and scipy (run under .ci/with-tools)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    println!("{text}");
}
