//! [`DenseIds`]: a set of ids as a plain bit array over a compact stretch
//! of ids.
//!
//! Two users: a graph walk tests a node's id against it with one shift and
//! mask, and the payload store combines filters that hold ranges in it. A
//! range resolved as a roaring bitmap is a union of a prefix bitmap and a
//! few buckets, and an `and` of two such ranges intersects sorted arrays
//! id by id; over a bit array the same is a word-wise `or` / `and` of the
//! stretch the ids span (3,125 words for 200,000 ids).

use crate::IdSet;

/// A set of ids as a bit array: bit `i % 64` of word `i / 64` is id
/// `base + i`; `base` is a multiple of 65,536 and the words fill whole
/// stretches of 65,536 ids (1,024 words each).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseIds {
    base: u64,
    words: Vec<u64>,
}

/// How a bitmap's ids change a [`DenseIds`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    /// Set their bits.
    Or,
    /// Clear their bits.
    AndNot,
}

/// Words in a stretch of 65,536 ids (one roaring container).
pub(crate) const CONTAINER_WORDS: usize = 1024;

/// A bit array is made only while it takes at most this many bytes (or a
/// few bytes per live id, whichever is more): ids spread over a huge range
/// keep their compressed bitmap.
const DENSE_BYTES_MIN: usize = 1 << 20;

/// The most bytes a bit array may take in an index of `live` ids:
/// `max(1 MiB, 4 x live)`.
pub(crate) fn max_bytes(live: usize) -> usize {
    DENSE_BYTES_MIN.max(live.saturating_mul(4))
}

/// Whether a bit array over `containers` stretches of 65,536 ids is small
/// enough for an index of `live` ids ([`max_bytes`]).
pub(crate) fn fits(containers: usize, live: usize) -> bool {
    containers
        .checked_mul(CONTAINER_WORDS * 8)
        .is_some_and(|bytes| bytes <= max_bytes(live))
}

/// The set bits of a bit array, ascending. A loop of its own rather than a
/// `flat_map` over the words, which a `collect` (native's scan of the
/// matches) drove through a slow `try_fold`: the zero words between sparse
/// ids are now skipped in a tight loop. With `popcount` below, a search
/// filtered by an AND of two ranges matching 20 of 200,000 ids took
/// 22.8-23.1 µs in native instead of 30.4-30.7, 23.7 in flat instead of
/// 28.0 (`scan_probe`, alternated runs).
struct Bits<'a> {
    base: u64,
    words: &'a [u64],
    /// The next word to load.
    at: usize,
    /// The bits of word `at - 1` not yet returned.
    word: u64,
}

impl Iterator for Bits<'_> {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        while self.word == 0 {
            let w = *self.words.get(self.at)?;
            self.at += 1;
            self.word = w;
        }
        let bit = u64::from(self.word.trailing_zeros());
        self.word &= self.word - 1;
        Some(self.base + (self.at as u64 - 1) * 64 + bit)
    }
}

/// The number of set bits in `words`: the `popcnt` instruction where the
/// CPU has it (the portable build targets x86-64 without it and counts
/// by bit-twiddling), else portable. Every range filter resolved as a bit
/// array is counted so: at a million ids, 5 µs less a filter (the AND of
/// two ranges matching 10%, 74.5-80.2 µs before, 69.3-70.2 after;
/// `range_probe 1000000`).
fn popcount(words: &[u64]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has `popcnt`, checked just above; the
            // function does nothing else unsafe.
            return unsafe { popcount_popcnt(words) };
        }
    }
    words.iter().map(|w| w.count_ones() as usize).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn popcount_popcnt(words: &[u64]) -> usize {
    words.iter().map(|w| w.count_ones() as usize).sum()
}

impl DenseIds {
    /// The empty set over `containers` stretches of 65,536 ids from `base`
    /// (rounded down to a multiple of 65,536).
    pub(crate) fn zeroed(base: u64, containers: usize) -> DenseIds {
        DenseIds {
            base: base & !0xFFFF,
            words: vec![0; containers * CONTAINER_WORDS],
        }
    }

    /// `set` as a bit array over `stretch` (first id, stretches of 65,536
    /// ids, as [`IdSet::stretch`] gives it); `None` when an id of `set`
    /// lies outside it.
    pub(crate) fn of(set: &IdSet, stretch: (u64, usize)) -> Option<DenseIds> {
        let mut out = DenseIds::zeroed(stretch.0, stretch.1);
        out.apply(set, Op::Or)?;
        Some(out)
    }

    /// The set whose bits are `words` from `base` (as [`IdSet::to_bits`]
    /// makes them).
    pub(crate) fn from_parts(base: u64, words: Vec<u64>) -> DenseIds {
        DenseIds { base, words }
    }

    /// Whether `id` is set.
    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        let Some(bit) = id.checked_sub(self.base) else {
            return false;
        };
        let word = (bit / 64) as usize;
        word < self.words.len() && (self.words[word] >> (bit % 64)) & 1 == 1
    }

    /// The first id bit 0 stands for (a multiple of 65,536).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The bits: bit `i % 64` of word `i / 64` is id `base + i`.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The number of ids.
    pub fn len(&self) -> usize {
        popcount(&self.words)
    }

    /// Whether no id is set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        Bits {
            base: self.base,
            words: &self.words,
            at: 0,
            word: 0,
        }
    }

    /// Sets `id`; `None` (nothing changed) when it lies outside the stretch.
    #[inline]
    pub(crate) fn insert(&mut self, id: u64) -> Option<()> {
        let bit = id.checked_sub(self.base)?;
        let word = self.words.get_mut(usize::try_from(bit / 64).ok()?)?;
        *word |= 1 << (bit % 64);
        Some(())
    }

    /// Sets (or clears) the bits of `set`'s ids; `None` when one lies
    /// outside the stretch (the words may then be part-changed).
    pub(crate) fn apply(&mut self, set: &IdSet, op: Op) -> Option<()> {
        set.apply_to(self.base, &mut self.words, op)
    }

    /// Sets the ids of `other`, whose stretch lies within this one's;
    /// `None` (nothing changed) when it does not.
    pub(crate) fn or_from(&mut self, other: &DenseIds) -> Option<()> {
        for (a, b) in self.window(other)?.iter_mut().zip(&other.words) {
            *a |= b;
        }
        Some(())
    }

    /// Clears the ids of `other`, whose stretch lies within this one's;
    /// `None` (nothing changed) when it does not.
    pub(crate) fn and_not_from(&mut self, other: &DenseIds) -> Option<()> {
        for (a, b) in self.window(other)?.iter_mut().zip(&other.words) {
            *a &= !b;
        }
        Some(())
    }

    /// This array's words over `other`'s stretch.
    fn window(&mut self, other: &DenseIds) -> Option<&mut [u64]> {
        let from = usize::try_from(other.base.checked_sub(self.base)? / 64).ok()?;
        self.words
            .get_mut(from..from.checked_add(other.words.len())?)
    }

    /// Keeps the ids of both (the same stretch).
    pub(crate) fn and(&mut self, other: &DenseIds) {
        debug_assert_eq!(
            (self.base, self.words.len()),
            (other.base, other.words.len())
        );
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// The ids as a compressed bitmap.
    pub(crate) fn to_set(&self) -> IdSet {
        IdSet::from_bits(self.base, &self.words)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The iterator and the count at the edges of words: bits 0 and 63,
    /// full words, the last word of the array, nothing set.
    #[test]
    fn iter_and_len_at_word_edges() {
        let base = 3 * 65_536;
        let mut a = DenseIds::zeroed(base, 1);
        assert_eq!((a.len(), a.iter().next()), (0, None));
        let mut want = vec![base, base + 63, base + 64];
        want.extend(base + 128..base + 192);
        want.extend([base + 65_535 - 64, base + 65_535]);
        for &id in &want {
            a.insert(id).expect("inside");
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), want);
        assert_eq!(a.len(), want.len());
        let full = DenseIds::from_parts(base, vec![u64::MAX; CONTAINER_WORDS]);
        assert_eq!(full.len(), 65_536);
        assert!(full.iter().eq(base..base + 65_536));
    }

    /// Every operation against a `BTreeSet` model, over sets dense enough
    /// for bitmap containers and sparse enough for arrays, across a
    /// 2^32 boundary (two levels of the treemap).
    #[test]
    fn operations_match_a_model() {
        let mut rng = crate::synthetic::Rng::new(17);
        let base = (1u64 << 32) - 3 * 65_536;
        for round in 0..40 {
            let mut pick = |n: usize| -> BTreeSet<u64> {
                (0..n)
                    .map(|_| base + rng.below(6 * 65_536) as u64)
                    .collect()
            };
            let (ma, mb) = (pick(round * 997), pick(round * 131 + 5000 * (round % 3)));
            let (sa, sb): (IdSet, IdSet) =
                (ma.iter().copied().collect(), mb.iter().copied().collect());
            let mut a = DenseIds::zeroed(base, 6);
            a.apply(&sa, Op::Or).expect("inside");
            assert_eq!(a.to_set(), sa, "round trip");
            assert!(a.iter().eq(ma.iter().copied()), "iter");
            assert_eq!(a.len(), ma.len());
            assert_eq!(a.is_empty(), ma.is_empty());
            for &id in ma.iter().take(20) {
                assert!(a.contains(id));
            }
            let mut b = DenseIds::zeroed(base, 6);
            b.apply(&sb, Op::Or).expect("inside");
            let mut and = a.clone();
            and.and(&b);
            assert!(and.to_set().iter().eq(ma.intersection(&mb).copied()));
            let mut or = a.clone();
            or.or_from(&b).expect("the same stretch");
            assert!(or.to_set().iter().eq(ma.union(&mb).copied()));
            let mut minus = a.clone();
            minus.and_not_from(&b).expect("the same stretch");
            assert!(minus.to_set().iter().eq(ma.difference(&mb).copied()));
            let mut cleared = a.clone();
            cleared.apply(&sb, Op::AndNot).expect("inside");
            assert_eq!(cleared, minus, "apply AndNot");
            let mut inner = DenseIds::zeroed(base + 65_536, 2);
            let inner_ids: IdSet = ma
                .range(base + 65_536..base + 3 * 65_536)
                .copied()
                .collect();
            inner.apply(&inner_ids, Op::Or).expect("inside");
            let mut wide = b.clone();
            wide.or_from(&inner).expect("within");
            let want: BTreeSet<u64> = mb.union(&inner_ids.iter().collect()).copied().collect();
            assert!(wide.iter().eq(want.iter().copied()), "or_from");
            wide.and_not_from(&inner).expect("within");
            let want: BTreeSet<u64> = mb
                .difference(&inner_ids.iter().collect())
                .copied()
                .collect();
            assert!(wide.iter().eq(want.iter().copied()), "and_not_from");
            assert_eq!(inner.clone().or_from(&b), None, "a wider stretch");
            let mut one = b.clone();
            one.insert(base + 7).expect("inside");
            assert!(one.contains(base + 7));
        }
        let mut small = DenseIds::zeroed(65_536, 1);
        assert_eq!(small.insert(65_535), None, "below the stretch");
        assert_eq!(small.insert(2 * 65_536), None, "past the stretch");
        let outside: IdSet = [3u64, 70_000].into_iter().collect();
        assert_eq!(small.apply(&outside, Op::Or), None);
        assert!(!fits(usize::MAX, 10));
        assert!(fits(128, 0), "1 MiB is always allowed");
        assert!(!fits(129, 1000));
        assert!(fits(129, 300_000), "4 bytes a live id");
    }
}
