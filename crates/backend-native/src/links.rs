//! Neighbour lists as arrays of atomics, read without locks.
//!
//! A list is `[head, slot 0, .., slot cap-1]`, the head holding the count in
//! its low [`COUNT_BITS`] bits and a version above them (one word, not two:
//! 4 bytes a node on level 0). Writers hold the owning node's lock (so there
//! is one writer at a time) and make the version odd while they store, even
//! again when done. Readers copy the list and retry if the head moved: a
//! seqlock, so a reader never sees a torn list, and since every word is an
//! atomic there is no data race whatever the interleaving. The version has
//! 22 bits: a reader could only be fooled by sleeping through 2 million
//! rewrites of one list.

// Through `super::sync`, so the model-checking test (`tests/loom_links.rs`)
// compiles this very file against loom's atomics.
use super::sync::{fence, spin_loop, yield_now, AtomicU32, Ordering};

/// Bits of the head that hold the count.
const COUNT_BITS: u32 = 10;
const COUNT_MASK: u32 = (1 << COUNT_BITS) - 1;
/// One version step; the head's version is odd while a writer stores.
const WRITING: u32 = 1 << COUNT_BITS;

/// The most links a list holds (level 0 of M = 256 holds 512).
pub(crate) const MAX_CAP: usize = COUNT_MASK as usize;

/// Words of a list with room for `cap` links.
pub(crate) const fn words(cap: usize) -> usize {
    cap + 1
}

/// Copies the links of `list` into `out` (cleared first). An empty slice is
/// an empty list.
#[inline]
pub(crate) fn read(list: &[AtomicU32], out: &mut Vec<u32>) {
    out.clear();
    let [head, slots @ ..] = list else {
        return;
    };
    let mut spins = 0u32;
    loop {
        let h1 = head.load(Ordering::Acquire);
        if h1 & WRITING == 0 {
            let n = ((h1 & COUNT_MASK) as usize).min(slots.len());
            out.extend(slots[..n].iter().map(|s| s.load(Ordering::Relaxed)));
            fence(Ordering::Acquire);
            if head.load(Ordering::Relaxed) == h1 {
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
    let [head, slots @ ..] = list else {
        return;
    };
    // Even version: adding a step sets the odd bit and carries nowhere.
    let h = head.load(Ordering::Relaxed);
    head.store(h.wrapping_add(WRITING), Ordering::Relaxed);
    fence(Ordering::Release);
    let n = new.len().min(slots.len()).min(MAX_CAP);
    for (dst, &s) in slots.iter().zip(&new[..n]) {
        dst.store(s, Ordering::Relaxed);
    }
    let version = (h & !COUNT_MASK).wrapping_add(2 * WRITING);
    head.store(version | n as u32, Ordering::Release);
}

/// A fresh, empty list of capacity `cap`.
pub(crate) fn empty(cap: usize) -> impl Iterator<Item = AtomicU32> {
    (0..words(cap)).map(|_| AtomicU32::new(0))
}

/// A list of capacity `cap` holding `links` (at most `cap`; loading a file).
pub(crate) fn filled(cap: usize, links: &[u32]) -> impl Iterator<Item = AtomicU32> + '_ {
    let n = links.len().min(cap).min(MAX_CAP);
    std::iter::once(n as u32)
        .chain(links[..n].iter().copied())
        .chain(std::iter::repeat_n(0, cap - n))
        .map(AtomicU32::new)
}

// Unit tests are in the crate's `tests.rs`, so `tests/loom_links.rs` can
// compile this file alone.
