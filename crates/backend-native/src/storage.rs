//! Where the graph lives: vectors in one contiguous buffer, level-0 links in
//! one flat array with a fixed `2*M` slots per node, upper levels in one
//! flat array reached through a per-node offset, `u32` slots, and the maps
//! between caller ids and slots. No per-node allocation and no per-node
//! lock: link writers take one of [`STRIPES`] striped locks. Arrays grow in
//! steps of a quarter, so at most about a fifth of what they hold is unused.
//!
//! The index keeps a `Store` behind an `RwLock`. Everything that changes the
//! *shape* of the store or a vector (allocating a slot, growing, writing a
//! vector, deleting) happens under the write lock, so vectors, ids, levels
//! and flags are plain memory read under the read lock with no race. The
//! links change under the read lock, beside searches: they are atomics,
//! written under a per-node lock and read as seqlocks (see `links`).

use std::sync::atomic::AtomicU32;
use std::sync::{Mutex, MutexGuard};

use vecsearch_core::{Error, Result};

use vecsearch_core::{Metric, Storage};

use crate::links;
use crate::rows::{grow_exact, Rows};
use crate::slots::SlotTable;

/// Slot value meaning "none"; also bounds the number of nodes.
pub(crate) const NONE: u32 = u32::MAX;
/// At most this many nodes (every slot fits a `u32` below [`NONE`]).
pub(crate) const MAX_NODES: usize = NONE as usize - 1;
/// Highest level a node gets (reached with probability M^-24).
pub(crate) const MAX_LEVEL: usize = 24;
/// Link writers lock stripe `slot % STRIPES`. A writer holds one lock at a
/// time, so two nodes sharing a stripe only ever wait, never deadlock.
pub(crate) const STRIPES: usize = 1024;

/// How far ahead [`Store::slots_of`] asks for a lookup's memory.
const LOOKUP_AHEAD: usize = 16;
// Level 0 of the largest M a spec allows (256) must fit a list's count.
const _: () = assert!(2 * 256 <= links::MAX_CAP);
/// `upper_at` of a node with no upper level.
const NO_UPPER: u32 = u32::MAX;

/// What the graph pass must do for a slot the write pass placed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Job {
    /// The slot.
    pub(crate) slot: u32,
    /// The vector the slot held before (upsert or reused slot): the nodes
    /// that link to the slot chose it for this vector and must be repaired.
    pub(crate) old: Option<Box<[f32]>>,
}

/// The nodes of the graph.
pub(crate) struct Store {
    pub(crate) dim: usize,
    /// Links per node on levels >= 1.
    pub(crate) m: usize,
    /// Links per node on level 0 (`2 * m`).
    pub(crate) m0: usize,
    /// The vectors, in the spec's storage kind.
    pub(crate) rows: Rows,
    /// Caller id of every slot (stale for deleted slots).
    pub(crate) ids: Vec<u64>,
    pub(crate) levels: Vec<u8>,
    pub(crate) deleted: Vec<bool>,
    /// `words(m0)` atomics per node.
    pub(crate) links0: Vec<AtomicU32>,
    /// Level-0 in-links of every node. Writers add a list's new links before
    /// storing it and subtract the dropped ones after, so the count never
    /// falls below the true one: a zero means the node has no way in, and
    /// is linked back at once ("nothing is orphaned").
    pub(crate) indegree: Vec<AtomicU32>,
    /// Where each node's upper lists start in `upper`, counted in lists of
    /// `words(m)` atomics ([`NO_UPPER`] for a level-0 node): `level` lists
    /// from there. Counting lists, not words, lets 4 bytes address them all.
    pub(crate) upper_at: Vec<u32>,
    /// The upper lists of every node, back to back.
    pub(crate) upper: Vec<AtomicU32>,
    /// Serialise writers of links, striped by slot.
    pub(crate) locks: Box<[Mutex<()>]>,
    /// The slot of every live id (keyed through `ids`).
    pub(crate) slots: SlotTable,
    /// Deleted slots, reused by the next inserts of new ids.
    pub(crate) free: Vec<u32>,
    /// State of the level generator (seeded: builds are reproducible).
    pub(crate) rng: u64,
    /// Some node was deleted or given a new vector since the build (or the
    /// file it was opened from had deleted slots): searches then seed their
    /// bottom level from a beam (see `Graph::knn_with`).
    pub(crate) churned: bool,
}

impl Store {
    /// An empty store, with room for `capacity` nodes where memory allows
    /// (the capacity is a hint: an impossible one is not an abort).
    pub(crate) fn new(
        dim: usize,
        m: usize,
        capacity: usize,
        seed: u64,
        metric: Metric,
        storage: Storage,
    ) -> Self {
        let mut s = Store {
            dim,
            m,
            m0: 2 * m,
            rows: Rows::new(storage, dim, metric),
            ids: Vec::new(),
            levels: Vec::new(),
            deleted: Vec::new(),
            links0: Vec::new(),
            indegree: Vec::new(),
            upper_at: Vec::new(),
            upper: Vec::new(),
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            slots: SlotTable::default(),
            free: Vec::new(),
            rng: seed,
            churned: false,
        };
        let capacity = capacity.min(MAX_NODES);
        if capacity > 0 && s.try_reserve(capacity).is_err() {
            s = Store::new(dim, m, 0, seed, metric, storage);
        }
        s
    }

    fn try_reserve(
        &mut self,
        n: usize,
    ) -> std::result::Result<(), std::collections::TryReserveError> {
        self.rows.try_reserve(n)?;
        self.ids.try_reserve_exact(n)?;
        self.levels.try_reserve_exact(n)?;
        self.deleted.try_reserve_exact(n)?;
        self.links0
            .try_reserve_exact(n.saturating_mul(links::words(self.m0)))?;
        crate::huge::advise(&mut self.links0);
        self.indegree.try_reserve_exact(n)?;
        self.upper_at.try_reserve_exact(n)?;
        // The id table's room depends on the ids: `make_room` makes it.
        Ok(())
    }

    /// Number of nodes, live or deleted.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Number of live ids.
    pub(crate) fn live(&self) -> usize {
        self.slots.len()
    }

    /// The slot of live id `id`.
    #[inline]
    pub(crate) fn slot_of(&self, id: u64) -> Option<u32> {
        self.slots.get(id, &self.ids)
    }

    /// The slots of the live ones of `ids`, in their order. A lookup's
    /// first read is asked of memory [`LOOKUP_AHEAD`] ids ahead, so the
    /// lookups of a filter's many matches overlap instead of each waiting
    /// for memory in turn.
    pub(crate) fn slots_of(&self, ids: impl Iterator<Item = u64>, count: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(count);
        let mut ring = [0u64; LOOKUP_AHEAD];
        let mut queued = 0usize;
        for id in ids {
            self.slots.prefetch(id);
            let at = queued % LOOKUP_AHEAD;
            if queued >= LOOKUP_AHEAD {
                out.extend(self.slot_of(ring[at]));
            }
            ring[at] = id;
            queued += 1;
        }
        let from = queued.saturating_sub(LOOKUP_AHEAD);
        out.extend((from..queued).filter_map(|i| self.slot_of(ring[i % LOOKUP_AHEAD])));
        out
    }

    /// Puts distinct `slots` (each below `len()`) in ascending order, by
    /// marking them in a bit array over every slot and reading it back:
    /// a pass over `len() / 8` bytes instead of a sort's comparisons.
    pub(crate) fn ascending(&self, slots: &mut Vec<u32>) {
        let mut bits = vec![0u64; self.len().div_ceil(64)];
        for &s in slots.iter() {
            if let Some(w) = bits.get_mut((s >> 6) as usize) {
                *w |= 1 << (s & 63);
            }
        }
        slots.clear();
        for (i, &w) in bits.iter().enumerate() {
            let mut w = w;
            while w != 0 {
                slots.push(((i as u32) << 6) | w.trailing_zeros());
                w &= w - 1;
            }
        }
    }

    /// The id `slot` holds, if it is live.
    #[inline]
    pub(crate) fn live_id(&self, slot: u32) -> Option<u64> {
        if self.is_deleted(slot) {
            return None;
        }
        self.ids.get(slot as usize).copied()
    }

    /// The slots of the live ids.
    pub(crate) fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len() as u32).filter(|&s| !self.is_deleted(s))
    }

    /// The level of `slot`.
    #[inline]
    pub(crate) fn level(&self, slot: u32) -> usize {
        self.levels
            .get(slot as usize)
            .map_or(0, |&l| usize::from(l))
    }

    /// Whether `slot` is deleted (out of range counts as deleted).
    #[inline]
    pub(crate) fn is_deleted(&self, slot: u32) -> bool {
        debug_assert!(
            (slot as usize) < self.deleted.len(),
            "slot {slot} out of range"
        );
        self.deleted.get(slot as usize).copied().unwrap_or(true)
    }

    /// Capacity of a list on `level`.
    #[inline]
    pub(crate) fn cap(&self, level: usize) -> usize {
        if level == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// The link list of `slot` on `level` (empty if the node has no such level).
    #[inline]
    pub(crate) fn list(&self, slot: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let w = links::words(self.m0);
            let i = slot as usize * w;
            self.links0.get(i..i + w).unwrap_or(&[])
        } else {
            let w = links::words(self.m);
            let Some(&at) = self.upper_at.get(slot as usize).filter(|&&a| a != NO_UPPER) else {
                return &[];
            };
            if level > self.level(slot) {
                return &[];
            }
            let start = (at as usize + level - 1) * w;
            self.upper.get(start..start + w).unwrap_or(&[])
        }
    }

    /// Asks the CPU to start loading the link list of `slot` on `level`.
    #[inline]
    pub(crate) fn prefetch_list(&self, slot: u32, level: usize) {
        let list = self.list(slot, level);
        crate::rows::prefetch_to(
            list.as_ptr().cast(),
            std::mem::size_of_val(list),
            crate::rows::Level::L2,
        );
    }

    /// The level-0 in-degree counter of `slot` (see [`Store::indegree`]).
    #[inline]
    pub(crate) fn indegree(&self, slot: u32) -> Option<&AtomicU32> {
        self.indegree.get(slot as usize)
    }

    /// Counts the level-0 in-links of every node from the lists (after a load).
    pub(crate) fn count_indegrees(&mut self) {
        let mut counts = vec![0u32; self.len()];
        let mut buf = Vec::new();
        for s in 0..self.len() as u32 {
            links::read(self.list(s, 0), &mut buf);
            for &t in &buf {
                if let Some(c) = counts.get_mut(t as usize) {
                    *c = c.saturating_add(1);
                }
            }
        }
        self.indegree = counts.into_iter().map(AtomicU32::new).collect();
    }

    /// Locks `slot`'s links against other writers (its stripe's lock).
    pub(crate) fn lock(&self, slot: u32) -> Option<MutexGuard<'_, ()>> {
        self.locks
            .get(slot as usize % STRIPES)
            .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fails, changing nothing, unless `ids` (distinct) fit in the slot
    /// space; else makes room for the new slots they need, in one step (a
    /// big batch into an empty index allocates exactly, not to the next
    /// power of two).
    pub(crate) fn make_room(&mut self, ids: impl Iterator<Item = u64>) -> Result<()> {
        let fresh_ids: Vec<u64> = ids.filter(|&id| self.slot_of(id).is_none()).collect();
        let fresh = fresh_ids.len();
        let new_slots = fresh.saturating_sub(self.free.len());
        if self.len().saturating_add(new_slots) > MAX_NODES {
            return Err(Error::InvalidArgument(format!(
                "the native index holds at most {MAX_NODES} vectors"
            )));
        }
        // Grow by at least a quarter (so single adds cost amortised O(1))
        // and by exactly what a batch needs beyond that.
        let len = self.len();
        if len + new_slots > self.ids.capacity() {
            let grow = new_slots.max(self.ids.capacity() / 4);
            self.rows.grow(len, grow)?;
            grow_exact(&mut self.ids, len, grow);
            grow_exact(&mut self.levels, len, grow);
            grow_exact(&mut self.deleted, len, grow);
            grow_exact(
                &mut self.links0,
                len * links::words(self.m0),
                grow * links::words(self.m0),
            );
            grow_exact(&mut self.indegree, len, grow);
            grow_exact(&mut self.upper_at, len, grow);
        }
        self.slots.reserve(fresh_ids.into_iter(), &self.ids);
        Ok(())
    }

    /// Stores `v` under `id`: in its slot if the id is present, else in a
    /// reused deleted slot, else in a new one. Call `make_room` first.
    pub(crate) fn place(&mut self, id: u64, v: &[f32], level_mult: f64) -> Job {
        if let Some(slot) = self.slot_of(id) {
            self.churned = true;
            let old = Some(self.rows.vector(slot).into());
            self.rows.set(slot, v);
            return Job { slot, old };
        }
        if let Some(slot) = self.free.pop() {
            let old = Some(self.rows.vector(slot).into());
            self.rows.set(slot, v);
            if let Some(x) = self.ids.get_mut(slot as usize) {
                *x = id;
            }
            if let Some(d) = self.deleted.get_mut(slot as usize) {
                *d = false;
            }
            self.slots.insert(id, slot, &self.ids);
            return Job { slot, old };
        }
        let slot = self.len() as u32;
        let mut level = self.next_level(level_mult);
        if self.upper_lists() + level >= NO_UPPER as usize {
            // The upper array is addressed by 4-byte list numbers; past 4
            // billion lists (never, in practice) a node stays on level 0.
            level = 0;
        }
        // `make_room` reserved this row, so the originals' file has room.
        let pushed = self.rows.push(v);
        debug_assert!(pushed.is_ok(), "a row was pushed without room");
        self.ids.push(id);
        self.levels.push(level as u8);
        self.deleted.push(false);
        self.links0.extend(links::empty(self.m0));
        self.indegree.push(AtomicU32::new(0));
        if level == 0 {
            self.upper_at.push(NO_UPPER);
        } else {
            let words = level * links::words(self.m);
            if self.upper.len() + words > self.upper.capacity() {
                let grow = words.max(self.upper.capacity() / 4);
                self.upper.reserve_exact(grow);
            }
            self.upper_at.push(self.upper_lists() as u32);
            self.upper
                .extend((0..level).flat_map(|_| links::empty(self.m)));
        }
        self.slots.insert(id, slot, &self.ids);
        Job { slot, old: None }
    }

    /// Number of upper-level lists stored.
    fn upper_lists(&self) -> usize {
        self.upper.len() / links::words(self.m)
    }

    /// Removes `id`; its slot stays in the graph for navigation until reused.
    pub(crate) fn delete(&mut self, id: u64) -> bool {
        let Some(slot) = self.slots.remove(id, &self.ids) else {
            return false;
        };
        if let Some(d) = self.deleted.get_mut(slot as usize) {
            *d = true;
        }
        self.free.push(slot);
        self.churned = true;
        true
    }

    /// A level drawn as `floor(-ln(U) * mult)`, U uniform in (0, 1].
    fn next_level(&mut self, mult: f64) -> usize {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let u = ((z >> 11) + 1) as f64 / (1u64 << 53) as f64;
        ((-u.ln() * mult) as usize).min(MAX_LEVEL)
    }

    /// Sets the upper lists from per-node word arrays (after a load).
    pub(crate) fn set_upper(&mut self, per_node: Vec<Vec<AtomicU32>>) {
        let total = per_node.iter().map(Vec::len).sum();
        self.upper = Vec::with_capacity(total);
        self.upper_at = Vec::with_capacity(per_node.len());
        for node in per_node {
            if node.is_empty() {
                self.upper_at.push(NO_UPPER);
            } else {
                self.upper_at.push(self.upper_lists() as u32);
                self.upper.extend(node);
            }
        }
    }

    /// Bytes held by the nodes and maps.
    pub(crate) fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.rows.bytes()
            + self.ids.capacity() * 8
            + self.levels.capacity()
            + self.deleted.capacity()
            + self.links0.capacity() * 4
            + self.indegree.capacity() * 4
            + self.upper_at.capacity() * 4
            + self.upper.capacity() * 4
            + self.locks.len() * size_of::<Mutex<()>>()
            + self.slots.bytes()
            + self.free.capacity() * 4
    }
}
