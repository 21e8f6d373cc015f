//! glibc malloc settings for training: keep freed memory in the process instead of handing it
//! back to the kernel, so that every training step's tensors reuse pages that are already
//! mapped. With glibc's defaults, buffers above the dynamic mmap threshold are `mmap`ed and
//! unmapped per allocation, and the top of the heap is trimmed after frees; a Burn training
//! step allocates and frees its activations and gradients (megabytes each) every step, so it
//! spends its time in page faults and the kernel's page zeroing (10 % of the step's thread in
//! `perf` at 2 threads, ResNet-PC 1024_M). Measured in `docs/performance.md` ("Keeping freed
//! memory"): 1024_M +14–17 % jets/s on one thread and +15–19 % on two; 256_M +4–7 %
//! and +9–16 %.
//!
//! The cost is resident memory: what a step freed stays mapped for the next (the peak of one
//! step, not a leak). Set `GLIBC_TUNABLES` with any `glibc.malloc.` key to keep your own
//! settings; `GLIBC_TUNABLES=glibc.malloc.tcache_count=7` (a default value) runs with glibc's
//! defaults. Not `glibc.malloc.trim_threshold=131072`: setting either threshold, even to its
//! default, switches off glibc's dynamic mmap threshold, and every buffer above 128 KiB is then
//! `mmap`ed (Burn's ResNet-PC 1024_M step fell to 80–93 jets/s). Other C libraries (musl) are
//! left alone.

/// Allocations below this many bytes come from the heap, never from a fresh `mmap` (glibc's
/// largest allowed threshold on 64-bit: 32 MiB).
pub const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of the heap is returned to the kernel only above this (≈ never).
pub const TRIM_THRESHOLD: i32 = i32::MAX;

/// The same settings as a `GLIBC_TUNABLES` value, for a child process that should allocate
/// as this one does (the train_step bench gives it to its PyTorch reference).
pub fn glibc_tunables() -> String {
    format!(
        "glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"
    )
}

/// Applies [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] unless `GLIBC_TUNABLES` sets malloc
/// tunables; returns whether it did. Call it before the training starts its threads.
pub fn keep_freed_memory() -> bool {
    let user = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."));
    !user && apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: mallopt only changes the allocator's parameters; glibc serialises it with the
    // allocator's own lock. Both values are in glibc's accepted ranges (it returns 0 if not).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_accepts_the_settings() {
        // mallopt returns 0 for a value outside glibc's range (an mmap threshold above
        // 32 MiB, say), so this fails if the constants drift out of it.
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.")) {
            assert!(!keep_freed_memory());
            return;
        }
        assert_eq!(
            keep_freed_memory(),
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
        assert_eq!(
            glibc_tunables(),
            "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647"
        );
    }
}
