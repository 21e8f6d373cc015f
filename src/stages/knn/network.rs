//! Bitonic sorting networks for the lanes of one vector register, as constants: for each
//! compare-exchange stage, every lane's partner and whether the lane keeps the larger of the
//! pair. Used by the vectorised kNN paths ([`super::vwalk`], [`super::lanes`]).

/// Stages of the ascending bitonic sort of `n` (a power of two) lanes.
pub const fn stages(n: usize) -> usize {
    let b = n.trailing_zeros() as usize;
    b * (b + 1) / 2
}

/// At stage `s` of the ascending bitonic sort of `n` lanes: lane `l`'s partner, and whether
/// lane `l` keeps the maximum of the pair. The stages run blocks of k = 2, 4, …, n lanes,
/// each merged with partner distances j = k/2, …, 1; the last log₂ n stages (k = n) sort a
/// bitonic sequence ascending.
pub const fn lane(n: usize, s: usize, l: usize) -> (usize, bool) {
    let (mut k, mut left) = (2usize, s);
    while left >= k.trailing_zeros() as usize {
        left -= k.trailing_zeros() as usize;
        k *= 2;
    }
    assert!(k <= n, "stage out of range");
    let j = (k / 2) >> left;
    let ascending = l & k == 0;
    let lower = l & j == 0;
    (l ^ j, lower != ascending)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies the network to every 0/1 input of 8 lanes (the zero-one principle: a network
    /// that sorts all of them sorts everything) and to random permutations of 32.
    #[test]
    fn networks_sort() {
        for n in [8usize, 32] {
            let inputs: Vec<Vec<u32>> = if n == 8 {
                (0..256u32)
                    .map(|b| (0..8).map(|l| (b >> l) & 1).collect())
                    .collect()
            } else {
                let mut x = 12345u64;
                (0..200)
                    .map(|_| {
                        let mut v: Vec<u32> = (0..32).collect();
                        for i in (1..32).rev() {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                            v.swap(i, (x >> 33) as usize % (i + 1));
                        }
                        v
                    })
                    .collect()
            };
            for mut v in inputs {
                for s in 0..stages(n) {
                    let old = v.clone();
                    for l in 0..n {
                        let (p, take_max) = lane(n, s, l);
                        v[l] = if take_max {
                            old[l].max(old[p])
                        } else {
                            old[l].min(old[p])
                        };
                    }
                }
                assert!(v.windows(2).all(|w| w[0] <= w[1]), "{n} lanes: {v:?}");
            }
        }
        assert_eq!((stages(16), stages(32)), (10, 15));
    }
}
