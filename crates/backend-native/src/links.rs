//! Neighbour lists as arrays of atomics, read without locks.
//!
//! A list is `[version, count, slot 0, .., slot cap-1]`. Writers hold the
//! owning node's lock (so there is one writer at a time) and bump the
//! version to odd while they store, back to even when done. Readers copy
//! the list and retry if the version moved: a seqlock, so a reader never
//! sees a torn list, and since every word is an atomic there is no data race
//! whatever the interleaving.

// Through `super::sync`, so the model-checking test (`tests/loom_links.rs`)
// compiles this very file against loom's atomics.
use super::sync::{fence, spin_loop, yield_now, AtomicU32, Ordering};

/// Words of a list with room for `cap` links.
pub(crate) const fn words(cap: usize) -> usize {
    cap + 2
}

/// Copies the links of `list` into `out` (cleared first). An empty slice is
/// an empty list.
#[inline]
pub(crate) fn read(list: &[AtomicU32], out: &mut Vec<u32>) {
    out.clear();
    let [version, count, slots @ ..] = list else {
        return;
    };
    let mut spins = 0u32;
    loop {
        let v1 = version.load(Ordering::Acquire);
        if v1 & 1 == 0 {
            let n = (count.load(Ordering::Relaxed) as usize).min(slots.len());
            out.extend(slots[..n].iter().map(|s| s.load(Ordering::Relaxed)));
            fence(Ordering::Acquire);
            if version.load(Ordering::Relaxed) == v1 {
                return;
            }
            out.clear();
        }
        // A writer is mid-store (a few dozen stores); yield if it was preempted.
        spins += 1;
        if spins < 64 {
            spin_loop();
        } else {
            yield_now();
        }
    }
}

/// Replaces the links of `list` by `new` (cut to its capacity). The caller
/// holds the owning node's lock: writers never overlap.
pub(crate) fn write(list: &[AtomicU32], new: &[u32]) {
    let [version, count, slots @ ..] = list else {
        return;
    };
    let v = version.load(Ordering::Relaxed);
    version.store(v.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    let n = new.len().min(slots.len());
    for (dst, &s) in slots.iter().zip(&new[..n]) {
        dst.store(s, Ordering::Relaxed);
    }
    count.store(n as u32, Ordering::Relaxed);
    version.store(v.wrapping_add(2), Ordering::Release);
}

/// A fresh, empty list of capacity `cap`.
pub(crate) fn empty(cap: usize) -> impl Iterator<Item = AtomicU32> {
    (0..words(cap)).map(|_| AtomicU32::new(0))
}

// Unit tests are in the crate's `tests.rs`, so `tests/loom_links.rs` can
// compile this file alone.
