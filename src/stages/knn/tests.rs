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

/// Reference: every other point sorted by (exact integer d², index).
fn brute_grid(rows: &[u16], cols: &[u16], k: usize, include_self: bool) -> Vec<u16> {
    let n = rows.len();
    let k_eff = k.min((n + usize::from(include_self)).saturating_sub(1));
    let mut out = Vec::new();
    for i in 0..n {
        let mut all: Vec<(i64, usize)> = (0..n)
            .filter(|&j| include_self || j != i)
            .map(|j| {
                let (dr, dc) = (
                    rows[j] as i64 - rows[i] as i64,
                    cols[j] as i64 - cols[i] as i64,
                );
                (dr * dr + dc * dc, j)
            })
            .collect();
        all.sort();
        out.extend(all[..k_eff].iter().map(|&(_, j)| j as u16));
    }
    out
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

#[test]
fn grid_matches_brute_force_including_ties() {
    let mut rng = Lcg(42);
    let mut grid = GridKnn::default();
    let mut checked = 0;
    for case in 0..300 {
        let n = [0, 1, 2, 5, 16, 17, 40, 256, 700][case % 9];
        let (h, w) = if case % 4 == 0 { (32, 32) } else { (125, 125) };
        let (rows, cols) = pixels(&mut rng, n, h, w, case % 3 == 0);
        for (k, include_self) in [(16, false), (4, true), (1, false)] {
            let mut keys = Vec::new();
            let k_eff = grid.run(&rows, &cols, (h, w), k, include_self, &mut keys);
            let got: Vec<u16> = keys.iter().map(|&key| key_index(key)).collect();
            let want = brute_grid(&rows, &cols, k, include_self);
            assert_eq!(
                got,
                want,
                "case {case}, n {}, k {k}, self {include_self}",
                rows.len()
            );
            assert_eq!(k_eff * rows.len(), want.len());
            checked += want.len();
        }
    }
    assert!(checked > 100_000);
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
