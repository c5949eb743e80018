//! Per-search working memory: a generation-stamped visited set, the two
//! heaps of the search and small buffers, pooled so a search allocates
//! nothing once the pool is warm.

use std::collections::BinaryHeap;
use std::sync::Mutex;

/// A visited set over slots: a slot is visited when its mark equals the
/// current generation, so clearing is one increment, not a pass over memory.
#[derive(Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    /// Starts a new search over `n` slots: everything unvisited.
    pub(crate) fn begin(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: old marks could equal the new generation.
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// How many slots the current search has visited.
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.marks.iter().filter(|&&m| m == self.generation).count()
    }

    /// Marks `slot`; true if it was not visited yet. A slot beyond the set
    /// counts as visited, so it is never followed.
    #[inline]
    pub(crate) fn visit(&mut self, slot: u32) -> bool {
        match self.marks.get_mut(slot as usize) {
            Some(m) if *m != self.generation => {
                *m = self.generation;
                true
            }
            _ => false,
        }
    }
}

/// `(distance, slot)` packed into one `u64` whose integer order is the
/// order of `(distance by f32::total_cmp, slot)`: heaps compare one word.
#[inline]
pub(crate) fn key(distance: f32, slot: u32) -> u64 {
    let b = distance.to_bits();
    let ordered = if b >> 31 == 1 { !b } else { b | 0x8000_0000 };
    (u64::from(ordered) << 32) | u64::from(slot)
}

/// The distance of a [`key`].
#[inline]
pub(crate) fn key_distance(k: u64) -> f32 {
    let o = (k >> 32) as u32;
    f32::from_bits(if o >> 31 == 1 { o & 0x7FFF_FFFF } else { !o })
}

/// The slot of a [`key`].
#[inline]
pub(crate) fn key_slot(k: u64) -> u32 {
    k as u32
}

/// Everything one search or insert needs, reused across calls.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) visited: Visited,
    /// Candidates to expand, as complemented keys (a max-heap of `!key` is a min-heap).
    pub(crate) candidates: BinaryHeap<u64>,
    /// The best `ef` found so far; the worst on top.
    pub(crate) top: BinaryHeap<u64>,
    /// The links of the node being expanded.
    pub(crate) links: Vec<u32>,
    /// `top`, sorted nearest first.
    pub(crate) found: Vec<u64>,
    /// Every node the current search has scored above level 0, as keys: the
    /// next level's search starts from all of them, not only from the best,
    /// and never scores them again.
    pub(crate) known: Vec<u64>,
    /// Candidates of a neighbour selection.
    pub(crate) keys: Vec<u64>,
    /// The neighbours a selection kept.
    pub(crate) selected: Vec<u32>,
    /// A neighbour's list re-selected while linking.
    pub(crate) pruned: Vec<u32>,
    /// The old neighbours of a node under repair.
    pub(crate) old: Vec<u32>,
    /// A list as it was before a write (for the in-degree counts).
    pub(crate) prev: Vec<u32>,
    /// Nodes whose last level-0 in-link a write of this scratch's user removed.
    pub(crate) orphans: Vec<u32>,
    /// A neighbour's links, read by a two-hop expansion.
    pub(crate) hop: Vec<u32>,
    /// Rows scored by the current search.
    pub(crate) scored: usize,
    /// A search scoring more rows than this stops (`None`: no limit).
    pub(crate) budget: Option<usize>,
    /// How far a level-0 walk follows nodes its filter rejects: only while
    /// they are nearer than the `reach`-th best admitted node found (0: as
    /// far as admitted ones, the `ef`-th).
    pub(crate) reach: usize,
    /// The best `reach` admitted nodes found; the worst on top.
    pub(crate) near: BinaryHeap<u64>,
    /// A level-0 walk that has scored more rows than this and admitted none
    /// stops (`None`: never; see `graph::stall`).
    pub(crate) stall: Option<usize>,
    /// The last walk stopped at its `stall`.
    pub(crate) stalled: bool,
}

/// Scratches not in use; a search takes one and gives it back.
#[derive(Default)]
pub(crate) struct Pool(Mutex<Vec<Scratch>>);

/// More idle scratches than this are dropped (they only grow with thread count).
const POOL_MAX: usize = 64;

impl Pool {
    /// An idle scratch, or a new one.
    pub(crate) fn take(&self) -> Scratch {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// Returns a scratch for reuse.
    pub(crate) fn give(&self, s: Scratch) {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_MAX {
            pool.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_total_cmp_then_slot() {
        let ds = [
            f32::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-30,
            0.5,
            3.0,
            f32::INFINITY,
        ];
        for (i, &a) in ds.iter().enumerate() {
            assert_eq!(key_distance(key(a, 7)).to_bits(), a.to_bits());
            assert_eq!(key_slot(key(a, 7)), 7);
            for &b in &ds[i..] {
                assert!(key(a, 9) <= key(b, 9));
                assert!(key(a, 1) < key(a, 2));
            }
        }
    }

    #[test]
    fn visited_resets_per_generation_and_survives_wraparound() {
        let mut v = Visited::default();
        for _ in 0..70_000 {
            v.begin(4);
            assert!(v.visit(3));
            assert!(!v.visit(3));
            assert!(!v.visit(4), "beyond the set counts as visited");
        }
    }
}
