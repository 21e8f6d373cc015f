//! Shared test support: HDF5 fixtures with the real CMS E2E schema written through
//! hdf5-metno, random sparse images full of ties, and Parquet read-back helpers.

use arrow::record_batch::RecordBatch;
use jetpipe::config::{PipelineConfig, parse_config};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};

/// Runs `python3 ARGS` and returns its stdout and stderr; fails the test when it fails.
pub fn python(args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed (see README: test command)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python3 {args:?} failed:\n{text}");
    println!("{text}");
    text
}

/// Run options for tests: no progress output.
pub fn quiet() -> jetpipe::engine::RunOptions {
    jetpipe::engine::RunOptions {
        quiet: true,
        ..Default::default()
    }
}

/// SplitMix64: a tiny deterministic generator, enough for fixtures.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Jet images and scalars in NHWC order.
#[derive(Clone)]
pub struct Jets {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub images: Vec<f32>,
    pub pt: Vec<f32>,
    pub m0: Vec<f32>,
    pub y: Vec<f32>,
}

impl Jets {
    pub fn at(&self, jet: usize, row: usize, col: usize, ch: usize) -> f32 {
        self.images[((jet * self.h + row) * self.w + col) * self.c + ch]
    }
    pub fn set(&mut self, jet: usize, row: usize, col: usize, ch: usize, v: f32) {
        self.images[((jet * self.h + row) * self.w + col) * self.c + ch] = v;
    }
}

/// Random sparse jets with many exact ties: values from a small set, HCAL-like 5×5 blocks
/// of equal values in the last channel, some empty jets and some with very few hits.
pub fn random_jets(seed: u64, n: usize, h: usize, w: usize, c: usize) -> Jets {
    let mut rng = Rng(seed);
    let mut jets = Jets {
        n,
        h,
        w,
        c,
        images: vec![0.0; n * h * w * c],
        pt: (0..n).map(|i| 70.0 + i as f32).collect(),
        m0: (0..n).map(|i| 5.0 + 0.5 * i as f32).collect(),
        y: (0..n).map(|i| (i % 2) as f32).collect(),
    };
    let levels = [0.25f32, 0.5, 1.0, 1.0, 2.0, 3.5];
    for j in 0..n {
        let kind = rng.below(6);
        if kind == 0 {
            continue; // empty jet
        }
        let hits = if kind == 1 {
            1 + rng.below(5)
        } else {
            20 + rng.below(400)
        };
        for _ in 0..hits {
            let (r, col) = (rng.below(h as u64) as usize, rng.below(w as u64) as usize);
            let ch = rng.below(c.saturating_sub(1).max(1) as u64) as usize;
            let v = if rng.below(3) == 0 {
                rng.unit() * 10.0
            } else {
                levels[rng.below(6) as usize]
            };
            jets.set(j, r, col, ch, v);
        }
        if c >= 2 {
            for _ in 0..rng.below(6) {
                let (br, bc) = (
                    rng.below((h / 5) as u64) as usize * 5,
                    rng.below((w / 5) as u64) as usize * 5,
                );
                let v = levels[rng.below(6) as usize] / 25.0;
                for r in br..br + 5 {
                    for col in bc..bc + 5 {
                        jets.set(j, r, col, c - 1, v);
                    }
                }
            }
        }
    }
    jets
}

/// How to write a fixture file.
#[derive(Clone)]
pub struct Write {
    pub images: &'static str,
    pub f64: bool,
    pub nchw: bool,
    pub scalars: bool,
    pub gzip: bool,
}

impl Default for Write {
    fn default() -> Self {
        Self {
            images: "X_jets",
            f64: false,
            nchw: false,
            scalars: true,
            gzip: true,
        }
    }
}

fn to_nchw(j: &Jets) -> Vec<f32> {
    let mut out = vec![0.0; j.images.len()];
    for n in 0..j.n {
        for r in 0..j.h {
            for col in 0..j.w {
                for ch in 0..j.c {
                    out[((n * j.c + ch) * j.h + r) * j.w + col] = j.at(n, r, col, ch);
                }
            }
        }
    }
    out
}

/// Writes `jets` as an HDF5 file with the CMS E2E schema (chunk = one jet, gzip 4).
pub fn write_h5(path: &Path, jets: &Jets, how: &Write) {
    let file = hdf5::File::create(path).unwrap();
    let (shape, data) = if how.nchw {
        ([jets.n, jets.c, jets.h, jets.w], to_nchw(jets))
    } else {
        ([jets.n, jets.h, jets.w, jets.c], jets.images.clone())
    };
    let chunk = [1, shape[1], shape[2], shape[3]];
    let arr = ndarray::Array4::from_shape_vec(shape, data).unwrap();
    if how.f64 {
        let arr = arr.mapv(f64::from);
        let mut b = file.new_dataset_builder();
        if how.gzip {
            b = b.chunk(chunk).deflate(4);
        }
        b.with_data(&arr).create(how.images).unwrap();
    } else {
        let mut b = file.new_dataset_builder();
        if how.gzip {
            b = b.chunk(chunk).deflate(4);
        }
        b.with_data(&arr).create(how.images).unwrap();
    }
    if how.scalars {
        for (name, v) in [("pt", &jets.pt), ("m0", &jets.m0), ("y", &jets.y)] {
            file.new_dataset_builder()
                .with_data(v.as_slice())
                .create(name)
                .unwrap();
        }
    }
}

/// A pipeline config reading `files` into `out`, with `extra` YAML lines appended under
/// the given sections (already indented by the caller).
pub fn config(files: &[&Path], out: &Path, extra: &str) -> PipelineConfig {
    let files: Vec<String> = files
        .iter()
        .map(|f| format!("\"{}\"", f.display()))
        .collect();
    let text = format!(
        "name: test\nsource:\n  files: [{}]\nsink:\n  path: \"{}\"\n  shard_size: 40\n  row_group_size: 16\nengine:\n  batch_size: 7\n{extra}",
        files.join(", "),
        out.display()
    );
    parse_config(&text, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Reads every row of a set of Parquet files, in order.
pub fn read_parquet(paths: &[PathBuf]) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for p in paths {
        let f = std::fs::File::open(p).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        out.extend(reader.map(|b| b.unwrap()));
    }
    out
}

/// Every file under `dir`, relative, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// Shards of `table` (e.g. `jets`, `points/res=256`) in a dataset, in order.
pub fn shards(dir: &Path, table: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(table))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    v.sort();
    v
}
