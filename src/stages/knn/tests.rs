//! kNN against O(n²) brute force on random inputs: sparse and dense pixel clouds full of
//! distance ties, duplicate float coordinates, n < k, n = 1, n = 0, with and without self.

use super::general;
use super::grid::{GridKnn, key_index};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Distinct random pixels: `n` of an `h × w` image, optionally packed into a small square
/// (dense blocks make ties everywhere).
fn pixels(rng: &mut Lcg, n: usize, h: usize, w: usize, dense: bool) -> (Vec<u16>, Vec<u16>) {
    let (hh, ww) = if dense {
        (h.min(12), w.min(12))
    } else {
        (h, w)
    };
    let n = n.min(hh * ww);
    let mut used = std::collections::HashSet::new();
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    while rows.len() < n {
        let (r, c) = (rng.next() as usize % hh, rng.next() as usize % ww);
        if used.insert((r, c)) {
            rows.push(r as u16);
            cols.push(c as u16);
        }
    }
    (rows, cols)
}

/// `JETPIPE_REQUIRE_AVX512=1` / `JETPIPE_REQUIRE_AVX2=1` make every grid test fail on a CPU
/// (or a build) where that path cannot run, so a machine that has it proves it ran
/// (`.ci/run` sets them from `/proc/cpuinfo`).
fn check_required_paths() {
    let on = |v: &str| std::env::var(v).is_ok_and(|x| x == "1");
    if on("JETPIPE_REQUIRE_AVX512") {
        assert!(
            super::lanes::supported(),
            "JETPIPE_REQUIRE_AVX512=1 but the AVX-512 kNN paths cannot run here"
        );
    }
    if on("JETPIPE_REQUIRE_AVX2") {
        assert!(
            super::lanes::avx2::supported(),
            "JETPIPE_REQUIRE_AVX2=1 but the AVX2 kNN path cannot run here"
        );
    }
}

/// Every path the CPU can run: the best (AVX-512 where present), the AVX2 sparse search
/// with the scalar walk (where AVX2 is present), and the scalar walk and cell search.
fn grids() -> [GridKnn; 3] {
    check_required_paths();
    let mut avx2 = GridKnn::default();
    avx2.no_avx512 = true;
    let mut scalar = GridKnn::default();
    scalar.scalar_only = true;
    [GridKnn::default(), avx2, scalar]
}

/// Which paths `grid` was asked to use, for messages.
fn label(grid: &GridKnn) -> &'static str {
    match (grid.scalar_only, grid.no_avx512) {
        (true, _) => "scalar",
        (false, true) => "AVX2 or scalar",
        (false, false) => "best",
    }
}

#[test]
fn each_vectorised_path_runs_where_the_cpu_has_it() {
    use super::lanes::{Lanes, Path};
    check_required_paths();
    let (rows, cols) = (vec![1u16, 2, 3], vec![4u16, 5, 6]);
    let mut l = Lanes::default();
    let avx512 = super::lanes::supported();
    let avx2 = super::lanes::avx2::supported();
    eprintln!("kNN vector paths on this CPU: AVX-512 {avx512}, AVX2 {avx2}");
    let best = if avx512 {
        Path::Avx512
    } else if avx2 {
        Path::Avx2
    } else {
        Path::Scalar
    };
    assert_eq!(l.load(&rows, &cols, (125, 125), Path::Avx512), best);
    let second = if avx2 { Path::Avx2 } else { Path::Scalar };
    assert_eq!(l.load(&rows, &cols, (125, 125), Path::Avx2), second);
    assert_eq!(l.load(&rows, &cols, (125, 125), Path::Scalar), Path::Scalar);
    // An image too large for 16-bit distances has no vectorised path.
    assert_eq!(l.load(&rows, &cols, (200, 200), Path::Avx512), Path::Scalar);
}

#[test]
fn grid_matches_brute_force_including_ties() {
    let mut both = grids();
    let mut rng = Lcg(42);
    let mut checked = 0;
    for case in 0..300 {
        let n = [0, 1, 2, 5, 16, 17, 40, 256, 700][case % 9];
        let (h, w) = if case % 4 == 0 { (32, 32) } else { (125, 125) };
        let (rows, cols) = pixels(&mut rng, n, h, w, case % 3 == 0);
        // k = 32 and 33: one vector of neighbours exactly and one more (the ranking's edge);
        // k = 40: the sort fallback.
        let ks = [
            (16, false),
            (4, true),
            (1, false),
            (32, false),
            (32, true),
            (40, false),
        ];
        for (k, include_self) in ks {
            let want = brute_grid(&rows, &cols, k, include_self);
            for grid in &mut both {
                let mut keys = Vec::new();
                let k_eff = grid.run(&rows, &cols, (h, w), k, include_self, &mut keys);
                let got: Vec<u16> = keys.iter().map(|&key| key_index(key)).collect();
                assert_eq!(
                    got,
                    want,
                    "case {case}, n {}, k {k}, self {include_self}, path {}",
                    rows.len(),
                    label(grid)
                );
                assert_eq!(k_eff * rows.len(), want.len());
                checked += want.len();
            }
        }
    }
    assert!(checked > 200_000);
}

#[test]
fn one_walk_serves_every_resolution_exactly() {
    for mut grid in grids() {
        every_resolution_exactly(&mut grid);
    }
}

fn every_resolution_exactly(grid: &mut GridKnn) {
    let mut rng = Lcg(99);
    for case in 0..200 {
        let n = [0, 1, 3, 20, 90, 300, 1024][case % 7];
        // 200 × 150: too large for 16-bit squared distances, so the scalar search runs.
        let (h, w) = match case % 5 {
            0 => (20, 24),
            4 => (200, 150),
            _ => (125, 125),
        };
        let (rows, cols) = pixels(&mut rng, n, h, w, case % 3 == 0);
        let n = rows.len();
        // Prefix sizes as the point-cloud stage makes them, including ones below k.
        let mut sizes: Vec<usize> = [2, 10, n / 4, n / 2, n].iter().map(|&s| s.min(n)).collect();
        sizes.sort_unstable();
        // Repeated sizes occur when a jet has fewer points than a resolution.
        if case % 2 == 0 {
            sizes.dedup();
        }
        for (k, include_self) in [(16, false), (5, true)] {
            let mut outs = vec![Vec::new(); sizes.len()];
            let mut k_eff = vec![0; sizes.len()];
            grid.run_multi(
                &rows,
                &cols,
                (h, w),
                &sizes,
                k,
                include_self,
                &mut outs,
                &mut k_eff,
            );
            for (r, &s) in sizes.iter().enumerate() {
                let want = brute_grid(&rows[..s], &cols[..s], k, include_self);
                let got: Vec<u16> = outs[r].iter().map(|&key| key_index(key)).collect();
                assert_eq!(
                    got,
                    want,
                    "case {case}, size {s} of {sizes:?}, k {k}, path {}",
                    label(grid)
                );
                assert_eq!(k_eff[r] * s, want.len());
            }
        }
    }
}

/// Reference statistics: explicit symmetric adjacency sets and a flood fill.
fn brute_stats(n: usize, nbrs: &[u16], k: usize, k_eff: usize) -> (u16, u16, f32, u16) {
    let mut adj = vec![std::collections::BTreeSet::new(); n];
    for i in 0..n {
        for &j in &nbrs[i * k..i * k + k_eff] {
            if j as usize != i {
                adj[i].insert(j as usize);
                adj[j as usize].insert(i);
            }
        }
    }
    let (mut seen, mut comps, mut largest) = (vec![false; n], 0u16, 0u16);
    for s in 0..n {
        if seen[s] {
            continue;
        }
        comps += 1;
        let (mut stack, mut size) = (vec![s], 0u16);
        seen[s] = true;
        while let Some(v) = stack.pop() {
            size += 1;
            for &u in &adj[v] {
                if !seen[u] {
                    seen[u] = true;
                    stack.push(u);
                }
            }
        }
        largest = largest.max(size);
    }
    let degrees: Vec<usize> = adj.iter().map(|a| a.len()).collect();
    let mean = degrees.iter().sum::<usize>() as f32 / n.max(1) as f32;
    (
        comps,
        largest,
        mean,
        degrees.iter().copied().max().unwrap_or(0) as u16,
    )
}

#[test]
fn graph_statistics_match_reference_with_either_mutual_test() {
    use super::stats::{by_rank, by_search, graph_stats};
    let mut rng = Lcg(5);
    let mut grid = GridKnn::default();
    let mut degree = Vec::new();
    for case in 0..120 {
        let n = [1, 2, 7, 33, 200, 600][case % 6];
        let (rows, cols) = pixels(&mut rng, n, 125, 125, case % 2 == 0);
        let n = rows.len();
        for (k, include_self) in [(16, false), (3, false), (4, true)] {
            let mut keys = Vec::new();
            let k_eff = grid.run(&rows, &cols, (125, 125), k, include_self, &mut keys);
            // Stored layout: k per point, padding with the point's own index.
            let mut nbrs = Vec::new();
            for i in 0..n {
                nbrs.extend(
                    keys[i * k_eff..(i + 1) * k_eff]
                        .iter()
                        .map(|&x| key_index(x)),
                );
                nbrs.extend(std::iter::repeat_n(i as u16, k - k_eff));
            }
            let want = brute_stats(n, &nbrs, k, k_eff);
            for st in [
                graph_stats(n, &nbrs, k, k_eff, &mut degree, by_rank(&keys, k_eff)),
                graph_stats(n, &nbrs, k, k_eff, &mut degree, by_search(&nbrs, k, k_eff)),
            ] {
                let got = (st.components, st.largest, st.mean_degree, st.max_degree);
                assert_eq!(got.0, want.0, "case {case}");
                assert_eq!((got.1, got.3), (want.1, want.3), "case {case}");
                assert!(
                    (got.2 - want.2).abs() < 1e-4,
                    "case {case}: {got:?} vs {want:?}"
                );
            }
        }
    }
}

fn brute_general(coords: &[f32], dims: usize, k: usize, include_self: bool) -> Vec<(f32, u16)> {
    let n = coords.len() / dims;
    let k_eff = k.min((n + usize::from(include_self)).saturating_sub(1));
    let mut out = Vec::new();
    for i in 0..n {
        let mut all: Vec<(f32, usize)> = (0..n)
            .filter(|&j| include_self || j != i)
            .map(|j| (general::dist2(coords, dims, i, j), j))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out.extend(all[..k_eff].iter().map(|&(d, j)| (d, j as u16)));
    }
    out
}

#[test]
fn general_matches_brute_force_with_duplicates_and_ties() {
    let mut rng = Lcg(7);
    for case in 0..120 {
        let dims = [2, 3, 4, 5][case % 4];
        let n = [0, 1, 3, 17, 64, 65, 300, 900][case % 8];
        // Coordinates on a coarse lattice: many exact duplicates and equal distances.
        let coarse = case % 2 == 0;
        let coords: Vec<f32> = (0..n * dims)
            .map(|_| {
                if coarse {
                    (rng.next() % 6) as f32 * 0.25
                } else {
                    (rng.next() % 100_000) as f32 * 1e-3
                }
            })
            .collect();
        for (k, include_self) in [(16, false), (8, true)] {
            let mut got = Vec::new();
            general::knn(&coords, dims, k, include_self, &mut got);
            let want = brute_general(&coords, dims, k, include_self);
            assert_eq!(got, want, "case {case}, dims {dims}, n {n}, k {k}");
        }
    }
}

/// Jet-like clouds: a dense core, 5 × 5 blocks (upsampled HCAL towers) and a sparse halo,
/// points in random order, so every query path of the grid search runs on one jet (dense
/// walks that stop at every distance group, walks that find too few, sparse searches).
fn jet_like(rng: &mut Lcg, n: usize) -> (Vec<u16>, Vec<u16>) {
    let mut used = std::collections::HashSet::new();
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    let mut add = |r: i64, c: i64, rows: &mut Vec<u16>, cols: &mut Vec<u16>| {
        if (0..125).contains(&r) && (0..125).contains(&c) && used.insert((r, c)) {
            rows.push(r as u16);
            cols.push(c as u16);
        }
    };
    let mut tries = 0;
    while rows.len() < n && tries < 50 * n {
        tries += 1;
        let u = rng.next() % 10;
        if u < 5 {
            // Core: a sum of uniforms, peaked at the centre.
            let s = |rng: &mut Lcg| (0..4).map(|_| (rng.next() % 31) as i64).sum::<i64>() - 60;
            let (r, c) = (62 + s(rng), 62 + s(rng));
            add(r, c, &mut rows, &mut cols);
        } else if u < 8 {
            // A whole or partial 5 × 5 block.
            let (br, bc) = ((rng.next() % 25) as i64 * 5, (rng.next() % 25) as i64 * 5);
            for p in 0..25 {
                if rows.len() < n && !rng.next().is_multiple_of(4) {
                    add(br + p / 5, bc + p % 5, &mut rows, &mut cols);
                }
            }
        } else {
            let (r, c) = ((rng.next() % 125) as i64, (rng.next() % 125) as i64);
            add(r, c, &mut rows, &mut cols);
        }
    }
    (rows, cols)
}

/// Reference: for every point, the other points ordered by (exact integer d², index), the
/// first k kept (a partial selection, then a sort of those k).
fn brute_grid(rows: &[u16], cols: &[u16], k: usize, include_self: bool) -> Vec<u16> {
    let n = rows.len();
    let k_eff = k.min((n + usize::from(include_self)).saturating_sub(1));
    let mut out = Vec::with_capacity(n * k_eff);
    let mut all: Vec<(i64, usize)> = Vec::with_capacity(n);
    for i in 0..n {
        all.clear();
        all.extend((0..n).filter(|&j| include_self || j != i).map(|j| {
            let (dr, dc) = (
                rows[j] as i64 - rows[i] as i64,
                cols[j] as i64 - cols[i] as i64,
            );
            (dr * dr + dc * dc, j)
        }));
        if k_eff > 0 {
            all.select_nth_unstable(k_eff - 1);
            all[..k_eff].sort_unstable();
        }
        out.extend(all[..k_eff].iter().map(|&(_, j)| j as u16));
    }
    out
}

#[test]
fn jet_like_clouds_match_brute_force_at_every_resolution() {
    let mut rng = Lcg(2024);
    let mut both = grids();
    // 4,500 points: more than the vectorised walk's 4,096, so the scalar walk answers.
    for (case, &n) in [300usize, 700, 1024, 1024, 1024, 4500].iter().enumerate() {
        let (rows, cols) = jet_like(&mut rng, n);
        let n = rows.len();
        let sizes: Vec<usize> = [256, 512, 768, n].iter().map(|&s| s.min(n)).collect();
        let ks: &[(usize, bool)] = if n > 2000 {
            &[(16, false)]
        } else {
            &[(16, false), (8, true), (32, false)]
        };
        for &(k, include_self) in ks {
            let want: Vec<Vec<u16>> = sizes
                .iter()
                .map(|&s| brute_grid(&rows[..s], &cols[..s], k, include_self))
                .collect();
            for grid in &mut both {
                let mut outs = vec![Vec::new(); sizes.len()];
                let mut k_eff = vec![0; sizes.len()];
                grid.run_multi(
                    &rows,
                    &cols,
                    (125, 125),
                    &sizes,
                    k,
                    include_self,
                    &mut outs,
                    &mut k_eff,
                );
                for (r, &s) in sizes.iter().enumerate() {
                    let got: Vec<u16> = outs[r].iter().map(|&key| key_index(key)).collect();
                    assert_eq!(
                        got,
                        want[r],
                        "case {case}, n {n}, size {s}, k {k}, self {include_self}, path {}",
                        label(grid)
                    );
                }
            }
        }
    }
}

#[test]
fn union_find_components_match_petgraph_on_clustered_random_graphs() {
    // Not kNN graphs: distinct neighbours drawn inside random clusters, so a jet has many components of
    // uneven sizes and the joins happen in every order.
    use super::stats::{by_search, graph_stats};
    use petgraph::graph::UnGraph;
    let mut rng = Lcg(11);
    let mut degree = Vec::new();
    for case in 0..60 {
        let n = 1 + (rng.next() % 3000) as usize;
        let k = 1 + (rng.next() % 6) as usize;
        let clusters = 1 + (rng.next() % 40) as usize;
        let cluster: Vec<usize> = (0..n).map(|_| (rng.next() as usize) % clusters).collect();
        let members: Vec<Vec<usize>> = (0..clusters)
            .map(|c| (0..n).filter(|&i| cluster[i] == c).collect())
            .collect();
        let mut nbrs = Vec::with_capacity(n * k);
        for i in 0..n {
            // k distinct neighbours (as kNN lists have), padded with i itself.
            let mut pool: Vec<usize> = members[cluster[i]]
                .iter()
                .copied()
                .filter(|&j| j != i)
                .collect();
            for s in 0..k {
                if pool.is_empty() {
                    nbrs.extend(std::iter::repeat_n(i as u16, k - s));
                    break;
                }
                let at = (rng.next() as usize) % pool.len();
                nbrs.push(pool.swap_remove(at) as u16);
            }
        }
        let mut g = UnGraph::<(), ()>::with_capacity(n, n * k);
        for _ in 0..n {
            g.add_node(());
        }
        for i in 0..n {
            for &j in &nbrs[i * k..(i + 1) * k] {
                g.add_edge((i as u32).into(), (u32::from(j)).into(), ());
            }
        }
        let st = graph_stats(n, &nbrs, k, k, &mut degree, by_search(&nbrs, k, k));
        let want = brute_stats(n, &nbrs, k, k);
        assert_eq!(
            usize::from(st.components),
            petgraph::algo::connected_components(&g),
            "case {case}: n {n}, k {k}"
        );
        assert_eq!(
            (st.components, st.largest, st.max_degree),
            (want.0, want.1, want.3),
            "case {case}"
        );
    }
}
