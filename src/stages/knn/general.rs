//! Exact kNN in any per-point coordinates (float32), for graphs built on e.g. (η, φ, scaled
//! energy) instead of the pixel grid.
//!
//! Distances are Σ (Δcoordinate)² accumulated in float32 in coordinate order, and neighbours
//! are ordered by (distance, index) with `f32::total_cmp`: the same numbers a brute-force
//! reference computes. Small clouds use brute force; larger 2–4-dimensional clouds use a
//! kiddo kd-tree for the candidate radius, then re-rank every point within it with the
//! formula above, so tree rounding and ties at the boundary cannot change the result.

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use std::num::NonZeroUsize;

/// Below this many points brute force is used (see `benches/knn.rs`).
pub const BRUTE_FORCE_MAX: usize = 64;

/// Squared distance between points `a` and `b` of a flat `dims`-wide coordinate array.
#[inline]
pub fn dist2(coords: &[f32], dims: usize, a: usize, b: usize) -> f32 {
    let (pa, pb) = (
        &coords[a * dims..(a + 1) * dims],
        &coords[b * dims..(b + 1) * dims],
    );
    let mut s = 0.0f32;
    for (x, y) in pa.iter().zip(pb) {
        let d = x - y;
        s += d * d;
    }
    s
}

fn rank(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Neighbours of point `i` among `cands` (indices), best `k_eff` appended to `out`.
fn select(
    coords: &[f32],
    dims: usize,
    i: usize,
    cands: &mut Vec<(f32, u32)>,
    k_eff: usize,
    include_self: bool,
    out: &mut Vec<(f32, u16)>,
) {
    cands.retain(|&(_, j)| include_self || j as usize != i);
    for c in cands.iter_mut() {
        c.0 = dist2(coords, dims, i, c.1 as usize);
    }
    if cands.len() > k_eff {
        cands.select_nth_unstable_by(k_eff - 1, rank);
        cands.truncate(k_eff);
    }
    cands.sort_unstable_by(rank);
    out.extend(cands.iter().map(|&(d, j)| (d, j as u16)));
}

fn brute(
    coords: &[f32],
    dims: usize,
    n: usize,
    k_eff: usize,
    include_self: bool,
    out: &mut Vec<(f32, u16)>,
) {
    let mut cands = Vec::with_capacity(n);
    for i in 0..n {
        cands.clear();
        cands.extend((0..n as u32).map(|j| (0.0, j)));
        select(coords, dims, i, &mut cands, k_eff, include_self, out);
    }
}

fn with_tree<const K: usize>(
    coords: &[f32],
    k_eff: usize,
    include_self: bool,
    out: &mut Vec<(f32, u16)>,
) {
    let pts: Vec<[f32; K]> = coords
        .chunks_exact(K)
        .map(|c| c.try_into().expect("K wide"))
        .collect();
    // Cannot fire: the stage refuses jets whose coordinates are not finite and within ±1e18
    // (`MAX_COORD`) before searching.
    let tree = ImmutableKdTree::<f32, K>::new_from_slice(&pts).expect("finite coordinates");
    let want = NonZeroUsize::new(k_eff + 1).expect("k_eff >= 1");
    let mut cands = Vec::new();
    for (i, p) in pts.iter().enumerate() {
        let near = tree
            .query(p)
            .nearest_n::<SquaredEuclidean<f32>>(want)
            .execute();
        let kth = near.last().map_or(0.0, |r| r.distance);
        // Everything within a slightly larger radius, re-ranked exactly.
        let radius = kth * (1.0 + 1e-4) + f32::MIN_POSITIVE;
        cands.clear();
        let within = tree
            .query(p)
            .within::<SquaredEuclidean<f32>>(radius)
            .execute();
        cands.extend(within.iter().map(|r| (0.0, r.item)));
        select(coords, K, i, &mut cands, k_eff, include_self, out);
    }
}

/// For every point of a cloud of `n` points with `dims` coordinates each (`coords` is
/// point-major), appends `k_eff = min(k, n − 1 + include_self)` (squared distance, index)
/// pairs in (distance, index) order. Returns `k_eff`.
pub fn knn(
    coords: &[f32],
    dims: usize,
    k: usize,
    include_self: bool,
    out: &mut Vec<(f32, u16)>,
) -> usize {
    let n = coords.len() / dims;
    let k_eff = k.min((n + usize::from(include_self)).saturating_sub(1));
    if k_eff == 0 {
        return 0;
    }
    match dims {
        _ if n <= BRUTE_FORCE_MAX => brute(coords, dims, n, k_eff, include_self, out),
        2 => with_tree::<2>(coords, k_eff, include_self, out),
        3 => with_tree::<3>(coords, k_eff, include_self, out),
        4 => with_tree::<4>(coords, k_eff, include_self, out),
        _ => brute(coords, dims, n, k_eff, include_self, out),
    }
    k_eff
}
