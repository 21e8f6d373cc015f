//! Branch-free bitonic sorts of up to 32 `u32` neighbour keys (`(d² << 16) | index`) in
//! 8-lane AVX2 registers: the AVX2 kNN paths' stand-in for the AVX-512 paths' one-register
//! sorts. Two registers hold 16 keys, four hold 32; each compare-exchange stage of the
//! network in [`super::network`] is a lane shuffle (or the partner register), a min, a max
//! and a blend. A scalar `sort_unstable` of 16–24 keys costs about as much in branch
//! mispredictions as the rest of a query (`perf` on the kNN bench harness).

use super::key::Key;
use super::network;

/// Lanes per register.
const LANES: usize = 8;

/// One stage of the network on `R` registers: the partner distance j (in lanes of the
/// whole `8·R`-lane sequence) and, per register, the lanes that keep the maximum (-1).
type Stage<const R: usize> = (usize, [[i32; LANES]; R]);

/// The stages of the ascending bitonic sort of `8·R` lanes.
const fn stages<const R: usize, const S: usize>() -> [Stage<R>; S] {
    let n = LANES * R;
    assert!(network::stages(n) == S, "stage count");
    let mut out = [(0, [[0; LANES]; R]); S];
    let mut s = 0;
    while s < S {
        out[s].0 = network::lane(n, s, 0).0;
        let mut l = 0;
        while l < n {
            if network::lane(n, s, l).1 {
                out[s].1[l / LANES][l % LANES] = -1;
            }
            l += 1;
        }
        s += 1;
    }
    out
}

const STAGES8: [Stage<1>; network::stages(8)] = stages::<1, { network::stages(8) }>();
const STAGES16: [Stage<2>; network::stages(16)] = stages::<2, { network::stages(16) }>();
const STAGES32: [Stage<4>; network::stages(32)] = stages::<4, { network::stages(32) }>();

/// The stages of a table on the registers `$x` (an array of `R`), unrolled: each stage's
/// partner distance and masks are constants, so its shuffles and masks fold to immediates
/// and constants (a function per stage is not inlined into the `target_feature` caller).
macro_rules! network {
    ($x:ident, $table:ident, $($s:literal)*) => {$({
        let (j, take_max) = &$table[$s];
        let old = $x;
        for r in 0..old.len() {
            let partner = match *j {
                1 => _mm256_shuffle_epi32::<0b10_11_00_01>(old[r]),
                2 => _mm256_shuffle_epi32::<0b01_00_11_10>(old[r]),
                4 => _mm256_permute4x64_epi64::<0b01_00_11_10>(old[r]),
                j => old[r ^ (j / LANES)],
            };
            let lo = _mm256_min_epu32(old[r], partner);
            let hi = _mm256_max_epu32(old[r], partner);
            let mask = _mm256_loadu_si256(take_max[r].as_ptr().cast());
            $x[r] = _mm256_blendv_epi8(lo, hi, mask);
        }
    })*};
}

/// Appends the `need` smallest of the first `len` keys of `keys` to `out`, ascending,
/// widened to [`Key`]s: a network sort for up to 32 keys, `sort_unstable` beyond (rare: a
/// tie group that large). `keys` has room for 32 keys (read, not changed, past `len`), so
/// they are loaded straight into registers.
///
/// # Safety
/// The CPU has AVX2; `need <= len <= keys.len()` and `keys.len() >= 32`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn append_smallest(keys: &mut [u32], len: usize, need: usize, out: &mut Vec<Key>) {
    use std::arch::x86_64::*;
    debug_assert!(need <= len && len <= keys.len() && keys.len() >= 4 * LANES);
    if len > 4 * LANES {
        let keys = &mut keys[..len];
        keys.sort_unstable();
        out.extend(keys[..need].iter().map(|&k| Key::from(k)));
        return;
    }
    // SAFETY: (whole block) `keys` holds 32 keys, read as four 8-key vectors; `out` is
    // reserved for every key written before its length is set to the `need` sorted ones.
    unsafe {
        let lenv = _mm256_set1_epi32(len as i32);
        let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let load = |r: usize| {
            let v = _mm256_loadu_si256(keys.as_ptr().add(r * LANES).cast());
            // Lanes at or past `len` become u32::MAX, sorted last.
            let at = _mm256_add_epi32(iota, _mm256_set1_epi32((r * LANES) as i32));
            _mm256_or_si256(
                v,
                _mm256_cmpgt_epi32(_mm256_add_epi32(at, _mm256_set1_epi32(1)), lenv),
            )
        };
        let start = out.len();
        out.reserve(4 * LANES);
        let dst = out.as_mut_ptr().add(start);
        let store = |r: usize, v: __m256i| {
            _mm256_storeu_si256(
                dst.add(r * LANES).cast(),
                _mm256_cvtepu32_epi64(_mm256_castsi256_si128(v)),
            );
            _mm256_storeu_si256(
                dst.add(r * LANES + 4).cast(),
                _mm256_cvtepu32_epi64(_mm256_extracti128_si256::<1>(v)),
            );
        };
        let reverse =
            |v: __m256i| _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0));
        if len <= LANES {
            let mut x = [load(0)];
            network!(x, STAGES8, 0 1 2 3 4 5);
            store(0, x[0]);
        } else if len <= 2 * LANES {
            let mut x = [load(0), load(1)];
            network!(x, STAGES16, 0 1 2 3 4 5 6 7 8 9);
            x.iter().enumerate().for_each(|(r, &v)| store(r, v));
        } else if need <= 2 * LANES {
            // The 16 smallest: the first 16 sorted, the rest sorted (8 or 16), and the
            // minimum of the first with the rest reversed, a bitonic sequence, merged.
            let mut x = [load(0), load(1)];
            network!(x, STAGES16, 0 1 2 3 4 5 6 7 8 9);
            if len <= 3 * LANES {
                let mut y = [load(2)];
                network!(y, STAGES8, 0 1 2 3 4 5);
                x[1] = _mm256_min_epu32(x[1], reverse(y[0]));
            } else {
                let mut y = [load(2), load(3)];
                network!(y, STAGES16, 0 1 2 3 4 5 6 7 8 9);
                x[0] = _mm256_min_epu32(x[0], reverse(y[1]));
                x[1] = _mm256_min_epu32(x[1], reverse(y[0]));
            }
            network!(x, STAGES16, 6 7 8 9);
            x.iter().enumerate().for_each(|(r, &v)| store(r, v));
        } else {
            let mut x = [load(0), load(1), load(2), load(3)];
            network!(x, STAGES32, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14);
            x.iter().enumerate().for_each(|(r, &v)| store(r, v));
        }
        out.set_len(start + need);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Random keys of every length up to 40 (ties included), against `sort_unstable`.
    #[test]
    fn sorts_like_sort_unstable() {
        if !is_x86_feature_detected!("avx2") {
            assert!(
                std::env::var_os("JETPIPE_REQUIRE_AVX2").is_none(),
                "JETPIPE_REQUIRE_AVX2 is set but this CPU lacks AVX2"
            );
            eprintln!("sort8: no AVX2 on this CPU, skipped");
            return;
        }
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for trial in 0..3000 {
            let len = trial % 41;
            let spread = [4u64, 64, 1 << 31][trial % 3];
            let mut keys: Vec<u32> = (0..len.max(32)).map(|_| rnd(spread) as u32).collect();
            let need = if len == 0 {
                0
            } else {
                rnd(len as u64 + 1) as usize
            };
            let mut want = keys[..len].to_vec();
            want.sort_unstable();
            let mut out = vec![7u64];
            // SAFETY: AVX2 checked above; need <= len.
            unsafe { append_smallest(&mut keys, len, need, &mut out) };
            let want: Vec<u64> = std::iter::once(7)
                .chain(want[..need].iter().map(|&k| u64::from(k)))
                .collect();
            assert_eq!(out, want, "len {len} need {need}");
        }
    }
}
