//! Exact kNN for points on an integer pixel grid (the default η, φ coordinates).
//!
//! Points are distinct pixels, so squared distances are exact integers and ties are resolved
//! exactly by (distance², point index). The jet's points are marked in an occupancy image
//! with a border as wide as the image (so no bounds checks); a query walks a precomputed
//! table of linear pixel offsets in order of increasing distance, one group of equal distance
//! at a time, so neighbours arrive already ordered and only a tie group needs sorting.
//! A query whose walk passes 2n + 64 offsets (an isolated point of a sparse jet) finishes by
//! brute force instead, which bounds its cost. Both paths give the brute-force answer
//! exactly. The budget was tuned with `benches/knn.rs`: n + 64 favours 256-point clouds,
//! 4n + 64 the 1024-point ones.

/// A neighbour packed for ordering: `(d² << 16) | index`.
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

const EMPTY: u16 = u16::MAX;

/// Reusable tables and buffers for one image geometry.
#[derive(Default)]
pub struct GridKnn {
    shape: (usize, usize),
    /// Linear offsets in the padded occupancy image of (Δrow, Δcol) ≠ (0, 0), by increasing d².
    offsets: Vec<isize>,
    /// For each group of equal d²: (end index into `offsets`, d²).
    groups: Vec<(u32, u32)>,
    occupied: Vec<u16>,
    tie: Vec<u16>,
    all: Vec<Key>,
}

impl GridKnn {
    fn prepare(&mut self, (h, w): (usize, usize)) {
        if self.shape == (h, w) {
            return;
        }
        self.shape = (h, w);
        let (h, w) = (h as isize, w as isize);
        let stride = 3 * w - 2;
        let mut offs: Vec<(isize, isize)> = Vec::new();
        for dr in -(h - 1)..h {
            for dc in -(w - 1)..w {
                if (dr, dc) != (0, 0) {
                    offs.push((dr, dc));
                }
            }
        }
        offs.sort_by_key(|&(dr, dc)| dr * dr + dc * dc);
        self.offsets = offs.iter().map(|&(dr, dc)| dr * stride + dc).collect();
        self.groups.clear();
        for (i, &(dr, dc)) in offs.iter().enumerate() {
            let d2 = (dr * dr + dc * dc) as u32;
            match self.groups.last_mut() {
                Some((end, g)) if *g == d2 => *end = i as u32 + 1,
                _ => self.groups.push((i as u32 + 1, d2)),
            }
        }
        self.occupied = vec![EMPTY; ((3 * h - 2) * stride) as usize];
    }

    /// Index of pixel (r, c) in the padded occupancy image.
    #[inline]
    fn cell(&self, r: u16, c: u16) -> usize {
        let (h, w) = self.shape;
        (r as usize + h - 1) * (3 * w - 2) + c as usize + w - 1
    }

    /// Exact neighbours of point `i` by brute force, appended to `out`.
    fn brute(&mut self, rows: &[u16], cols: &[u16], i: usize, need: usize, out: &mut Vec<Key>) {
        let (ri, ci) = (rows[i] as i64, cols[i] as i64);
        self.all.clear();
        for j in (0..rows.len()).filter(|&j| j != i) {
            let (dr, dc) = (rows[j] as i64 - ri, cols[j] as i64 - ci);
            self.all.push(key((dr * dr + dc * dc) as u64, j));
        }
        if self.all.len() > need {
            self.all.select_nth_unstable(need - 1);
            self.all.truncate(need);
        }
        self.all.sort_unstable();
        out.extend_from_slice(&self.all);
    }

    /// For every point `i` (pixel `rows[i]`, `cols[i]` of an image of `(h, w)` pixels),
    /// appends its neighbours' keys to `out`, `k_eff` per point in (distance, index) order,
    /// where `k_eff = min(k, n − 1 + include_self)`. Returns `k_eff`.
    pub fn run(
        &mut self,
        rows: &[u16],
        cols: &[u16],
        shape: (usize, usize),
        k: usize,
        include_self: bool,
        out: &mut Vec<Key>,
    ) -> usize {
        let n = rows.len();
        let k_eff = k.min((n + usize::from(include_self)).saturating_sub(1));
        if k_eff == 0 {
            return 0;
        }
        self.prepare(shape);
        for i in 0..n {
            let cell = self.cell(rows[i], cols[i]);
            self.occupied[cell] = i as u16;
        }
        let need = k_eff - usize::from(include_self);
        let budget = 2 * n + 64;
        for i in 0..n {
            if include_self {
                out.push(key(0, i));
            }
            let base = self.cell(rows[i], cols[i]) as isize;
            let start = out.len();
            let (mut found, mut visited, mut begin) = (0usize, 0usize, 0usize);
            let mut gi = 0;
            while found < need {
                if visited > budget {
                    out.truncate(start);
                    self.brute(rows, cols, i, need, out);
                    break;
                }
                let (end, d2) = self.groups[gi];
                gi += 1;
                self.tie.clear();
                for &delta in &self.offsets[begin..end as usize] {
                    let j = self.occupied[(base + delta) as usize];
                    if j != EMPTY {
                        self.tie.push(j);
                    }
                }
                visited += end as usize - begin;
                begin = end as usize;
                if self.tie.len() > 1 {
                    self.tie.sort_unstable();
                }
                let take = self.tie.len().min(need - found);
                out.extend(
                    self.tie[..take]
                        .iter()
                        .map(|&j| key(u64::from(d2), j as usize)),
                );
                found += take;
            }
        }
        for i in 0..n {
            let cell = self.cell(rows[i], cols[i]);
            self.occupied[cell] = EMPTY;
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
