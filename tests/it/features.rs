//! Jet features against independent computations: hand-made jets with analytically known
//! widths, pT_D, fractions and moments, and random images against a plain float64 reference.

use crate::common::*;
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, UInt32Type};
use jetpipe::engine::run;
use std::path::Path;

const PX: f64 = 0.0174;

fn convert(jets: &Jets, dir: &Path) -> RecordBatch {
    let h5 = dir.join("f.h5");
    write_h5(&h5, jets, &Write::default());
    let out = dir.join("out");
    let cfg = config(
        &[&h5],
        &out,
        "stages:\n  pointcloud:\n    resolutions: [2, 8]\n",
    );
    run(&cfg, &quiet()).unwrap();
    let batches = read_parquet(&shards(&out, "jets"));
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn f(b: &RecordBatch, col: &str, row: usize) -> f64 {
    f64::from(
        b.column_by_name(col)
            .unwrap_or_else(|| panic!("no column {col}"))
            .as_primitive::<Float32Type>()
            .value(row),
    )
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1e-3),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn hand_made_jets_have_analytic_features() {
    let dir = tempfile::tempdir().unwrap();
    let mut jets = random_jets(1, 4, 125, 125, 3);
    jets.images.iter_mut().for_each(|v| *v = 0.0);
    // Jet 0: one ECAL pixel on the axis.
    jets.set(0, 62, 62, 1, 10.0);
    // Jet 1: two equal HCAL pixels at Δφ = ±3 pixels.
    jets.set(1, 62, 59, 2, 4.0);
    jets.set(1, 62, 65, 2, 4.0);
    // Jet 2: a 2:1 energy split along η, 10 pixels apart, plus a track pixel between them.
    jets.set(2, 57, 62, 1, 2.0);
    jets.set(2, 67, 62, 1, 1.0);
    jets.set(2, 62, 62, 0, 1.0);
    // Jet 3: empty.
    let b = convert(&jets, dir.path());

    close(f(&b, "sum_total", 0), 10.0, "sum_total");
    close(f(&b, "frac_ecal", 0), 1.0, "frac_ecal");
    close(f(&b, "width_total", 0), 0.0, "width");
    close(f(&b, "ptd_ecal", 0), 1.0, "ptd");
    close(f(&b, "lead_frac", 0), 1.0, "lead");
    close(f(&b, "core_frac", 0), 1.0, "core");
    close(f(&b, "axis_major", 0), 0.0, "major");
    assert_eq!(
        b.column_by_name("hits_ecal")
            .unwrap()
            .as_primitive::<UInt32Type>()
            .value(0),
        1
    );

    close(f(&b, "width_hcal", 1), 3.0 * PX, "width two pixels");
    close(f(&b, "width_total", 1), 3.0 * PX, "width two pixels");
    close(f(&b, "ptd_total", 1), 0.5, "ptd two pixels");
    close(f(&b, "lead_frac", 1), 0.5, "lead two pixels");
    close(
        f(&b, "core_frac", 1),
        1.0,
        "core two pixels (ΔR 0.052 < 0.1)",
    );
    close(
        f(&b, "axis_major", 1),
        3.0 * PX,
        "major = half the separation",
    );
    close(f(&b, "axis_minor", 1), 0.0, "minor");
    close(f(&b, "eccentricity", 1), 1.0, "eccentricity of a line");
    close(f(&b, "kept_frac_2", 1), 1.0, "kept 2 of 2");

    // Jet 2: energies e = 2, 1, 1 at Δη = −5, +5, 0 pixels.
    let (e, x) = ([2.0, 1.0, 1.0], [-5.0 * PX, 5.0 * PX, 0.0]);
    let tot: f64 = e.iter().sum();
    let mean = e.iter().zip(&x).map(|(e, x)| e * x).sum::<f64>() / tot;
    let var = e
        .iter()
        .zip(&x)
        .map(|(e, x)| e * (x - mean).powi(2))
        .sum::<f64>()
        / tot;
    close(f(&b, "sum_total", 2), tot, "sum");
    close(f(&b, "frac_tracks", 2), 0.25, "track fraction");
    close(
        f(&b, "width_total", 2),
        (2.0 * 5.0 * PX + 5.0 * PX) / tot,
        "width",
    );
    close(f(&b, "width_tracks", 2), 0.0, "track width");
    close(f(&b, "ptd_total", 2), 6.0 / 16.0, "ptd");
    close(f(&b, "ptd_ecal", 2), 5.0 / 9.0, "ptd ecal");
    close(f(&b, "lead_frac", 2), 0.5, "lead");
    close(f(&b, "core_frac", 2), 1.0, "core: 5 px = 0.087 < 0.1");
    close(f(&b, "axis_major", 2), var.sqrt(), "major");
    close(f(&b, "kept_frac_2", 2), 2.0 / 3.0, "kept 2 of 3");

    for col in [
        "sum_total",
        "width_total",
        "ptd_total",
        "lead_frac",
        "core_frac",
        "axis_major",
        "eccentricity",
        "frac_ecal",
    ] {
        assert_eq!(f(&b, col, 3), 0.0, "{col} of the empty jet");
    }
    assert_eq!(f(&b, "kept_frac_8", 3), 1.0);
}

/// Plain float64 reference of every feature of jet `j`.
fn reference(jets: &Jets, j: usize) -> Vec<(String, f64)> {
    let names = ["tracks", "ecal", "hcal"];
    let centre = 62.0;
    let mut out = Vec::new();
    let mut sum = [0.0f64; 3];
    let mut sum_dr = [0.0f64; 3];
    let mut sum_sq = [0.0f64; 3];
    let mut pix: Vec<(f64, f64, f64)> = Vec::new(); // (e, dη, dφ)
    for r in 0..125 {
        for c in 0..125 {
            let (x, y) = ((r as f64 - centre) * PX, (c as f64 - centre) * PX);
            let dr = (x * x + y * y).sqrt();
            let mut e = 0.0;
            for ch in 0..3 {
                let v = f64::from(jets.at(j, r, c, ch));
                sum[ch] += v;
                sum_dr[ch] += v * dr;
                sum_sq[ch] += v * v;
                e += v;
            }
            if e > 0.0 {
                pix.push((e, x, y));
            }
        }
    }
    let tot: f64 = pix.iter().map(|p| p.0).sum();
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    out.push(("sum_total".into(), tot));
    for ch in 0..3 {
        out.push((format!("frac_{}", names[ch]), div(sum[ch], tot)));
        out.push((format!("width_{}", names[ch]), div(sum_dr[ch], sum[ch])));
        out.push((
            format!("ptd_{}", names[ch]),
            div(sum_sq[ch], sum[ch] * sum[ch]),
        ));
    }
    let wt = pix
        .iter()
        .map(|(e, x, y)| e * (x * x + y * y).sqrt())
        .sum::<f64>();
    out.push(("width_total".into(), div(wt, tot)));
    out.push((
        "ptd_total".into(),
        div(pix.iter().map(|p| p.0 * p.0).sum(), tot * tot),
    ));
    out.push((
        "lead_frac".into(),
        div(pix.iter().map(|p| p.0).fold(0.0, f64::max), tot),
    ));
    let core: f64 = pix
        .iter()
        .filter(|(_, x, y)| (x * x + y * y).sqrt() < 0.1)
        .map(|p| p.0)
        .sum();
    out.push(("core_frac".into(), div(core, tot)));
    if tot > 0.0 {
        let mx = pix.iter().map(|(e, x, _)| e * x).sum::<f64>() / tot;
        let my = pix.iter().map(|(e, _, y)| e * y).sum::<f64>() / tot;
        let a = pix
            .iter()
            .map(|(e, x, _)| e * (x - mx).powi(2))
            .sum::<f64>()
            / tot;
        let c = pix
            .iter()
            .map(|(e, _, y)| e * (y - my).powi(2))
            .sum::<f64>()
            / tot;
        let b = pix
            .iter()
            .map(|(e, x, y)| e * (x - mx) * (y - my))
            .sum::<f64>()
            / tot;
        // Eigenvalues by the characteristic polynomial, written independently of the crate.
        let tr = a + c;
        let det = a * c - b * b;
        let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
        let (l1, l2) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(0.0));
        out.push(("axis_major".into(), l1.sqrt()));
        out.push(("axis_minor".into(), l2.sqrt()));
        out.push((
            "eccentricity".into(),
            if l1 > 0.0 {
                (1.0 - l2 / l1).sqrt()
            } else {
                0.0
            },
        ));
    }
    out
}

#[test]
fn random_images_match_float64_reference() {
    let dir = tempfile::tempdir().unwrap();
    let jets = random_jets(31, 60, 125, 125, 3);
    let b = convert(&jets, dir.path());
    assert_eq!(b.num_rows(), 60);
    let mut checked = 0;
    for j in 0..60 {
        for (name, want) in reference(&jets, j) {
            let got = f(&b, &name, j);
            // Stored as float32: relative 1e-5 (widths of nearly empty jets: absolute 1e-6).
            assert!(
                (got - want).abs() <= 1e-5 * want.abs() + 1e-6,
                "jet {j} {name}: got {got}, want {want}"
            );
            checked += 1;
        }
    }
    assert!(checked > 800, "{checked} values checked");
}
