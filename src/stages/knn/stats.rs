//! Statistics of a jet's kNN graph, symmetrised (an undirected edge i–j wherever j is a
//! neighbour of i or i of j; self-loops and padding left out): connected components, size of
//! the largest, mean and maximum degree.
//!
//! Components come from a union-find over u16 point indices with path halving, each root
//! the smallest index of its set. It replaced petgraph's `UnionFind`, which took half of this
//! stage's time in the converter's profile (`pipeline run --profile`, stage `knn_stats`): a
//! point's root is kept while its list is walked, so an edge inside the set costs one or
//! two loads. petgraph's `connected_components` is the tests' reference.

use super::key::{Key, key, key_d2};

/// Root of `x`, halving the path on the way.
#[inline(always)]
fn find(parent: &mut [u16], mut x: u16) -> u16 {
    loop {
        let p = parent[x as usize];
        if p == x {
            return x;
        }
        let g = parent[p as usize];
        parent[x as usize] = g;
        x = g;
    }
}

/// Graph statistics of one jet at one resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphStats {
    /// Connected components (0 for an empty jet).
    pub components: u16,
    /// Points in the largest component.
    pub largest: u16,
    /// Mean degree of the symmetrised graph.
    pub mean_degree: f32,
    /// Maximum degree of the symmetrised graph.
    pub max_degree: u16,
}

/// Statistics of the graph where point `i`'s real neighbours are
/// `nbrs[i * k .. i * k + k_eff]` (`k` = stride). `mutual(i, s, j)` says whether point i is
/// also a neighbour of j, where j is i's neighbour in slot `s`.
pub fn graph_stats(
    n: usize,
    nbrs: &[u16],
    k: usize,
    k_eff: usize,
    degree: &mut Vec<u16>,
    mutual: impl Fn(usize, usize, usize) -> bool,
) -> GraphStats {
    if n == 0 {
        return GraphStats {
            components: 0,
            largest: 0,
            mean_degree: 0.0,
            max_degree: 0,
        };
    }
    let list = |i: usize| &nbrs[i * k..i * k + k_eff];
    // u16 indices: a jet has at most 65,535 points, and the smaller arrays stay in L1.
    assert!(n <= 1 << 16, "graph statistics: more than 65,536 points");
    let parent = &mut Vec::with_capacity(n);
    parent.extend((0..n).map(|i| i as u16));
    degree.clear();
    degree.resize(n, 0);
    let mut edges = 0u64;
    for i in 0..n {
        let mut root = find(parent, i as u16);
        for (slot, &j) in list(i).iter().enumerate() {
            let j = j as usize;
            // Count i–j once: from i when the edge is one-way, from the smaller end when
            // mutual; never a self-loop. Counted without branches (which of a point's
            // neighbours are mutual is unpredictable). Every real edge joins the sets: the
            // join is a no-op (one or two loads) when both ends already share a root.
            let new = (j != i) & !((j < i) & mutual(i, slot, j));
            degree[i] += u16::from(new);
            degree[j] += u16::from(new);
            edges += u64::from(new);
            let other = find(parent, j as u16);
            if other != root {
                // The smaller index becomes the root (both are roots, so no cycle forms).
                let (lo, hi) = (root.min(other), root.max(other));
                parent[hi as usize] = lo;
                root = lo;
            }
        }
    }
    // Set sizes by root; u32 counts: a set can hold all 65,536 points.
    let mut sizes = vec![0u32; n];
    for x in 0..n {
        sizes[find(parent, x as u16) as usize] += 1;
    }
    GraphStats {
        components: sizes.iter().filter(|&&s| s > 0).count() as u16,
        largest: sizes
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .min(u32::from(u16::MAX)) as u16,
        mean_degree: (2 * edges) as f32 / n as f32,
        max_degree: degree.iter().copied().max().unwrap_or(0),
    }
}

/// `mutual` for [`graph_stats`] from the grid search's keys (`k_eff` per point, sorted):
/// i is a neighbour of j when (d²(i, j), i) ranks within j's `k_eff` best, i.e. is not
/// after j's last key. O(1) per edge.
pub fn by_rank(keys: &[Key], k_eff: usize) -> impl Fn(usize, usize, usize) -> bool {
    move |i, slot, j| key(key_d2(keys[i * k_eff + slot]), i) <= keys[j * k_eff + k_eff - 1]
}

/// `mutual` for [`graph_stats`] by searching j's list (any coordinates).
pub fn by_search(nbrs: &[u16], k: usize, k_eff: usize) -> impl Fn(usize, usize, usize) -> bool {
    move |i, _, j| nbrs[j * k..j * k + k_eff].contains(&(i as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_triangles_and_an_isolated_point() {
        // k = 2 stride; points 0-2 form a triangle, 3-5 another, 6 has no neighbours (k_eff
        // is per jet, so give it self-padding pointing at itself).
        let nbrs = [1, 2, 0, 2, 0, 1, 4, 5, 3, 5, 3, 4, 6, 6];
        let mut deg = Vec::new();
        let s = graph_stats(7, &nbrs, 2, 2, &mut deg, by_search(&nbrs, 2, 2));
        assert_eq!((s.components, s.largest, s.max_degree), (3, 3, 2));
        assert_eq!(deg, [2, 2, 2, 2, 2, 2, 0]);
        assert!((s.mean_degree - 12.0 / 7.0).abs() < 1e-6);
    }

    #[test]
    fn one_way_edges_are_symmetrised() {
        // 0→1, 1→0 (mutual), 2→0 (one way): degrees 2, 1, 1; one component.
        let nbrs = [1, 0, 0];
        let mut deg = Vec::new();
        let s = graph_stats(3, &nbrs, 1, 1, &mut deg, by_search(&nbrs, 1, 1));
        assert_eq!(deg, [2, 1, 1]);
        assert_eq!((s.components, s.largest, s.max_degree), (1, 3, 2));
    }
}
