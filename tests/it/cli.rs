//! The `pipeline` binary as a user runs it: messages and exit codes.
//!
//! Kept in its own test binary: a spawned child inherits the HDF5 library's file descriptors
//! (HDF5 does not open them close-on-exec), and with them the file locks of fixtures that
//! tests in the same process are writing at that moment.

use std::process::Command;

#[test]
fn cli_reports_yaml_line_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("p.yaml");
    std::fs::write(
        &yaml,
        "name: t\nsource:\n  files: [a.h5]\nsink:\n  path: o\n  shards: 3\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["validate", yaml.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("p.yaml:6:3") && err.contains("unknown field `shards`"),
        "{err}"
    );
}

#[test]
fn explain_shows_plan_and_graph_columns() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .current_dir(root)
        .args(["explain", "pipelines/qg1024.yaml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "2. pointcloud",
        "3. knn",
        "points/{res=256,res=512,res=768,res=1024}",
        "knn_k",
        "list<uint16>",
        "n_components",
        "mean_degree",
    ] {
        assert!(
            text.contains(want),
            "`{want}` missing from explain:\n{text}"
        );
    }
}

#[test]
fn preview_draws_channels_and_points_side_by_side() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny");
    let pipeline = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .current_dir(root)
            .args(args)
            .output()
            .unwrap()
    };
    let o = pipeline(&[
        "run",
        "pipelines/qg_tiny.yaml",
        "-q",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = pipeline(&["preview", out.to_str().unwrap(), "--jets", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::File::open(out.join("preview.png")).unwrap();
    let reader = png::Decoder::new(std::io::BufReader::new(png))
        .read_info()
        .unwrap();
    let info = reader.info();
    // 3 channels + 2 point panels of 125 × 2 pixels plus 4-pixel gaps; a 24-pixel title
    // strip and 2 rows.
    assert_eq!((info.width, info.height), (5 * 254, 24 + 2 * 254));
}
