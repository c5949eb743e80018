//! Keeping the k nearest of a stream of candidates.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::Neighbor;

#[derive(Clone, Copy)]
struct Entry(f32, u64);

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

/// The `k` smallest `(distance, id)` pairs seen, ties broken by id, so the
/// result does not depend on the order candidates arrive in.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
}

impl TopK {
    /// An empty set keeping `k`.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            // k comes from the caller and may be huge: reserve only what a
            // typical result needs; the heap grows if more really arrive.
            heap: BinaryHeap::with_capacity(k.min(1024) + 1),
        }
    }

    /// Offers a candidate.
    #[inline]
    pub fn push(&mut self, id: u64, distance: f32) {
        if self.k == 0 {
            return;
        }
        let e = Entry(distance, id);
        if self.heap.len() < self.k {
            self.heap.push(e);
        } else if self.heap.peek().is_some_and(|top| e < *top) {
            self.heap.pop();
            self.heap.push(e);
        }
    }

    /// Merges another set into this one.
    pub fn merge(&mut self, other: TopK) {
        other.heap.into_iter().for_each(|e| self.push(e.1, e.0));
    }

    /// The kept pairs, nearest first.
    pub fn into_sorted(self) -> Vec<Neighbor> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Entry(distance, id)| Neighbor { id, distance })
            .collect()
    }
}
