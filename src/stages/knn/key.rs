//! The packed neighbour key shared by every search path: `(d² << 16) | index`, so that
//! integer order is (distance, index). A leaf module: the grid search and its vectorised
//! paths (`lanes` with its `avx2` child, `vwalk`) all build on it, and none of them on
//! the grid search that calls them.

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
