//! Exact kNN for points on an integer pixel grid (the default η, φ coordinates).
//!
//! Points are distinct pixels, so squared distances are exact integers and ties are resolved
//! exactly by (distance², point index). Points are bucketed into square cells of `B × B`
//! pixels (about four points per cell); a query scans rings of cells outward from its own
//! cell and stops when every unscanned pixel is strictly farther than its current k-th
//! neighbour: a point at exactly that distance could still win on index, so it is scanned.

/// A neighbour candidate packed for ordering: `(d² << 16) | index`.
pub type Key = u64;

/// Packs a squared distance and a point index so that `u64` order is (distance, index).
#[inline]
pub fn key(d2: u64, index: usize) -> Key {
    (d2 << 16) | index as u64
}

/// Squared distance of a key.
#[inline]
pub fn key_d2(k: Key) -> u64 {
    k >> 16
}

/// Index of a key.
#[inline]
pub fn key_index(k: Key) -> u16 {
    (k & 0xFFFF) as u16
}

/// Reusable buffers for grid queries.
#[derive(Default)]
pub struct GridKnn {
    starts: Vec<u32>,
    fill: Vec<u32>,
    items: Vec<u16>,
    best: Vec<Key>,
}

/// Keeps the `k` smallest keys seen, sorted ascending.
#[inline]
fn offer(best: &mut Vec<Key>, k: usize, cand: Key) {
    if best.len() == k {
        if cand >= best[k - 1] {
            return;
        }
        best.pop();
    }
    let pos = best.partition_point(|&b| b < cand);
    best.insert(pos, cand);
}

impl GridKnn {
    /// For every point `i` (pixel `rows[i]`, `cols[i]` of an image of `(h, w)` pixels), appends its
    /// neighbours' keys to `out`, `k_eff` per point in (distance, index) order, where
    /// `k_eff = min(k, n − 1 + include_self)`. Returns `k_eff`.
    pub fn run(
        &mut self,
        rows: &[u16],
        cols: &[u16],
        (h, w): (usize, usize),
        k: usize,
        include_self: bool,
        out: &mut Vec<Key>,
    ) -> usize {
        let n = rows.len();
        let k_eff = k.min((n + usize::from(include_self)).saturating_sub(1));
        if k_eff == 0 {
            return 0;
        }
        let cell = ((4.0 * (h * w) as f64 / n as f64).sqrt().ceil() as usize).clamp(1, h.max(w));
        let (gh, gw) = (h.div_ceil(cell), w.div_ceil(cell));
        // Cells in CSR form: items[starts[c]..starts[c + 1]] are the points of cell c.
        self.starts.clear();
        self.starts.resize(gh * gw + 1, 0);
        for i in 0..n {
            let c = (rows[i] as usize / cell) * gw + cols[i] as usize / cell;
            self.starts[c + 1] += 1;
        }
        for c in 0..gh * gw {
            self.starts[c + 1] += self.starts[c];
        }
        self.items.clear();
        self.items.resize(n, 0);
        self.fill.clear();
        self.fill.extend_from_slice(&self.starts[..gh * gw]);
        for i in 0..n {
            let c = (rows[i] as usize / cell) * gw + cols[i] as usize / cell;
            self.items[self.fill[c] as usize] = i as u16;
            self.fill[c] += 1;
        }

        for i in 0..n {
            let (r, c) = (rows[i] as i64, cols[i] as i64);
            let (br, bc) = (r / cell as i64, c / cell as i64);
            self.best.clear();
            let mut rho = 0i64;
            loop {
                let (r0, r1) = ((br - rho).max(0), (br + rho).min(gh as i64 - 1));
                let (c0, c1) = ((bc - rho).max(0), (bc + rho).min(gw as i64 - 1));
                for gr in r0..=r1 {
                    let on_edge_row = gr == br - rho || gr == br + rho;
                    let step = if on_edge_row { 1 } else { (2 * rho).max(1) };
                    let mut gc = if on_edge_row { c0 } else { bc - rho };
                    while gc <= c1 {
                        if gc >= c0 {
                            let cidx = (gr as usize) * gw + gc as usize;
                            let (a, b) =
                                (self.starts[cidx] as usize, self.starts[cidx + 1] as usize);
                            for &j in &self.items[a..b] {
                                if j as usize == i && !include_self {
                                    continue;
                                }
                                let (dr, dc) =
                                    (rows[j as usize] as i64 - r, cols[j as usize] as i64 - c);
                                offer(
                                    &mut self.best,
                                    k_eff,
                                    key((dr * dr + dc * dc) as u64, j as usize),
                                );
                            }
                        }
                        gc += step;
                    }
                }
                // Distance (in pixels) from the query to the nearest unscanned pixel row/column.
                let cellw = cell as i64;
                let mut margin = i64::MAX;
                if br - rho > 0 {
                    margin = margin.min(r - (br - rho) * cellw + 1);
                }
                if br + rho < gh as i64 - 1 {
                    margin = margin.min((br + rho + 1) * cellw - r);
                }
                if bc - rho > 0 {
                    margin = margin.min(c - (bc - rho) * cellw + 1);
                }
                if bc + rho < gw as i64 - 1 {
                    margin = margin.min((bc + rho + 1) * cellw - c);
                }
                if margin == i64::MAX {
                    break; // every cell scanned
                }
                if self.best.len() == k_eff
                    && (margin * margin) as u64 > key_d2(self.best[k_eff - 1])
                {
                    break;
                }
                rho += 1;
            }
            out.extend_from_slice(&self.best);
        }
        k_eff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_distance_then_index() {
        assert!(key(4, 9) < key(5, 0));
        assert!(key(4, 1) < key(4, 2));
        assert_eq!(
            (key_d2(key(31250, 1023)), key_index(key(31250, 1023))),
            (31250, 1023)
        );
    }
}
