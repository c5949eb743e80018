//! The map from caller ids to slots, in 4 bytes a bucket.
//!
//! A general hash map stores each key beside its value (16 bytes with
//! padding, plus a control byte, plus spare room): about 22 bytes per live
//! id, more than the id itself and a tenth of a 50-d vector. The store
//! already keeps every slot's id (`ids`), so this table keeps only slots and
//! reads a slot's id from there to compare. Open addressing with linear
//! probing (a probe walks one cache line for several buckets), and deletion
//! by backward shift (Knuth's Algorithm R), so churn leaves no tombstones
//! and never slows lookups or grows the table.
//!
//! Ids that are dense from 0 (what most callers use: row numbers) skip the
//! hash: an id below the table's `direct` bound finds its slot at
//! `direct[id]`, one read of a 4-byte array, and a filter's matches, asked
//! for in ascending order, read that array front to back. The bound only
//! grows to a power of two that at least half of it holds (at most 8 bytes
//! a live id, what the hash costs at its lowest load); every id below it
//! is in the array, every other in the hash.

use crate::storage::NONE;

/// The table never fills beyond 4/5: a miss then walks ~13 buckets, a hit ~3.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;

/// The direct array's smallest length: below it the hash, small enough to
/// stay in cache, is as fast.
const MIN_DIRECT: usize = 256;

/// Slots keyed by the ids stored beside them.
#[derive(Debug)]
pub(crate) struct SlotTable {
    /// `direct[id]`: the slot of `id` (or `NONE`) for every id below its
    /// length, zero or a power of two.
    direct: Vec<u32>,
    /// Ids in `direct`.
    direct_len: usize,
    /// The other ids: `NONE` or a slot; the length is zero or a power of two.
    buckets: Vec<u32>,
    /// Ids in all.
    len: usize,
    /// How many hashed ids have each bit length: what the direct array
    /// would take in if its bound grew.
    hashed_bits: [usize; 65],
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable {
            direct: Vec::new(),
            direct_len: 0,
            buckets: Vec::new(),
            len: 0,
            hashed_bits: [0; 65],
        }
    }
}

/// The number of bits `id` needs (0 for 0): ids below `2^b` need at most `b`.
#[inline]
fn bits(id: u64) -> usize {
    (64 - id.leading_zeros()) as usize
}

/// Where `id` starts probing in a table of `2^bits` buckets (Fibonacci
/// hashing: the high bits of a multiply spread sequential ids too).
#[inline]
fn home(id: u64, mask: usize) -> usize {
    if mask == 0 {
        return 0;
    }
    let x = (id ^ (id >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let bits = (mask + 1).trailing_zeros();
    (x >> (64 - bits)) as usize
}

impl SlotTable {
    /// Number of ids in the table.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub(crate) fn bytes(&self) -> usize {
        (self.direct.capacity() + self.buckets.capacity()) * 4
    }

    /// The position of `id` in `direct`, if it lies below the bound.
    #[inline]
    fn direct_at(&self, id: u64) -> Option<usize> {
        usize::try_from(id).ok().filter(|&i| i < self.direct.len())
    }

    /// The slot of `id`, where `ids[slot]` is each stored slot's id.
    #[inline]
    pub(crate) fn get(&self, id: u64, ids: &[u64]) -> Option<u32> {
        if let Some(i) = self.direct_at(id) {
            return self.direct.get(i).copied().filter(|&s| s != NONE);
        }
        let mask = self.buckets.len().checked_sub(1)?;
        let mut i = home(id, mask);
        loop {
            let s = self.buckets[i];
            if s == NONE {
                return None;
            }
            if ids.get(s as usize) == Some(&id) {
                return Some(s);
            }
            i = (i + 1) & mask;
        }
    }

    /// Asks the CPU to start loading the bucket where a lookup of `id`
    /// starts (a hint: see [`crate::rows::prefetch`]).
    #[inline]
    pub(crate) fn prefetch(&self, id: u64) {
        if let Some(i) = self.direct_at(id) {
            crate::rows::prefetch_to(
                self.direct.as_ptr().wrapping_add(i).cast(),
                4,
                crate::rows::Level::L1,
            );
            return;
        }
        if let Some(mask) = self.buckets.len().checked_sub(1) {
            let b = self.buckets.as_ptr().wrapping_add(home(id, mask));
            crate::rows::prefetch_to(b.cast(), 4, crate::rows::Level::L1);
        }
    }

    /// Records `slot` for `id` (absent; `ids[slot] == id` already).
    pub(crate) fn insert(&mut self, id: u64, slot: u32, ids: &[u64]) {
        debug_assert!(self.get(id, ids).is_none(), "id {id} inserted twice");
        if let Some(i) = self.direct_at(id) {
            self.direct[i] = slot;
            self.direct_len += 1;
            self.len += 1;
            return;
        }
        self.reserve_hashed(1, ids);
        let mask = self.buckets.len() - 1;
        let mut i = home(id, mask);
        while self.buckets[i] != NONE {
            i = (i + 1) & mask;
        }
        self.buckets[i] = slot;
        self.len += 1;
        self.hashed_bits[bits(id)] += 1;
    }

    /// Forgets `id` (its slot still holds it in `ids`); returns its slot.
    pub(crate) fn remove(&mut self, id: u64, ids: &[u64]) -> Option<u32> {
        if let Some(i) = self.direct_at(id) {
            let slot = std::mem::replace(&mut self.direct[i], NONE);
            if slot == NONE {
                return None;
            }
            self.direct_len -= 1;
            self.len -= 1;
            return Some(slot);
        }
        let mask = self.buckets.len().checked_sub(1)?;
        let mut i = home(id, mask);
        let slot = loop {
            let s = self.buckets[i];
            if s == NONE {
                return None;
            }
            if ids.get(s as usize) == Some(&id) {
                break s;
            }
            i = (i + 1) & mask;
        };
        // Backward shift: pull later entries of the probe run into the hole
        // when their home does not lie cyclically in (hole, position].
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.buckets[j];
            if s == NONE {
                break;
            }
            let h = ids.get(s as usize).map_or(j, |&x| home(x, mask));
            let stays = if i <= j {
                i < h && h <= j
            } else {
                i < h || h <= j
            };
            if !stays {
                self.buckets[i] = s;
                i = j;
            }
        }
        self.buckets[i] = NONE;
        self.len -= 1;
        self.hashed_bits[bits(id)] -= 1;
        Some(slot)
    }

    /// Room for the ids `fresh` (distinct, absent) without rehashing: the
    /// direct bound raised as far as they keep it half full, and hash room
    /// for the rest. `ids[slot]` is each stored slot's id.
    pub(crate) fn reserve(&mut self, fresh: impl Iterator<Item = u64>, ids: &[u64]) {
        // How many fresh ids have each bit length (0 for id 0), so the
        // count below any power of two is a prefix sum.
        let mut by_bits = [0usize; 65];
        let mut count = 0usize;
        for id in fresh {
            by_bits[bits(id)] += 1;
            count += 1;
        }
        // The largest power of two, at most twice the ids there will be,
        // that the ids below it (stored or fresh) fill at least half of.
        let mut bound = self.direct.len();
        let mut below = 0usize;
        for (b, &n) in by_bits.iter().enumerate().take(usize::BITS as usize) {
            below += n + self.hashed_bits[b];
            let p = 1usize << b;
            if p > 2 * (self.len + count) {
                break;
            }
            if p > bound && p >= MIN_DIRECT && 2 * (self.direct_len + below) >= p {
                bound = p;
            }
        }
        if bound > self.direct.len() {
            self.grow_direct(bound, ids);
        }
        let hashed = count - fresh_below(&by_bits, self.direct.len());
        self.reserve_hashed(hashed, ids);
    }

    /// Raises the direct bound to `bound` (a larger power of two), moving
    /// the hashed ids below it into the array.
    fn grow_direct(&mut self, bound: usize, ids: &[u64]) {
        self.direct.reserve_exact(bound - self.direct.len());
        self.direct.resize(bound, NONE);
        let hashed = std::mem::take(&mut self.buckets);
        self.len = self.direct_len;
        self.hashed_bits = [0; 65];
        let mut kept = Vec::new();
        for s in hashed.into_iter().filter(|&s| s != NONE) {
            let id = ids.get(s as usize).copied().unwrap_or(u64::MAX);
            match self.direct_at(id) {
                Some(i) => {
                    self.direct[i] = s;
                    self.direct_len += 1;
                    self.len += 1;
                }
                None => kept.push((id, s)),
            }
        }
        self.reserve_hashed(kept.len(), ids);
        for (id, s) in kept {
            self.insert(id, s, ids);
        }
    }

    /// Ids in the hash.
    fn hashed(&self) -> usize {
        self.len - self.direct_len
    }

    /// Hash room for `more` ids without rehashing.
    fn reserve_hashed(&mut self, more: usize, ids: &[u64]) {
        if more == 0 {
            return;
        }
        let want = self.hashed().saturating_add(more);
        if want.saturating_mul(MAX_LOAD_DEN) <= self.buckets.len() * MAX_LOAD_NUM {
            return;
        }
        let size = (want.saturating_mul(MAX_LOAD_DEN) / MAX_LOAD_NUM + 1)
            .next_power_of_two()
            .max(8);
        let old = std::mem::replace(&mut self.buckets, vec![NONE; size]);
        let mask = size - 1;
        for s in old.into_iter().filter(|&s| s != NONE) {
            let id = ids.get(s as usize).copied().unwrap_or(0);
            let mut i = home(id, mask);
            while self.buckets[i] != NONE {
                i = (i + 1) & mask;
            }
            self.buckets[i] = s;
        }
    }

    /// Every slot in the table: the direct ones, then the hashed.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.direct
            .iter()
            .chain(&self.buckets)
            .copied()
            .filter(|&s| s != NONE)
    }

    /// The direct bound: ids below it skip the hash.
    #[cfg(test)]
    pub(crate) fn direct_bound(&self) -> usize {
        self.direct.len()
    }
}

/// How many of the ids counted by bit length in `by_bits` lie below
/// `bound` (zero or a power of two).
fn fresh_below(by_bits: &[usize; 65], bound: usize) -> usize {
    if bound == 0 {
        return 0;
    }
    // Ids below 2^b have at most b bits.
    let b = bound.trailing_zeros() as usize;
    by_bits[..=b].iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vecsearch_core::synthetic::Rng;

    /// Seeded random inserts, deletes and lookups against a `HashMap`, with
    /// ids drawn from a small range (long probe runs, many shifts), from
    /// all of u64, and from both at once; every id checked after every
    /// round. With `reserve`, each round's new ids are announced first, as
    /// a batch's are, so the direct bound grows over the small ids and
    /// ids move from the hash into the array.
    #[test]
    fn matches_a_hash_map_through_random_churn() {
        let cases = [
            (1u64, 64u64, false),
            (2, 1000, false),
            (3, u64::MAX, false),
            (4, 1 << 40, false),
            (5, 64, true),
            (6, 3000, true),
            (7, u64::MAX, true),
            (8, 0, true),
        ];
        for (seed, range, reserve) in cases {
            let mut rng = Rng::new(seed);
            let mut next = move || rng.next_u64();
            let (mut t, mut ids, mut free) = (SlotTable::default(), Vec::<u64>::new(), Vec::new());
            let mut model: HashMap<u64, u32> = HashMap::new();
            let mut grew = false;
            for round in 0..40 {
                // Range 0: half the ids below 2,000, half anywhere.
                let ops: Vec<(u64, bool)> = (0..500)
                    .map(|_| {
                        let id = match range {
                            u64::MAX => next(),
                            0 if next() % 2 == 0 => next() % 2000,
                            0 => next(),
                            r => next() % r,
                        };
                        (id, next() % 3 == 0)
                    })
                    .collect();
                if reserve {
                    let mut fresh: Vec<u64> = ops
                        .iter()
                        .filter(|(id, del)| !del && !model.contains_key(id))
                        .map(|&(id, _)| id)
                        .collect();
                    fresh.sort_unstable();
                    fresh.dedup();
                    let before = t.direct_bound();
                    t.reserve(fresh.into_iter(), &ids);
                    grew |= t.direct_bound() > before && before > 0;
                }
                for (id, del) in ops {
                    if del {
                        let gone = model.remove(&id);
                        assert_eq!(t.remove(id, &ids), gone, "seed {seed}");
                        free.extend(gone);
                    } else if let std::collections::hash_map::Entry::Vacant(e) = model.entry(id) {
                        let slot = free.pop().unwrap_or_else(|| {
                            ids.push(0);
                            ids.len() as u32 - 1
                        });
                        ids[slot as usize] = id;
                        t.insert(id, slot, &ids);
                        e.insert(slot);
                    }
                }
                assert_eq!(t.len(), model.len(), "seed {seed} round {round}");
                for (&id, &s) in &model {
                    assert_eq!(
                        t.get(id, &ids),
                        Some(s),
                        "seed {seed} round {round} id {id}"
                    );
                }
                let mut slots: Vec<u32> = t.slots().collect();
                slots.sort_unstable();
                let mut want: Vec<u32> = model.values().copied().collect();
                want.sort_unstable();
                assert_eq!(slots, want, "seed {seed} round {round}");
                // The hash at its lowest load plus an array at most twice
                // the ids there were when it grew.
                let peak = ids.len();
                assert!(
                    t.bytes() <= 4 * (peak * 5 / 4 + 1).next_power_of_two().max(8) * 2 + 8 * peak,
                    "seed {seed} round {round}: {} bytes for {peak} slots",
                    t.bytes()
                );
            }
            // Range 64 is too few ids for an array (`MIN_DIRECT`).
            let dense = reserve && range != u64::MAX && range != 64;
            if dense {
                assert!(t.direct_bound() > 0, "seed {seed}: small ids direct");
            } else {
                assert_eq!(t.direct_bound(), 0, "seed {seed}: nothing dense to map");
            }
            if seed == 6 {
                assert!(grew, "the array grew over ids already stored");
            }
        }
    }

    /// Ids 0..n announced in a shuffled order (a batch placed in locality
    /// order) all go to the array, which costs 4 bytes an id and no hash;
    /// ids spread over u64 go to the hash alone.
    #[test]
    fn dense_ids_skip_the_hash_and_sparse_ones_use_it() {
        let n = 10_000u64;
        // A fixed scramble: 7919 is coprime with 10,000.
        let order: Vec<u64> = (0..n).map(|i| i * 7919 % n).collect();
        let t = filled(&order);
        assert_eq!(t.direct_bound(), 16_384);
        assert_eq!(t.bytes(), 16_384 * 4, "no hash buckets");
        assert_eq!(t.get(n, &order), None);
        assert_eq!(t.get(u64::MAX, &order), None);

        let sparse: Vec<u64> = (0..n)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 << 63)
            .collect();
        let t = filled(&sparse);
        assert_eq!(t.direct_bound(), 0);
        assert_eq!(t.bytes(), 16_384 * 4, "buckets at 4/5 load at most");
    }

    /// A table of `ids` (distinct), announced first as a batch's are, each
    /// in the slot of its position; every id checked to find its slot.
    fn filled(ids: &[u64]) -> SlotTable {
        let mut t = SlotTable::default();
        t.reserve(ids.iter().copied(), &[]);
        for (s, &id) in ids.iter().enumerate() {
            t.insert(id, s as u32, ids);
        }
        for (s, &id) in ids.iter().enumerate() {
            assert_eq!(t.get(id, ids), Some(s as u32));
        }
        t
    }

    #[test]
    fn reserving_up_front_keeps_the_table_still() {
        let mut ids: Vec<u64> = (0..1000).map(|i| i * 7919).collect();
        let mut t = SlotTable::default();
        t.reserve(ids.clone().into_iter(), &ids);
        let bytes = t.bytes();
        for (s, &id) in ids.iter().enumerate() {
            t.insert(id, s as u32, &ids);
        }
        assert_eq!(t.bytes(), bytes);
        assert_eq!(bytes, 4 * 2048);
        ids.push(u64::MAX);
        assert_eq!(t.get(u64::MAX, &ids), None);
    }
}
