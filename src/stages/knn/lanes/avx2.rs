//! The sparse queries' exact search of [`super`] for CPUs with AVX2 but no AVX-512
//! (e.g. AMD EPYC before Zen 4, Intel before Skylake-SP), on the same row-sorted layout:
//!
//! 1. For the first rung of the radius ladder that holds `need` points, the rows within its
//!    reach are scanned 16 points per 256-bit vector: d² (i16), and a point is a candidate
//!    when d² is within the rung, its index below `lim` (unsigned) and not the query. The
//!    candidates are left-packed with a byte-shuffle table (8 lanes per 128-bit half, the
//!    AVX2 stand-in for `vpcompressw`), so no branch depends on the data (an unrolled,
//!    branch-free pack took the harness from about 300 to 200 µs per 1024-point jet).
//! 2. Selection by counting: bisection on d² between the previous rung and this one finds
//!    the exact k-th distance T (each count is 16 compares per vector and a `popcnt`); the
//!    candidates with d² ≤ T, as 32-bit (d², index) keys built 8 per vector, are sorted by
//!    the AVX2 network of [`super::super::sort8`] (not `sort_unstable`, whose mispredicted
//!    branches cost as much as the scan) and the first `need` kept.
//!
//! No gathers and no `pdep`/`pext`, which are slow on AMD before Zen 3. The same answer as
//! brute force (tests in `tests.rs`, which run every path on this CPU).

use super::Lanes;
use crate::stages::knn::key::Key;
use crate::stages::knn::sort8;

/// Rungs of the radius ladder (d², pixels²); the last one admits every point. Measured in
/// a harness on the sample's 1024-point jets (Intel Xeon, this path forced): starting at 256
/// (105–107 µs per jet) beat starting at 64 (108–116 µs) or 128 (105–110 µs) and 48 (109–111
/// µs); rescanning for a failed rung costs more than the extra candidates of a wider one.
const RUNGS: [i16; 5] = [256, 1024, 4096, 16384, i16::MAX - 1];

/// Rows each rung reaches.
const REACH: [usize; 5] = super::reach(RUNGS);

/// Points per vector.
const LANES: usize = 16;

/// For each 8-bit lane mask: the byte shuffle that packs the selected 16-bit lanes of a
/// 128-bit half to its front (unused bytes zeroed).
static PACK: [[u8; 16]; 256] = {
    let mut t = [[0x80u8; 16]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut lane, mut at) = (0, 0);
        while lane < 8 {
            if m & (1 << lane) != 0 {
                t[m][2 * at] = 2 * lane as u8;
                t[m][2 * at + 1] = 2 * lane as u8 + 1;
                at += 1;
            }
            lane += 1;
        }
        m += 1;
    }
    t
};

/// Whether this CPU runs [`nearest`].
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Appends the keys of the `need` nearest points to point `i` among the first `lim` (the
/// point itself excluded) in (d², index) order. Fewer than `need` points lie below d²
/// `floor` (0 when unknown): the ladder starts at the first rung that reaches it, and the
/// bisection at `floor − 1`.
///
/// # Safety
/// The CPU has AVX2 and POPCNT ([`supported`]); `l` was loaded for this jet (its buffers
/// padded to whole 32-point vectors, the candidate buffers 32 longer), and `need < lim`,
/// `lim <= l.prow.len()`, `i < lim`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn nearest(
    l: &mut Lanes,
    i: usize,
    lim: usize,
    need: usize,
    floor: u64,
    out: &mut Vec<Key>,
) {
    use std::arch::x86_64::*;
    let (qr, qc) = (l.prow[i], l.pcol[i]);
    let h = l.row_start.len() - 1;
    // SAFETY: (whole block) `rows`, `cols` and `idx` hold whole 32-point vectors, so every
    // 16-point vector read lies inside them; a vector's candidates are stored as two 16-byte
    // halves at the candidate count m, which never exceeds the position of the vector being
    // read, and the candidate buffers are 32 longer than the point buffers.
    unsafe {
        let (qrv, qcv) = (_mm256_set1_epi16(qr), _mm256_set1_epi16(qc));
        let last = _mm256_set1_epi16((lim - 1) as i16);
        let selfv = _mm256_set1_epi16(i as i16);
        let (rp, cp, jp) = (l.rows.as_ptr(), l.cols.as_ptr(), l.idx.as_ptr());
        let (ci, cd) = (l.cand_idx.as_mut_ptr(), l.cand_d2.as_mut_ptr());
        // A jet's d² is at most 2 · 32,767² / 4 < the last rung, so a rung is always found.
        let floor = floor.min(RUNGS[RUNGS.len() - 1] as u64) as i16;
        let first = RUNGS
            .iter()
            .position(|&r| r >= floor)
            .unwrap_or(RUNGS.len() - 1);
        let mut rung = first;
        let mut m;
        loop {
            let limitv = _mm256_set1_epi16(RUNGS[rung]);
            let r = REACH[rung];
            let (lo, hi) = (
                (qr as usize).saturating_sub(r),
                (qr as usize + r + 1).min(h),
            );
            let (start, end) = (l.row_start[lo] as usize, l.row_start[hi] as usize);
            m = 0;
            for v in start / LANES..end.div_ceil(LANES) {
                let o = v * LANES;
                let dr = _mm256_sub_epi16(_mm256_loadu_si256(rp.add(o).cast()), qrv);
                let dc = _mm256_sub_epi16(_mm256_loadu_si256(cp.add(o).cast()), qcv);
                let d = _mm256_add_epi16(_mm256_mullo_epi16(dr, dr), _mm256_mullo_epi16(dc, dc));
                let j = _mm256_loadu_si256(jp.add(o).cast());
                // d ≤ limit, j ≤ lim − 1 (unsigned: the padding's u16::MAX fails), j ≠ i.
                let far = _mm256_cmpgt_epi16(d, limitv);
                let below = _mm256_cmpeq_epi16(_mm256_max_epu16(j, last), last);
                let same = _mm256_cmpeq_epi16(j, selfv);
                let keep = _mm256_andnot_si256(_mm256_or_si256(far, same), below);
                m += pack((ci, cd), m, keep, j, d);
            }
            if m >= need {
                break;
            }
            rung += 1;
        }
        // Pad the candidates to a whole vector with distances beyond every threshold.
        _mm256_storeu_si256(cd.add(m).cast(), _mm256_set1_epi16(i16::MAX));
        // count(lo) < need <= count(hi): bisect to the exact need-th distance T.
        // Rungs below `first` were skipped: they lie below `floor`, so count(floor − 1) <
        // need bounds them too.
        let mut lo = if rung == 0 { -1 } else { RUNGS[rung - 1] }.max(floor - 1);
        let mut hi = RUNGS[rung];
        let cvecs = m.div_ceil(LANES);
        let count = |t: i16| -> usize {
            // d ≤ t as t + 1 > d (t < hi ≤ i16::MAX − 1, so t + 1 does not wrap and the
            // padding's i16::MAX is never counted).
            let tv = _mm256_set1_epi16(t + 1);
            let mut n = 0;
            for v in 0..cvecs {
                let d = _mm256_loadu_si256(cd.add(v * LANES).cast());
                let within = _mm256_cmpgt_epi16(tv, d);
                // Two mask bits per lane.
                n += _mm256_movemask_epi8(within).count_ones() as usize;
            }
            n / 2
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if count(mid) >= need {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // The candidates within T, packed to the front of the candidate buffers (the write
        // position never passes the read position), then sorted by (d², index) as 32-bit
        // keys; the first `need` are kept.
        let tv = _mm256_set1_epi16(hi + 1);
        let mut kept = 0usize;
        for v in 0..cvecs {
            let o = v * LANES;
            let d = _mm256_loadu_si256(cd.add(o).cast());
            let j = _mm256_loadu_si256(ci.add(o).cast());
            let within = _mm256_cmpgt_epi16(tv, d);
            kept += pack((ci, cd), kept, within, j, d);
        }
        // As (d² << 16) | index keys, 8 per vector (the candidate buffers hold whole
        // vectors past `kept`; the keys past it are ignored).
        let keys = &mut l.keys32;
        keys.resize(kept.next_multiple_of(8).max(32), 0);
        let kp = keys.as_mut_ptr();
        for c in (0..kept).step_by(8) {
            let d = _mm256_cvtepu16_epi32(_mm_loadu_si128(cd.add(c).cast()));
            let j = _mm256_cvtepu16_epi32(_mm_loadu_si128(ci.add(c).cast()));
            let k = _mm256_or_si256(_mm256_slli_epi32::<16>(d), j);
            _mm256_storeu_si256(kp.add(c).cast(), k);
        }
        sort8::append_smallest(keys, kept, need, out);
    }
}

/// Appends the lanes of `keep` (all-ones 16-bit lanes) from (`j`, `d`) at position `at` of
/// the (index, d²) buffers, keeping their order: each 128-bit half is left-packed by a
/// [`PACK`] byte shuffle and stored whole. Returns how many lanes were appended.
///
/// # Safety
/// The CPU has AVX2 and POPCNT; both buffers have `at + 16` elements. Writing in place
/// (`at` at most the position `j` and `d` were read from) is allowed: they are in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
#[inline]
unsafe fn pack(
    (out_idx, out_d): (*mut u16, *mut i16),
    at: usize,
    keep: std::arch::x86_64::__m256i,
    j: std::arch::x86_64::__m256i,
    d: std::arch::x86_64::__m256i,
) -> usize {
    use std::arch::x86_64::*;
    // One byte per lane: lanes 0–7 in bits 0–7, lanes 8–15 in bits 16–23.
    let bits = _mm256_movemask_epi8(_mm256_packs_epi16(keep, keep)) as u32;
    let (lo, hi) = ((bits & 0xFF) as usize, ((bits >> 16) & 0xFF) as usize);
    // SAFETY: the table has an entry per 8-bit mask; the caller guarantees room for 16
    // lanes from `at`, and the second half is stored at most 8 lanes further.
    unsafe {
        let (s0, s1) = (
            _mm_loadu_si128(PACK[lo].as_ptr().cast()),
            _mm_loadu_si128(PACK[hi].as_ptr().cast()),
        );
        _mm_storeu_si128(
            out_idx.add(at).cast(),
            _mm_shuffle_epi8(_mm256_castsi256_si128(j), s0),
        );
        _mm_storeu_si128(
            out_d.add(at).cast(),
            _mm_shuffle_epi8(_mm256_castsi256_si128(d), s0),
        );
        let at1 = at + lo.count_ones() as usize;
        _mm_storeu_si128(
            out_idx.add(at1).cast(),
            _mm_shuffle_epi8(_mm256_extracti128_si256::<1>(j), s1),
        );
        _mm_storeu_si128(
            out_d.add(at1).cast(),
            _mm_shuffle_epi8(_mm256_extracti128_si256::<1>(d), s1),
        );
        at1 + hi.count_ones() as usize - at
    }
}
