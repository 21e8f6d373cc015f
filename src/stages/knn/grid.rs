//! Exact kNN for points on an integer pixel grid (the default η, φ coordinates), for every
//! resolution of a jet.
//!
//! Points are distinct pixels, so squared distances are exact integers and ties are resolved
//! exactly by (distance², point index). Resolution r keeps the first `sizes[r]` points of the
//! energy-ordered list, so one occupancy image holding each pixel's point index serves every
//! resolution: point j exists at resolution r when `j < sizes[r]`.
//!
//! Exact query paths, chosen per point:
//! - **Walk** (dense neighbourhoods): the occupancy image has a border as wide as the walk
//!   (no bounds checks once the points are checked to lie in the image); the query walks a
//!   precomputed table of pixel offsets in order of increasing distance, one group of equal
//!   distance at a time, until k neighbours are found with their tie group complete. Walks
//!   stop at d² ≤ [`WALK_MAX_D2`]. Where the CPU has AVX-512 the walk is vectorised
//!   ([`super::vwalk`]: 16 offsets per gather, a bitonic sort of the hits); elsewhere, and
//!   for more than 4,096 points or k > 16, it is scalar with a sort of the hits (AVX2's
//!   sorting network where the CPU has it, `sort_unstable` otherwise).
//! - **Sparse neighbourhoods** (the walk finds too few, e.g. pile-up hits kept at low
//!   resolutions): where the CPU has AVX-512 or AVX2, a vectorised exact search over the
//!   resolution's points in the rows within reach ([`super::lanes`], [`super::lanes::avx2`];
//!   below d² = [`WALK_MAX_D2`] + 1 there are fewer than k, which bounds its bisection);
//!   elsewhere a cell search: the points bucketed in
//!   8×8-pixel cells (each cell's by index, so a resolution is a prefix of every cell), rings
//!   of cells around the query until no unvisited cell can hold a point nearer than the k-th
//!   best kept; the cells are built only when a scalar path runs.
//!
//! On the sample's 1024-point jets (`benches/knn.rs`, k = 16, one core): 282 µs per jet
//! with the first scalar paths (275 µs now, the bench's "scalar" row), 143 µs with the
//! vectorised sparse search alone, 73–81 µs with both vectorised paths (Intel, AVX-512), and
//! 112–115 µs on the AVX2 path (the same CPU with AVX-512 switched off: the scalar walk, its
//! hits sorted by [`super::sort8`], and [`super::lanes::avx2`]).
//!
//! Resolutions are searched largest first, and a point whose neighbours at the next larger
//! resolution all exist at the smaller one keeps that list (the nearest of a superset are the
//! nearest of the subset): on the sample's jets this takes the four resolutions from about
//! 900 to 700 µs per jet (`benches/knn.rs` at commit c16cfaf and after).
//!
//! Every path gives the brute-force answer exactly (tests in `tests.rs`); `benches/knn.rs`
//! times them.

pub use super::key::{Key, key, key_d2, key_index};
use super::lanes::{Lanes, Path};
#[cfg(target_arch = "x86_64")]
use super::sort8;
use super::vwalk::{Walk, WalkTables};

const EMPTY: u16 = u16::MAX;

/// Reusable tables and buffers for one image geometry.
#[derive(Default)]
pub struct GridKnn {
    shape: (usize, usize),
    /// Linear offset in the padded occupancy image of every (Δrow, Δcol) ≠ (0, 0) with
    /// d² ≤ [`WALK_MAX_D2`], by increasing d².
    table: Vec<isize>,
    /// (end index into `table`, d²) of each group of equal d².
    groups: Vec<(u32, u64)>,
    /// Occupancy image with a [`PAD`]-pixel border: each pixel's point index, or `EMPTY`.
    occupied: Vec<u16>,
    /// Hits of one walk, as 32-bit keys (a walk's d² fits 16 bits).
    hits: Vec<u32>,
    /// Cell grid size (rows, cols) of the sparse search.
    cells: (usize, usize),
    cell_start: Vec<u32>,
    cell_fill: Vec<u32>,
    /// (row, col, index) of every point, by cell, each cell's by index.
    cell_pts: Vec<(i32, i32, u32)>,
    all: Vec<Key>,
    /// The vectorised sparse search, where the CPU has it.
    lanes: Lanes,
    /// The vectorised walk's tables (used with `lanes`).
    vwalk: WalkTables,
    /// Use the scalar paths only, whatever the CPU has (tests and benchmarks compare them).
    pub scalar_only: bool,
    /// Use the AVX2 sparse search and the scalar walk even where the CPU has AVX-512 (tests
    /// and benchmarks run the path of CPUs without it).
    pub no_avx512: bool,
}

/// A sparse query: the point's pixel and index, and the resolution's point count.
struct Query {
    ri: i32,
    ci: i32,
    i: u32,
    lim: u32,
}

/// Appends the keys of one cell's points (below the resolution's count, not the query
/// itself) that beat `worst` to `buf[*len..]`, branch-free: every key is written and the
/// length advances only for a kept one. `buf` has room for every point of the jet plus one.
#[inline(always)]
fn scan_cell(
    cell_pts: &[(i32, i32, u32)],
    q: &Query,
    worst: Key,
    buf: &mut [Key],
    len: &mut usize,
) {
    for &(pr, pc, j) in cell_pts {
        if j >= q.lim {
            break;
        }
        let (dr, dc) = (pr - q.ri, pc - q.ci);
        let kk = key((dr * dr + dc * dc) as u64, j as usize);
        buf[*len] = kk;
        *len += usize::from((kk < worst) & (j != q.i));
    }
}

/// Side in pixels of the cells of the sparse search.
const CELL: usize = 8;

/// Cells on each side of a point's cell that cover its walk (the pre-walk count).
const NEAR: usize = PAD.div_ceil(CELL);

/// A query walks the pixel offsets with d² ≤ this (80 offsets, all within the 3×3 cells
/// around the point) before switching to the cell search; tuned with `benches/knn.rs`.
pub const WALK_MAX_D2: u64 = 25;

/// Border of the occupancy image: the walk's largest |Δrow| or |Δcol|.
const PAD: usize = 5;
const _: () = assert!(
    ((PAD + 1) * (PAD + 1)) as u64 > WALK_MAX_D2,
    "border too thin"
);
const _: () = assert!(WALK_MAX_D2 < 1 << 16, "walk keys are 32-bit");

/// The walk from the padded-image pixel `base`: probes `table`'s offsets one group of equal
/// distance at a time until at least `need` points below `lim` are found. Returns how many
/// were (their keys in `hits`, by group); fewer than `need` when the table ran out.
#[inline(always)]
fn walk(
    occupied: &[u16],
    table: &[isize],
    groups: &[(u32, u64)],
    base: isize,
    lim: usize,
    need: usize,
    hits: &mut [u32],
) -> usize {
    let (mut found, mut begin) = (0usize, 0usize);
    // The border keeps every probe inside the image, and `hits` has a slot per offset.
    assert!(hits.len() >= table.len());
    debug_assert!(
        table
            .iter()
            .all(|&d| (0..occupied.len() as isize).contains(&(base + d)))
    );
    for &(end, d2) in groups {
        let end = end as usize;
        for &delta in &table[begin..end] {
            // Branch-free: write every probe, keep it when it is a point.
            // SAFETY: in bounds, as asserted above (`base` is a pixel's padded index and the
            // border is as wide as the longest offset).
            let j = unsafe { *occupied.get_unchecked((base + delta) as usize) };
            // SAFETY: `found` counts the kept probes, no more than the probes so far, which
            // are fewer than `table.len() <= hits.len()`.
            unsafe { *hits.get_unchecked_mut(found) = key(d2, j as usize) as u32 };
            found += usize::from((j as usize) < lim);
        }
        begin = end;
        if found >= need {
            break;
        }
    }
    found
}

/// Appends the `need` nearest of a walk's `found` hits (by group of distance, each group in
/// probe order): sorted by the AVX2 network where `avx2` (every vectorised path has it),
/// else by `sort_unstable`.
fn append_walk(hits: &mut [u32], found: usize, need: usize, avx2: bool, out: &mut Vec<Key>) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        assert!(hits.len() >= 32 && need <= found && found <= hits.len());
        // SAFETY: the caller has AVX2 (a vectorised path, `Lanes::load`); sizes as asserted.
        unsafe { sort8::append_smallest(hits, found, need, out) };
        return;
    }
    let _ = avx2;
    let hits = &mut hits[..found];
    hits.sort_unstable();
    out.extend(hits[..need].iter().map(|&h| Key::from(h)));
}

impl GridKnn {
    fn prepare(&mut self, (h, w): (usize, usize)) {
        if self.shape == (h, w) {
            return;
        }
        self.shape = (h, w);
        let stride = (w + 2 * PAD) as isize;
        let r = PAD as isize;
        let mut offs: Vec<(isize, isize)> = Vec::new();
        for dr in -r..=r {
            for dc in -r..=r {
                if (dr, dc) != (0, 0) && (dr * dr + dc * dc) as u64 <= WALK_MAX_D2 {
                    offs.push((dr, dc));
                }
            }
        }
        offs.sort_by_key(|&(dr, dc)| dr * dr + dc * dc);
        self.table = offs.iter().map(|&(dr, dc)| dr * stride + dc).collect();
        self.groups.clear();
        for (i, &(dr, dc)) in offs.iter().enumerate() {
            let d2 = (dr * dr + dc * dc) as u64;
            match self.groups.last_mut() {
                Some((end, g)) if *g == d2 => *end = i as u32 + 1,
                _ => self.groups.push((i as u32 + 1, d2)),
            }
        }
        // At least the 32 keys the AVX2 sort reads.
        self.hits = vec![0; self.table.len().max(32)];
        // One element past the image: the vectorised walk's gathers read 32 bits.
        self.occupied = vec![EMPTY; (h + 2 * PAD) * (w + 2 * PAD) + 1];
        self.vwalk = WalkTables::new(&self.table, &self.groups);
    }

    /// Index of pixel (r, c) in the padded occupancy image.
    #[inline]
    fn cell(&self, r: u16, c: u16) -> usize {
        (r as usize + PAD) * (self.shape.1 + 2 * PAD) + c as usize + PAD
    }

    /// Buckets the points into `CELL`×`CELL` pixel cells, each cell's points by index.
    fn build_cells(&mut self, rows: &[u16], cols: &[u16]) {
        let (h, w) = self.shape;
        let (ch, cw) = (h.div_ceil(CELL), w.div_ceil(CELL));
        self.cells = (ch, cw);
        self.cell_start.clear();
        self.cell_start.resize(ch * cw + 1, 0);
        let cell_of = |r: u16, c: u16| (r as usize / CELL) * cw + c as usize / CELL;
        for (&r, &c) in rows.iter().zip(cols) {
            self.cell_start[cell_of(r, c) + 1] += 1;
        }
        for x in 1..self.cell_start.len() {
            self.cell_start[x] += self.cell_start[x - 1];
        }
        self.cell_fill.clear();
        self.cell_fill
            .extend_from_slice(&self.cell_start[..ch * cw]);
        self.cell_pts.resize(rows.len(), (0, 0, 0));
        for (i, (&r, &c)) in rows.iter().zip(cols).enumerate() {
            let slot = &mut self.cell_fill[cell_of(r, c)];
            self.cell_pts[*slot as usize] = (i32::from(r), i32::from(c), i as u32);
            *slot += 1;
        }
    }

    /// Points (of any resolution, the point itself included) in the 3×3 cells around pixel
    /// (r, c).
    fn near_count(&self, r: u16, c: u16) -> usize {
        let (ch, cw) = self.cells;
        let (cr, cc) = (r as usize / CELL, c as usize / CELL);
        let mut n = 0;
        for y in cr.saturating_sub(NEAR)..(cr + NEAR + 1).min(ch) {
            let (a, b) = (cc.saturating_sub(NEAR), (cc + NEAR + 1).min(cw));
            n += (self.cell_start[y * cw + b] - self.cell_start[y * cw + a]) as usize;
        }
        n
    }

    /// Neighbours of point `i` among the first `lim` points by a ring search over cells:
    /// cells in rings of growing Chebyshev distance; after each ring the `need` best
    /// candidates are kept, and the search stops when no unvisited cell can hold a point as
    /// near as the worst of them. Appends them, sorted.
    fn cell_search(
        &mut self,
        r: u16,
        c: u16,
        i: usize,
        lim: usize,
        need: usize,
        out: &mut Vec<Key>,
    ) {
        let (ch, cw) = (self.cells.0 as i32, self.cells.1 as i32);
        let q = Query {
            ri: i32::from(r),
            ci: i32::from(c),
            i: i as u32,
            lim: lim as u32,
        };
        let b = CELL as i32;
        let (cr, cc) = (q.ri / b, q.ci / b);
        if self.all.len() <= self.cell_pts.len() {
            self.all.resize(self.cell_pts.len() + 1, 0);
        }
        let buf = &mut self.all[..];
        let (mut len, mut worst) = (0usize, Key::MAX);
        let (starts, pts) = (&self.cell_start[..], &self.cell_pts[..]);
        for l in 0.. {
            let (y0, y1, x0, x1) = (cr - l, cr + l, cc - l, cc + l);
            if y0 < 0 && x0 < 0 && y1 >= ch && x1 >= cw {
                break;
            }
            macro_rules! visit {
                ($y:expr, $x:expr) => {{
                    let (y, x) = ($y, $x);
                    // Skip a cell whose nearest pixel is farther than the worst kept.
                    let dy = (y * b - q.ri).max(q.ri - (y * b + b - 1)).max(0) as u64;
                    let dx = (x * b - q.ci).max(q.ci - (x * b + b - 1)).max(0) as u64;
                    if dy * dy + dx * dx <= key_d2(worst) {
                        let cell = (y * cw + x) as usize;
                        let cell_pts = &pts[starts[cell] as usize..starts[cell + 1] as usize];
                        scan_cell(cell_pts, &q, worst, buf, &mut len);
                    }
                }};
            }
            for y in y0.max(0)..=y1.min(ch - 1) {
                if y == y0 || y == y1 {
                    for x in x0.max(0)..=x1.min(cw - 1) {
                        visit!(y, x);
                    }
                } else {
                    // Inside rows of a ring have only their two end cells.
                    if x0 >= 0 {
                        visit!(y, x0);
                    }
                    if x1 < cw {
                        visit!(y, x1);
                    }
                }
            }
            if len >= need {
                // Keep the `need` best; the worst of them bounds the rest of the search.
                buf[..len].select_nth_unstable(need - 1);
                len = need;
                worst = buf[need - 1];
                // Nearest possible pixel of the next ring, on whichever side is nearest.
                let lb = (q.ri - (cr - l) * b + 1)
                    .min((cr + l + 1) * b - q.ri)
                    .min(q.ci - (cc - l) * b + 1)
                    .min((cc + l + 1) * b - q.ci) as u64;
                if lb * lb > key_d2(worst) {
                    break;
                }
            }
        }
        let best = &mut buf[..need];
        best.sort_unstable();
        out.extend_from_slice(best);
    }

    /// Single-resolution form of [`GridKnn::run_multi`]: the neighbours of all `rows.len()`
    /// points into `out`. Returns `k_eff`.
    pub fn run(
        &mut self,
        rows: &[u16],
        cols: &[u16],
        shape: (usize, usize),
        k: usize,
        include_self: bool,
        out: &mut Vec<Key>,
    ) -> usize {
        let mut k_eff = [0];
        self.run_multi(
            rows,
            cols,
            shape,
            &[rows.len()],
            k,
            include_self,
            std::slice::from_mut(out),
            &mut k_eff,
        );
        k_eff[0]
    }

    /// For every resolution r (the first `sizes[r]` points; `sizes` ascending, the last one
    /// `rows.len()`), appends to `outs[r]` the neighbour keys of each of its points, `k_eff[r]`
    /// per point in (distance, index) order, where `k_eff[r] = min(k, sizes[r] − 1 +
    /// include_self)`. Point i is pixel (`rows[i]`, `cols[i]`) of an image of `shape` pixels.
    #[allow(clippy::too_many_arguments)]
    pub fn run_multi(
        &mut self,
        rows: &[u16],
        cols: &[u16],
        shape: (usize, usize),
        sizes: &[usize],
        k: usize,
        include_self: bool,
        outs: &mut [Vec<Key>],
        k_eff: &mut [usize],
    ) {
        let n = rows.len();
        // The walks read the occupancy image without bounds checks: every point must lie in
        // the image, so that its walk stays inside the border.
        assert!(
            rows.len() == cols.len()
                && rows
                    .iter()
                    .zip(cols)
                    .all(|(&r, &c)| (r as usize) < shape.0 && (c as usize) < shape.1),
            "kNN grid: a point lies outside the {shape:?} image"
        );
        debug_assert!(sizes.windows(2).all(|w| w[0] <= w[1]) && sizes.last() == Some(&n));
        let slf = usize::from(include_self);
        for (ke, &s) in k_eff.iter_mut().zip(sizes) {
            *ke = k.min((s + slf).saturating_sub(1));
        }
        if n == 0 || k_eff.iter().all(|&ke| ke == 0) {
            return;
        }
        self.prepare(shape);
        // The cells serve the scalar paths only: built when one is first needed.
        let mut cells_built = false;
        let best = match (self.scalar_only, self.no_avx512) {
            (true, _) => Path::Scalar,
            (false, true) => Path::Avx2,
            (false, false) => Path::Avx512,
        };
        let path = self.lanes.load(rows, cols, shape, best);
        let vectorised = path != Path::Scalar;
        let vwalk = path == Path::Avx512;
        for i in 0..n {
            let cell = self.cell(rows[i], cols[i]);
            // Points are distinct pixels (the point-cloud stage makes one per pixel).
            debug_assert_eq!(self.occupied[cell], EMPTY, "two points on one pixel");
            self.occupied[cell] = i as u16;
        }
        // Largest resolution first: a point whose neighbours at the next larger resolution
        // all exist at this one has the same neighbours here (they are the nearest of a
        // superset), so its list is copied instead of searched.
        for r in (0..sizes.len()).rev() {
            let (lim, ke) = (sizes[r], k_eff[r]);
            let need = ke.saturating_sub(slf);
            let (head, tail) = outs.split_at_mut(r + 1);
            let out = &mut head[r];
            let larger = match tail.first() {
                Some(l) if k_eff[r + 1] == ke => &l[..],
                _ => &[][..],
            };
            for i in 0..lim {
                let nb = larger.get(i * ke..(i + 1) * ke).unwrap_or_default();
                if !nb.is_empty() && nb.iter().all(|&kk| usize::from(key_index(kk)) < lim) {
                    out.extend_from_slice(nb);
                    continue;
                }
                if include_self {
                    out.push(key(0, i));
                }
                if need == 0 {
                    continue;
                }
                if vwalk {
                    let base = self.cell(rows[i], cols[i]);
                    match self.vwalk.nearest(&self.occupied, base, lim, need, out) {
                        Walk::Found => continue,
                        Walk::TooFew => {
                            self.lanes.nearest(i, lim, need, 0, out);
                            continue;
                        }
                        Walk::Declined => {}
                    }
                }
                if !cells_built {
                    self.build_cells(rows, cols);
                    cells_built = true;
                }
                // The walk stays inside the 3×3 cells around the point: skip it when they
                // hold too few points for it to succeed, or when the point's need-th
                // neighbour at the larger resolution was already beyond the walk (a subset's
                // need-th neighbour is no nearer).
                let floor = nb.last().map_or(0, |&kk| key_d2(kk));
                let beyond = floor > WALK_MAX_D2;
                let mut found = 0usize;
                if !beyond && self.near_count(rows[i], cols[i]) > need {
                    let base = self.cell(rows[i], cols[i]) as isize;
                    found = walk(
                        &self.occupied,
                        &self.table,
                        &self.groups,
                        base,
                        lim,
                        need,
                        &mut self.hits,
                    );
                }
                if found >= need {
                    // Hits come by distance; order each tie group by index, then cut.
                    append_walk(&mut self.hits, found, need, vectorised, out);
                } else if vectorised {
                    // Fewer than `need` points lie within the walk's reach: the walk found
                    // too few, or the cells around the point hold no more than `need` points
                    // (itself included), or `floor` is already beyond it.
                    let floor = floor.max(WALK_MAX_D2 + 1);
                    self.lanes.nearest(i, lim, need, floor, out);
                } else {
                    self.cell_search(rows[i], cols[i], i, lim, need, out);
                }
            }
        }
        for i in 0..n {
            let cell = self.cell(rows[i], cols[i]);
            self.occupied[cell] = EMPTY;
        }
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
