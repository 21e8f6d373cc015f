//! Bad input gets a clear error naming the file, dataset, jet index, pixel or YAML line,
//! and leaves no output that looks complete.

use crate::common::*;
use jetpipe::engine::{RunOptions, run};
use jetpipe::store::manifest::{Manifest, Status};
use std::path::Path;

/// No shard is half-written, and no manifest claims completeness.
fn assert_nothing_looks_complete(out: &Path) {
    for f in tree(out) {
        assert!(!f.contains(".tmp"), "temporary file left behind: {f}");
    }
    if let Some(m) = Manifest::read(out).unwrap() {
        assert_ne!(m.status, Status::Complete);
    }
}

fn err_of(cfg: &jetpipe::config::PipelineConfig) -> String {
    let e = run(cfg, &quiet()).expect_err("run must fail");
    assert_nothing_looks_complete(&cfg.sink.path);
    e.to_string()
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.h5");
    let msg = err_of(&config(&[&missing], &dir.path().join("out"), ""));
    assert!(
        msg.contains("nope.h5") && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn missing_dataset_is_named_with_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("a.h5");
    write_h5(
        &h5,
        &random_jets(1, 4, 10, 10, 3),
        &Write {
            images: "images",
            ..Default::default()
        },
    );
    let msg = err_of(&config(&[&h5], &dir.path().join("out"), ""));
    assert!(
        msg.contains("a.h5")
            && msg.contains("dataset `X_jets` not found")
            && msg.contains("images"),
        "{msg}"
    );
}

#[test]
fn wrong_rank_dtype_channels_and_lengths_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // rank 3
    let h5 = dir.path().join("rank.h5");
    {
        let f = hdf5::File::create(&h5).unwrap();
        f.new_dataset_builder()
            .with_data(&ndarray::Array3::<f32>::zeros((2, 4, 4)))
            .create("X_jets")
            .unwrap();
    }
    let msg = err_of(&config(&[&h5], &out, ""));
    assert!(
        msg.contains("rank.h5") && msg.contains("expected rank 4"),
        "{msg}"
    );
    // integer images
    let h5 = dir.path().join("int.h5");
    {
        let f = hdf5::File::create(&h5).unwrap();
        f.new_dataset_builder()
            .with_data(&ndarray::Array4::<i32>::zeros((2, 4, 4, 3)))
            .create("X_jets")
            .unwrap();
    }
    let msg = err_of(&config(&[&h5], &out, ""));
    assert!(
        msg.contains("int.h5") && msg.contains("expected float32 or float64"),
        "{msg}"
    );
    // 2 channels, config names 3
    let h5 = dir.path().join("ch.h5");
    write_h5(&h5, &random_jets(1, 3, 8, 8, 2), &Write::default());
    let msg = err_of(&config(&[&h5], &out, ""));
    assert!(
        msg.contains("has 2 channels but the config names 3"),
        "{msg}"
    );
    // scalar length differs from image count
    let h5 = dir.path().join("len.h5");
    let mut jets = random_jets(1, 5, 8, 8, 3);
    jets.pt.pop();
    write_h5(&h5, &jets, &Write::default());
    let msg = err_of(&config(&[&h5], &out, ""));
    assert!(
        msg.contains("len.h5") && msg.contains("`pt` has 4 entries but `X_jets` has 5 jets"),
        "{msg}"
    );
}

fn jets_with_bad_pixel(v: f32) -> Jets {
    let mut jets = random_jets(4, 60, 12, 12, 3);
    jets.set(47, 3, 9, 1, v);
    jets
}

#[test]
fn nan_inf_and_negative_pixels_name_file_jet_pixel_and_channel() {
    let dir = tempfile::tempdir().unwrap();
    for (i, v) in [f32::NAN, f32::INFINITY, -0.5].into_iter().enumerate() {
        let h5 = dir.path().join(format!("bad{i}.h5"));
        write_h5(&h5, &jets_with_bad_pixel(v), &Write::default());
        let out = dir.path().join(format!("out{i}"));
        let msg = err_of(&config(&[&h5], &out, ""));
        assert!(
            msg.contains(&format!(
                "bad{i}.h5: jet 47: pixel (row 3, col 9) channel `ecal` is {v}"
            )),
            "{msg}"
        );
        // Jets 0..40 form a complete first unit; it stays listed, the failed unit does not.
        let m = Manifest::read(&out).unwrap().unwrap();
        assert_eq!(m.status, Status::Failed);
        assert_eq!(m.units.len(), 1);
        assert!(m.error.unwrap().contains("jet 47"));
        assert_eq!(
            tree(&out)
                .iter()
                .filter(|f| f.contains("part-00001"))
                .count(),
            0
        );
    }
}

#[test]
fn on_invalid_skip_and_zero_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("bad.h5");
    write_h5(&h5, &jets_with_bad_pixel(f32::NAN), &Write::default());
    let out = dir.path().join("skip");
    let mut cfg = config(&[&h5], &out, "");
    cfg.source.on_invalid = jetpipe::config::OnInvalid::SkipJet;
    let s = run(&cfg, &quiet()).unwrap();
    assert_eq!(
        (
            s.totals.jets_in,
            s.totals.jets_written,
            s.totals.jets_rejected
        ),
        (60, 59, 1)
    );
    let m = Manifest::read(&out).unwrap().unwrap();
    let r = &m.units[1].rejected[0];
    assert_eq!(r.index, 47);
    assert!(r.reason.contains("row 3, col 9"), "{}", r.reason);
    let rows: usize = read_parquet(&shards(&out, "points/res=256"))
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 59);

    let out = dir.path().join("zero");
    cfg.sink.path = out.clone();
    cfg.source.on_invalid = jetpipe::config::OnInvalid::Zero;
    let s = run(&cfg, &quiet()).unwrap();
    assert_eq!((s.totals.jets_written, s.totals.zeroed_values), (60, 1));
}

#[test]
fn label_outside_allowed_set_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("lab.h5");
    let mut jets = random_jets(2, 10, 8, 8, 3);
    jets.y[6] = 2.0;
    write_h5(&h5, &jets, &Write::default());
    let msg = err_of(&config(&[&h5], &dir.path().join("out"), ""));
    assert!(
        msg.contains("lab.h5: jet 6: label value 2 is not one of the allowed labels [0, 1]"),
        "{msg}"
    );
    // Allowing it makes the run pass, and the label is kept as stored.
    let mut cfg = config(&[&h5], &dir.path().join("out2"), "");
    cfg.source.labels = vec![0, 1, 2];
    assert_eq!(run(&cfg, &quiet()).unwrap().totals.jets_written, 10);
}

#[test]
fn output_of_another_pipeline_is_refused_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("a.h5");
    write_h5(&h5, &random_jets(2, 10, 8, 8, 3), &Write::default());
    let out = dir.path().join("out");
    let cfg = config(&[&h5], &out, "");
    run(&cfg, &quiet()).unwrap();
    let before = tree(&out);
    let mut other = cfg.clone();
    other.stages.pointcloud.resolutions = vec![4];
    let msg = run(&other, &quiet()).err().unwrap().to_string();
    assert!(
        msg.contains("holds the output of pipeline `test`") && msg.contains("--overwrite"),
        "{msg}"
    );
    assert_eq!(tree(&out), before, "refused run must not touch the output");
    let s = run(
        &other,
        &RunOptions {
            overwrite: true,
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.totals.jets_written, 10);
    assert!(tree(&out).iter().all(|f| !f.contains("res=256")));
    // A non-jetpipe directory with jets/ in it is refused too.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(foreign.join("jets")).unwrap();
    let mut c = cfg.clone();
    c.sink.path = foreign;
    assert!(
        run(&c, &quiet())
            .err()
            .unwrap()
            .to_string()
            .contains("no manifest.json")
    );
}

#[test]
fn bad_scalars_and_mismatched_files_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let jets = random_jets(1, 6, 8, 8, 3);
    // label dataset of the wrong shape
    let h5 = dir.path().join("shape.h5");
    {
        // One handle for the whole file: reopening it at once can hit HDF5's file lock.
        let f = hdf5::File::create(&h5).unwrap();
        let x = ndarray::Array4::from_shape_vec((6, 8, 8, 3), jets.images.clone()).unwrap();
        f.new_dataset_builder()
            .with_data(&x)
            .create("X_jets")
            .unwrap();
        for name in ["pt", "m0"] {
            f.new_dataset_builder()
                .with_data(jets.pt.as_slice())
                .create(name)
                .unwrap();
        }
        f.new_dataset_builder()
            .with_data(&ndarray::Array2::<f32>::zeros((6, 2)))
            .create("y")
            .unwrap();
    }
    let msg = err_of(&config(&[&h5], &out, ""));
    assert!(
        msg.contains("shape.h5")
            && msg.contains("dataset `y` has shape [6, 2], expected (N,) or (N, 1)"),
        "{msg}"
    );
    // label that is not an integer, and one that is NaN
    for (i, v) in [0.5f32, f32::NAN].into_iter().enumerate() {
        let h5 = dir.path().join(format!("frac{i}.h5"));
        let mut j = jets.clone();
        j.y[4] = v;
        write_h5(&h5, &j, &Write::default());
        let msg = err_of(&config(&[&h5], &out.join(format!("{i}")), ""));
        assert!(
            msg.contains(&format!(
                "frac{i}.h5: jet 4: label value {v} is not one of the allowed labels"
            )),
            "{msg}"
        );
    }
    // two files with different image sizes
    let (a, b) = (dir.path().join("g1.h5"), dir.path().join("g2.h5"));
    write_h5(&a, &jets, &Write::default());
    write_h5(&b, &random_jets(1, 6, 10, 10, 3), &Write::default());
    let msg = err_of(&config(&[&a, &b], &out, ""));
    assert!(
        msg.contains("g2.h5: images are 10×10×3 but") && msg.contains("has 8×8×3"),
        "{msg}"
    );
}

#[test]
fn corrupt_chunk_names_file_and_jet() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("flip.h5");
    // Jet 0 empty, jet 1 full of distinct values: its gzip chunk is large and easy to find.
    let mut jets = random_jets(2, 3, 20, 20, 3);
    jets.images.iter_mut().for_each(|v| *v = 0.0);
    for p in 0..400 {
        for c in 0..3 {
            jets.set(1, p / 20, p % 20, c, (p * 3 + c) as f32 * 0.37);
        }
    }
    write_h5(&h5, &jets, &Write::default());
    let mut bytes = std::fs::read(&h5).unwrap();
    // Overwrite the middle of the largest run of high-entropy bytes (jet 1's deflate stream).
    let probe: Vec<u8> = {
        let f = hdf5::File::open(&h5).unwrap();
        let ds = f.dataset("X_jets").unwrap();
        let info = ds.chunk_info(1).unwrap();
        let (off, size) = (info.addr as usize, info.size as usize);
        bytes[off + size / 2..off + size / 2 + 16].copy_from_slice(&[0xFF; 16]);
        bytes.clone()
    };
    std::fs::write(&h5, &probe).unwrap();
    let msg = err_of(&config(&[&h5], &dir.path().join("out"), ""));
    assert!(
        msg.contains("flip.h5: jet 1: cannot read the image dataset"),
        "{msg}"
    );
}

#[test]
fn corrupt_hdf5_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("trunc.h5");
    write_h5(&h5, &random_jets(2, 30, 20, 20, 3), &Write::default());
    let bytes = std::fs::read(&h5).unwrap();
    std::fs::write(&h5, &bytes[..bytes.len() / 3]).unwrap();
    let msg = err_of(&config(&[&h5], &dir.path().join("out"), ""));
    assert!(msg.contains("trunc.h5"), "{msg}");
}

#[test]
fn knn_coordinates_that_overflow_name_the_jet_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    // Jet 45 gets an ECAL value that, times the scale 1e15, is beyond ±1e18 (1e4) or
    // overflows f32 to ∞ (1e24); the other jets' ECAL values are at most 10.
    for (i, v) in [1e4f32, 1e24].into_iter().enumerate() {
        let h5 = dir.path().join(format!("big{i}.h5"));
        let mut jets = random_jets(4, 60, 12, 12, 3);
        jets.set(45, 5, 7, 1, v);
        write_h5(&h5, &jets, &Write::default());
        let out = dir.path().join(format!("out{i}"));
        let cfg = config(
            &[&h5],
            &out,
            "stages:\n  knn:\n    k: 4\n    coordinates: [eta, phi, ecal]\n    scales: [1.0, 1.0, 1.0e15]\n",
        );
        let msg = err_of(&cfg);
        assert!(
            msg.contains(&format!("big{i}.h5: jet 45: kNN coordinate"))
                && msg.contains("(pixel row 5, col 7)")
                && msg.contains("coordinates must be finite and within"),
            "{msg}"
        );
        if i == 1 {
            assert!(msg.contains("= inf"), "{msg}");
        }
        let m = Manifest::read(&out).unwrap().unwrap();
        assert_eq!(m.units.len(), 1, "the complete first unit stays listed");
    }
}
