//! `pipeline sql` benchmark: a group-by over a 139,306-jet `jets` table (the size of the
//! CMS quark/gluon file) and an unnest over `points` at res=256, with DataFusion, each timed
//! against a hand-written baseline in the same run: the parquet crate reading the same
//! columns and a plain Rust loop doing the same aggregation.
//!
//! The tables are made by converting data-samples/qg_sample.h5 (1000 jets) and copying its
//! shards with fresh jet ids until the size is reached: realistic columns and compression.
//!
//! Run: `cargo bench --bench sql`.

use arrow::array::{Array, AsArray, RecordBatch, UInt64Array};
use arrow::datatypes::{Float32Type, Int8Type, UInt32Type};
use jetpipe::config::load_config;
use jetpipe::engine::{RunOptions, run};
use jetpipe::sql::{DatasetRef, Sql};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const JETS: usize = 139_306;
const POINT_COPIES: usize = 20;

fn read(path: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// Writes `copies` copies of `src` (one shard each) into `dir`, shifting jet ids, until
/// `limit` rows are written.
fn replicate(src: &Path, dir: &Path, copies: usize, limit: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let batches = read(src);
    let schema = batches[0].schema();
    let mut written = 0;
    for c in 0..copies {
        let f = std::fs::File::create(dir.join(format!("part-{c:05}.parquet"))).unwrap();
        let mut w = ArrowWriter::try_new(f, schema.clone(), None).unwrap();
        for b in &batches {
            let n = b.num_rows().min(limit - written);
            if n == 0 {
                break;
            }
            let b = b.slice(0, n);
            let ids = b.column(0).as_primitive::<arrow::datatypes::UInt64Type>();
            let shifted: UInt64Array = ids
                .iter()
                .map(|v| v.map(|v| v + (c as u64) * 1_000_000))
                .collect();
            let mut cols = b.columns().to_vec();
            cols[0] = Arc::new(shifted);
            w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
                .unwrap();
            written += n;
        }
        w.close().unwrap();
    }
}

fn time<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = f();
    for _ in 0..5 {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = load_config(&root.join("pipelines/qg1024.yaml"))
        .unwrap()
        .config;
    cfg.source.files = vec![root.join("data-samples/qg_sample.h5").display().to_string()];
    cfg.sink.path = tmp.path().join("sample");
    run(
        &cfg,
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap();
    let ds = tmp.path().join("bench");
    replicate(
        &cfg.sink.path.join("jets/part-00000.parquet"),
        &ds.join("jets"),
        JETS.div_ceil(1000),
        JETS,
    );
    replicate(
        &cfg.sink.path.join("points/res=256/part-00000.parquet"),
        &ds.join("points/res=256"),
        POINT_COPIES,
        POINT_COPIES * 1000,
    );
    // The manifest of the sample describes the tables; the bench copies keep its schemas.
    std::fs::copy(
        cfg.sink.path.join("manifest.json"),
        ds.join("manifest.json"),
    )
    .unwrap();
    let sql = Sql::open(&[DatasetRef {
        name: None,
        dir: ds.clone(),
    }])
    .unwrap();

    // 1. Group-by over the jets table.
    let q = "SELECT label, count(*) AS n, avg(pt) AS pt, avg(width_total) AS width FROM jets WHERE hits_tracks > 50 GROUP BY label ORDER BY label";
    let (t_df, (_, res)) = time(|| sql.query(q).unwrap());
    let rows: usize = res.iter().map(|b| b.num_rows()).sum();
    let jets_dir = ds.join("jets");
    let (t_base, base) = time(|| {
        let mut acc: HashMap<i8, (u64, f64, f64)> = HashMap::new();
        for f in files(&jets_dir) {
            let file = std::fs::File::open(f).unwrap();
            let b = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            let names = ["label", "pt", "width_total", "hits_tracks"];
            let idx: Vec<usize> = names
                .iter()
                .map(|n| b.schema().index_of(n).unwrap())
                .collect();
            let mask = parquet::arrow::ProjectionMask::roots(b.parquet_schema(), idx);
            for batch in b.with_projection(mask).build().unwrap() {
                let batch = batch.unwrap();
                let label = batch
                    .column_by_name("label")
                    .unwrap()
                    .as_primitive::<Int8Type>();
                let pt = batch
                    .column_by_name("pt")
                    .unwrap()
                    .as_primitive::<Float32Type>();
                let w = batch
                    .column_by_name("width_total")
                    .unwrap()
                    .as_primitive::<Float32Type>();
                let h = batch
                    .column_by_name("hits_tracks")
                    .unwrap()
                    .as_primitive::<UInt32Type>();
                for i in 0..batch.num_rows() {
                    if h.value(i) > 50 {
                        let e = acc.entry(label.value(i)).or_default();
                        e.0 += 1;
                        e.1 += f64::from(pt.value(i));
                        e.2 += f64::from(w.value(i));
                    }
                }
            }
        }
        acc
    });
    assert_eq!(
        rows,
        base.len(),
        "DataFusion and the baseline disagree on the groups"
    );

    // 2. Unnest over points at res=256.
    let q2 = "SELECT label, count(*) AS points, avg(e) AS mean_ecal FROM (SELECT label, unnest(ecal) AS e FROM points WHERE res = 256) WHERE e > 0 GROUP BY label";
    let (t_un, _) = time(|| sql.query(q2).unwrap());
    let pts_dir = ds.join("points/res=256");
    let (t_un_base, n_points) = time(|| {
        let mut n = 0usize;
        for f in files(&pts_dir) {
            for b in read(&f) {
                let l = b.column_by_name("ecal").unwrap().as_list::<i32>();
                n += l
                    .values()
                    .as_primitive::<Float32Type>()
                    .values()
                    .iter()
                    .filter(|&&v| v > 0.0)
                    .count();
                let _ = l.len();
            }
        }
        n
    });

    println!("pipeline sql benchmark (best of 5, 2 cores)");
    println!("{:<58} {:>10} {:>12}", "query", "seconds", "vs baseline");
    println!(
        "{:<58} {:>10.4} {:>11.2}×",
        format!("group-by over jets ({JETS} jets), DataFusion"),
        t_df,
        t_base / t_df
    );
    println!(
        "{:<58} {:>10.4} {:>11.2}×",
        "  baseline: parquet crate + Rust loop", t_base, 1.0
    );
    println!(
        "{:<58} {:>10.4} {:>11.2}×",
        format!(
            "unnest over points res=256 ({} jets, {n_points} ECAL hits), DataFusion",
            POINT_COPIES * 1000
        ),
        t_un,
        t_un_base / t_un
    );
    println!(
        "{:<58} {:>10.4} {:>11.2}×",
        "  baseline: parquet crate, all columns, Rust loop", t_un_base, 1.0
    );
}
