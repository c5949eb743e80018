//! [`IdSet`]: a set of ids as a compressed bitmap (roaring), what the
//! payload store keeps per value and what a compiled filter hands an engine.
//!
//! A hash set per query was the filtered-search cliff: a 50% filter over
//! 100,000 points cost 50,000 inserts before the search began. Bitmaps
//! intersect, unite and count a container (65,536 ids) at a time, so
//! `and` / `or` / `not` of large sets cost microseconds, and the exact
//! match count the planner needs is free.

use std::ops::{BitAndAssign, BitOrAssign, SubAssign};

use roaring::{MultiOps, RoaringBitmap, RoaringTreemap};

use crate::dense::{Op, CONTAINER_WORDS};

/// A set of `u64` ids, kept as a roaring bitmap: dense runs as bit
/// containers, sparse ones as sorted arrays. Iterates in ascending order.
#[derive(Clone, Default, PartialEq)]
pub struct IdSet(RoaringTreemap);

impl IdSet {
    /// The empty set.
    pub fn new() -> IdSet {
        IdSet::default()
    }

    /// Adds `id`; whether it was new.
    #[inline]
    pub fn insert(&mut self, id: u64) -> bool {
        self.0.insert(id)
    }

    /// Removes `id`; whether it was there.
    #[inline]
    pub fn remove(&mut self, id: u64) -> bool {
        self.0.remove(id)
    }

    /// Whether `id` is in the set.
    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        self.0.contains(id)
    }

    /// The number of ids (counted per container, not per id).
    pub fn len(&self) -> usize {
        usize::try_from(self.0.len()).unwrap_or(usize::MAX)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The least id (`None` when empty).
    pub fn min(&self) -> Option<u64> {
        self.0.min()
    }

    /// The greatest id (`None` when empty).
    pub fn max(&self) -> Option<u64> {
        self.0.max()
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter()
    }

    /// The ids from `from` on, ascending.
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = u64> + '_ {
        let mut it = self.0.iter();
        it.advance_to(from);
        it
    }

    /// The ids of both.
    pub fn intersect(&mut self, other: &IdSet) {
        self.0.bitand_assign(&other.0);
    }

    /// The ids of either.
    pub fn unite(&mut self, other: &IdSet) {
        self.0.bitor_assign(&other.0);
    }

    /// The ids of `self` not in `other`.
    pub fn subtract(&mut self, other: &IdSet) {
        self.0.sub_assign(&other.0);
    }

    /// The size of the intersection, without building it.
    pub fn intersection_len(&self, other: &IdSet) -> usize {
        usize::try_from(self.0.intersection_len(&other.0)).unwrap_or(usize::MAX)
    }

    /// How many ids of the set are at most `id`.
    pub fn rank(&self, id: u64) -> usize {
        usize::try_from(self.0.rank(id)).unwrap_or(usize::MAX)
    }

    /// The set of `ids`, ascending (duplicates allowed): built container by
    /// container, cheaper than inserting one by one.
    pub fn from_sorted(ids: Vec<u64>) -> IdSet {
        let mut set = RoaringTreemap::new();
        // Ascending input: `append` only fails on unsorted ids, and then
        // the ids go in one by one.
        if set.append(ids.iter().copied()).is_err() {
            set = ids.into_iter().collect();
        }
        IdSet(set)
    }

    /// The union of many sets at once (cheaper than one by one: containers
    /// are merged in place).
    pub fn union_of<'a>(sets: impl IntoIterator<Item = &'a IdSet>) -> IdSet {
        IdSet(sets.into_iter().map(|s| &s.0).union())
    }

    /// The stretch of ids a bit array of the set spans: its first id (the
    /// least id rounded down to a multiple of 65,536) and how many
    /// stretches of 65,536 ids it covers. `None` when the set is empty.
    pub(crate) fn stretch(&self) -> Option<(u64, usize)> {
        let (lo, hi) = (self.0.min()?, self.0.max()?);
        let base = lo & !0xFFFF;
        let containers = usize::try_from(((hi - base) >> 16) + 1).ok()?;
        Some((base, containers))
    }

    /// The set as a plain bit array: bit `i` of word `i / 64` is id
    /// `base + i`, `base` a multiple of 65,536. `None` when the array would
    /// take more than `max_bytes` (ids spread too widely) or the set is
    /// empty. Dense containers are copied whole, 65,536 ids at a time, so
    /// this costs about the bitmap's own size, not one step per id: what a
    /// C++ engine probes per node without calling back into Rust.
    pub fn to_bits(&self, max_bytes: usize) -> Option<(u64, Vec<u64>)> {
        let (base, containers) = self.stretch()?;
        if containers.checked_mul(CONTAINER_WORDS * 8)? > max_bytes {
            return None;
        }
        let mut words = vec![0u64; containers * CONTAINER_WORDS];
        self.apply_to(base, &mut words, Op::Or)?;
        Some((base, words))
    }

    /// Sets (or clears) the bits of the set's ids in `words`, whose bit 0
    /// is id `base`; `None` when an id lies outside them. Through the
    /// portable serialisation: roaring shows its containers no other way,
    /// and copying a dense container is a `memcpy`.
    pub(crate) fn apply_to(&self, base: u64, words: &mut [u64], op: Op) -> Option<()> {
        if self.0.is_empty() {
            return Some(());
        }
        let mut bytes = Vec::with_capacity(self.0.serialized_size());
        self.0.serialize_into(&mut bytes).ok()?;
        fill_from_portable(&bytes, base, words, op)
    }

    /// The set of the ids whose bits are set in `words` (bit `i % 64` of
    /// word `i / 64` is id `base + i`; `base` a multiple of 65,536 and the
    /// words whole stretches of 65,536 ids), built a container at a time.
    pub(crate) fn from_bits(base: u64, words: &[u64]) -> IdSet {
        let mut maps: Vec<(u32, RoaringBitmap)> = Vec::new();
        let mut bytes: Vec<u8> = Vec::new();
        // Each stretch of 2^32 ids (a treemap entry) from its own bytes.
        let mut flush = |high: u64, first: u64, bytes: &mut Vec<u8>| {
            if !bytes.is_empty() {
                let low = first as u32; // the low half: `first >> 32 == high`
                let map = RoaringBitmap::from_lsb0_bytes(low, bytes);
                if !map.is_empty() {
                    maps.push((high as u32, map));
                }
                bytes.clear();
            }
        };
        let (mut high, mut first) = (base >> 32, base);
        for (c, chunk) in words.chunks(CONTAINER_WORDS).enumerate() {
            let start = base + (c as u64) * 65_536;
            if start >> 32 != high {
                flush(high, first, &mut bytes);
                (high, first) = (start >> 32, start);
            }
            for w in chunk {
                bytes.extend_from_slice(&w.to_le_bytes());
            }
        }
        flush(high, first, &mut bytes);
        IdSet(RoaringTreemap::from_bitmaps(maps))
    }

    /// Bytes the set takes when serialised (about what it takes in memory).
    pub fn size_bytes(&self) -> usize {
        self.0.serialized_size()
    }
}

/// Sets (or clears, by `op`) the bits of a serialised treemap (roaring's
/// portable format, which this crate's roaring writes without run
/// containers) in `words`, whose bit 0 is id `base`.
fn fill_from_portable(bytes: &[u8], base: u64, words: &mut [u64], op: Op) -> Option<()> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    let u16_at = |s: &[u8], i: usize| u16::from_le_bytes([s[2 * i], s[2 * i + 1]]);
    let maps = u64::from_le_bytes(take(8)?.try_into().ok()?);
    for _ in 0..maps {
        let high = u64::from(u32::from_le_bytes(take(4)?.try_into().ok()?));
        let cookie = u32::from_le_bytes(take(4)?.try_into().ok()?);
        if cookie != 12346 {
            return None;
        }
        let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let header = take(n.checked_mul(4)?)?.to_vec();
        take(n.checked_mul(4)?)?; // offsets: the containers follow in order
        for c in 0..n {
            let key = u64::from(u16_at(&header, 2 * c));
            let card = usize::from(u16_at(&header, 2 * c + 1)) + 1;
            let first = ((high << 32) | (key << 16)).checked_sub(base)?;
            let w0 = usize::try_from(first / 64).ok()?;
            if card > 4096 {
                let data = take(8192)?;
                let dst = words.get_mut(w0..w0 + 1024)?;
                for (d, chunk) in dst.iter_mut().zip(data.chunks_exact(8)) {
                    let w = u64::from_le_bytes(chunk.try_into().ok()?);
                    match op {
                        Op::Or => *d |= w,
                        Op::AndNot => *d &= !w,
                    }
                }
            } else {
                let data = take(card * 2)?;
                for i in 0..card {
                    let bit = usize::from(u16_at(data, i));
                    let d = words.get_mut(w0 + bit / 64)?;
                    match op {
                        Op::Or => *d |= 1u64 << (bit % 64),
                        Op::AndNot => *d &= !(1u64 << (bit % 64)),
                    }
                }
            }
        }
    }
    Some(())
}

impl FromIterator<u64> for IdSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        IdSet(RoaringTreemap::from_iter(iter))
    }
}

impl Extend<u64> for IdSet {
    fn extend<I: IntoIterator<Item = u64>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.len() <= 16 {
            f.debug_set().entries(self.iter()).finish()
        } else {
            write!(f, "IdSet({} ids)", self.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Setting a set's bits sets exactly its ids and clearing them clears
    /// exactly them, for sets of array containers and of bitmap
    /// containers (over 4,096 ids in a stretch), and a set reaching
    /// outside the words is refused.
    #[test]
    fn apply_to_sets_and_clears_exactly_the_ids() {
        for n in [1usize, 700, 4096, 4097, 30_000] {
            let ids: Vec<u64> = (0..n as u64).map(|i| 65_536 + (i * 97) % 131_072).collect();
            let set: IdSet = ids.iter().copied().collect();
            let mut words = vec![0u64; 3 * 1024];
            set.apply_to(0, &mut words, Op::Or).expect("inside");
            let bits = |words: &[u64]| -> Vec<u64> {
                (0..words.len() as u64 * 64)
                    .filter(|&i| words[(i / 64) as usize] >> (i % 64) & 1 == 1)
                    .collect()
            };
            assert!(bits(&words).into_iter().eq(set.iter()), "or, {n} ids");
            words.iter_mut().for_each(|w| *w = !*w);
            set.apply_to(0, &mut words, Op::AndNot).expect("inside");
            assert!(
                bits(&words).iter().all(|id| !set.contains(*id)),
                "and-not, {n} ids"
            );
            assert_eq!(bits(&words).len() as u64, 3 * 65_536 - set.len() as u64);
            let mut short = vec![0u64; 2 * 1024];
            let inside = ids.iter().all(|&id| id < 2 * 65_536);
            assert_eq!(n == 1, inside);
            let reached = set.apply_to(0, &mut short, Op::Or).is_some();
            assert_eq!(reached, inside, "{n} ids");
        }
    }

    #[test]
    fn set_operations_match_a_model() {
        use std::collections::BTreeSet;
        let mut rng = crate::synthetic::Rng::new(7);
        for round in 0..50 {
            // Small ids, large ids and ids beyond 2^32 (another container
            // level of the treemap).
            let mut pick = |n: usize| -> Vec<u64> {
                (0..n)
                    .map(|_| match rng.below(3) {
                        0 => rng.below(100) as u64,
                        1 => rng.below(200_000) as u64,
                        _ => (1u64 << 40) + rng.below(1000) as u64,
                    })
                    .collect()
            };
            let (a, b) = (pick(round * 40), pick(round * 30));
            let (sa, sb): (IdSet, IdSet) =
                (a.iter().copied().collect(), b.iter().copied().collect());
            let (ma, mb): (BTreeSet<u64>, BTreeSet<u64>) =
                (a.iter().copied().collect(), b.iter().copied().collect());
            assert_eq!(sa.len(), ma.len());
            assert!(sa.iter().eq(ma.iter().copied()));
            let mut i = sa.clone();
            i.intersect(&sb);
            assert!(i.iter().eq(ma.intersection(&mb).copied()));
            assert_eq!(sa.intersection_len(&sb), i.len());
            let mut u = sa.clone();
            u.unite(&sb);
            assert!(u.iter().eq(ma.union(&mb).copied()));
            assert_eq!(IdSet::union_of([&sa, &sb]), u);
            let mut d = sa.clone();
            d.subtract(&sb);
            assert!(d.iter().eq(ma.difference(&mb).copied()));
            if let Some((base, words)) = sa.to_bits(1 << 20) {
                let from_bits: Vec<u64> = (0..words.len() * 64)
                    .filter(|&i| words[i / 64] >> (i % 64) & 1 == 1)
                    .map(|i| base + i as u64)
                    .collect();
                assert!(from_bits.iter().copied().eq(ma.iter().copied()), "to_bits");
            } else {
                assert!(ma.is_empty() || ma.last().copied() >= Some(1 << 40));
            }
            let dense: IdSet = (0..70_000).step_by(3).chain(5..9).collect();
            let (base, words) = dense.to_bits(1 << 20).expect("dense");
            assert_eq!(base, 0);
            assert!((0..words.len() * 64)
                .filter(|&i| words[i / 64] >> (i % 64) & 1 == 1)
                .map(|i| i as u64)
                .eq(dense.iter()));
            let mut sorted = a.clone();
            sorted.sort_unstable();
            assert_eq!(
                IdSet::from_sorted(sorted.clone()),
                sa,
                "from_sorted, duplicates kept"
            );
            sorted.dedup();
            assert_eq!(IdSet::from_sorted(sorted), sa, "from_sorted");
            let from = 150_000;
            assert!(sa.iter_from(from).eq(ma.range(from..).copied()));
        }
    }
}
