//! Vectorised exact search for the sparse queries of [`super::grid`]: squared pixel
//! distances from the query to 32 points per AVX-512 instruction, then an exact selection of
//! the k nearest by sorting networks (or by counting for k > 16).
//!
//! [`Lanes::load`] sorts a jet's points by pixel row (counting sort; by index within a row).
//! For the query point i among the first `lim` points:
//! 1. For the first rung of a ladder of radii (d² ≤ 256, 1024, 4096, then all), only the
//!    rows within the rung's reach are scanned: one contiguous range of the sorted points.
//!    d² (i16: pixel distances on a ≤ 128 × 128 image stay below 32,767) of each point in it;
//!    the points within the rung, below `lim` and not the query are compressed
//!    (`vpcompressw`) into a candidate list of (index, d²).
//! 2. While the candidates are fewer than `need`, the same for the next rung.
//! 3. With k ≤ 16, [`sort_select`]: the candidates as 32-bit (d², index) keys, 16 per
//!    vector, each vector sorted by a bitonic network and merged into the 16 smallest so far
//!    (a vector with nothing below the 16th smallest is skipped). On the sample's 1024-point
//!    jets a query has a median of about 80 candidates.
//! 4. Otherwise bisection on the candidates' d² finds the exact k-th distance T with counts,
//!    and the candidates within T are sorted by key.
//!
//! History, measured in a bench harness on the sample's 1024-point jets (vectorised walk in
//! place; reverted code, so not reproducible from the repo): selecting by bisection, then
//! ranking by counts, instead of step 3 took about 119 µs per jet against 105; scanning all
//! points in index order instead of the row range, 85 against 71; a 3- to 8-way search per
//! bisection round measured no faster than 2-way. An earlier try that scanned bands of cell
//! rows was slower because of its per-band work.
//!
//! The same answer as brute force, ties included (tests in `tests.rs` run this, the AVX2
//! form and the scalar cell search). Used where the CPU has AVX-512 F/BW/VBMI2 and BMI2;
//! with AVX2 only, [`avx2`] searches the same layout; elsewhere the grid
//! search falls back to its scalar cell search.

pub mod avx2;

use super::key::{Key, key};
use super::network;

/// Points per vector.
const LANES: usize = 32;

/// Rungs of the radius ladder (d², pixels²); the last one admits every point.
const RUNGS: [i16; 4] = [256, 1024, 4096, i16::MAX - 1];

/// Rows each rung reaches.
const REACH: [usize; 4] = reach(RUNGS);

/// Rows each rung of a ladder reaches: farther than ⌊√rung⌋ rows no point lies within it.
pub(super) const fn reach<const N: usize>(rungs: [i16; N]) -> [usize; N] {
    let mut r = [0; N];
    let mut x = 0;
    while x < N {
        r[x] = (rungs[x] as u16).isqrt() as usize;
        x += 1;
    }
    r
}

/// Which vectorised search a jet uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Path {
    /// None: the grid search's scalar cell search answers.
    #[default]
    Scalar,
    /// AVX-512 F/BW/VBMI2 (this module).
    Avx512,
    /// AVX2 ([`avx2`]).
    Avx2,
}

/// A jet's pixel coordinates laid out for the vectorised search, and its buffers.
#[derive(Default)]
pub struct Lanes {
    /// The vectorised search the CPU and the image allow for the loaded jet.
    path: Path,
    /// Each point's pixel, by point index (the loaded jet's points).
    pub(super) prow: Vec<i16>,
    pub(super) pcol: Vec<i16>,
    /// The points sorted by row (by index within a row), padded to whole vectors: row,
    /// column and point index (`u16::MAX` in the padding).
    pub(super) rows: Vec<i16>,
    pub(super) cols: Vec<i16>,
    pub(super) idx: Vec<u16>,
    /// Sorted position of the first point of each row; one more entry, the point count.
    pub(super) row_start: Vec<u32>,
    /// Next free sorted position of each row while loading.
    fill: Vec<u32>,
    pub(super) cand_idx: Vec<u16>,
    pub(super) cand_d2: Vec<i16>,
    pub(super) keys: Vec<Key>,
    /// (d² << 16) | index keys of the AVX2 selection.
    pub(super) keys32: Vec<u32>,
}

/// Whether this CPU runs the vectorised search.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vbmi2")
            && is_x86_feature_detected!("popcnt")
            && is_x86_feature_detected!("bmi2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Lanes {
    /// Loads a jet's pixels (image `shape`) for the best search the CPU has, at most `best`
    /// (tests and benchmarks lower it to run the AVX2 or scalar paths on any CPU). Returns
    /// the path [`Lanes::nearest`] takes for this jet ([`Path::Scalar`]: not usable).
    pub fn load(&mut self, rows: &[u16], cols: &[u16], shape: (usize, usize), best: Path) -> Path {
        let (h, w) = (shape.0 as i64, shape.1 as i64);
        // Every d² must fit an i16 below i16::MAX, the "excluded" marker, and every index
        // a u16.
        // (This also bounds the points, distinct pixels, by 128 × 128 = 16,384.)
        let fits = (h - 1) * (h - 1) + (w - 1) * (w - 1) < i64::from(i16::MAX - 1)
            && rows.len() <= usize::from(u16::MAX);
        assert_eq!(rows.len(), cols.len(), "one column per row");
        self.path = match best {
            _ if !fits => Path::Scalar,
            Path::Avx512 if supported() => Path::Avx512,
            Path::Avx512 | Path::Avx2 if avx2::supported() => Path::Avx2,
            _ => Path::Scalar,
        };
        if self.path == Path::Scalar {
            return Path::Scalar;
        }
        let n = rows.len();
        self.prow.clear();
        self.prow.extend(rows.iter().map(|&r| r as i16));
        self.pcol.clear();
        self.pcol.extend(cols.iter().map(|&c| c as i16));
        // Counting sort by row, stable.
        self.row_start.clear();
        self.row_start.resize(shape.0 + 1, 0);
        for &r in rows {
            self.row_start[r as usize + 1] += 1;
        }
        for r in 1..self.row_start.len() {
            self.row_start[r] += self.row_start[r - 1];
        }
        let padded = n.div_ceil(LANES) * LANES;
        self.rows.clear();
        self.rows.resize(padded, 0);
        self.cols.clear();
        self.cols.resize(padded, 0);
        self.idx.clear();
        self.idx.resize(padded, u16::MAX);
        self.fill.clone_from(&self.row_start);
        for (i, (&r, &c)) in rows.iter().zip(cols).enumerate() {
            let at = &mut self.fill[r as usize];
            let p = *at as usize;
            *at += 1;
            (self.rows[p], self.cols[p], self.idx[p]) = (r as i16, c as i16, i as u16);
        }
        self.cand_d2.resize(padded + LANES, 0);
        self.cand_idx.resize(padded + LANES, 0);
        self.path
    }

    /// Appends the keys of the `need` nearest points to point `i` among the first `lim`
    /// (the point itself excluded), in (d², index) order. Only after [`Lanes::load`]
    /// returned true for this jet; `need < lim`. `floor` is a d² below which fewer than
    /// `need` points lie (0 when unknown; the need-th d² at a larger resolution), so the
    /// AVX2 search starts there.
    pub fn nearest(&mut self, i: usize, lim: usize, need: usize, floor: u64, out: &mut Vec<Key>) {
        assert!(need < lim && lim <= self.prow.len() && i < lim);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `path` is only set to a path whose CPU features were detected; the
        // buffers are sized by `load` for every index the functions touch.
        unsafe {
            match self.path {
                Path::Avx512 => self.nearest_avx512(i, lim, need, out),
                Path::Avx2 => avx2::nearest(self, i, lim, need, floor, out),
                Path::Scalar => panic!("vectorised search used without a vectorised path"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("vectorised search enabled without x86-64")
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,popcnt")]
    unsafe fn nearest_avx512(&mut self, i: usize, lim: usize, need: usize, out: &mut Vec<Key>) {
        use std::arch::x86_64::*;
        let (qr, qc) = (self.prow[i], self.pcol[i]);
        let h = self.row_start.len() - 1;
        // SAFETY: (whole block) `rows`, `cols` and `idx` hold whole vectors up to
        // `n.div_ceil(LANES) * LANES` and are read no further; the candidate buffers hold
        // that plus `LANES`, and a vector stored at candidate count m ends by m + LANES with
        // m never above the offset of the vector being read.
        unsafe {
            let (qrv, qcv) = (_mm512_set1_epi16(qr), _mm512_set1_epi16(qc));
            let limv = _mm512_set1_epi16(lim as i16);
            let selfv = _mm512_set1_epi16(i as i16);
            let (rp, cp, jp) = (self.rows.as_ptr(), self.cols.as_ptr(), self.idx.as_ptr());
            let (ci, cd) = (self.cand_idx.as_mut_ptr(), self.cand_d2.as_mut_ptr());
            // 1–2. The points within the first rung that holds `need`, from the rows the rung
            //    can reach only (one contiguous range of the row-sorted points; whole vectors,
            //    whose lanes outside the rows are farther than the rung anyway).
            let mut rung = 0;
            let mut m;
            loop {
                let limit = RUNGS[rung];
                let reach = REACH[rung];
                let (lo, hi) = (
                    (qr as usize).saturating_sub(reach),
                    (qr as usize + reach + 1).min(h),
                );
                let (start, end) = (self.row_start[lo] as usize, self.row_start[hi] as usize);
                let limitv = _mm512_set1_epi16(limit);
                m = 0;
                for v in start / LANES..end.div_ceil(LANES) {
                    let o = v * LANES;
                    let dr = _mm512_sub_epi16(_mm512_loadu_si512(rp.add(o).cast()), qrv);
                    let dc = _mm512_sub_epi16(_mm512_loadu_si512(cp.add(o).cast()), qcv);
                    let d =
                        _mm512_add_epi16(_mm512_mullo_epi16(dr, dr), _mm512_mullo_epi16(dc, dc));
                    let j = _mm512_loadu_si512(jp.add(o).cast());
                    let k = _mm512_cmple_epi16_mask(d, limitv)
                        & _mm512_cmplt_epu16_mask(j, limv)
                        & _mm512_cmpneq_epi16_mask(j, selfv);
                    m += append((ci, cd), m, k, j, d);
                }
                if m >= need {
                    break;
                }
                rung += 1;
            }
            // Pad the candidates to whole vectors with keys that sort last.
            _mm512_storeu_si512(cd.add(m).cast(), _mm512_set1_epi16(i16::MAX));
            if need <= KEYS {
                sort_select(ci, cd, m, need, out);
                return;
            }
            // 4. count(lo) < need <= count(hi): bisect to the exact k-th distance T.
            let mut lo = if rung == 0 { -1 } else { RUNGS[rung - 1] };
            let mut hi = RUNGS[rung];
            let cvecs = m.div_ceil(LANES);
            let count = |t: i16| -> usize {
                let tv = _mm512_set1_epi16(t);
                let mut n = 0;
                for v in 0..cvecs {
                    let d = _mm512_loadu_si512(cd.add(v * LANES).cast());
                    n += _mm512_cmple_epi16_mask(d, tv).count_ones() as usize;
                }
                n
            };
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if count(mid) >= need {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            // 5. The candidates within T, sorted by (d², index); the first `need` are kept.
            self.keys.clear();
            for c in 0..m {
                let d = *cd.add(c);
                if d <= hi {
                    self.keys.push(key(d as u64, usize::from(*ci.add(c))));
                }
            }
            self.keys.sort_unstable();
            out.extend_from_slice(&self.keys[..need]);
        }
    }
}

/// 32-bit keys per vector in the sorting selection.
const KEYS: usize = 16;

/// (partner lane, lanes that take the maximum) of each stage of the bitonic sort of `KEYS`
/// lanes.
const NETWORK: [([u32; KEYS], u16); network::stages(KEYS)] = {
    let mut stages = [([0u32; KEYS], 0u16); network::stages(KEYS)];
    let mut s = 0;
    while s < stages.len() {
        let mut l = 0;
        while l < KEYS {
            let (partner, take_max) = network::lane(KEYS, s, l);
            stages[s].0[l] = partner as u32;
            stages[s].1 |= (take_max as u16) << l;
            l += 1;
        }
        s += 1;
    }
    stages
};

/// Stages of the last merge (k = `KEYS`): they sort a bitonic sequence ascending.
const MERGE_STAGES: usize = KEYS.trailing_zeros() as usize;

/// One compare-exchange stage of [`NETWORK`].
///
/// # Safety
/// The CPU has AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn stage(
    x: std::arch::x86_64::__m512i,
    (partner, take_max): &([u32; KEYS], u16),
) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    // SAFETY: `partner` holds a whole vector.
    let y = _mm512_permutexvar_epi32(unsafe { _mm512_loadu_si512(partner.as_ptr().cast()) }, x);
    _mm512_mask_blend_epi32(*take_max, _mm512_min_epu32(x, y), _mm512_max_epu32(x, y))
}

/// The `need` (≤ [`KEYS`]) smallest (d², index) keys of the `m` candidates (index and d²
/// buffers, padded past `m` to a whole vector with d² `i16::MAX`), appended to `out` in
/// order: each vector of 16 keys is sorted by a bitonic network and merged into the 16
/// smallest so far; a vector with no key below the 16th smallest is skipped.
///
/// # Safety
/// The CPU has AVX-512 F/BW; both buffers hold `m.div_ceil(KEYS) * KEYS` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn sort_select(ci: *const u16, cd: *const i16, m: usize, need: usize, out: &mut Vec<Key>) {
    use std::arch::x86_64::*;
    // SAFETY: (whole function) reads stay within the padded buffers; `out` has room for
    // `KEYS` keys from `start`.
    unsafe {
        let keys = |v: usize| {
            let d = _mm256_loadu_si256(cd.add(v * KEYS).cast());
            let j = _mm256_loadu_si256(ci.add(v * KEYS).cast());
            _mm512_or_si512(
                _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(d)),
                _mm512_cvtepu16_epi32(j),
            )
        };
        let sort = |mut x| {
            for st in &NETWORK {
                x = stage(x, st);
            }
            x
        };
        let reverse = _mm512_set_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let last = _mm512_set1_epi32(KEYS as i32 - 1);
        let mut best = sort(keys(0));
        for v in 1..m.div_ceil(KEYS) {
            let x = keys(v);
            // Nothing below the current 16th smallest: nothing changes.
            if _mm512_cmplt_epu32_mask(x, _mm512_permutexvar_epi32(last, best)) == 0 {
                continue;
            }
            // The 16 smallest of two sorted vectors, as a bitonic sequence, then merged.
            let mut low = _mm512_min_epu32(best, _mm512_permutexvar_epi32(reverse, sort(x)));
            for st in &NETWORK[NETWORK.len() - MERGE_STAGES..] {
                low = stage(low, st);
            }
            best = low;
        }
        let start = out.len();
        out.reserve(KEYS);
        let op = out.as_mut_ptr().add(start);
        _mm512_storeu_si512(
            op.cast(),
            _mm512_cvtepu32_epi64(_mm512_castsi512_si256(best)),
        );
        _mm512_storeu_si512(
            op.add(KEYS / 2).cast(),
            _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(best)),
        );
        out.set_len(start + need);
    }
}

/// Appends the lanes of `k` from (`idx`, `d`) at position `at` of the (index, d²) buffers
/// `out`, keeping their order; returns how many. A whole vector is stored, so both buffers
/// need `LANES` elements of room from `at`.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VBMI2, and both buffers have `at + LANES` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,popcnt")]
#[inline]
unsafe fn append(
    (out_idx, out_d): (*mut u16, *mut i16),
    at: usize,
    k: std::arch::x86_64::__mmask32,
    idx: std::arch::x86_64::__m512i,
    d: std::arch::x86_64::__m512i,
) -> usize {
    use std::arch::x86_64::*;
    // SAFETY: room for a whole vector from `at`, as the caller guarantees.
    unsafe {
        _mm512_storeu_si512(out_idx.add(at).cast(), _mm512_maskz_compress_epi16(k, idx));
        _mm512_storeu_si512(out_d.add(at).cast(), _mm512_maskz_compress_epi16(k, d));
    }
    k.count_ones() as usize
}
