//! kNN benchmark: µs per jet at 256 and 1024 points, k = 16, for every candidate, measured in
//! one run on the realistic sample (the top-R points of each jet of data-samples/qg_sample.h5,
//! as the pipeline selects them). Brute force is the in-run baseline; every method's
//! neighbour lists are compared with it (the tree crates break distance ties their own way).
//!
//! The grid search is timed three times: as used (the best vector path the CPU has, named in
//! the header), with the AVX2 path CPUs without AVX-512 run, and with only its scalar paths.
//!
//! Run: `cargo bench --bench knn` (single thread; prints a table), or, without the release
//! profile's 40–50-minute cold build, `.ci/with-tools cargo bench --no-default-features
//! --profile bench-quick --bench knn` (the measured code at opt-level 3, see Cargo.toml). `KNN_GRID_ONLY=1` times
//! only jetpipe's grid search, 3 s per size, for profiling (`perf record`); `=avx2` or
//! `=scalar` runs the path of CPUs without AVX-512 or AVX2.

use jetpipe::config::parse_config;
use jetpipe::source::Hdf5Source;
use jetpipe::stages::knn::general;
use jetpipe::stages::knn::grid::{GridKnn, key_index};
use jetpipe::stages::pointcloud::PointCloudStage;
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use std::num::NonZeroUsize;
use std::time::Instant;

const K: usize = 16;

/// (µs per jet, neighbour lists of the last pass).
type Timed = (f64, Vec<Vec<u16>>);
const PIXEL: f32 = 0.0174;

struct Cloud {
    rows: Vec<u16>,
    cols: Vec<u16>,
    xy: Vec<[f32; 2]>,
}

/// Top-`r` points of every jet that has at least `r` hits.
fn clouds(r: usize) -> Vec<Cloud> {
    clouds_min(r, r)
}

/// Top-`r` points (or all hits when fewer) of every jet that has at least `min` hits.
fn clouds_min(min: usize, r: usize) -> Vec<Cloud> {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = format!(
        "name: bench\nsource:\n  files: [\"{root}/data-samples/qg_sample.h5\"]\nsink:\n  path: /tmp/unused\n"
    );
    let cfg = parse_config(&text, "bench").expect("config");
    let source = Hdf5Source::open(&cfg.source).expect("sample");
    let g = source.geometry;
    let stage = PointCloudStage::new(&cfg, g, vec![]);
    let file = &source.files[0];
    let mut raw = file.read(0, file.n_jets as usize).expect("read");
    let mut out = Vec::new();
    let (mut cands, mut sums, mut zeroed) = (Vec::new(), vec![0.0; g.channels], 0);
    for img in raw.images.chunks_exact_mut(g.values_per_jet()) {
        let hits = stage
            .select(img, &mut cands, &mut Vec::new(), &mut sums, &mut zeroed)
            .expect("valid");
        if hits < min {
            continue;
        }
        let pts = &cands[..r.min(hits)];
        let rows: Vec<u16> = pts
            .iter()
            .map(|c| (c.pixel as usize / g.width) as u16)
            .collect();
        let cols: Vec<u16> = pts
            .iter()
            .map(|c| (c.pixel as usize % g.width) as u16)
            .collect();
        let xy = rows
            .iter()
            .zip(&cols)
            .map(|(&r, &c)| [(r as f32 - 62.0) * PIXEL, (c as f32 - 62.0) * PIXEL])
            .collect();
        out.push(Cloud { rows, cols, xy });
    }
    out
}

/// Brute force on exact integer pixel distances: the baseline and the reference.
fn brute(c: &Cloud, out: &mut Vec<u16>) {
    let n = c.rows.len();
    let mut all: Vec<u64> = Vec::with_capacity(n);
    for i in 0..n {
        all.clear();
        let (ri, ci) = (c.rows[i] as i64, c.cols[i] as i64);
        for j in 0..n {
            if j != i {
                let (dr, dc) = (c.rows[j] as i64 - ri, c.cols[j] as i64 - ci);
                all.push((((dr * dr + dc * dc) as u64) << 16) | j as u64);
            }
        }
        all.select_nth_unstable(K - 1);
        all[..K].sort_unstable();
        out.extend(all[..K].iter().map(|&k| (k & 0xFFFF) as u16));
    }
}

fn grid(c: &Cloud, g: &mut GridKnn, keys: &mut Vec<u64>, out: &mut Vec<u16>) {
    keys.clear();
    g.run(&c.rows, &c.cols, (125, 125), K, false, keys);
    out.extend(keys.iter().map(|&k| key_index(k)));
}

fn kiddo_tree(c: &Cloud, out: &mut Vec<u16>) {
    let tree = ImmutableKdTree::<f32, 2>::new_from_slice(&c.xy).expect("tree");
    let want = NonZeroUsize::new(K + 1).expect("k");
    for (i, p) in c.xy.iter().enumerate() {
        let near = tree
            .query(p)
            .nearest_n::<SquaredEuclidean<f32>>(want)
            .execute();
        out.extend(
            near.iter()
                .filter(|r| r.item as usize != i)
                .take(K)
                .map(|r| r.item as u16),
        );
    }
}

fn kdtree_crate(c: &Cloud, out: &mut Vec<u16>) {
    let mut tree = kdtree::KdTree::with_capacity(2, 32);
    for (i, p) in c.xy.iter().enumerate() {
        tree.add(*p, i).expect("finite");
    }
    for (i, p) in c.xy.iter().enumerate() {
        let near = tree
            .nearest(p, K + 1, &kdtree::distance::squared_euclidean)
            .expect("query");
        out.extend(
            near.iter()
                .filter(|(_, j)| **j != i)
                .take(K)
                .map(|(_, j)| **j as u16),
        );
    }
}

fn general_exact(
    c: &Cloud,
    coords: &mut Vec<f32>,
    pairs: &mut Vec<(f32, u16)>,
    out: &mut Vec<u16>,
) {
    coords.clear();
    coords.extend(c.xy.iter().flatten());
    pairs.clear();
    general::knn(coords, 2, K, false, pairs);
    out.extend(pairs.iter().map(|&(_, j)| j));
}

/// Runs `f` over all clouds until at least 0.5 s has passed; returns (µs per jet, output of
/// the last pass).
fn time(clouds: &[Cloud], f: impl FnMut(&Cloud, &mut Vec<u16>)) -> Timed {
    time_for(0.5, clouds, f)
}

/// [`time`] for at least `secs` seconds.
fn time_for(secs: f64, clouds: &[Cloud], mut f: impl FnMut(&Cloud, &mut Vec<u16>)) -> Timed {
    let mut outs: Vec<Vec<u16>> = clouds.iter().map(|_| Vec::new()).collect();
    let (mut jets, start) = (0usize, Instant::now());
    while start.elapsed().as_secs_f64() < secs || jets == 0 {
        for (c, o) in clouds.iter().zip(outs.iter_mut()) {
            o.clear();
            f(c, o);
        }
        jets += clouds.len();
    }
    (start.elapsed().as_secs_f64() * 1e6 / jets as f64, outs)
}

/// Every jet's points at all four resolutions (`sizes` = points kept at each).
fn all_resolutions() -> Vec<(Cloud, Vec<usize>)> {
    let full = clouds_min(1, 1024);
    full.into_iter()
        .map(|c| {
            let n = c.rows.len();
            let sizes = [256, 512, 768, 1024].map(|r: usize| r.min(n)).to_vec();
            (c, sizes)
        })
        .collect()
}

/// µs per jet for all four resolutions of every jet, as the pipeline runs them.
fn multi_resolution() {
    let jets = all_resolutions();
    let start = Instant::now();
    let mut passes = 0;
    let mut reference = Vec::new();
    while start.elapsed().as_secs_f64() < 0.5 || passes == 0 {
        reference.clear();
        for (c, sizes) in &jets {
            let mut o = Vec::new();
            for &s in sizes {
                let sub = Cloud {
                    rows: c.rows[..s].to_vec(),
                    cols: c.cols[..s].to_vec(),
                    xy: Vec::new(),
                };
                brute(&sub, &mut o);
            }
            reference.push(o);
        }
        passes += 1;
    }
    let base = start.elapsed().as_secs_f64() * 1e6 / (passes * jets.len()) as f64;
    let mut rows = vec![(
        "brute force per resolution (baseline)",
        base,
        reference.clone(),
    )];
    for (name, no_avx512, scalar_only) in [
        ("jetpipe grid, run_multi (used)", false, false),
        ("jetpipe grid, run_multi, AVX2", true, false),
        ("jetpipe grid, run_multi, scalar", false, true),
    ] {
        let mut g = GridKnn::default();
        g.no_avx512 = no_avx512;
        g.scalar_only = scalar_only;
        let (us, got) = time_multi(&jets, &mut g);
        rows.push((name, us, got));
    }
    println!();
    println!(
        "all four resolutions (256/512/768/1024) of each of {} jets:",
        jets.len()
    );
    for (name, us, out) in &rows {
        let same = out.iter().zip(&reference).filter(|(a, b)| a == b).count();
        println!(
            "{:<41} {:>10.1} µs/jet {:>9.2}× {:>8}/{} jets = reference",
            name,
            us,
            base / us,
            same,
            jets.len()
        );
    }
}

/// µs per jet of `g.run_multi` over `jets` (at least 0.5 s), and the last pass's lists.
fn time_multi(jets: &[(Cloud, Vec<usize>)], g: &mut GridKnn) -> (f64, Vec<Vec<u16>>) {
    let (mut outs, mut k_eff) = (vec![Vec::new(); 4], vec![0; 4]);
    let start = Instant::now();
    let mut passes = 0;
    let mut got = Vec::new();
    while start.elapsed().as_secs_f64() < 0.5 || passes == 0 {
        got.clear();
        for (c, sizes) in jets {
            outs.iter_mut().for_each(Vec::clear);
            g.run_multi(
                &c.rows,
                &c.cols,
                (125, 125),
                sizes,
                K,
                false,
                &mut outs,
                &mut k_eff,
            );
            got.push(
                outs.iter()
                    .flatten()
                    .map(|&k| key_index(k))
                    .collect::<Vec<u16>>(),
            );
        }
        passes += 1;
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / (passes * jets.len()) as f64;
    (us, got)
}

/// Median over all points of the distance (pixels) to the K-th nearest other point.
fn median_kth_distance(clouds: &[Cloud]) -> f64 {
    let mut kth: Vec<i64> = Vec::new();
    for c in clouds {
        for i in 0..c.rows.len() {
            let mut d2: Vec<i64> = (0..c.rows.len())
                .filter(|&j| j != i)
                .map(|j| {
                    let (dr, dc) = (
                        i64::from(c.rows[j]) - i64::from(c.rows[i]),
                        i64::from(c.cols[j]) - i64::from(c.cols[i]),
                    );
                    dr * dr + dc * dc
                })
                .collect();
            d2.select_nth_unstable(K - 1);
            kth.push(d2[K - 1]);
        }
    }
    let mid = kth.len() / 2;
    (*kth.select_nth_unstable(mid).1 as f64).sqrt()
}

fn main() {
    if std::env::var_os("KNN_GRID_ONLY").is_some() {
        // Profiling aid: only the grid search, 3 s per size.
        // `KNN_GRID_ONLY=avx2` or `=scalar` profiles the path of CPUs without AVX-512.
        let mut g = GridKnn::default();
        match std::env::var("KNN_GRID_ONLY").as_deref() {
            Ok("avx2") => g.no_avx512 = true,
            Ok("scalar") => g.scalar_only = true,
            _ => {}
        }
        let mut keys = Vec::new();
        for r in [256usize, 1024] {
            let (us, _) = time_for(3.0, &clouds(r), |c, o| grid(c, &mut g, &mut keys, o));
            println!("{r} points: grid {us:.1} µs/jet");
        }
        return;
    }
    println!("kNN, k = {K}, one thread, realistic clouds from data-samples/qg_sample.h5");
    let (avx512, avx2) = (
        jetpipe::stages::knn::lanes::supported(),
        jetpipe::stages::knn::lanes::avx2::supported(),
    );
    println!(
        "CPU: AVX-512 paths {}, AVX2 path {}; \"used\" runs the {} path",
        if avx512 { "available" } else { "unavailable" },
        if avx2 { "available" } else { "unavailable" },
        if avx512 {
            "AVX-512"
        } else if avx2 {
            "AVX2"
        } else {
            "scalar"
        }
    );
    println!(
        "median distance to the {K}th neighbour at 256 points: {:.1} pixels",
        median_kth_distance(&clouds(256))
    );
    println!(
        "{:<6} {:<34} {:>10} {:>16} {:>18}",
        "points", "method", "µs/jet", "vs brute force", "lists = reference"
    );
    for r in [256usize, 1024] {
        let cl = clouds(r);
        let (base, reference) = time(&cl, brute);
        let mut g = GridKnn::default();
        // The scalar paths, which CPUs without AVX-512 run.
        let mut scalar = GridKnn::default();
        scalar.scalar_only = true;
        // The AVX2 sparse search with the scalar walk, which CPUs without AVX-512 run.
        let mut avx2 = GridKnn::default();
        avx2.no_avx512 = true;
        let mut keys = Vec::new();
        let (mut coords, mut pairs) = (Vec::new(), Vec::new());
        let rows: Vec<(&str, Timed)> = vec![
            ("brute force (exact, baseline)", (base, reference.clone())),
            (
                "jetpipe grid (exact; used)",
                time(&cl, |c, o| grid(c, &mut g, &mut keys, o)),
            ),
            (
                "jetpipe grid, AVX2 (no AVX-512)",
                time(&cl, |c, o| grid(c, &mut avx2, &mut keys, o)),
            ),
            (
                "jetpipe grid, scalar (no AVX2)",
                time(&cl, |c, o| grid(c, &mut scalar, &mut keys, o)),
            ),
            ("kiddo 6 ImmutableKdTree", time(&cl, kiddo_tree)),
            ("kdtree 0.8", time(&cl, kdtree_crate)),
            (
                "jetpipe general (float, exact)",
                time(&cl, |c, o| general_exact(c, &mut coords, &mut pairs, o)),
            ),
        ];
        for (name, (us, out)) in rows {
            let same = out.iter().zip(&reference).filter(|(a, b)| a == b).count();
            println!(
                "{:<6} {:<34} {:>10.1} {:>15.2}× {:>12}/{} jets",
                r,
                name,
                us,
                base / us,
                same,
                cl.len()
            );
        }
    }
    multi_resolution();
}
