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

use crate::storage::NONE;

/// The table never fills beyond 4/5: a miss then walks ~13 buckets, a hit ~3.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;

/// Slots keyed by the ids stored beside them.
#[derive(Debug, Default)]
pub(crate) struct SlotTable {
    /// `NONE` or a slot; the length is zero or a power of two.
    buckets: Vec<u32>,
    len: usize,
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
        self.buckets.capacity() * 4
    }

    /// The slot of `id`, where `ids[slot]` is each stored slot's id.
    #[inline]
    pub(crate) fn get(&self, id: u64, ids: &[u64]) -> Option<u32> {
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
        if let Some(mask) = self.buckets.len().checked_sub(1) {
            let b = self.buckets.as_ptr().wrapping_add(home(id, mask));
            crate::rows::prefetch(b.cast(), 4);
        }
    }

    /// Records `slot` for `id` (absent; `ids[slot] == id` already).
    pub(crate) fn insert(&mut self, id: u64, slot: u32, ids: &[u64]) {
        debug_assert!(self.get(id, ids).is_none(), "id {id} inserted twice");
        self.reserve(1, ids);
        let mask = self.buckets.len() - 1;
        let mut i = home(id, mask);
        while self.buckets[i] != NONE {
            i = (i + 1) & mask;
        }
        self.buckets[i] = slot;
        self.len += 1;
    }

    /// Forgets `id` (its slot still holds it in `ids`); returns its slot.
    pub(crate) fn remove(&mut self, id: u64, ids: &[u64]) -> Option<u32> {
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
        Some(slot)
    }

    /// Room for `more` ids without rehashing.
    pub(crate) fn reserve(&mut self, more: usize, ids: &[u64]) {
        let want = self.len.saturating_add(more);
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

    /// Every slot in the table, in bucket order.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets.iter().copied().filter(|&s| s != NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Seeded random inserts, deletes and lookups against a `HashMap`, with
    /// ids drawn from a small range (long probe runs, many shifts) and from
    /// all of u64; every id checked after every round.
    #[test]
    fn matches_a_hash_map_through_random_churn() {
        for (seed, range) in [(1u64, 64u64), (2, 1000), (3, u64::MAX), (4, 1 << 40)] {
            let mut rng = seed;
            let mut next = move || {
                rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            };
            let (mut t, mut ids, mut free) = (SlotTable::default(), Vec::<u64>::new(), Vec::new());
            let mut model: HashMap<u64, u32> = HashMap::new();
            for round in 0..40 {
                for _ in 0..500 {
                    let id = if range == u64::MAX {
                        next()
                    } else {
                        next() % range
                    };
                    if next() % 3 == 0 {
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
                assert!(t.bytes() <= 4 * (model.len() * 5 / 4 + 1).next_power_of_two().max(8) * 2);
            }
        }
    }

    #[test]
    fn reserving_up_front_keeps_the_table_still() {
        let mut ids: Vec<u64> = (0..1000).map(|i| i * 7919).collect();
        let mut t = SlotTable::default();
        t.reserve(1000, &ids);
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
