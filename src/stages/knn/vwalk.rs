//! Vectorised form of [`super::grid`]'s walk: the walk's pixel offsets (80 on the default
//! table, d² ≤ 25) are probed 16 per AVX-512 gather, and the hits are sorted in one register
//! by a bitonic network instead of a scalar sort.
//!
//! For the query at padded-image pixel `base` among the first `lim` points:
//! 1. Gather the first 48 offsets' point indices (d² ≤ 16 on the default table), the other
//!    32 only when those hold fewer than `need` hits; a lane holding a point below `lim` is
//!    a hit.
//! 2. The `need`-th hit's position (`pdep`) gives its distance group; the hits up to the end
//!    of that group are exactly the points with d² ≤ T, T the k-th distance.
//! 3. Each hit becomes a 16-bit key `(group << 12) | index` (groups are in order of distance,
//!    so key order is (d², index) order); at most 32 of them are compressed into one
//!    register and sorted by a 32-lane bitonic network (15 compare-exchange stages).
//! 4. The first `need` keys are widened to the grid's `(d² << 16) | index` keys.
//!
//! [`Walk::TooFew`] when the offsets hold fewer than `need` hits (the sparse search answers);
//! [`Walk::Declined`] when the resolution has more than 4,096 points or more than 16
//! neighbours are needed (the scalar walk answers). The same answer as brute force (tests in
//! `tests.rs`). Used where [`super::lanes::supported`] holds (AVX-512 F/BW/VBMI2, BMI2).

use super::key::Key;
use super::network;

/// Offsets per gather.
const LANES: usize = 16;

/// Gathers per query: the first three always, the other two when those find too few.
const VECS: usize = 5;

/// Offsets probed.
const PROBES: usize = VECS * LANES;

/// Offsets probed by the first three gathers, after which a walk may stop.
const FIRST: usize = 3 * LANES;

/// Keys sorted in one register.
const SORTED: usize = 32;

/// Bits of a point index in a 16-bit key; the group rank takes the other four.
const INDEX_BITS: u32 = 12;

/// (partner lane, lanes that take the maximum) of each stage of the 32-lane bitonic sort.
const NETWORK: [([u16; SORTED], u32); network::stages(SORTED)] = {
    let mut stages = [([0u16; SORTED], 0u32); network::stages(SORTED)];
    let mut s = 0;
    while s < stages.len() {
        let mut l = 0;
        while l < SORTED {
            let (partner, take_max) = network::lane(SORTED, s, l);
            stages[s].0[l] = partner as u16;
            stages[s].1 |= (take_max as u32) << l;
            l += 1;
        }
        s += 1;
    }
    stages
};

/// What a walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// The neighbours were appended.
    Found,
    /// The offsets hold fewer than `need` points: the neighbours lie farther away.
    TooFew,
    /// Outside what the vectorised walk handles (too many points or neighbours, or more
    /// than 32 hits up to the k-th distance); nothing was appended.
    Declined,
}

/// The walk's offsets laid out for gathers.
pub struct WalkTables {
    /// Whether the CPU has what the walk needs ([`super::lanes::supported`]).
    cpu: bool,
    /// Whether the whole table fits the vectorised walk (at most `PROBES` offsets in at most
    /// 16 distance groups): only then does a walk that finds too few prove the neighbours
    /// lie beyond it.
    usable: bool,
    /// Offset of each probe in the padded occupancy image.
    offs: [i32; PROBES],
    /// `group << INDEX_BITS` of each probe.
    rank: [u16; PROBES],
    /// d² of each group.
    d2: [u16; SORTED],
    /// One past the last probe of each probe's distance group.
    group_end: [u8; PROBES],
    /// Probes that exist (the table may be shorter than `PROBES`).
    real: u128,
    /// Smallest offset, and largest offset plus one (the gathers' 32-bit reads).
    span: (isize, isize),
}

impl Default for WalkTables {
    fn default() -> Self {
        WalkTables {
            cpu: false,
            usable: false,
            offs: [0; PROBES],
            rank: [0; PROBES],
            d2: [0; SORTED],
            group_end: [0; PROBES],
            real: 0,
            span: (0, 0),
        }
    }
}

impl WalkTables {
    /// Tables for the scalar walk's `table` (offsets by increasing d²) and `groups` ((end, d²)
    /// of each group of equal d²).
    pub fn new(table: &[isize], groups: &[(u32, u64)]) -> Self {
        let mut t = WalkTables::default();
        // The first `FIRST` probes must end a distance group (or the table): a walk that
        // stops there must not cut a group short.
        let first_ends_group =
            table.len() <= FIRST || groups.iter().any(|&(end, _)| end as usize == FIRST);
        if table.len() > PROBES || groups.len() > 1 << (16 - INDEX_BITS) || !first_ends_group {
            return t;
        }
        let mut begin = 0usize;
        for (g, &(end, d2)) in groups.iter().enumerate() {
            t.d2[g] = u16::try_from(d2).expect("walk d² fits 16 bits");
            for (p, &off) in table.iter().enumerate().take(end as usize).skip(begin) {
                t.offs[p] = i32::try_from(off).expect("walk offset fits i32");
                t.rank[p] = (g as u16) << INDEX_BITS;
                t.group_end[p] = end as u8;
                t.real |= 1 << p;
            }
            begin = end as usize;
        }
        t.span = (
            table.iter().copied().min().unwrap_or(0).min(0),
            table.iter().copied().max().unwrap_or(0).max(0) + 1,
        );
        t.usable = true;
        t.cpu = super::lanes::supported();
        t
    }

    /// Walks from padded pixel `base` of `occupied` (each pixel's point index or `u16::MAX`)
    /// and appends the `need` nearest points below `lim` to `out` in (d², index) order
    /// ([`Walk::Found`]; otherwise nothing is appended, see the module doc). Only where
    /// [`super::lanes::supported`] holds; `occupied` has one element past every probe
    /// (gathers read 32 bits).
    pub fn nearest(
        &self,
        occupied: &[u16],
        base: usize,
        lim: usize,
        need: usize,
        out: &mut Vec<Key>,
    ) -> Walk {
        if !self.usable || lim > 1 << INDEX_BITS || need == 0 || need > LANES {
            return Walk::Declined;
        }
        assert!(self.cpu, "vectorised walk on a CPU without AVX-512");
        #[cfg(target_arch = "x86_64")]
        {
            // Every probe and the element after it lie in `occupied`.
            let b = base as isize;
            assert!(b + self.span.0 >= 0 && b + self.span.1 < occupied.len() as isize);
            // SAFETY: the CPU features were checked above; every gather reads inside
            // `occupied`, as asserted.
            unsafe { self.nearest_avx512(occupied, base, lim, need, out) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("vectorised walk without x86-64")
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,bmi2,popcnt")]
    unsafe fn nearest_avx512(
        &self,
        occupied: &[u16],
        base: usize,
        lim: usize,
        need: usize,
        out: &mut Vec<Key>,
    ) -> Walk {
        use std::arch::x86_64::*;
        const IOTA: [u16; SORTED] = {
            let mut a = [0u16; SORTED];
            let mut x = 0;
            while x < SORTED {
                a[x] = x as u16;
                x += 1;
            }
            a
        };
        // SAFETY: (whole block) the tables hold `PROBES` elements, read as whole vectors;
        // gathers read inside `occupied` (checked by the caller); `out` has room for
        // `LANES` keys from `start` and `need <= LANES` are kept.
        unsafe {
            let basev = _mm512_set1_epi32(base as i32);
            let limv = _mm512_set1_epi32(lim as i32);
            let low = _mm512_set1_epi32(0xFFFF);
            let src = occupied.as_ptr().cast::<i32>();
            let gather = |v: usize| {
                let at = _mm512_add_epi32(
                    basev,
                    _mm512_loadu_si512(self.offs.as_ptr().add(v * LANES).cast()),
                );
                _mm512_and_si512(_mm512_i32gather_epi32::<2>(at, src), low)
            };
            let hit = |j| u128::from(_mm512_cmplt_epu32_mask(j, limv));
            let zero = _mm512_setzero_si512();
            // The first `FIRST` offsets: three gathers.
            let (j0, j1, j2) = (gather(0), gather(1), gather(2));
            let (mut j3, mut j4) = (zero, zero);
            let mut m = (hit(j0) | hit(j1) << LANES | hit(j2) << (2 * LANES)) & self.real;
            if (m.count_ones() as usize) < need {
                (j3, j4) = (gather(3), gather(4));
                m |= (hit(j3) << (3 * LANES) | hit(j4) << (4 * LANES)) & self.real;
                if (m.count_ones() as usize) < need {
                    return Walk::TooFew;
                }
            }
            // Position of the need-th hit; keep the hits up to the end of its group.
            let (lo, hi) = (m as u64, (m >> 64) as u64);
            let p = if lo.count_ones() as usize >= need {
                _pdep_u64(1 << (need - 1), lo).trailing_zeros()
            } else {
                64 + _pdep_u64(1 << (need - 1 - lo.count_ones() as usize), hi).trailing_zeros()
            };
            m &= (1u128 << self.group_end[p as usize]) - 1;
            if m.count_ones() as usize > SORTED {
                return Walk::Declined;
            }
            // 16-bit keys (group rank, index), two gathers per register, appended one
            // register's hits after another (rotated into place); unused lanes sort last.
            let key16 = |j, v: usize| {
                _mm256_or_si256(
                    _mm512_cvtepi32_epi16(j),
                    _mm256_loadu_si256(self.rank.as_ptr().add(v * LANES).cast()),
                )
            };
            let pair = |a, b| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b);
            let iota = _mm512_loadu_si512(IOTA.as_ptr().cast());
            let span =
                |from: u32, to: u32| ((1u64 << to) - 1) as u32 & !(((1u64 << from) - 1) as u32);
            let mut x = _mm512_set1_epi16(-1);
            let mut filled = 0u32;
            let mut append = |keys, mask: u32| {
                let shift = _mm512_and_si512(
                    _mm512_sub_epi16(iota, _mm512_set1_epi16(filled as i16)),
                    _mm512_set1_epi16(SORTED as i16 - 1),
                );
                let rot = _mm512_permutexvar_epi16(shift, _mm512_maskz_compress_epi16(mask, keys));
                let end = filled + mask.count_ones();
                x = _mm512_mask_mov_epi16(x, span(filled, end), rot);
                filled = end;
            };
            append(pair(key16(j0, 0), key16(j1, 1)), m as u32);
            let (m1, m2) = ((m >> (2 * LANES)) as u32, (m >> (4 * LANES)) as u32);
            if m1 != 0 {
                append(pair(key16(j2, 2), key16(j3, 3)), m1);
            }
            if m2 != 0 {
                append(_mm512_castsi256_si512(key16(j4, 4)), m2);
            }
            for (partner, take_max) in &NETWORK {
                let y = _mm512_permutexvar_epi16(_mm512_loadu_si512(partner.as_ptr().cast()), x);
                x = _mm512_mask_blend_epi16(
                    *take_max,
                    _mm512_min_epu16(x, y),
                    _mm512_max_epu16(x, y),
                );
            }
            // Widen the first 16 to (d² << 16) | index.
            let index = _mm512_and_si512(x, _mm512_set1_epi16((1 << INDEX_BITS) - 1));
            let group = _mm512_srli_epi16::<INDEX_BITS>(x);
            let d2 = _mm512_permutexvar_epi16(group, _mm512_loadu_si512(self.d2.as_ptr().cast()));
            let keys = _mm512_or_si512(
                _mm512_cvtepu16_epi32(_mm512_castsi512_si256(index)),
                _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(d2))),
            );
            let start = out.len();
            out.reserve(LANES);
            let op = out.as_mut_ptr().add(start);
            _mm512_storeu_si512(
                op.cast(),
                _mm512_cvtepu32_epi64(_mm512_castsi512_si256(keys)),
            );
            _mm512_storeu_si512(
                op.add(LANES / 2).cast(),
                _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(keys)),
            );
            out.set_len(start + need);
        }
        Walk::Found
    }
}
