//! The range index of one number field: every `(value, id)` in order, and
//! the ids cut into buckets of consecutive values, a bitmap each.
//!
//! A range is the union of the buckets it covers whole (bitmaps merged a
//! container at a time) and the ids of the two buckets it cuts (read from
//! the ordered pairs). A per-value bitmap would cost a bitmap per distinct
//! value (a date field has as many values as points), and unioning them one
//! by one was the cliff of a 50% range: 500,000 single-id sets per query at
//! a million points.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use crate::IdSet;

/// A bucket holding more ids than this is split at its median value.
const SPLIT_AT: usize = 1024;

/// The index; `K` is the value's order (an integer, or a float's total order).
#[derive(Debug)]
pub(crate) struct RangeIndex<K> {
    /// Every `(value, id)`, ordered by value then id.
    pairs: BTreeSet<(K, u64)>,
    /// Bucket start (the least value it covers) to its ids. The first
    /// bucket starts at `K`'s least value, so every value has a bucket; a
    /// bucket covers values up to the next bucket's start.
    buckets: std::collections::BTreeMap<K, IdSet>,
    /// Buckets that could not split (one value holds most of their ids),
    /// with the size at which to try again: twice the size that failed, so
    /// a field of few values costs one scan per doubling, not per insert.
    unsplittable: std::collections::BTreeMap<K, usize>,
    least: K,
    /// Prefix bitmaps, built lazily (see [`Prefixes`]).
    prefixes: Mutex<Lazy<K>>,
}

/// The ids below each of a few dozen boundary values, as bitmaps: a range
/// between two boundaries is one bitmap difference (dense containers, a
/// word at a time), so a range over half a million ids costs microseconds
/// instead of a union of every bucket in it. Only the two stretches
/// between the range's ends and the nearest boundaries go through the
/// buckets.
#[derive(Debug)]
struct Prefixes<K> {
    /// Ascending; `below[j]` holds the ids whose value is below `bounds[j]`.
    bounds: Vec<K>,
    below: Vec<IdSet>,
    /// Every id.
    all: IdSet,
}

/// The prefixes when they match the pairs, and how much work ranges have
/// spent without them since the last write: they are rebuilt (a pass over
/// every pair) once that work exceeds the pass, so a write-heavy index
/// never pays a pass per query and a read-heavy one pays it once.
#[derive(Debug)]
struct Lazy<K> {
    fresh: Option<Arc<Prefixes<K>>>,
    spent: usize,
}

/// Prefix boundaries per field: memory is `PREFIXES` bitmaps of up to one
/// bit per id (n / 8 bytes each, so 8 bytes per id at most, 2% of a 96-d
/// f32 vector, per range field), and a range reads at most 2 / `PREFIXES`
/// of the ids through the buckets.
const PREFIXES: usize = 64;

/// The least id, for bounds on `(value, id)` pairs.
const ID_MIN: u64 = u64::MIN;

impl<K: Ord + Copy> RangeIndex<K> {
    /// An empty index; `least` is the least value `K` has.
    pub(crate) fn new(least: K) -> Self {
        let mut buckets = std::collections::BTreeMap::new();
        buckets.insert(least, IdSet::new());
        RangeIndex {
            pairs: BTreeSet::new(),
            buckets,
            unsplittable: std::collections::BTreeMap::new(),
            least,
            prefixes: Mutex::new(Lazy {
                fresh: None,
                spent: 0,
            }),
        }
    }

    /// The start of the bucket covering `k`.
    fn bucket_of(&self, k: K) -> K {
        self.buckets
            .range(..=k)
            .next_back()
            .map_or(self.least, |(&b, _)| b)
    }

    /// The start of the bucket after the one starting at `b`.
    fn next_start(&self, b: K) -> Option<K> {
        self.buckets
            .range((Bound::Excluded(b), Bound::Unbounded))
            .next()
            .map(|(&s, _)| s)
    }

    /// The pairs of values in `[b, end)` (`end` `None`: to the last).
    fn pairs_in(&self, b: K, end: Option<K>) -> impl DoubleEndedIterator<Item = &(K, u64)> + '_ {
        let hi = match end {
            Some(e) => Bound::Excluded((e, ID_MIN)),
            None => Bound::Unbounded,
        };
        self.pairs.range((Bound::Included((b, ID_MIN)), hi))
    }

    /// Marks the prefixes out of date (a write).
    fn stale(&mut self) {
        let lazy = self.prefixes.get_mut().unwrap_or_else(|e| e.into_inner());
        lazy.fresh = None;
        lazy.spent = 0;
    }

    /// The pairs of values in `[b, end)` and within `(lo, hi)`.
    fn pairs_between(
        &self,
        b: K,
        end: Option<K>,
        lo: Bound<K>,
        hi: Bound<K>,
    ) -> impl Iterator<Item = &(K, u64)> + '_ {
        let from = match lo {
            Bound::Included(k) | Bound::Excluded(k) if k > b => k,
            _ => b,
        };
        let upper = match (hi, end) {
            (Bound::Included(h), Some(e)) if h < e => Bound::Included((h, u64::MAX)),
            (Bound::Included(h), None) => Bound::Included((h, u64::MAX)),
            (Bound::Excluded(h), Some(e)) if h < e => Bound::Excluded((h, ID_MIN)),
            (Bound::Excluded(h), None) => Bound::Excluded((h, ID_MIN)),
            (_, Some(e)) => Bound::Excluded((e, ID_MIN)),
            (_, None) => Bound::Unbounded,
        };
        let empty = match upper {
            Bound::Included((h, _)) => h < from,
            Bound::Excluded((h, _)) => h <= from,
            Bound::Unbounded => false,
        };
        let lower = if empty { None } else { Some((from, ID_MIN)) };
        lower
            .into_iter()
            .flat_map(move |l| self.pairs.range((Bound::Included(l), upper)))
    }

    /// Adds `id` holding `k`.
    pub(crate) fn insert(&mut self, k: K, id: u64) {
        if !self.pairs.insert((k, id)) {
            return;
        }
        self.stale();
        let b = self.bucket_of(k);
        let len = match self.buckets.get_mut(&b) {
            Some(set) => {
                set.insert(id);
                set.len()
            }
            None => return,
        };
        if len > SPLIT_AT && self.unsplittable.get(&b).is_none_or(|&at| len >= at) {
            self.split(b);
        }
    }

    /// Removes `id` holding `k`.
    pub(crate) fn remove(&mut self, k: K, id: u64) {
        if !self.pairs.remove(&(k, id)) {
            return;
        }
        self.stale();
        let b = self.bucket_of(k);
        if let Some(set) = self.buckets.get_mut(&b) {
            set.remove(id);
        }
    }

    /// Splits the bucket starting at `b` at its median value; a bucket of
    /// one value stays whole.
    fn split(&mut self, b: K) {
        let end = self.next_start(b);
        let Some(len) = self.buckets.get(&b).map(IdSet::len) else {
            return;
        };
        // The change of value nearest the half-way point starts the new
        // bucket (before it or after it): a value holding many ids ends up
        // in a bucket of its own, so `eq` on it is one bitmap, not a walk
        // through its pairs.
        let mut cut = None;
        let mut best = usize::MAX;
        let mut prev = None;
        for (seen, &(v, _)) in self.pairs_in(b, end).enumerate() {
            if prev.is_some_and(|p| p != v) {
                let off = seen.abs_diff(len / 2);
                if off < best {
                    (best, cut) = (off, Some(v));
                } else {
                    break; // past the half: farther from here on
                }
            }
            prev = Some(v);
        }
        let Some(cut) = cut else {
            self.unsplittable.insert(b, len * 2);
            return;
        };
        self.unsplittable.remove(&b);
        let low: IdSet = self.pairs_in(b, Some(cut)).map(|&(_, id)| id).collect();
        let high: IdSet = self.pairs_in(cut, end).map(|&(_, id)| id).collect();
        self.buckets.insert(b, low);
        self.buckets.insert(cut, high);
    }

    /// The ids whose value lies within `(lo, hi)` and that `admits` accepts
    /// (`admits` holds exactly on one interval of values, within the bounds).
    pub(crate) fn collect(&self, lo: Bound<K>, hi: Bound<K>, admits: impl Fn(K) -> bool) -> IdSet {
        let Some(pre) = self.prefixes() else {
            let out = self.collect_buckets(lo, hi, &admits);
            let mut lazy = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
            lazy.spent = lazy.spent.saturating_add(out.len() + 2 * SPLIT_AT);
            return out;
        };
        // The first and last boundary inside the range: every value from
        // the one up to (not including) the other is admitted.
        let inner: Vec<usize> = (0..pre.bounds.len())
            .filter(|&j| admits(pre.bounds[j]))
            .collect();
        let (Some(&a), Some(&z)) = (inner.first(), inner.last()) else {
            return self.collect_buckets(lo, hi, &admits);
        };
        // Ids from `bounds[a]` up to (not including) `bounds[z]` are all
        // admitted: one bitmap difference. A range open below (`date < x`)
        // admits all of `below[z]`, one open above all ids from
        // `bounds[a]` on; only the stretches between the range's ends and
        // the nearest boundaries go through the buckets.
        let least_admitted = self.pairs.first().is_some_and(|p| admits(p.0));
        let greatest_admitted = self.pairs.last().is_some_and(|p| admits(p.0));
        let mut out = if greatest_admitted {
            pre.all.clone()
        } else {
            pre.below[z].clone()
        };
        if !least_admitted {
            out.subtract(&pre.below[a]);
            out.unite(&self.collect_buckets(lo, Bound::Excluded(pre.bounds[a]), &admits));
        }
        if !greatest_admitted {
            out.unite(&self.collect_buckets(Bound::Included(pre.bounds[z]), hi, &admits));
        }
        out
    }

    /// The prefixes, if they are fresh or have now earned a rebuild.
    fn prefixes(&self) -> Option<Arc<Prefixes<K>>> {
        let mut lazy = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
        if lazy.fresh.is_none() && lazy.spent >= self.pairs.len() && self.pairs.len() > 4 * SPLIT_AT
        {
            lazy.fresh = Some(Arc::new(self.build_prefixes()));
        }
        lazy.fresh.clone()
    }

    /// A bitmap cut at a bucket start about every `n / PREFIXES` ids: the
    /// union of the buckets below it, so the stretches a range leaves
    /// to the buckets begin or end on a bucket's edge and only the one
    /// bucket holding each end of the range is read pair by pair.
    fn build_prefixes(&self) -> Prefixes<K> {
        let step = self.pairs.len().div_ceil(PREFIXES).max(1);
        let mut bounds = Vec::with_capacity(PREFIXES + 1);
        let mut below = Vec::with_capacity(PREFIXES + 1);
        let mut running = IdSet::new();
        let mut since = 0;
        for (&b, set) in &self.buckets {
            if since >= step {
                bounds.push(b);
                below.push(running.clone());
                since = 0;
            }
            running.unite(set);
            since += set.len();
        }
        Prefixes {
            bounds,
            below,
            all: running,
        }
    }

    /// `collect` through the buckets alone.
    fn collect_buckets(&self, lo: Bound<K>, hi: Bound<K>, admits: &impl Fn(K) -> bool) -> IdSet {
        let start = match lo {
            Bound::Included(k) | Bound::Excluded(k) => self.bucket_of(k),
            Bound::Unbounded => self.least,
        };
        let past_hi = |k: K| match hi {
            Bound::Included(h) => k > h,
            Bound::Excluded(h) => k >= h,
            Bound::Unbounded => false,
        };
        let mut whole: Vec<&IdSet> = Vec::new();
        let mut cut: Vec<u64> = Vec::new();
        let mut buckets = self.buckets.range(start..).peekable();
        while let Some((&b, set)) = buckets.next() {
            if b > start && past_hi(b) {
                break;
            }
            let end = buckets.peek().map(|(&e, _)| e);
            let mut values = self.pairs_in(b, end);
            let first = values.next().map(|p| p.0);
            let last = values.next_back().map(|p| p.0).or(first);
            match (first, last) {
                (Some(f), Some(l)) if admits(f) && admits(l) => whole.push(set),
                // Only the pairs within both the bucket and the bounds.
                (Some(_), Some(_)) => cut.extend(
                    self.pairs_between(b, end, lo, hi)
                        .filter(|p| admits(p.0))
                        .map(|&(_, id)| id),
                ),
                _ => {}
            }
        }
        // A few small bitmaps: one by one into the largest. Many: one
        // many-way union (each pairwise union of sparse bitmaps copies the
        // growing result, quadratic in their number).
        let mut out = if whole.len() <= 4 {
            whole.sort_by_key(|s| std::cmp::Reverse(s.len()));
            let mut out = whole.first().map_or_else(IdSet::new, |s| (*s).clone());
            for s in whole.iter().skip(1) {
                out.unite(s);
            }
            out
        } else {
            IdSet::union_of(whole)
        };
        cut.sort_unstable();
        cut.dedup();
        out.unite(&IdSet::from_sorted(cut));
        out
    }

    /// The number of `(value, id)` pairs.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pairs.len()
    }

    /// An estimate of the bytes held: the ordered pairs (a B-tree node holds
    /// up to 11, about two thirds full), the buckets' bitmaps and the prefix
    /// bitmaps (once built).
    pub(crate) fn memory_bytes(&self) -> usize {
        let pair = std::mem::size_of::<(K, u64)>();
        let prefixes = self.prefixes.lock().map_or(0, |l| {
            l.fresh.as_ref().map_or(0, |p| {
                p.below.iter().map(IdSet::size_bytes).sum::<usize>() + p.all.size_bytes()
            })
        });
        self.pairs.len() * pair * 3 / 2
            + self.buckets.values().map(IdSet::size_bytes).sum::<usize>()
            + prefixes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_a_scan_through_inserts_removals_and_splits() {
        let mut rng = crate::synthetic::Rng::new(11);
        let mut idx = RangeIndex::new(i64::MIN);
        let mut model: Vec<(i64, u64)> = Vec::new();
        for step in 0..30_000u64 {
            // Few distinct values early (buckets that cannot split), many
            // later; a removal now and then.
            let span = if step < 10_000 { 3 } else { 100_000 };
            let v = rng.below(span) as i64 - 50;
            idx.insert(v, step);
            model.push((v, step));
            if step % 7 == 0 {
                let (v, id) = model.swap_remove(rng.below(model.len()));
                idx.remove(v, id);
            }
        }
        assert!(idx.buckets.len() > 4, "no bucket split");
        let prefixed = |idx: &RangeIndex<i64>| idx.prefixes.lock().unwrap().fresh.is_some();
        assert!(!prefixed(&idx));
        assert_eq!(idx.len(), model.len());
        for _ in 0..200 {
            let a = rng.below(100_100) as i64 - 100;
            let b = a + rng.below(60_000) as i64;
            let got = idx.collect(Bound::Included(a), Bound::Included(b), |v| v >= a && v <= b);
            let want: IdSet = model
                .iter()
                .filter(|&&(v, _)| v >= a && v <= b)
                .map(|&(_, id)| id)
                .collect();
            assert_eq!(got, want, "[{a}, {b}]");
            let got = idx.collect(Bound::Excluded(a), Bound::Unbounded, |v| v > a);
            let want: IdSet = model
                .iter()
                .filter(|&&(v, _)| v > a)
                .map(|&(_, id)| id)
                .collect();
            assert_eq!(got, want, "> {a}");
        }
        assert!(
            prefixed(&idx),
            "200 ranges without a write built no prefixes"
        );
        // A write makes them stale; the answers stay right.
        idx.insert(7, 1 << 40);
        assert!(!prefixed(&idx));
        let got = idx.collect(Bound::Included(7), Bound::Included(7), |v| v == 7);
        assert!(got.contains(1 << 40));
    }
}
