//! The range index of one number field: the ids cut into buckets of
//! consecutive values, each with a bitmap of its ids and the value of each
//! id, in the bitmap's order.
//!
//! A range is the union of the buckets it covers whole (bitmaps merged a
//! container at a time) and the ids of the two buckets it cuts (their
//! values read one by one: a bucket holds about a thousand). The values sit
//! beside the bitmap, not in a B-tree of `(value, id)` pairs over the
//! field: 8 bytes an id instead of about 26, which was two thirds of the
//! payload indexes' memory in the filtered bench (four integer fields). A per-value bitmap would cost a bitmap per distinct
//! value (a date field has as many values as points), and unioning them one
//! by one was the cliff of a 50% range: 500,000 single-id sets per query at
//! a million points.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use crate::dense::{self, DenseIds, Op};
use crate::IdSet;

/// A bucket holding more ids than this is split at its median value.
const SPLIT_AT: usize = 1024;

/// The index; `K` is the value's order (an integer, or a float's total order).
#[derive(Debug)]
pub(crate) struct RangeIndex<K> {
    /// Bucket start (the least value it covers) to its ids and pairs. The
    /// first bucket starts at `K`'s least value, so every value has a
    /// bucket; a bucket covers values up to the next bucket's start.
    buckets: BTreeMap<K, Bucket<K>>,
    /// Pairs in all buckets.
    len: usize,
    /// Buckets that could not split (one value holds most of their ids),
    /// with the size at which to try again: twice the size that failed, so
    /// a field of few values costs one scan per doubling, not per insert.
    unsplittable: BTreeMap<K, usize>,
    least: K,
    /// Prefix bitmaps, built lazily (see [`Prefixes`]).
    prefixes: Mutex<Lazy<K>>,
}

/// One bucket: its ids as a bitmap (ranges that cover it whole) and the
/// value of each (ranges that cut it, and splits).
#[derive(Debug)]
struct Bucket<K> {
    ids: IdSet,
    /// `values.get(i)` is the value of the `i`-th smallest id.
    values: Values<K>,
    /// The least and the greatest value held (`None` when empty).
    span: Option<(K, K)>,
}

impl<K: Bits> Bucket<K> {
    fn new() -> Self {
        Bucket {
            ids: IdSet::new(),
            values: Values::Wide(Vec::new()),
            span: None,
        }
    }

    /// A bucket of `pairs` (`(value, id)`, ids distinct, any order).
    fn of(mut pairs: Vec<(K, u64)>) -> Self {
        pairs.sort_unstable_by_key(|&(_, id)| id);
        let span = span_of(pairs.iter().map(|&(v, _)| v));
        let mut values = match span {
            Some((lo, _)) => Values::Narrow {
                base: lo.bits(),
                offs: Vec::with_capacity(pairs.len()),
            },
            None => Values::Wide(Vec::new()),
        };
        for (i, &(v, _)) in pairs.iter().enumerate() {
            values.insert(i, v);
        }
        Bucket {
            ids: IdSet::from_sorted(pairs.iter().map(|&(_, id)| id).collect()),
            span,
            values,
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    /// Adds `id` holding `k`; false if `id` is already here (an id holds
    /// one value of a field: the store removes the old one first).
    fn insert(&mut self, k: K, id: u64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        let at = self.ids.rank(id).saturating_sub(1).min(self.values.len());
        self.values.insert(at, k);
        self.span = span_of(self.span.into_iter().flat_map(|(a, b)| [a, b]).chain([k]));
        true
    }

    /// Removes `id` holding `k`; false if it is not here with that value.
    fn remove(&mut self, k: K, id: u64) -> bool {
        if !self.ids.contains(id) {
            return false;
        }
        let at = self.ids.rank(id).saturating_sub(1);
        if self.values.get(at) != Some(k) {
            return false;
        }
        self.ids.remove(id);
        self.values.remove(at);
        // Only losing an end of a wider span needs a pass.
        if self.values.len() == 0 || self.span.is_some_and(|(a, b)| a != b && (k == a || k == b)) {
            self.span = span_of(self.values.iter());
        }
        true
    }

    /// The ids whose value `admits` accepts (the values' bits within
    /// `exact`, when known), in id order, onto `out`. Offsets from the
    /// base are compared as they are stored where they can be: a cut
    /// bucket is the one place a range reads value by value.
    fn admitted(&self, admits: impl Fn(K) -> bool, exact: Option<(u64, u64)>, out: &mut Vec<u64>) {
        match (&self.values, exact) {
            (Values::Narrow { base, offs }, Some((a, z))) => {
                let Some(hi) = z.checked_sub(*base) else {
                    return; // every value lies above the interval
                };
                let lo = a.saturating_sub(*base);
                out.extend(
                    offs.iter()
                        .zip(self.ids.iter())
                        .filter(|&(&o, _)| (lo..=hi).contains(&u64::from(o)))
                        .map(|(_, id)| id),
                );
            }
            _ => out.extend(self.pairs().filter(|&(v, _)| admits(v)).map(|(_, id)| id)),
        }
    }

    /// Every `(value, id)`, in id order.
    fn pairs(&self) -> impl Iterator<Item = (K, u64)> + '_ {
        self.values.iter().zip(self.ids.iter())
    }
}

/// A value's order as an unsigned integer, so a bucket can keep its values
/// as 4-byte offsets from its least one.
pub(crate) trait Bits: Ord + Copy {
    /// Order-preserving: `a < b` exactly when `a.bits() < b.bits()`.
    fn bits(self) -> u64;
    /// The inverse of `bits`.
    fn from_bits(bits: u64) -> Self;
}

impl Bits for i64 {
    fn bits(self) -> u64 {
        (self as u64) ^ (1 << 63)
    }
    fn from_bits(bits: u64) -> Self {
        (bits ^ (1 << 63)) as i64
    }
}

/// A bucket's values: 4-byte offsets from a base while they all fit (a
/// bucket of about a thousand ids spans a narrow stretch of a date or a
/// counter), else the values themselves.
#[derive(Debug)]
enum Values<K> {
    Narrow { base: u64, offs: Vec<u32> },
    Wide(Vec<K>),
}

impl<K: Bits> Values<K> {
    #[allow(clippy::len_without_is_empty)]
    fn len(&self) -> usize {
        match self {
            Values::Narrow { offs, .. } => offs.len(),
            Values::Wide(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<K> {
        match self {
            Values::Narrow { base, offs } => offs
                .get(i)
                .map(|&o| K::from_bits(base.wrapping_add(u64::from(o)))),
            Values::Wide(v) => v.get(i).copied(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = K> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    fn insert(&mut self, i: usize, k: K) {
        if let Values::Narrow { base, offs } = self {
            match k.bits().checked_sub(*base).map(u32::try_from) {
                Some(Ok(o)) => return grow_insert(offs, i, o),
                // Out of reach of the base: every value, in full.
                _ => *self = Values::Wide(self.iter().collect()),
            }
        }
        if let Values::Wide(v) = self {
            grow_insert(v, i, k);
        }
    }

    fn remove(&mut self, i: usize) {
        match self {
            Values::Narrow { offs, .. } if i < offs.len() => {
                offs.remove(i);
            }
            Values::Wide(v) if i < v.len() => {
                v.remove(i);
            }
            _ => {}
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Values::Narrow { offs, .. } => offs.capacity() * 4,
            Values::Wide(v) => v.capacity() * std::mem::size_of::<K>(),
        }
    }
}

/// `v.insert(i, x)`, growing by an eighth at a time, not doubling: slack
/// stays small, and the copy a growth makes costs less than the inserts'
/// own moves.
fn grow_insert<T>(v: &mut Vec<T>, i: usize, x: T) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 8 + 1);
    }
    v.insert(i.min(v.len()), x);
}

/// The least and the greatest of `values`.
fn span_of<K: Ord + Copy>(values: impl Iterator<Item = K>) -> Option<(K, K)> {
    values.fold(None, |s, v| {
        Some(s.map_or((v, v), |(a, b): (K, K)| (a.min(v), b.max(v))))
    })
}

/// The ids below each of a few dozen boundary values, as bitmaps: a range
/// between two boundaries is one bitmap difference (dense containers, a
/// word at a time), so a range over half a million ids costs microseconds
/// instead of a union of every bucket in it. Only the two stretches
/// between the range's ends and the nearest boundaries go through the
/// buckets.
#[derive(Debug)]
struct Prefixes<K> {
    /// Ascending; prefix `j` holds the ids whose value is below `bounds[j]`.
    bounds: Vec<K>,
    below: Below,
}

/// The prefix sets, and every id, in one of two forms.
#[derive(Debug)]
enum Below {
    /// Compressed bitmaps.
    Sets { below: Vec<IdSet>, all: IdSet },
    /// Bit arrays over the field's stretch of ids, where at least a quarter
    /// of that stretch holds the field: there they take about what the
    /// bitmaps' dense containers take, and a range resolved as a bit array
    /// ORs a prefix in a word at a time instead of going through its
    /// serialisation (the AND of two 32% ranges over 200,000 points: see
    /// `PayloadStore::resolve`).
    Bits { below: Vec<DenseIds>, all: DenseIds },
}

impl Below {
    fn bytes(&self) -> usize {
        match self {
            Below::Sets { below, all } => {
                below.iter().map(IdSet::size_bytes).sum::<usize>() + all.size_bytes()
            }
            Below::Bits { below, all } => (below.len() + 1) * all.words().len() * 8,
        }
    }
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

/// What a range gathers from the buckets: bitmaps of the buckets it covers
/// whole, and the ids of the ones it cuts.
#[derive(Default)]
struct Parts<'a> {
    whole: Vec<&'a IdSet>,
    cut: Vec<u64>,
}

impl Parts<'_> {
    /// Their union, with `middle` (the stretch between prefixes): one
    /// many-way union, which sets bits, where uniting them one by one
    /// merges sorted arrays (a mispredicted branch per id) and copies the
    /// growing result. An AND of two 32% ranges over 200,000 points
    /// resolves in 36 µs instead of 53, a single 5% range in 29 instead of
    /// 31 (`cargo run --release -p vecsearch-cli --example range_probe`).
    fn union(mut self, middle: Option<IdSet>) -> IdSet {
        self.cut.sort_unstable();
        self.cut.dedup();
        let cut = IdSet::from_sorted(self.cut);
        if self.whole.is_empty() {
            return match middle {
                Some(mut m) => {
                    m.unite(&cut);
                    m
                }
                None => cut,
            };
        }
        let extra = std::iter::once(&cut).chain(middle.as_ref());
        IdSet::union_of(self.whole.into_iter().chain(extra))
    }
}

/// The values `admits` accepts within `(lo, hi)`, as the closed interval
/// of their [`Bits`], or `None` when it is not found within a few steps.
///
/// The store's bounds are at most a step or two wider than the range it
/// tests (an integer bound taken from a float is floored or ceiled; a
/// float bound is widened to the next float), and `admits` holds on one
/// interval of values: stepping in from each bound to the first admitted
/// value finds that interval, every value stepped over being refused. An
/// empty interval is `Some((1, 0))`.
fn exact_interval<K: Bits>(
    lo: Bound<K>,
    hi: Bound<K>,
    admits: &impl Fn(K) -> bool,
) -> Option<(u64, u64)> {
    const STEPS: usize = 3;
    let mut a = match lo {
        Bound::Included(k) => k.bits(),
        Bound::Excluded(k) => k.bits().checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let mut z = match hi {
        Bound::Included(k) => k.bits(),
        Bound::Excluded(k) => k.bits().checked_sub(1)?,
        Bound::Unbounded => u64::MAX,
    };
    let mut found = false;
    for _ in 0..STEPS {
        if a > z {
            return Some((1, 0));
        }
        if admits(K::from_bits(a)) {
            found = true;
            break;
        }
        a = a.checked_add(1)?;
    }
    if !found {
        return None;
    }
    // `a` is admitted, so stepping down from `z` stops at `a` at the latest.
    for _ in 0..STEPS {
        if admits(K::from_bits(z)) {
            return Some((a, z));
        }
        z = z.checked_sub(1)?;
    }
    None
}

/// The prefix sets as bit arrays over the stretch of `all`, when at least
/// a quarter of that stretch is in `all` (see [`Below::Bits`]).
fn as_bits(below: &[IdSet], all: &IdSet) -> Option<Below> {
    let (base, containers) = all.stretch()?;
    let ids = containers.checked_mul(65_536)?;
    if !dense::fits(containers, all.len()) || all.len().saturating_mul(4) < ids {
        return None;
    }
    let bits = |set: &IdSet| DenseIds::of(set, (base, containers));
    Some(Below::Bits {
        below: below.iter().map(bits).collect::<Option<_>>()?,
        all: bits(all)?,
    })
}

/// What a range takes from the prefixes: `keep` (every id when `None`,
/// else the ids below that boundary) minus the ids below boundary `minus`.
/// The prefixes are held, so a rebuild meanwhile does not pull them away.
struct Middle<K> {
    pre: Arc<Prefixes<K>>,
    keep: Option<usize>,
    minus: Option<usize>,
}

impl<K> Middle<K> {
    /// The set kept whole, of `below` and `all` (either form).
    fn kept<'b, T>(&self, below: &'b [T], all: &'b T) -> &'b T {
        self.keep.map_or(all, |z| &below[z])
    }
}

/// A range resolved to its sources: a stretch of the prefixes, and the
/// buckets' parts beyond it.
struct Pieces<'a, K> {
    middle: Option<Middle<K>>,
    parts: Parts<'a>,
}

/// Prefix boundaries per field: memory is `PREFIXES` bitmaps of up to one
/// bit per id (n / 8 bytes each, so 8 bytes per id at most, 2% of a 96-d
/// f32 vector, per range field), and a range reads at most 2 / `PREFIXES`
/// of the ids through the buckets.
const PREFIXES: usize = 64;

impl<K: Bits> RangeIndex<K> {
    /// An empty index; `least` is the least value `K` has.
    pub(crate) fn new(least: K) -> Self {
        let mut buckets = BTreeMap::new();
        buckets.insert(least, Bucket::new());
        RangeIndex {
            buckets,
            len: 0,
            unsplittable: BTreeMap::new(),
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

    /// Marks the prefixes out of date (a write).
    fn stale(&mut self) {
        let lazy = self.prefixes.get_mut().unwrap_or_else(|e| e.into_inner());
        lazy.fresh = None;
        lazy.spent = 0;
    }

    /// Adds `id` holding `k`.
    pub(crate) fn insert(&mut self, k: K, id: u64) {
        let b = self.bucket_of(k);
        let Some(bucket) = self.buckets.get_mut(&b) else {
            return;
        };
        if !bucket.insert(k, id) {
            return;
        }
        let len = bucket.len();
        self.len += 1;
        self.stale();
        if len > SPLIT_AT && self.unsplittable.get(&b).is_none_or(|&at| len >= at) {
            self.split(b);
        }
    }

    /// Removes `id` holding `k`.
    pub(crate) fn remove(&mut self, k: K, id: u64) {
        let b = self.bucket_of(k);
        let Some(bucket) = self.buckets.get_mut(&b) else {
            return;
        };
        if !bucket.remove(k, id) {
            return;
        }
        self.len -= 1;
        self.stale();
    }

    /// Splits the bucket starting at `b` at its median value; a bucket of
    /// one value stays whole.
    fn split(&mut self, b: K) {
        let Some(bucket) = self.buckets.get(&b) else {
            return;
        };
        let mut pairs: Vec<(K, u64)> = bucket.pairs().collect();
        pairs.sort_unstable();
        let len = pairs.len();
        // The change of value nearest the half-way point starts the new
        // bucket (before it or after it): a value holding many ids ends up
        // in a bucket of its own, so `eq` on it is one bitmap, not a walk
        // through its pairs.
        let mut cut = None;
        let mut best = usize::MAX;
        let mut prev = None;
        for (seen, &(v, _)) in pairs.iter().enumerate() {
            if prev.is_some_and(|p| p != v) {
                let off = seen.abs_diff(len / 2);
                if off < best {
                    (best, cut) = (off, Some((seen, v)));
                } else {
                    break; // past the half: farther from here on
                }
            }
            prev = Some(v);
        }
        let Some((at, cut)) = cut else {
            self.unsplittable.insert(b, len * 2);
            return;
        };
        self.unsplittable.remove(&b);
        let high = Bucket::of(pairs.split_off(at));
        let low = Bucket::of(pairs);
        self.buckets.insert(b, low);
        self.buckets.insert(cut, high);
    }

    /// The least and the greatest value held.
    fn ends(&self) -> (Option<K>, Option<K>) {
        let all = self.buckets.values();
        let first = all.clone().find_map(|b| b.span.map(|s| s.0));
        let last = all.rev().find_map(|b| b.span.map(|s| s.1));
        (first, last)
    }

    /// The ids whose value lies within `(lo, hi)` and that `admits` accepts
    /// (`admits` holds exactly on one interval of values, within the bounds).
    pub(crate) fn collect(&self, lo: Bound<K>, hi: Bound<K>, admits: impl Fn(K) -> bool) -> IdSet {
        let Pieces { middle, parts } = self.pieces(lo, hi, &admits, false);
        let middle = middle.and_then(|m| {
            // (`pieces` hands bit-array prefixes only to `collect_into`.)
            let Below::Sets { below, all } = &m.pre.below else {
                return None;
            };
            let mut set = m.kept(below, all).clone();
            if let Some(a) = m.minus {
                set.subtract(&below[a]);
            }
            Some(set)
        });
        parts.union(middle)
    }

    /// [`RangeIndex::collect`] into a bit array: sets the bits of the ids
    /// it would return in `out`, which holds no other ids yet (the
    /// prefixes' stretch is taken as a difference there). `None` when an
    /// id lies outside `out`'s stretch.
    pub(crate) fn collect_into(
        &self,
        lo: Bound<K>,
        hi: Bound<K>,
        admits: impl Fn(K) -> bool,
        out: &mut DenseIds,
    ) -> Option<()> {
        let Pieces { middle, parts } = self.pieces(lo, hi, &admits, true);
        if let Some(m) = &middle {
            match &m.pre.below {
                Below::Sets { below, all } => {
                    out.apply(m.kept(below, all), Op::Or)?;
                    if let Some(a) = m.minus {
                        out.apply(&below[a], Op::AndNot)?;
                    }
                }
                Below::Bits { below, all } => {
                    out.or_from(m.kept(below, all))?;
                    if let Some(a) = m.minus {
                        out.and_not_from(&below[a])?;
                    }
                }
            }
        }
        for set in parts.whole {
            out.apply(set, Op::Or)?;
        }
        for id in parts.cut {
            out.insert(id)?;
        }
        Some(())
    }

    /// How many ids the buckets overlapping `(lo, hi)` hold, counted up to
    /// `cap` (a bucket at a time, so a wide range stops early): the range's
    /// size, give or take its two end buckets.
    pub(crate) fn count_near(&self, lo: Bound<K>, hi: Bound<K>, cap: usize) -> usize {
        let mut n = 0usize;
        for bucket in self.overlapping(lo, hi) {
            if n >= cap {
                break;
            }
            n += bucket.len();
        }
        n.min(cap)
    }

    /// The buckets that hold values within `(lo, hi)`, in value order.
    fn overlapping(&self, lo: Bound<K>, hi: Bound<K>) -> impl Iterator<Item = &Bucket<K>> + '_ {
        let start = match lo {
            Bound::Included(k) | Bound::Excluded(k) => self.bucket_of(k),
            Bound::Unbounded => self.least,
        };
        let past_hi = move |k: K| match hi {
            Bound::Included(h) => k > h,
            Bound::Excluded(h) => k >= h,
            Bound::Unbounded => false,
        };
        self.buckets
            .range(start..)
            .take_while(move |&(&b, _)| b == start || !past_hi(b))
            .map(|(_, bucket)| bucket)
    }

    /// Where a range's ids come from: a stretch of the prefix bitmaps
    /// (when fresh, and, if they are bit arrays, when `bits` says the
    /// caller takes them) and the buckets beyond it.
    fn pieces(
        &self,
        lo: Bound<K>,
        hi: Bound<K>,
        admits: &impl Fn(K) -> bool,
        bits: bool,
    ) -> Pieces<'_, K> {
        // One comparison of a value's bits where the admitted interval is
        // found, instead of the range's own test (a `Value` built and
        // matched) on every value a cut bucket holds.
        let exact = exact_interval(lo, hi, admits);
        let admits = &|v: K| match exact {
            Some((a, z)) => (a..=z).contains(&v.bits()),
            None => (lo, hi).contains(&v) && admits(v),
        };
        let usable = |pre: &Arc<Prefixes<K>>| bits || matches!(pre.below, Below::Sets { .. });
        let Some(pre) = self.prefixes().filter(usable) else {
            let mut parts = Parts::default();
            self.gather(lo, hi, admits, exact, &mut parts);
            let mut lazy = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
            let read = parts.whole.iter().map(|s| s.len()).sum::<usize>() + parts.cut.len();
            lazy.spent = lazy.spent.saturating_add(read + 2 * SPLIT_AT);
            return Pieces {
                middle: None,
                parts,
            };
        };
        // The first and last boundary inside the range: every value from
        // the one up to (not including) the other is admitted.
        let inner: Vec<usize> = (0..pre.bounds.len())
            .filter(|&j| admits(pre.bounds[j]))
            .collect();
        let mut parts = Parts::default();
        let (Some(&a), Some(&z)) = (inner.first(), inner.last()) else {
            self.gather(lo, hi, admits, exact, &mut parts);
            return Pieces {
                middle: None,
                parts,
            };
        };
        // Ids from `bounds[a]` up to (not including) `bounds[z]` are all
        // admitted: one bitmap difference. A range open below (`date < x`)
        // admits all of `below[z]`, one open above all ids from
        // `bounds[a]` on; only the stretches between the range's ends and
        // the nearest boundaries go through the buckets.
        let (least, greatest) = self.ends();
        let least_admitted = least.is_some_and(admits);
        let greatest_admitted = greatest.is_some_and(admits);
        let mut middle = Middle {
            pre: Arc::clone(&pre),
            keep: (!greatest_admitted).then_some(z),
            minus: None,
        };
        if !least_admitted {
            middle.minus = Some(a);
            self.gather(
                lo,
                Bound::Excluded(pre.bounds[a]),
                admits,
                exact,
                &mut parts,
            );
        }
        if !greatest_admitted {
            self.gather(
                Bound::Included(pre.bounds[z]),
                hi,
                admits,
                exact,
                &mut parts,
            );
        }
        Pieces {
            middle: Some(middle),
            parts,
        }
    }

    /// Builds the prefixes now if they are out of date and the index is
    /// big enough to use them, instead of after the next ranges have read
    /// as many ids as it holds (`PayloadStore::finish`).
    pub(crate) fn finish(&self) {
        self.built_prefixes(true);
    }

    /// The prefixes, if they are fresh or have now earned a rebuild.
    fn prefixes(&self) -> Option<Arc<Prefixes<K>>> {
        self.built_prefixes(false)
    }

    /// The prefixes, rebuilt first if they are out of date, the index is
    /// big enough to use them, and either `now` or the ranges since the
    /// last write have read as many ids as the index holds.
    fn built_prefixes(&self, now: bool) -> Option<Arc<Prefixes<K>>> {
        let mut lazy = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
        let earned = now || lazy.spent >= self.len;
        if lazy.fresh.is_none() && earned && self.len > 4 * SPLIT_AT {
            lazy.fresh = Some(Arc::new(self.build_prefixes()));
        }
        lazy.fresh.clone()
    }

    /// A bitmap cut at a bucket start about every `n / PREFIXES` ids: the
    /// union of the buckets below it, so the stretches a range leaves
    /// to the buckets begin or end on a bucket's edge and only the one
    /// bucket holding each end of the range is read pair by pair.
    fn build_prefixes(&self) -> Prefixes<K> {
        let step = self.len.div_ceil(PREFIXES).max(1);
        let mut bounds = Vec::with_capacity(PREFIXES + 1);
        let mut below = Vec::with_capacity(PREFIXES + 1);
        let mut running = IdSet::new();
        let mut since = 0;
        for (&b, bucket) in &self.buckets {
            if since >= step {
                bounds.push(b);
                below.push(running.clone());
                since = 0;
            }
            running.unite(&bucket.ids);
            since += bucket.len();
        }
        Prefixes {
            bounds,
            below: as_bits(&below, &running).unwrap_or(Below::Sets {
                below,
                all: running,
            }),
        }
    }

    /// The buckets a range covers whole (their bitmaps) and the admitted
    /// ids of the ones it cuts, into `parts`; `admits` holds exactly on the
    /// range's values (within the bounds, too), and `exact` is the
    /// interval of their bits when known.
    fn gather<'a>(
        &'a self,
        lo: Bound<K>,
        hi: Bound<K>,
        admits: &impl Fn(K) -> bool,
        exact: Option<(u64, u64)>,
        parts: &mut Parts<'a>,
    ) {
        for bucket in self.overlapping(lo, hi) {
            match bucket.span {
                Some((f, l)) if admits(f) && admits(l) => parts.whole.push(&bucket.ids),
                // The ids whose value lies in the range (`admits` holds on
                // one interval within the bounds), in id order.
                Some(_) => bucket.admitted(admits, exact, &mut parts.cut),
                None => {}
            }
        }
    }

    /// Which form the prefixes took (`None` while not built).
    #[cfg(test)]
    pub(crate) fn prefix_form(&self) -> Option<&'static str> {
        let lazy = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
        lazy.fresh.as_ref().map(|p| match p.below {
            Below::Sets { .. } => "sets",
            Below::Bits { .. } => "bits",
        })
    }

    /// The number of `(value, id)` pairs.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes held: the buckets' values (capacity counted) and bitmaps,
    /// and the prefix bitmaps (once built).
    pub(crate) fn memory_bytes(&self) -> usize {
        let prefixes = self
            .prefixes
            .lock()
            .map_or(0, |l| l.fresh.as_ref().map_or(0, |p| p.below.bytes()));
        self.buckets
            .values()
            .map(|b| b.values.bytes() + b.ids.size_bytes())
            .sum::<usize>()
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

    /// Ids in any order, values changed (removed, then added with a new
    /// value, as the store updates a payload): every bucket's values must
    /// stay beside their own ids, so cut buckets answer right.
    #[test]
    fn values_stay_with_their_ids_in_any_insertion_order() {
        let mut rng = crate::synthetic::Rng::new(5);
        let mut idx = RangeIndex::new(i64::MIN);
        let mut model: std::collections::BTreeMap<u64, i64> = Default::default();
        for step in 0..20_000 {
            let id = rng.below(1 << 40) as u64;
            if let Some(old) = model.remove(&id) {
                idx.remove(old, id);
            }
            // Now and then a value far out, so some buckets cannot keep
            // 4-byte offsets and hold their values whole.
            let far = [i64::MIN, i64::MAX, -(1 << 40), 1 << 40];
            let v = match step % 97 {
                0 => far[step / 97 % 4],
                _ => rng.below(50_000) as i64,
            };
            idx.insert(v, id);
            model.insert(id, v);
            if step % 5 == 0 {
                // An existing id gets a new value.
                let &id = model.keys().nth(rng.below(model.len())).unwrap();
                let old = model[&id];
                let v = rng.below(50_000) as i64;
                idx.remove(old, id);
                idx.insert(v, id);
                model.insert(id, v);
            }
        }
        assert!(idx.buckets.len() > 4, "no bucket split");
        assert_eq!(idx.len(), model.len());
        let wide = |b: &Bucket<i64>| matches!(b.values, Values::Wide(_));
        assert!(idx.buckets.values().any(wide), "no bucket went wide");
        assert!(idx.buckets.values().any(|b| !wide(b)), "no narrow bucket");
        let ends = |lo: i64, hi: i64| {
            idx.collect(Bound::Included(lo), Bound::Included(hi), |v| {
                v >= lo && v <= hi
            })
        };
        let far_ids = |lo: i64, hi: i64| -> IdSet {
            model
                .iter()
                .filter(|&(_, &v)| v >= lo && v <= hi)
                .map(|(&id, _)| id)
                .collect()
        };
        assert_eq!(ends(i64::MIN, -1), far_ids(i64::MIN, -1));
        assert_eq!(ends(50_000, i64::MAX), far_ids(50_000, i64::MAX));
        for _ in 0..300 {
            let a = rng.below(50_000) as i64;
            let b = a + rng.below(500) as i64;
            let got = idx.collect(Bound::Included(a), Bound::Excluded(b), |v| v >= a && v < b);
            let want: IdSet = model
                .iter()
                .filter(|&(_, &v)| v >= a && v < b)
                .map(|(&id, _)| id)
                .collect();
            assert_eq!(got, want, "[{a}, {b})");
        }
    }
}
