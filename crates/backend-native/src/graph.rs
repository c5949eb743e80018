//! The HNSW algorithm (Malkov & Yashunin 2016): greedy descent through the
//! upper levels, a best-first search of width `ef` on the level that
//! matters, and the neighbour-selection heuristic of the paper's Algorithm 4.
//!
//! Concurrency, in one place:
//! - `store` (an `RwLock`): the write lock places vectors and allocates or
//!   reuses slots, briefly; searches and the linking of inserts run under the
//!   read lock, in parallel.
//! - a node's links are written under that node's lock, one lock held at a
//!   time, and read lock-free as seqlocks (`links`);
//! - `entry_lock` serialises inserts that raise the top level; the entry
//!   point itself is one atomic word, read without locks.
//!
//! Deleted nodes stay in the graph, so they keep helping navigation; they
//! are only kept out of results. Their slots are reused by later inserts,
//! which repair the old node's neighbourhood first (the idea of hnswlib's
//! `updatePoint`); an upsert repairs the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use vecsearch_core::plan::{exact_scan_pays, walk_budget};
use vecsearch_core::{
    exec, sort_neighbors, IdFilter, IndexSpec, Metric, Neighbor, Plan, Result, TopK, Trace,
};

use crate::links;
use crate::rows::Query;
use crate::storage::{Job, Store, NONE};
use crate::visited::{key, key_distance, key_slot, Pool, Scratch};

/// Batches of at least this many vectors are placed in locality order
/// (`order`); a smaller batch is placed as it comes (its few rows lie
/// together in memory anyway, and single adds pay nothing for the order).
const ORDER_MIN: usize = 1024;

/// Whether large batches are placed in locality order: yes, unless
/// `VECSEARCH_NATIVE_ORDER=0` (to measure the order against the caller's).
fn ordered_batches() -> bool {
    static ORDERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ORDERED.get_or_init(|| std::env::var("VECSEARCH_NATIVE_ORDER").as_deref() != Ok("0"))
}

/// The top of the graph: where every search starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Entry {
    pub(crate) slot: u32,
    pub(crate) level: usize,
}

/// The graph and everything shared by the threads that use it.
pub(crate) struct Graph {
    /// The spec in force (for an opened index, M and ef_construction come from the file).
    pub(crate) spec: IndexSpec,
    level_mult: f64,
    store: RwLock<Store>,
    /// 0 when empty, else `(level + 1) << 32 | slot`.
    entry: AtomicU64,
    entry_lock: Mutex<()>,
    pool: Pool,
}

impl Graph {
    /// A graph over `store` with top `entry`.
    pub(crate) fn new(spec: IndexSpec, store: Store, entry: Option<Entry>) -> Self {
        Graph {
            level_mult: 1.0 / (spec.m as f64).ln(),
            spec,
            store: RwLock::new(store),
            entry: AtomicU64::new(pack(entry)),
            entry_lock: Mutex::new(()),
            pool: Pool::default(),
        }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The current entry point.
    pub(crate) fn entry(&self) -> Option<Entry> {
        unpack(self.entry.load(Ordering::Acquire))
    }

    // ---------- writes ----------

    /// Upserts prepared vectors (ids distinct, validated) and links them, on
    /// `threads` threads.
    pub(crate) fn add(&self, ids: &[u64], vectors: &[Vec<f32>], threads: usize) -> Result<()> {
        // A large batch's rows are placed near their neighbours in space
        // (`order`), and linked in the caller's order all the same.
        let order = if ids.len() >= ORDER_MIN && ordered_batches() {
            crate::order::locality_order(vectors, threads)
        } else {
            (0..ids.len() as u32).collect()
        };
        let jobs: Vec<Job> = {
            let mut st = self.write();
            st.make_room(ids.iter().copied())?;
            let mut placed: Vec<Option<Job>> = (0..ids.len()).map(|_| None).collect();
            for &i in &order {
                let i = i as usize;
                placed[i] = Some(st.place(ids[i], &vectors[i], self.level_mult));
            }
            let jobs = placed.into_iter().flatten().collect();
            if st.free.is_empty() {
                // Every deleted slot is reused: give the list's room back, so
                // an index after churn is no larger than before it.
                st.free = Vec::new();
            }
            jobs
        };
        exec::parallel_for(threads, jobs.len(), |i| self.link(&jobs[i]));
        // A sample of the placed nodes searched for: a group the graph's
        // navigation misses is found by one of its members' probes. A
        // quarter: probing every node cost single adds 38% (measured with
        // the `batch_overhead` example).
        let probes: Vec<u32> = jobs
            .iter()
            .map(|j| j.slot)
            .filter(|&s| sampled(s))
            .collect();
        exec::parallel_for(threads, probes.len(), |i| self.probe(probes[i]));
        Ok(())
    }

    /// Removes `id` from results; its node keeps navigating until reused.
    pub(crate) fn delete(&self, id: u64) -> bool {
        self.write().delete(id)
    }

    /// Links one placed slot. The read lock is taken per node, so a writer
    /// waiting for the store (a delete, another batch) gets in between.
    fn link(&self, job: &Job) {
        let st = self.read();
        let mut sc = self.pool.take();
        if let Some(old) = &job.old {
            self.repair(&st, job.slot, old, &mut sc);
        }
        self.insert(&st, job.slot, job.old.is_some(), &mut sc);
        sc.orphans.push(job.slot);
        self.link_back_orphans(&st, &mut sc);
        self.pool.give(sc);
    }

    /// Gives every node in `sc.orphans` that still has no level-0 in-link
    /// (and is not the entry point) one, so no node is cut off from the
    /// searches: pruning, upserts and reused slots all drop links, and a node
    /// whose last way in was dropped would never be found again.
    fn link_back_orphans(&self, st: &Store, sc: &mut Scratch) {
        // Each link-back only displaces a link whose target keeps another
        // way in, so new orphans appear only through races; bound the work.
        let mut budget = 4 * st.m0 + sc.orphans.len();
        while let Some(c) = sc.orphans.pop() {
            if budget == 0 {
                sc.orphans.clear();
                break;
            }
            budget -= 1;
            let entry = self.entry().map(|e| e.slot);
            let orphaned = st
                .indegree(c)
                .is_some_and(|d| d.load(Ordering::Acquire) < MIN_IN_LINKS);
            if orphaned && entry != Some(c) {
                self.link_back(st, c, sc);
            }
        }
    }

    /// Adds level-0 links to `c` until it has [`MIN_IN_LINKS`], from the
    /// nearest nodes that can take one: `c`'s own neighbours first (they are
    /// near it and reached from the rest of the graph), else the nearest
    /// nodes a search finds.
    fn link_back(&self, st: &Store, c: u32, sc: &mut Scratch) {
        let enough = || {
            st.indegree(c)
                .is_none_or(|d| d.load(Ordering::Acquire) >= MIN_IN_LINKS)
        };
        links::read(st.list(c, 0), &mut sc.links);
        let mut near: Vec<u64> = sc
            .links
            .iter()
            .filter(|&&n| n != c)
            .map(|&n| key(st.rows.between(c, n), n))
            .collect();
        near.sort_unstable();
        for &k in &near {
            self.force_link(st, key_slot(k), c, sc);
            if enough() {
                return;
            }
        }
        let vc = st.rows.vector(c);
        let q = st.rows.query(&vc);
        self.knn(st, &q, self.spec.ef_construction, |x| x != c, sc);
        let found = std::mem::take(&mut sc.found);
        for &k in &found {
            self.force_link(st, key_slot(k), c, sc);
            if enough() {
                break;
            }
        }
        sc.found = found;
    }

    /// Makes `n` link to `c` on level 0: in a free place, else instead of the
    /// link whose target has the most other in-links (at least one more, so
    /// nobody is orphaned by it). False when every target of a full list
    /// depends on `n` for its only way in.
    fn force_link(&self, st: &Store, n: u32, c: u32, sc: &mut Scratch) -> bool {
        let Some(_g) = st.lock(n) else {
            return false;
        };
        links::read(st.list(n, 0), &mut sc.links);
        if sc.links.contains(&c) {
            return true;
        }
        sc.prev.clear();
        sc.prev.extend_from_slice(&sc.links);
        if sc.links.len() < st.cap(0) {
            sc.links.push(c);
        } else if self.spec.metric == Metric::InnerProduct {
            // By inner product a short vector is nobody's near neighbour,
            // and evicting links for it costs recall everywhere; it stays
            // reachable through lists with room, and filters scan.
            return false;
        } else {
            // The farthest link whose target keeps another way in: the one
            // that helps `n`'s neighbourhood least.
            let indeg = |t: u32| st.indegree(t).map_or(0, |d| d.load(Ordering::Acquire));
            let Some(i) = (0..sc.links.len())
                .filter(|&i| indeg(sc.links[i]) > MIN_IN_LINKS)
                .max_by_key(|&i| key(st.rows.between(n, sc.links[i]), sc.links[i]))
            else {
                return false;
            };
            sc.links[i] = c;
        }
        store_links(st, n, 0, &sc.prev, &sc.links, &mut sc.orphans);
        true
    }

    /// Inserts node `s` (its vector and level are in place) into every level
    /// it has. `relink`: `s` was in the graph with another vector, and its
    /// old links are replaced.
    fn insert(&self, st: &Store, s: u32, relink: bool, sc: &mut Scratch) {
        let level = st.level(s);
        let mut ep = self.entry();
        let mut _top_guard = None;
        if ep.is_none_or(|e| level > e.level) {
            _top_guard = Some(self.entry_lock.lock().unwrap_or_else(|e| e.into_inner()));
            ep = self.entry();
        }
        let Some(ep) = ep else {
            self.set_entry(Entry { slot: s, level });
            return;
        };
        let v = st.rows.vector(s);
        let q = &st.rows.query(&v);
        // Node `s` may already be in the graph (upsert, reuse): it is never
        // its own neighbour, so a start at `s` counts as infinitely far.
        let (mut cur, _) = self.descend(st, q, ep, level, s, sc);
        let ef = self.spec.ef_construction;
        for lev in (0..=level.min(ep.level)).rev() {
            // The links `s` has now were chosen for its old vector.
            sc.old.clear();
            if relink {
                links::read(st.list(s, lev), &mut sc.old);
            }
            self.restart(st, q, cur, s, sc);
            self.search_layer(st, q, ef, lev, |x| x != s && !st.is_deleted(x), sc);
            sort_top(sc);
            let Some(&nearest) = sc.found.first() else {
                continue;
            };
            cur = key_slot(nearest);
            self.select(st, &sc.found, own_links(st, lev), &mut sc.selected);
            self.set_own_links(st, s, lev, sc);
            for i in 0..sc.selected.len() {
                let n = sc.selected[i];
                self.connect(st, n, s, lev, sc);
            }
        }
        if level > ep.level {
            self.set_entry(Entry { slot: s, level });
        }
    }

    /// Writes `sc.selected` as the links of `s` on `level`, merged with any
    /// links other inserters added to `s` meanwhile (they found `s` and
    /// linked to it; overwriting those would leave their nodes without the
    /// in-link, possibly unreachable). `sc.old` are stale links to drop.
    fn set_own_links(&self, st: &Store, s: u32, level: usize, sc: &mut Scratch) {
        let Some(_g) = st.lock(s) else {
            return;
        };
        let list = st.list(s, level);
        links::read(list, &mut sc.links);
        sc.pruned.clear();
        sc.pruned.extend_from_slice(&sc.selected);
        for &c in &sc.links {
            if c != s && !sc.old.contains(&c) && !sc.pruned.contains(&c) {
                sc.pruned.push(c);
            }
        }
        if sc.pruned.len() > st.cap(level) {
            sc.keys.clear();
            for &c in &sc.pruned {
                sc.keys.push(key(st.rows.between(s, c), c));
            }
            sc.keys.sort_unstable();
            self.select(st, &sc.keys, st.cap(level), &mut sc.pruned);
        }
        store_links(st, s, level, &sc.links, &sc.pruned, &mut sc.orphans);
    }

    fn set_entry(&self, e: Entry) {
        self.entry.store(pack(Some(e)), Ordering::Release);
    }

    /// Adds the link `n -> s` on `level`; a full list is re-selected with
    /// the heuristic over its links and `s`.
    fn connect(&self, st: &Store, n: u32, s: u32, level: usize, sc: &mut Scratch) {
        let Some(_g) = st.lock(n) else {
            return;
        };
        let list = st.list(n, level);
        links::read(list, &mut sc.links);
        if sc.links.contains(&s) {
            return;
        }
        if sc.links.len() < st.cap(level) {
            sc.links.push(s);
            let before = sc.links.len() - 1;
            store_links(
                st,
                n,
                level,
                &sc.links[..before],
                &sc.links,
                &mut sc.orphans,
            );
            return;
        }
        sc.keys.clear();
        for &c in sc.links.iter().chain([&s]) {
            sc.keys.push(key(st.rows.between(n, c), c));
        }
        sc.keys.sort_unstable();
        // Not `selected`: the caller is iterating over it.
        self.select(st, &sc.keys, st.cap(level), &mut sc.pruned);
        store_links(st, n, level, &sc.links, &sc.pruned, &mut sc.orphans);
    }

    /// Before node `s` gets links for its new vector: the nodes that link to
    /// `s` chose it for its old vector `old`, so each re-selects its links
    /// without `s`, among its other links and the old vector's neighbours
    /// (hnswlib's replace-deleted / `updatePoint` idea). There are no reverse
    /// links: those nodes are found where they must be, near `old`, by the
    /// same descent an insert of `old` would make.
    fn repair(&self, st: &Store, s: u32, old: &[f32], sc: &mut Scratch) {
        let Some(ep) = self.entry() else {
            return;
        };
        let level = st.level(s);
        let old_q = st.rows.query(old);
        let old = &old_q;
        let (mut cur, _) = self.descend(st, old, ep, level, NONE, sc);
        let ef = self.spec.ef_construction;
        for lev in (0..=level.min(ep.level)).rev() {
            self.restart(st, old, cur, NONE, sc);
            self.search_layer(st, old, ef, lev, |x| x != s, sc);
            sort_top(sc);
            if let Some(&nearest) = sc.found.first() {
                cur = key_slot(nearest);
            }
            // The old vector's neighbours: good replacements for the link to `s`.
            let mut near = std::mem::take(&mut sc.old);
            near.clear();
            links::read(st.list(s, lev), &mut near);
            let mut found = std::mem::take(&mut sc.found);
            for n in found
                .iter()
                .map(|&k| key_slot(k))
                .chain(near.iter().copied())
            {
                if n != s {
                    self.unlink(st, n, s, lev, &near, sc);
                }
            }
            found.clear();
            sc.found = found;
            sc.old = near;
        }
    }

    /// If `n` links to `s` on `level`, replaces that link by the nearest to
    /// `n` of `near` it does not link to yet. The rest of the list stays as
    /// it is: re-running the heuristic on it would prune links it gained
    /// while it was not full, and churn would thin the graph.
    fn unlink(&self, st: &Store, n: u32, s: u32, level: usize, near: &[u32], sc: &mut Scratch) {
        let Some(_g) = st.lock(n) else {
            return;
        };
        let list = st.list(n, level);
        links::read(list, &mut sc.links);
        let Some(pos) = sc.links.iter().position(|&c| c == s) else {
            return;
        };
        sc.prev.clear();
        sc.prev.extend_from_slice(&sc.links);
        let best = near
            .iter()
            .filter(|&&c| c != n && c != s && !st.is_deleted(c) && !sc.links.contains(&c))
            .map(|&c| key(st.rows.between(n, c), c))
            .min();
        match best {
            // Room left: the link to `s`, now a long one, stays. Turning
            // every such link into a local one cuts the long-range paths
            // between clusters, and churn compounds it round after round.
            Some(b) if sc.links.len() < st.cap(level) => sc.links.push(key_slot(b)),
            Some(b) => sc.links[pos] = key_slot(b),
            None => return,
        }
        store_links(st, n, level, &sc.prev, &sc.links, &mut sc.orphans);
    }

    /// Algorithm 4: walking candidates nearest first, keep one only if it is
    /// closer to the base than to every neighbour kept so far, which spreads
    /// links over directions instead of piling them into one cluster.
    fn select(&self, st: &Store, sorted: &[u64], m: usize, out: &mut Vec<u32>) {
        out.clear();
        for &k in sorted {
            if out.len() >= m {
                break;
            }
            let (d, c) = (key_distance(k), key_slot(k));
            if out.iter().all(|&r| st.rows.between(c, r) >= d) {
                out.push(c);
            }
        }
    }

    // ---------- search ----------

    /// Moves from `cur` to ever closer neighbours on `level` until none is
    /// closer; never to `exclude`. A node this search has scored before (on
    /// this level or one above) is not scored again: it was no closer than
    /// `cur` was then, and `cur` has only come closer since, so skipping it
    /// changes no step. Each node scored is added to `sc.known`.
    fn greedy(
        &self,
        st: &Store,
        q: &Query<'_>,
        (mut cur, mut cur_d): (u32, f32),
        level: usize,
        exclude: u32,
        sc: &mut Scratch,
    ) -> (u32, f32) {
        let Scratch {
            visited,
            links: buf,
            known,
            scored,
            ..
        } = sc;
        loop {
            let mut moved = false;
            links::read(st.list(cur, level), buf);
            buf.retain(|&n| n != exclude && visited.visit(n));
            *scored += buf.len();
            score_ahead(st, q, buf, |n, d| {
                known.push(key(d, n));
                if d < cur_d {
                    (cur, cur_d, moved) = (n, d, true);
                }
            });
            if !moved {
                return (cur, cur_d);
            }
        }
    }

    /// Starts a search at `start`: nothing visited or known but `start`,
    /// scored, or infinitely far if it is `exclude` (still a way in).
    fn restart(
        &self,
        st: &Store,
        q: &Query<'_>,
        start: u32,
        exclude: u32,
        sc: &mut Scratch,
    ) -> f32 {
        sc.visited.begin(st.len());
        sc.known.clear();
        sc.visited.visit(start);
        let d = if start == exclude {
            f32::INFINITY
        } else {
            sc.scored += 1;
            st.rows.dist(q, start)
        };
        sc.known.push(key(d, start));
        d
    }

    /// Descends from the entry point `ep` by greedy steps through the
    /// levels above `level`; the nearest node found and its distance.
    fn descend(
        &self,
        st: &Store,
        q: &Query<'_>,
        ep: Entry,
        level: usize,
        exclude: u32,
        sc: &mut Scratch,
    ) -> (u32, f32) {
        let mut cur = ep.slot;
        let mut cur_d = self.restart(st, q, cur, exclude, sc);
        for lev in (level + 1..=ep.level).rev() {
            (cur, cur_d) = self.greedy(st, q, (cur, cur_d), lev, exclude, sc);
        }
        (cur, cur_d)
    }

    /// Best-first search of width `ef` on `level` from the nodes in
    /// `sc.known` (visited and scored already); leaves the best `ef` nodes
    /// that `admit` accepts in `sc.top`. Every node, admitted or not, is
    /// followed: deleted and filtered-out nodes still navigate. Above level
    /// 0, each node scored is added to `sc.known` for the level below.
    fn search_layer<A: Fn(u32) -> bool>(
        &self,
        st: &Store,
        q: &Query<'_>,
        ef: usize,
        level: usize,
        admit: A,
        sc: &mut Scratch,
    ) {
        seed(ef, &admit, sc);
        let Scratch {
            visited,
            candidates,
            top,
            links: buf,
            known,
            scored,
            budget,
            reach,
            near,
            stall,
            stalled,
            ..
        } = sc;
        let reach = if level == 0 { *reach } else { 0 };
        let stall = stall.filter(|_| level == 0);
        // Matches this walk admitted itself: a seed from the levels above
        // may be a match far from the query, which says nothing of whether
        // the query's neighbourhood holds any.
        let mut admitted = false;
        // Whether a rejected node at `d` is too far to follow.
        let beyond = |near: &std::collections::BinaryHeap<u64>, d: u64| {
            reach > 0 && near.len() >= reach && near.peek().is_some_and(|&t| d > t)
        };
        near.clear();
        while let Some(c) = candidates.pop() {
            let c = !c;
            if top.len() >= ef && top.peek().is_some_and(|&t| c > t) {
                break;
            }
            if beyond(near, c) && !admit(key_slot(c)) {
                continue;
            }
            links::read(st.list(key_slot(c), level), buf);
            // The next candidate is likely the current best: its list is
            // read from memory while this node's neighbours are scored.
            if let Some(&next) = candidates.peek() {
                st.prefetch_list(key_slot(!next), level);
            }
            buf.retain(|&n| visited.visit(n));
            *scored += buf.len();
            score_ahead(st, q, buf, |n, d| {
                let kn = key(d, n);
                if level > 0 {
                    known.push(kn);
                }
                if top.len() < ef || top.peek().is_some_and(|&t| kn < t) {
                    if !admit(n) {
                        if !beyond(near, kn) {
                            candidates.push(!kn);
                        }
                        return;
                    }
                    candidates.push(!kn);
                    top.push(kn);
                    admitted = true;
                    if top.len() > ef {
                        top.pop();
                    }
                    if reach > 0 {
                        near.push(kn);
                        if near.len() > reach {
                            near.pop();
                        }
                    }
                }
            });
            if budget.is_some_and(|b| *scored > b) {
                return;
            }
            if !admitted && stall.is_some_and(|s| *scored > s) {
                *stalled = true;
                return;
            }
        }
    }

    /// The level-0 search of a sparse filter (ACORN-1's two-hop expansion,
    /// Patel et al. 2024): only admitted nodes are scored and queued; a
    /// neighbour the filter rejects is not scored but stepped over, its own
    /// admitted neighbours taken in its place. Where one node in fifty
    /// matches, a node's 32 links hold fewer than one match, but its 32 x 32
    /// two-hop neighbourhood about twenty: the walk keeps its way through
    /// the matches without scoring the rows between them.
    #[allow(clippy::too_many_arguments)]
    fn search_two_hop<A: Fn(u32) -> bool>(
        &self,
        st: &Store,
        q: &Query<'_>,
        ef: usize,
        admit: A,
        sc: &mut Scratch,
    ) {
        seed(ef, &admit, sc);
        let Scratch {
            visited,
            candidates,
            top,
            links: buf,
            hop,
            keys: targets,
            scored,
            budget,
            ..
        } = sc;
        // A node's expansion scores at most this many matches: enough to
        // keep direction, few enough that a dense match set does not score
        // every two-hop neighbour.
        let cap = 2 * st.cap(0);
        while let Some(c) = candidates.pop() {
            let c = !c;
            if top.len() >= ef && top.peek().is_some_and(|&t| c > t) {
                break;
            }
            links::read(st.list(key_slot(c), 0), buf);
            targets.clear();
            // Direct matches first, then the matches behind each rejected
            // neighbour, nearest link first as the list is ordered.
            for &n in buf.iter() {
                if admit(n) && visited.visit(n) {
                    targets.push(u64::from(n));
                }
            }
            for &n in buf.iter() {
                if targets.len() >= cap {
                    break;
                }
                if admit(n) || !visited.visit(n) {
                    continue;
                }
                links::read(st.list(n, 0), hop);
                for &m in hop.iter() {
                    if targets.len() >= cap {
                        break;
                    }
                    if admit(m) && visited.visit(m) {
                        targets.push(u64::from(m));
                    }
                }
            }
            for &t in targets.iter() {
                st.rows.prefetch(t as u32);
            }
            *scored += targets.len();
            for &t in targets.iter() {
                let n = t as u32;
                let kn = key(st.rows.dist(q, n), n);
                if top.len() < ef || top.peek().is_some_and(|&t| kn < t) {
                    candidates.push(!kn);
                    top.push(kn);
                    if top.len() > ef {
                        top.pop();
                    }
                }
            }
            if budget.is_some_and(|b| *scored > b) {
                return;
            }
        }
    }

    /// The `ef` nearest admitted nodes to `q`, nearest first, in `sc.found`.
    fn knn<A: Fn(u32) -> bool>(
        &self,
        st: &Store,
        q: &Query<'_>,
        ef: usize,
        admit: A,
        sc: &mut Scratch,
    ) {
        self.knn_with(st, q, ef, admit, false, sc);
    }

    /// `knn`, the bottom level walked two hops at a time (`two_hop`).
    fn knn_with<A: Fn(u32) -> bool>(
        &self,
        st: &Store,
        q: &Query<'_>,
        ef: usize,
        admit: A,
        two_hop: bool,
        sc: &mut Scratch,
    ) {
        sc.found.clear();
        sc.stalled = false;
        let Some(ep) = self.entry() else {
            return;
        };
        // Every node the descent scores seeds the level below, so none is
        // scored twice. On minilm-384 (100,000 x 384, recall 0.95) the
        // upper levels score about 70 of a query's ~550 rows, and a query
        // scored 535 rows against 551 when each level started afresh from
        // the one node above (GloVe-50: 1,027 against 1,046).
        let (cur, cur_d) = self.descend(st, q, ep, 1, NONE, sc);
        // After churn, on level 1, a narrow beam instead of one greedy path:
        // the upper levels then have regions a single path can get stuck
        // in, and the bottom search starts in the wrong place
        // (`reachable_after_churn` missed 10-24 of 20,000 without it, 6-8
        // with a beam of 4; see `UPPER_BEAM`). A graph that was only ever
        // added to does not need it, and there it cost 4% more evaluations
        // at equal recall (577 against 554 a query on minilm-384 at recall
        // 0.95).
        if ep.level >= 1 && !st.churned {
            self.greedy(st, q, (cur, cur_d), 1, NONE, sc);
        } else if ep.level >= 1 {
            self.search_layer(st, q, UPPER_BEAM, 1, |_| true, sc);
        }
        if two_hop {
            self.search_two_hop(st, q, ef, admit, sc);
        } else {
            self.search_layer(st, q, ef, 0, admit, sc);
        }
        sort_top(sc);
    }

    /// The `min(k, len)` nearest live (and admitted) neighbours of the
    /// prepared query `q`, with search width `ef`, and the plan that found
    /// them (see [`choose_plan`]).
    pub(crate) fn search(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&IdFilter>,
    ) -> (Vec<Neighbor>, Trace) {
        let st = self.read();
        let live = st.live();
        if k == 0 || live == 0 {
            return (Vec::new(), traced(Plan::Nothing, 0));
        }
        // No more than `live` can come back; a huge k must not size a heap.
        let k = k.min(live);
        let ef = ef.max(k);
        let alive = |s: u32| !st.is_deleted(s);
        let Some(f) = filter else {
            // "Small is exact": a walk as wide as the index would visit
            // everything anyway, and only a scan is sure to be exact.
            if ef >= live {
                return (
                    self.scan(&st, q, k, st.live_slots(), live),
                    traced(Plan::ExactScan, live),
                );
            }
            return self.walk(&st, q, k, ef, alive, || k, Plan::Walk, None);
        };
        let matches = f.len();
        let scan_matches = |scored: usize| {
            let mut slots = st.slots_of(f.ids(), matches);
            if in_slot_order(matches, st.len()) {
                st.ascending(&mut slots);
            }
            let hits = self.scan(&st, q, k, slots.into_iter(), matches);
            (hits, scored + matches)
        };
        let plan = choose_plan(matches, live, ef, st.dim);
        if plan == Plan::ExactScan {
            // A filter admitting a quarter of the slots or more (only in a
            // small index: elsewhere so many matches are walked) is
            // scanned in slot order, each slot tested against the bit
            // array, as flat scans: one pass through memory instead of a
            // lookup per id. At 20,000 x 32-d the 50% cells ran at
            // 0.82-0.89x flat's scan by lookups.
            let dense = (matches.saturating_mul(4) >= st.len())
                .then(|| f.dense(live))
                .flatten();
            if let Some(d) = dense {
                let admit = |s: u32| st.live_id(s).is_some_and(|id| d.contains(id));
                let slots = (0..st.len() as u32).filter(|&s| admit(s));
                let hits = self.scan(&st, q, k, slots, matches);
                return (hits, traced(Plan::ExactScan, matches));
            }
            let (hits, scored) = scan_matches(0);
            return (hits, traced(Plan::ExactScan, scored));
        }
        // The walk tests every node it passes: a plain bit array (one
        // shift and mask) where the ids are dense enough, else the bitmap.
        let dense = f.dense(live);
        let admits = |id: u64| match dense {
            Some(d) => d.contains(id),
            None => f.admits(id),
        };
        let admit = |s: u32| st.live_id(s).is_some_and(admits);
        // Every admitted id is live in the store, but a write in flight may
        // not have reached the graph yet: the walk wants what is there.
        let present = || {
            f.ids()
                .filter(|&id| st.slot_of(id).is_some())
                .count()
                .min(k)
        };
        let (hits, trace) = self.walk(&st, q, k, ef, admit, present, plan, Some(matches));
        if trace.plan == Plan::WalkThenScan {
            let (hits, scored) = scan_matches(trace.scored.unwrap_or(0));
            return (hits, traced(Plan::WalkThenScan, scored));
        }
        (hits, trace)
    }

    /// Graph search, widening `ef` while it finds fewer than `want()`
    /// results (many deleted or filtered-out nodes), then an exact scan if
    /// even the whole graph walk falls short (unreachable nodes). With the
    /// filter's `matches` (a filtered walk), a walk that scores more rows
    /// than that gives up (the plan `WalkThenScan`, no hits: the caller
    /// scans the matches), and follows rejected nodes only as far as
    /// [`reach`] says.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn walk<A, W>(
        &self,
        st: &Store,
        q: &[f32],
        k: usize,
        mut ef: usize,
        admit: A,
        want: W,
        plan: Plan,
        matches: Option<usize>,
    ) -> (Vec<Neighbor>, Trace)
    where
        A: Fn(u32) -> bool,
        W: FnOnce() -> usize,
    {
        let mut sc = self.pool.take();
        sc.scored = 0;
        sc.budget = matches.map(|m| walk_budget(m, ef));
        sc.stall = match (plan, matches, sc.budget) {
            (Plan::FilteredWalk, Some(m), Some(b)) => Some(stall(m, st.live(), b)),
            _ => None,
        };
        let mut want = Some(want);
        let mut target = k;
        let n = st.len();
        let prepared = st.rows.query(q);
        let over = |sc: &Scratch| sc.stalled || sc.budget.is_some_and(|b| sc.scored > b);
        let enough = loop {
            sc.reach = match (plan, matches) {
                (Plan::FilteredWalk, Some(m)) => reach(ef, k, m, st.live()),
                _ => 0,
            };
            self.knn_with(st, &prepared, ef, &admit, plan == Plan::TwoHopWalk, &mut sc);
            if over(&sc) {
                break None;
            }
            if sc.found.len() >= k {
                break Some(true);
            }
            if let Some(w) = want.take() {
                target = w();
            }
            if sc.found.len() >= target {
                break Some(true);
            }
            if ef >= n {
                break Some(false);
            }
            ef = ef.saturating_mul(2).min(n);
        };
        let scored = sc.scored;
        let out = match enough {
            None => (Vec::new(), traced(Plan::WalkThenScan, scored)),
            Some(true) => (self.collect(st, q, k, &sc), traced(plan, scored)),
            Some(false) => {
                let hits = self.scan(st, q, k, (0..n as u32).filter(|&s| admit(s)), 0);
                (hits, traced(Plan::WalkWidened, scored + n))
            }
        };
        sc.budget = None;
        sc.stall = None;
        sc.reach = 0;
        self.pool.give(sc);
        out
    }

    /// The `k` best of a walk's found nodes as neighbours (re-ranked by the
    /// exact vectors where the rows are approximate).
    fn collect(&self, st: &Store, q: &[f32], k: usize, sc: &Scratch) -> Vec<Neighbor> {
        if st.rows.approximate() {
            // The re-rank reads every candidate's exact vector: ask for
            // them all before the first.
            for &kk in &sc.found {
                st.rows.prefetch_exact(key_slot(kk));
            }
        }
        let mut out: Vec<Neighbor> = sc
            .found
            .iter()
            .map(|&kk| {
                let slot = key_slot(kk);
                let id = st.ids.get(slot as usize).copied();
                debug_assert!(id.is_some(), "a found slot has no id");
                // Re-ranking: codes found the candidates, the exact
                // vectors order them.
                let distance = if st.rows.approximate() {
                    st.rows.exact(q, slot)
                } else {
                    key_distance(kk)
                };
                Neighbor {
                    id: id.unwrap_or(0),
                    distance,
                }
            })
            .collect();
        sort_neighbors(&mut out);
        out.truncate(k);
        out
    }

    /// Exact search over live `slots`, about `count` of them.
    fn scan(
        &self,
        st: &Store,
        q: &[f32],
        k: usize,
        slots: impl Iterator<Item = u32>,
        count: usize,
    ) -> Vec<Neighbor> {
        // A filter's matches lie anywhere in memory: each row is asked for
        // a few rows ahead of the one scored, so the fetches overlap. The
        // 1% filters of `vecsearch bench --filters --n 200000 --dim 96`
        // (2,000 matches) ran at 1.05-1.14x flat's scan without it,
        // 1.13-1.32x with it.
        // Listed into room for `count` (the filter's match count) at once:
        // a list grown as it filled cost a scan of 18 matches 0.25 µs of
        // its 2.35, the whole of its gap to flat's same scan (2.09-2.12
        // against 2.32-2.39 µs, flat 2.12-2.14; `scan_probe`).
        let mut listed = Vec::with_capacity(count);
        listed.extend(slots);
        let slots = listed;
        let w = st.rows.prefetch_ahead();
        for &s in slots.iter().take(w) {
            st.rows.prefetch_scan(s);
        }
        let mut top = TopK::new(k);
        for (i, &s) in slots.iter().enumerate() {
            if let Some(&ahead) = slots.get(i + w) {
                st.rows.prefetch_scan(ahead);
            }
            if let Some(&id) = st.ids.get(s as usize) {
                top.push(id, st.rows.exact(q, s));
            }
        }
        top.into_sorted()
    }

    /// The live slots a level-0 walk from the entry point cannot reach
    /// (deleted nodes navigate, so they are walked through): what a search
    /// could never return. Empty in a healthy graph.
    pub(crate) fn unreachable(&self) -> Vec<u32> {
        let st = self.read();
        let Some(ep) = self.entry() else {
            return Vec::new();
        };
        let mut seen = vec![false; st.len()];
        mark_reachable(&st, ep.slot, &mut seen, &mut Vec::new());
        (0..st.len() as u32)
            .filter(|&s| !st.is_deleted(s) && !seen[s as usize])
            .collect()
    }

    /// Searches for node `c`'s own vector as a query would; when the search
    /// ends elsewhere (a group of nodes the graph's navigation misses), links
    /// `c` from where it ended, so the next search follows the link.
    fn probe(&self, c: u32) {
        let st = self.read();
        if st.is_deleted(c) {
            return;
        }
        let mut sc = self.pool.take();
        let v = st.rows.vector(c);
        let q = st.rows.query(&v);
        self.knn(&st, &q, self.spec.ef_search, |x| !st.is_deleted(x), &mut sc);
        let hit = sc
            .found
            .iter()
            .take(10)
            .any(|&k| key_slot(k) == c || key_distance(k) <= 0.0);
        if !hit {
            let found = std::mem::take(&mut sc.found);
            let mut linked = 0;
            for &k in &found {
                if key_slot(k) != c && self.force_link(&st, key_slot(k), c, &mut sc) {
                    linked += 1;
                    if linked >= MIN_IN_LINKS {
                        break;
                    }
                }
            }
            sc.found = found;
        }
        self.pool.give(sc);
    }

    /// Rows scored and nodes visited by one unfiltered search for `q` at
    /// width `ef`.
    #[cfg(test)]
    pub(crate) fn scored_and_visited(&self, q: &[f32], ef: usize) -> (usize, usize) {
        let st = self.read();
        let mut sc = Scratch::default();
        let q = st.rows.query(q);
        self.knn(&st, &q, ef, |_| true, &mut sc);
        (sc.scored, sc.visited.count())
    }

    /// A copy of the stored (prepared) vector of `id`.
    pub(crate) fn get(&self, id: u64) -> Option<Vec<f32>> {
        let st = self.read();
        st.slot_of(id).map(|s| st.rows.vector(s).into_owned())
    }
}

/// The plan of a filtered search: an exact scan of the `matches` rows when
/// that is cheaper than a walk ([`exact_scan_pays`]), else the filtered
/// walk, which gives up for the scan once it has scored more rows than its
/// [`walk_budget`].
///
/// The two-hop walk ([`Plan::TwoHopWalk`], ACORN-1) is not chosen: measured
/// on 200,000 x 96-d clustered points (`VECSEARCH_NATIVE_PLAN=two_hop_walk
/// vecsearch bench --filters --n 200000 --dim 96`), it was slower than the
/// filtered walk at every selectivity (0.38x at 50%, 0.73x at 10%, 0.51x
/// at 1%) and below recall 0.95 under 2% (0.89-0.92 at 1%), where the scan
/// is 9x faster than either: on a graph pruned by the RNG heuristic the
/// two-hop neighbourhood of a node is not dense enough in matches (ACORN
/// builds a denser graph for it). `VECSEARCH_NATIVE_PLAN` (`exact_scan`,
/// `filtered_walk`, `two_hop_walk`) forces a plan, to repeat the measure.
pub(crate) fn choose_plan(matches: usize, live: usize, ef: usize, dim: usize) -> Plan {
    if let Some(p) = forced_plan() {
        return p;
    }
    if exact_scan_pays(matches, live, ef, dim) {
        Plan::ExactScan
    } else {
        Plan::FilteredWalk
    }
}

/// See [`reach`].
const REACH: f64 = 4.0;

/// How far a filtered walk of width `ef` follows the nodes its filter
/// rejects: while they are nearer than the `reach`-th best admitted node,
/// `REACH` x ef x the filter's share of the index, at least `k`, at most
/// `ef` (`ef`: as far as the walk's worst kept match, no bound).
///
/// A walk that follows every rejected node nearer than its `ef`-th admitted
/// one expands a ball of `ef / share` nodes: 640 at a 10% filter and ef 64,
/// 4.5x the hops of an unfiltered search and 3.2x its time, though it
/// scores only 1.6x as many rows (200,000 x 96-d clustered points). Rejected
/// nodes only carry the walk toward the matches; following them while they
/// are nearer than the `reach`-th match bounds that ball to about
/// `REACH x ef` nodes. At a 10% filter the walk then scores half the rows
/// (`a_sparse_filter_walk_follows_rejected_nodes_only_near_its_matches`).
///
/// `REACH` trades recall for speed. At 200,000 points, alternated runs of
/// one build with and without the bound (`VECSEARCH_NATIVE_REACH=1000
/// vecsearch bench --filters --n 200000 --dim 96 --backends native`): the
/// 10% shapes at 1.19-1.46x the QPS, recall 0.999-1.000 either way. At
/// 1,000,000 points the bound costs recall on them: 0.985-0.990 with 4,
/// 0.970-0.978 with 2.5, against 0.998-1.000 unbounded (at 8b46fe4).
pub(crate) fn reach(ef: usize, k: usize, matches: usize, live: usize) -> usize {
    let share = matches as f64 / live.max(1) as f64;
    let r = (reach_factor() * ef as f64 * share).ceil() as usize;
    r.clamp(k.min(ef), ef)
}

/// [`REACH`], or `VECSEARCH_NATIVE_REACH` where set to a positive number:
/// to measure the bound against others (1000: no bound at any share).
fn reach_factor() -> f64 {
    static FACTOR: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *FACTOR.get_or_init(|| {
        std::env::var("VECSEARCH_NATIVE_REACH")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(REACH)
    })
}

/// How many rows a filtered walk scores before, having admitted none, it
/// gives up early for the scan of the matches (`WalkThenScan`): the filter
/// avoids the query's neighbourhood, and the walk would spend its whole
/// `budget` scoring the rejected rows between. A filter whose matches were
/// spread at random would have shown the walk 8 of them by then (the chance
/// of none, e^-8, is 0.03%), and no walk stalls before a quarter of its
/// budget: a walk whose entry lies outside the matches' region (the
/// bench's correlated filter, 28%: 10 of 200 queries had found none after
/// 128 rows) finds them before then.
///
/// A stalled walk gives up for the scan rather than starting again from a
/// sample of the matches: tried at a million points (`walk_probe`, the
/// bench's anti-correlated cell, 2.7% of the points), a walk restarted
/// from 64-1,024 evenly spread matches either crossed back toward the
/// query through rejected nodes and ran out of budget (182 of 190 walks,
/// recall 0.972 against the scan's 0.991), or, kept to the matches, ended
/// far from the best ones (recall 0.38 at ef 64, 0.77 at 4 x ef and below
/// the scan's speed; ACORN's two-hop walk 0.53): in 96 dimensions a query
/// far from every match sees them all at nearly one distance, and a graph
/// built for neighbours does not lead a greedy walk across that plateau.
pub(crate) fn stall(matches: usize, live: usize, budget: usize) -> usize {
    let share = matches.max(1) as f64 / live.max(1) as f64;
    ((8.0 / share).ceil() as usize).max(budget / 4)
}

/// Whether an exact scan of `matches` of `slots` slots reads its rows in
/// ascending slot order (`Store::ascending`) rather than in the matches'
/// id order: where they are at least 1/64 of the slots. The locality order
/// keeps near vectors in nearby slots, so a filter that follows the
/// vectors (a region) has its rows in runs that slot order reads front to
/// back; and ordering costs a pass over `slots / 8` bytes, which a scan of
/// fewer matches does not pay back. At a million 96-d points, alternated
/// in one process (`AB_SCAN_ORDER=1 walk_probe 1000000 5`, the same saved
/// index), the anti-correlated region's 26,727 matches: 1.18x-1.31x the
/// QPS given up to the scan, 1.22x-1.31x forced to it; at 200,000 points
/// a region's 4,000 matches 1.09x (`PROBE_CLUSTERED=1 PROBE_FILTER=region
/// AB_SCAN_ORDER=1 scan_probe 200000 5`). Below the bound, at 200,000:
/// a keyword's 2,000 unrelated matches 0.98x, 18 matches 0.58x (the
/// bit array's pass then costs more than the scan).
pub(crate) fn in_slot_order(matches: usize, slots: usize) -> bool {
    use crate::tuning::{scan_order, ScanOrder};
    match scan_order() {
        ScanOrder::Auto => matches.saturating_mul(64) >= slots,
        ScanOrder::Ids => false,
        ScanOrder::Slots => true,
    }
}

/// Scores each of `nodes` against `q`, in order, handing `each` the node
/// and its distance; each row is asked of memory a few rows ahead of the one
/// scored, so the fetches overlap.
#[inline(always)]
fn score_ahead(st: &Store, q: &Query<'_>, nodes: &[u32], mut each: impl FnMut(u32, f32)) {
    let w = st.rows.prefetch_ahead();
    for &n in nodes.iter().take(w) {
        st.rows.prefetch(n);
    }
    for (i, &n) in nodes.iter().enumerate() {
        if let Some(&m) = nodes.get(i.saturating_add(w)) {
            st.rows.prefetch(m);
        }
        each(n, st.rows.dist(q, n));
    }
}

/// Starts a best-first search from the nodes in `sc.known`, visited and
/// scored already: each is queued, and kept among the best `ef` if `admit`
/// accepts it.
fn seed<A: Fn(u32) -> bool>(ef: usize, admit: &A, sc: &mut Scratch) {
    let Scratch {
        candidates,
        top,
        known,
        ..
    } = sc;
    candidates.clear();
    top.clear();
    for &k in known.iter() {
        candidates.push(!k);
        if admit(key_slot(k)) {
            top.push(k);
            if top.len() > ef {
                top.pop();
            }
        }
    }
}

fn forced_plan() -> Option<Plan> {
    static FORCED: std::sync::OnceLock<Option<Plan>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(
        || match std::env::var("VECSEARCH_NATIVE_PLAN").ok()?.as_str() {
            "exact_scan" => Some(Plan::ExactScan),
            "filtered_walk" => Some(Plan::FilteredWalk),
            "two_hop_walk" => Some(Plan::TwoHopWalk),
            _ => None,
        },
    )
}

fn traced(plan: Plan, scored: usize) -> Trace {
    Trace {
        plan,
        scored: Some(scored),
    }
}

/// Stores `new` as the links of `n` on `level` (the caller holds `n`'s lock
/// and read `prev` under it), keeping the level-0 in-degrees: the new links
/// are counted before the list is published and the dropped ones after, so
/// a count never reads below the truth. Nodes left with none go to `orphans`.
fn store_links(
    st: &Store,
    n: u32,
    level: usize,
    prev: &[u32],
    new: &[u32],
    orphans: &mut Vec<u32>,
) {
    let list = st.list(n, level);
    if level != 0 {
        links::write(list, new);
        return;
    }
    for &t in new {
        if let Some(d) = st.indegree(t) {
            d.fetch_add(1, Ordering::AcqRel);
        }
    }
    links::write(list, new);
    for &t in prev {
        if let Some(d) = st.indegree(t) {
            let before = d.fetch_sub(1, Ordering::AcqRel);
            debug_assert!(before > 0, "in-degree of {t} went below zero");
            if before <= MIN_IN_LINKS {
                orphans.push(t);
            }
        }
    }
}

/// Level-0 in-links every node keeps (but the entry point, and short vectors
/// by inner product): one is what makes a node reachable; a second keeps it
/// findable when the search arrives from the other side.
const MIN_IN_LINKS: u32 = 2;

/// How many links a new node picks for itself on `level`: `M` above, and
/// `1.5 M` on level 0, whose lists hold `2 M` (the rest is room for the
/// links later nodes add back). hnswlib picks `M` everywhere, faiss `2 M` on
/// level 0, which is why its graph found more at equal ef. More of the
/// heuristic's links give the bottom search more ways out where the data is
/// hard: on GloVe-50 100k, runs beside a build picking `M` (`vecsearch bench
/// --dataset glove-50 --n 100000 --backends native --churn 0 --ef
/// 24,32,48,64,96,128,192,256`), 10,516 against 13,561 QPS at recall 0.99
/// (2,386 against 2,096 evaluations a query) and 24,778 against 26,652 at
/// 0.95; on minilm-384, 11,484 against 12,414 at 0.95, 4,735 against 5,008
/// at 0.99; builds 5-12% slower. `2 M` measured the same within the noise
/// and builds no faster. The wider lists left pockets in a churned graph's
/// upper levels that one greedy path could not leave: see [`UPPER_BEAM`].
fn own_links(st: &Store, level: usize) -> usize {
    if level == 0 {
        st.m + st.m / 2
    } else {
        st.m
    }
}

/// One slot in four, spread by a multiplicative hash.
fn sampled(slot: u32) -> bool {
    slot.wrapping_mul(0x9E37_79B9) >> 30 == 0
}

/// Width of the level-1 beam that seeds a search's bottom level after
/// churn. 8, not 4: with the wider level-0 lists of [`own_links`], the
/// conformance case `reachable_after_churn` (20,000 points, three rounds of
/// moves, deletes and re-adds) missed 38-41 of its 20,000 stored vectors in
/// 9 of 34 runs (a run per storage kind) with a beam of 4, every miss a
/// search whose upper levels ended at the same node, far from the query
/// (its level-2 links all farther still); with 8, 5-14 in 24 runs, against
/// 4-10 in 15 runs of the narrower lists with 4. (16, tried with the wider
/// lists only before churn: 5-8 in 18.)
const UPPER_BEAM: usize = 8;

/// Drains `sc.top` into `sc.found`, nearest first.
fn sort_top(sc: &mut Scratch) {
    sc.found.clear();
    sc.found.extend(sc.top.drain());
    sc.found.sort_unstable();
}

fn pack(e: Option<Entry>) -> u64 {
    e.map_or(0, |e| ((e.level as u64 + 1) << 32) | u64::from(e.slot))
}

fn unpack(x: u64) -> Option<Entry> {
    (x != 0).then(|| Entry {
        slot: x as u32,
        level: ((x >> 32) - 1) as usize,
    })
}

/// Marks in `seen` every node a level-0 walk from `from` reaches (deleted
/// nodes navigate, so the walk goes through them).
fn mark_reachable(st: &Store, from: u32, seen: &mut [bool], buf: &mut Vec<u32>) {
    let mut stack = Vec::new();
    if let Some(x) = seen.get_mut(from as usize) {
        *x = true;
        stack.push(from);
    }
    while let Some(s) = stack.pop() {
        links::read(st.list(s, 0), buf);
        for &t in buf.iter() {
            if let Some(x) = seen.get_mut(t as usize) {
                if !*x {
                    *x = true;
                    stack.push(t);
                }
            }
        }
    }
}
