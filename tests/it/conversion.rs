//! End-to-end conversion tests: the point-cloud rule against an independent brute-force
//! reference on random images full of ties, byte-identical output for any thread count,
//! reader generality (f64, NCHW, other sizes, several files), and the table contracts.

use crate::common::*;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Int8Type, UInt16Type, UInt32Type, UInt64Type};
use jetpipe::engine::run;
use jetpipe::store::manifest::{Manifest, Status};
use std::path::Path;

/// jetpipe's documented tie key (docs/pipeline.md "Point selection"), written out again from the formula:
/// `h = p·0x9E3779B1 ⊕ n·0x85EBCA77`, then `h ⊕= h≫15; h·=0x2C1B3C6D; h ⊕= h≫12;
/// h·=0x297A2D39; h ⊕= h≫15`, all modulo 2³².
fn tie(p: usize, n_hits: usize) -> u32 {
    let mut h = (p as u32).wrapping_mul(0x9E37_79B1) ^ (n_hits as u32).wrapping_mul(0x85EB_CA77);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^ (h >> 15)
}

/// Brute force: every pixel with any channel > thr, scored in f32 as Σv² (channels in
/// order), fully sorted by (score desc, tie key asc, pixel asc). Returns pixel indices.
fn reference(jets: &Jets, j: usize, thr: f32) -> Vec<usize> {
    reference_ranked(jets, j, thr, &vec![true; jets.c])
}

/// [`reference`] with only the channels flagged in `ranked` entering the score.
fn reference_ranked(jets: &Jets, j: usize, thr: f32, ranked: &[bool]) -> Vec<usize> {
    let mut all: Vec<(f32, usize)> = Vec::new();
    for p in 0..jets.h * jets.w {
        let vals: Vec<f32> = (0..jets.c)
            .map(|c| jets.at(j, p / jets.w, p % jets.w, c))
            .collect();
        if vals.iter().any(|&v| v > thr) {
            let mut s = 0.0f32;
            for (v, _) in vals.iter().zip(ranked).filter(|(_, r)| **r) {
                s += v * v;
            }
            all.push((s, p));
        }
    }
    let n = all.len();
    all.sort_by(|a, b| {
        (b.0.partial_cmp(&a.0).unwrap())
            .then(tie(a.1, n).cmp(&tie(b.1, n)))
            .then(a.1.cmp(&b.1))
    });
    all.into_iter().map(|(_, p)| p).collect()
}

fn list_u16(b: &RecordBatch, col: &str, row: usize) -> Vec<u16> {
    let l = b.column_by_name(col).unwrap().as_list::<i32>().value(row);
    l.as_primitive::<UInt16Type>().values().to_vec()
}

fn list_f32(b: &RecordBatch, col: &str, row: usize) -> Vec<f32> {
    let l = b.column_by_name(col).unwrap().as_list::<i32>().value(row);
    l.as_primitive::<Float32Type>().values().to_vec()
}

fn check_against_reference(
    jets: &Jets,
    out: &Path,
    resolutions: &[usize],
    thr: f32,
    channels: &[&str],
) {
    check_against_reference_ranked(jets, out, resolutions, thr, channels, &vec![true; jets.c]);
}

fn check_against_reference_ranked(
    jets: &Jets,
    out: &Path,
    resolutions: &[usize],
    thr: f32,
    channels: &[&str],
    ranked: &[bool],
) {
    let centre = |s: usize| (s as f32 - 1.0) / 2.0;
    let mut checked = 0;
    for &res in resolutions {
        let batches = read_parquet(&shards(out, &format!("points/res={res}")));
        let mut j = 0usize;
        for b in &batches {
            for row in 0..b.num_rows() {
                let want = reference_ranked(jets, j, thr, ranked);
                let id = b
                    .column_by_name("jet_id")
                    .unwrap()
                    .as_primitive::<UInt64Type>()
                    .value(row);
                assert_eq!(id, j as u64, "jet order");
                let n_hits = b
                    .column_by_name("n_hits")
                    .unwrap()
                    .as_primitive::<UInt32Type>()
                    .value(row);
                assert_eq!(n_hits as usize, want.len(), "n_hits of jet {j}");
                let keep = &want[..want.len().min(res)];
                let n_points = b
                    .column_by_name("n_points")
                    .unwrap()
                    .as_primitive::<UInt16Type>()
                    .value(row);
                assert_eq!(n_points as usize, keep.len());
                let rows = list_u16(b, "row", row);
                let cols = list_u16(b, "col", row);
                let got: Vec<usize> = rows
                    .iter()
                    .zip(&cols)
                    .map(|(&r, &c)| r as usize * jets.w + c as usize)
                    .collect();
                assert_eq!(got, keep, "points of jet {j} at res {res}");
                let eta = list_f32(b, "eta", row);
                let phi = list_f32(b, "phi", row);
                for (k, &p) in keep.iter().enumerate() {
                    let (r, c) = (p / jets.w, p % jets.w);
                    assert_eq!(eta[k], (r as f32 - centre(jets.h)) * 0.0174);
                    assert_eq!(phi[k], (c as f32 - centre(jets.w)) * 0.0174);
                    for (ch, name) in channels.iter().enumerate() {
                        assert_eq!(list_f32(b, name, row)[k], jets.at(j, r, c, ch));
                    }
                }
                j += 1;
                checked += 1;
            }
        }
        assert_eq!(j, jets.n);
    }
    assert!(checked > 0);
}

#[test]
fn random_images_match_brute_force_reference() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("qg.h5");
    let jets = random_jets(7, 150, 125, 125, 3);
    write_h5(&h5, &jets, &Write::default());
    let out = dir.path().join("out");
    let cfg = config(
        &[&h5],
        &out,
        "stages:\n  pointcloud:\n    resolutions: [8, 64, 256, 512]\n",
    );
    let s = run(&cfg, &quiet()).unwrap();
    assert_eq!(s.totals.jets_written, 150);
    assert_eq!(s.totals.units_complete, 4); // 150 jets in units of 40
    check_against_reference(
        &jets,
        &out,
        &[8, 64, 256, 512],
        0.0,
        &["tracks", "ecal", "hcal"],
    );
    // Some jets were truncated at every resolution, some were empty: the test covers both.
    let hits: Vec<usize> = (0..jets.n)
        .map(|j| reference(&jets, j, 0.0).len())
        .collect();
    assert!(hits.contains(&0));
    assert!(hits.iter().any(|&h| h > 8 && h < 64));
    assert!(hits.iter().any(|&h| h > 512));

    // Threshold: only pixels with a channel strictly above 0.9 count.
    let out2 = dir.path().join("out2");
    let cfg = config(
        &[&h5],
        &out2,
        "stages:\n  pointcloud:\n    threshold: 0.9\n    resolutions: [32, 1024]\n",
    );
    run(&cfg, &quiet()).unwrap();
    check_against_reference(&jets, &out2, &[32, 1024], 0.9, &["tracks", "ecal", "hcal"]);
}

#[test]
fn jets_table_has_sums_labels_and_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("qg.h5");
    let jets = random_jets(3, 30, 125, 125, 3);
    write_h5(&h5, &jets, &Write::default());
    let out = dir.path().join("out");
    run(&config(&[&h5], &out, ""), &quiet()).unwrap();
    let b = &read_parquet(&shards(&out, "jets"))[0];
    assert_eq!(b.num_rows(), 30);
    for j in 0..30 {
        let label = b
            .column_by_name("label")
            .unwrap()
            .as_primitive::<Int8Type>()
            .value(j);
        assert_eq!(f32::from(label), jets.y[j]);
        assert_eq!(
            b.column_by_name("pt")
                .unwrap()
                .as_primitive::<Float32Type>()
                .value(j),
            jets.pt[j]
        );
        assert_eq!(
            b.column_by_name("m0")
                .unwrap()
                .as_primitive::<Float32Type>()
                .value(j),
            jets.m0[j]
        );
        assert_eq!(
            b.column_by_name("source_index")
                .unwrap()
                .as_primitive::<UInt64Type>()
                .value(j),
            j as u64
        );
        for (c, name) in ["sum_tracks", "sum_ecal", "sum_hcal"].iter().enumerate() {
            let mut want = 0.0f32;
            for p in 0..125 * 125 {
                want += jets.at(j, p / 125, p % 125, c);
            }
            let got = b
                .column_by_name(name)
                .unwrap()
                .as_primitive::<Float32Type>()
                .value(j);
            assert_eq!(got, want, "{name} of jet {j}");
        }
    }
}

#[test]
fn output_bytes_do_not_depend_on_threads_writers_batch_size_or_queue_depth() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("qg.h5");
    write_h5(&h5, &random_jets(11, 120, 125, 125, 3), &Write::default());
    let mut trees = Vec::new();
    let settings = [
        (1, 1, 40, 1),
        (2, 3, 3, 2),
        (5, 2, 7, 8),
        (2, 1, 64, 4),
        (1, 4, 5, 1),
    ];
    for (threads, writers, batch, depth) in settings {
        let out = dir.path().join(format!("out{threads}_{writers}_{batch}"));
        let mut cfg = config(&[&h5], &out, "");
        cfg.engine.threads = threads;
        cfg.engine.writers = writers;
        cfg.engine.batch_size = batch;
        cfg.engine.queue_depth = depth;
        run(&cfg, &quiet()).unwrap();
        let files = tree(&out);
        assert_eq!(files.len(), 1 + 3 * 5, "{files:?}"); // manifest + 3 units × (jets + 4 res)
        let bytes: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(out.join(f)).unwrap())
            .collect();
        trees.push((files, bytes));
    }
    assert!(
        trees.windows(2).all(|w| w[0] == w[1]),
        "outputs differ between engine settings"
    );
}

#[test]
fn rerun_keeps_complete_units_and_rewrites_missing_ones_identically() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("qg.h5");
    let good = random_jets(12, 100, 40, 40, 3);
    write_h5(&h5, &good, &Write::default());
    let reference = dir.path().join("reference");
    run(&config(&[&h5], &reference, ""), &quiet()).unwrap();
    let snapshot = |d: &Path| -> Vec<(String, Vec<u8>)> {
        tree(d)
            .into_iter()
            .map(|f| {
                let b = std::fs::read(d.join(&f)).unwrap();
                (f, b)
            })
            .collect()
    };

    // A shard goes missing and a killed run left a temp file: the rerun restores both.
    let out = dir.path().join("out");
    let cfg = config(&[&h5], &out, "");
    run(&cfg, &quiet()).unwrap();
    std::fs::remove_file(out.join("points/res=512/part-00001.parquet")).unwrap();
    std::fs::write(out.join("points/res=256/.part-00002.parquet.tmp"), b"junk").unwrap();
    let s = run(&cfg, &quiet()).unwrap();
    assert_eq!(s.units_kept, 2);
    assert!(snapshot(&out) == snapshot(&reference));

    // A run that failed at jet 85 (unit 2) keeps units 0 and 1 in its manifest.
    let out = dir.path().join("failed");
    let mut bad = good.clone();
    bad.set(85, 1, 1, 0, f32::NAN);
    write_h5(&h5, &bad, &Write::default());
    let cfg = config(&[&h5], &out, "");
    assert!(run(&cfg, &quiet()).is_err());
    assert_eq!(Manifest::read(&out).unwrap().unwrap().units.len(), 2);
    write_h5(&h5, &good, &Write::default());
    // The fixed file is not the one the failed run read: resuming over it is refused, and
    // --overwrite converts everything again.
    let msg = run(&cfg, &quiet()).unwrap_err().to_string();
    assert!(msg.contains("changed since the earlier run"), "{msg}");
    let s = run(
        &cfg,
        &jetpipe::engine::RunOptions {
            overwrite: true,
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((s.units_kept, s.totals.units_complete), (0, 3));
    // The manifest records the source's mtime, which differs from the reference's source.
    let strip = |v: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        v.into_iter()
            .filter(|(f, _)| f != "manifest.json")
            .collect()
    };
    assert!(strip(snapshot(&out)) == strip(snapshot(&reference)));

    // A run killed after its second unit (manifest lists units 0-1, unit 2 never renamed):
    // the rerun converts only unit 2 and ends byte-identical to an uninterrupted run.
    let out = dir.path().join("killed");
    let cfg = config(&[&h5], &out, "");
    run(&cfg, &quiet()).unwrap();
    let mut m = Manifest::read(&out).unwrap().unwrap();
    m.units.truncate(2);
    m.status = Status::Running;
    m.write(&out).unwrap();
    for f in tree(&out).iter().filter(|f| f.contains("part-00002")) {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let s = run(&cfg, &quiet()).unwrap();
    assert_eq!((s.units_kept, s.totals.jets_in), (2, 100));
    assert!(strip(snapshot(&out)) == strip(snapshot(&reference)));
    // Against a single run on the same file, the manifest is identical too.
    let single = dir.path().join("single");
    run(&config(&[&h5], &single, ""), &quiet()).unwrap();
    assert!(snapshot(&out) == snapshot(&single));
}

#[test]
fn reads_f64_nchw_egamma_shaped_images_and_missing_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("eg.h5");
    let jets = random_jets(5, 25, 32, 32, 2);
    write_h5(
        &h5,
        &jets,
        &Write {
            images: "X",
            f64: true,
            nchw: true,
            scalars: false,
            gzip: false,
        },
    );
    let out = dir.path().join("out");
    let extra = "stages:\n  pointcloud:\n    resolutions: [16, 128]\n";
    let text = format!(
        "name: eg\nsource:\n  files: [\"{}\"]\n  layout: nchw\n  channels: [energy, time]\n  datasets: {{images: X, pt: null, m0: null, label: null}}\nsink:\n  path: \"{}\"\n{extra}",
        h5.display(),
        out.display()
    );
    let cfg = jetpipe::config::parse_config(&text, "eg.yaml").unwrap();
    run(&cfg, &quiet()).unwrap();
    check_against_reference(&jets, &out, &[16, 128], 0.0, &["energy", "time"]);
    let b = &read_parquet(&shards(&out, "points/res=16"))[0];
    assert_eq!(b.column_by_name("label").unwrap().null_count(), 25);
    assert_eq!(b.column_by_name("pt").unwrap().null_count(), 25);
}

#[test]
fn signed_and_rank_channels() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("eg.h5");
    let mut jets = random_jets(21, 20, 32, 32, 2);
    // A "time" channel: negative where there is energy.
    for j in 0..jets.n {
        for p in 0..32 * 32 {
            if jets.at(j, p / 32, p % 32, 0) > 0.0 {
                jets.set(j, p / 32, p % 32, 1, -0.25 * (p % 7) as f32);
            }
        }
    }
    write_h5(
        &h5,
        &jets,
        &Write {
            images: "X",
            scalars: false,
            ..Default::default()
        },
    );
    let base = |out: &Path, extra: &str| {
        let text = format!(
            "name: eg\nsource:\n  files: [\"{}\"]\n  channels: [energy, time]\n  datasets: {{images: X, pt: null, m0: null, label: null}}\n{extra}sink:\n  path: \"{}\"\nstages:\n  pointcloud:\n    resolutions: [8, 64]\n    rank_channels: [energy]\n",
            h5.display(),
            out.display()
        );
        jetpipe::config::parse_config(&text, "eg.yaml").unwrap()
    };
    let out = dir.path().join("unsigned");
    let msg = run(&base(&out, ""), &quiet()).unwrap_err().to_string();
    assert!(msg.contains("channel `time` is -"), "{msg}");
    let out = dir.path().join("signed");
    run(&base(&out, "  signed_channels: [time]\n"), &quiet()).unwrap();
    check_against_reference_ranked(
        &jets,
        &out,
        &[8, 64],
        0.0,
        &["energy", "time"],
        &[true, false],
    );
}

#[test]
fn several_files_keep_ids_unique_and_traceable() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a_1.h5"), dir.path().join("a_2.h5"));
    write_h5(&a, &random_jets(1, 50, 125, 125, 3), &Write::default());
    write_h5(&b, &random_jets(2, 30, 125, 125, 3), &Write::default());
    let out = dir.path().join("out");
    let pattern = dir.path().join("a_*.h5");
    let mut cfg = config(&[&pattern], &out, "");
    cfg.source.offset = 45;
    cfg.source.limit = Some(20);
    run(&cfg, &quiet()).unwrap();
    let batches = read_parquet(&shards(&out, "jets"));
    let mut seen = Vec::new();
    for bt in &batches {
        for r in 0..bt.num_rows() {
            let id = bt.column(0).as_primitive::<UInt64Type>().value(r);
            let file = bt
                .column_by_name("source_file")
                .unwrap()
                .as_string::<i32>()
                .value(r)
                .to_string();
            let idx = bt
                .column_by_name("source_index")
                .unwrap()
                .as_primitive::<UInt64Type>()
                .value(r);
            seen.push((id, file, idx));
        }
    }
    let want: Vec<(u64, String, u64)> = (45..50)
        .map(|i| (i, a.display().to_string(), i))
        .chain((0..15).map(|i| ((1 << 32) | i, b.display().to_string(), i)))
        .collect();
    assert_eq!(seen, want);
    let m = Manifest::read(&out).unwrap().unwrap();
    assert_eq!(m.status, Status::Complete);
    assert_eq!(m.sources.len(), 2);
    assert_eq!(m.totals.jets_written, 20);
    assert_eq!(
        m.units
            .iter()
            .map(|u| (u.file, u.start, u.end))
            .collect::<Vec<_>>(),
        [(0, 45, 50), (1, 0, 15)]
    );
}

#[test]
fn written_files_match_committed_schema_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("qg.h5");
    write_h5(&h5, &random_jets(9, 10, 125, 125, 3), &Write::default());
    let out = dir.path().join("out");
    run(&config(&[&h5], &out, ""), &quiet()).unwrap();
    let manifest = Manifest::read(&out).unwrap().unwrap();
    for (table, dirs) in [
        ("jets", vec!["jets".to_string()]),
        (
            "points",
            (["256", "512", "768", "1024"])
                .iter()
                .map(|r| format!("points/res={r}"))
                .collect(),
        ),
    ] {
        let committed: jetpipe::store::tables::TableDoc = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{table}.schema.json")),
            )
            .unwrap(),
        )
        .unwrap();
        for d in dirs {
            for shard in shards(&out, &d) {
                let f = std::fs::File::open(&shard).unwrap();
                let schema =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                        .unwrap()
                        .schema()
                        .clone();
                let got = jetpipe::store::tables::table_doc(
                    &committed.table,
                    &committed.row,
                    committed.partitioned_by.as_deref(),
                    &schema,
                );
                assert_eq!(
                    got,
                    committed,
                    "{} does not match schemas/{table}.schema.json",
                    shard.display()
                );
            }
        }
        assert_eq!(manifest.tables[table].schema, committed);
    }
}

#[test]
fn committed_schema_files_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for (name, text) in jetpipe::cli::schema_files() {
        let committed = std::fs::read_to_string(root.join(&name)).unwrap_or_default();
        assert!(
            committed == text,
            "schemas/{name} is stale: run `cargo run -- schema --write schemas`"
        );
    }
}
