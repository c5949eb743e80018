//! Engine tests: recall against exact search, deletion and slot reuse,
//! upsert, churn, concurrency, reproducibility and crafted files.

use std::path::PathBuf;

use vecsearch_core::persist::{write_atomic, Header, Writer};
use vecsearch_core::synthetic::{clustered, exact_knn, recall, Rng};
use vecsearch_core::{Blocking, Error, Filter, IndexSpec, Metric, SearchParams, VectorIndex};

use crate::NativeIndex;

fn index(spec: IndexSpec) -> Blocking<NativeIndex> {
    Blocking::new(Box::new(NativeIndex::new(spec).unwrap()))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vs-native-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Mean recall@10 of `idx` against exact search over `live` for `queries`.
fn mean_recall(
    idx: &Blocking<NativeIndex>,
    metric: Metric,
    live: &[(u64, &[f32])],
    queries: &[Vec<f32>],
    params: &SearchParams,
) -> f64 {
    let mut sum = 0.0;
    for q in queries {
        let got = idx.search(q, 10, params).unwrap();
        let admitted: Vec<(u64, &[f32])> = match &params.filter {
            Some(f) => live
                .iter()
                .copied()
                .filter(|(id, _)| f.admits(*id, None))
                .collect(),
            None => live.to_vec(),
        };
        sum += recall(&got, &exact_knn(metric, &admitted, q, 10));
    }
    sum / queries.len() as f64
}

struct Data {
    ids: Vec<u64>,
    points: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
}

fn data(n: usize, dim: usize, metric: Metric, seed: u64) -> Data {
    let rows = clustered(n + 50, dim, 40, seed, metric).to_rows();
    let (p, q) = rows.split_at(n);
    Data {
        ids: (0..n as u64).map(|i| i * 3 + 1).collect(),
        points: p.to_vec(),
        queries: q.to_vec(),
    }
}

impl Data {
    fn pairs(&self) -> Vec<(u64, &[f32])> {
        self.ids
            .iter()
            .copied()
            .zip(self.points.iter().map(|p| p.as_slice()))
            .collect()
    }
}

#[test]
fn recall_at_ef_64_for_every_metric() {
    for metric in Metric::ALL {
        let d = data(4000, 32, metric, 11);
        let idx = index(IndexSpec::new(32, metric).with_threads(2));
        idx.add_batch(&d.ids, &d.points).unwrap();
        let r = mean_recall(
            &idx,
            metric,
            &d.pairs(),
            &d.queries,
            &SearchParams::default().with_ef(64),
        );
        assert!(r >= 0.95, "{metric}: recall {r}");
        // Distances agree with the exact ones.
        let got = idx
            .search(&d.queries[0], 5, &SearchParams::default())
            .unwrap();
        for nb in got {
            let i = d.ids.iter().position(|&x| x == nb.id).unwrap();
            let exact =
                vecsearch_core::distance::exact_distance(metric, &d.queries[0], &d.points[i]);
            assert!(
                vecsearch_core::distance::agrees(nb.distance, exact),
                "{metric}: {} vs {exact}",
                nb.distance
            );
        }
    }
}

#[test]
fn deleted_ids_never_return_and_come_back_when_readded() {
    let d = data(2000, 16, Metric::L2, 3);
    let idx = index(IndexSpec::new(16, Metric::L2));
    idx.add_batch(&d.ids, &d.points).unwrap();
    let gone: Vec<u64> = d.ids.iter().copied().step_by(2).collect();
    for &id in &gone {
        assert!(idx.delete(id).unwrap());
        assert!(!idx.delete(id).unwrap());
    }
    assert!(!idx.delete(999_999_999).unwrap());
    assert_eq!(idx.len().unwrap(), 1000);
    for (i, p) in d.points.iter().enumerate().step_by(2) {
        let got = idx
            .search(p, 10, &SearchParams::default().with_ef(10))
            .unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|n| n.id % 6 != 1), "a deleted id came back");
        assert!(idx.get(d.ids[i]).unwrap().is_none());
    }
    idx.add(d.ids[0], &d.points[0]).unwrap();
    assert_eq!(
        idx.search(&d.points[0], 1, &SearchParams::default())
            .unwrap()[0]
            .id,
        d.ids[0]
    );
    assert_eq!(idx.len().unwrap(), 1001);
}

#[test]
fn upsert_moves_a_vector_and_repairs_links() {
    let d = data(3000, 16, Metric::L2, 5);
    let idx = index(IndexSpec::new(16, Metric::L2));
    idx.add_batch(&d.ids, &d.points).unwrap();
    // Move a tenth of the points onto other points' positions (far away).
    let mut rng = Rng::new(9);
    let mut moved = Vec::new();
    for i in (0..3000).step_by(10) {
        let j = rng.below(3000);
        let mut v = d.points[j].clone();
        v[0] += 0.01;
        idx.add(d.ids[i], &v).unwrap();
        moved.push((i, v));
    }
    assert_eq!(idx.len().unwrap(), 3000);
    let mut points = d.points.clone();
    for (i, v) in &moved {
        points[*i] = v.clone();
        assert_eq!(idx.get(d.ids[*i]).unwrap().as_deref(), Some(v.as_slice()));
    }
    let live: Vec<(u64, &[f32])> = d
        .ids
        .iter()
        .copied()
        .zip(points.iter().map(|p| p.as_slice()))
        .collect();
    let r = mean_recall(
        &idx,
        Metric::L2,
        &live,
        &d.queries,
        &SearchParams::default(),
    );
    assert!(r >= 0.95, "recall after upserts {r}");
    for (i, v) in moved.iter().take(20) {
        let got = idx.search(v, 2, &SearchParams::default()).unwrap();
        assert!(
            got.iter().any(|n| n.id == d.ids[*i]),
            "a moved point is not found at its new place"
        );
    }
}

#[test]
fn churn_reuses_slots_keeps_memory_and_recall() {
    let n = 3000;
    let rows = clustered(n * 4 + 50, 24, 40, 21, Metric::L2).to_rows();
    let queries = &rows[n * 4..];
    let idx = index(IndexSpec::new(24, Metric::L2).with_threads(2));
    let ids: Vec<u64> = (0..n as u64).collect();
    idx.add_batch(&ids, &rows[..n]).unwrap();
    // The engine's own bytes (the front door's id table is a hash map whose
    // capacity may move a little under churn; the suite bounds it).
    // The id table apart: ids above its direct array's bound, new ones
    // here, go to its hash, whatever the slots do (bounded below).
    let engine_bytes = || {
        let table = idx.inner().engine().inner.read().slots.bytes();
        vecsearch_core::Engine::memory_bytes(idx.inner().engine()).unwrap() - table
    };
    let before = engine_bytes();
    let nodes_before = idx.inner().engine().inner.read().len();
    let mut live: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(1);
    let mut next = n;
    for _ in 0..3 {
        rng.shuffle(&mut live);
        for i in live.drain(..n * 3 / 10) {
            assert!(idx.delete(i as u64).unwrap());
        }
        let fresh: Vec<usize> = (next..next + n * 3 / 10).collect();
        next += fresh.len();
        let ids: Vec<u64> = fresh.iter().map(|&i| i as u64).collect();
        let pts: Vec<Vec<f32>> = fresh.iter().map(|&i| rows[i].clone()).collect();
        idx.add_batch(&ids, &pts).unwrap();
        live.extend(fresh);
    }
    assert_eq!(
        idx.inner().engine().inner.read().len(),
        nodes_before,
        "slots were not reused"
    );
    let after = engine_bytes();
    assert!(after <= before, "memory grew from {before} to {after}");
    // The id table: its direct array (at most 8 bytes an id it held when it
    // grew) and a hash at its lowest load (8 bytes a hashed id at most).
    let table = idx.inner().engine().inner.read().slots.bytes();
    assert!(
        table <= 16 * n,
        "the id table holds {table} bytes for {n} ids"
    );
    let pairs: Vec<(u64, &[f32])> = live
        .iter()
        .map(|&i| (i as u64, rows[i].as_slice()))
        .collect();
    let r = mean_recall(&idx, Metric::L2, &pairs, queries, &SearchParams::default());
    assert!(r >= 0.95, "recall after churn {r}");
}

/// Nodes whose level-0 list holds `slot`.
fn in_links(idx: &Blocking<NativeIndex>, slot: u32) -> Vec<u32> {
    let st = idx.inner().engine().inner.read();
    let mut buf = Vec::new();
    (0..st.len() as u32)
        .filter(|&n| {
            crate::links::read(st.list(n, 0), &mut buf);
            n != slot && buf.contains(&slot)
        })
        .collect()
}

/// The level-0 list of `slot`.
fn list_of(idx: &Blocking<NativeIndex>, slot: u32) -> Vec<u32> {
    let st = idx.inner().engine().inner.read();
    let mut buf = Vec::new();
    crate::links::read(st.list(slot, 0), &mut buf);
    buf
}

/// A node that linked to a slot now reused far away gets a replacement near
/// the old vector: instead of the link where its list was full, beside it
/// (the link, now a long one, stays) where it had room.
#[test]
fn a_reused_slot_gives_its_old_in_linkers_a_replacement() {
    let d = data(3000, 16, Metric::L2, 14);
    let idx = index(IndexSpec::new(16, Metric::L2).with_threads(1));
    idx.add_batch(&d.ids, &d.points).unwrap();
    let victims = [5usize, 700, 1400, 2100, 2800];
    let (mut checked, mut replaced) = (0, 0);
    for (k, &i) in victims.iter().enumerate() {
        let slot = idx.inner().engine().inner.read().slot_of(d.ids[i]).unwrap();
        let old_in = in_links(&idx, slot);
        let before: Vec<Vec<u32>> = old_in.iter().map(|&n| list_of(&idx, n)).collect();
        idx.delete(d.ids[i]).unwrap();
        // A far point reuses the slot.
        idx.add(9_000_000 + k as u64, &[50.0 + k as f32; 16])
            .unwrap();
        assert_eq!(
            idx.inner()
                .engine()
                .inner
                .read()
                .slot_of(9_000_000 + k as u64)
                .unwrap(),
            slot
        );
        for (n, was) in old_in.iter().zip(&before) {
            let now = list_of(&idx, *n);
            if now.iter().any(|c| !was.contains(c) && *c != slot) {
                replaced += 1;
            } else {
                eprintln!("node {n} kept {was:?}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "the victims had {checked} in-links");
    // A node whose list already holds every candidate keeps its list.
    assert!(
        replaced * 10 >= checked * 9,
        "{replaced} of {checked} old in-linkers got a replacement"
    );
}

#[test]
fn mostly_deleted_graph_still_returns_min_k_len() {
    let d = data(1000, 8, Metric::L2, 2);
    let idx = index(IndexSpec::new(8, Metric::L2));
    idx.add_batch(&d.ids, &d.points).unwrap();
    for &id in &d.ids[..990] {
        idx.delete(id).unwrap();
    }
    let got = idx
        .search(&d.queries[0], 10, &SearchParams::default().with_ef(10))
        .unwrap();
    let want = exact_knn(Metric::L2, &d.pairs()[990..], &d.queries[0], 10);
    assert_eq!(
        got.iter().map(|n| n.id).collect::<Vec<_>>(),
        want.iter().map(|n| n.id).collect::<Vec<_>>()
    );
    for &id in &d.ids[990..] {
        idx.delete(id).unwrap();
    }
    assert!(idx
        .search(&d.queries[0], 10, &SearchParams::default())
        .unwrap()
        .is_empty());
    idx.add(5, &d.points[3]).unwrap();
    assert_eq!(
        idx.search(&d.queries[0], 10, &SearchParams::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn planner_switches_at_the_measured_crossover() {
    use vecsearch_core::plan::SCAN_BELOW_COORDS;
    use vecsearch_core::Plan;
    let dim = 64;
    let at = SCAN_BELOW_COORDS / dim; // the most matches still scanned
    let n = 2 * at + 2_000;
    let d = data(n, dim, Metric::L2, 8);
    let idx = index(IndexSpec::new(dim, Metric::L2).with_threads(2));
    idx.add_batch(&d.ids, &d.points).unwrap();
    let exact = |f: &Filter, q: &[f32]| {
        let admitted: Vec<(u64, &[f32])> = d
            .pairs()
            .into_iter()
            .filter(|(id, _)| f.admits(*id, None))
            .collect();
        exact_knn(Metric::L2, &admitted, q, 10)
    };
    let cases = [
        (
            "10 matches",
            Filter::allow(d.ids.iter().copied().step_by(n / 10).take(10)),
            Plan::ExactScan,
        ),
        (
            "at the crossover",
            Filter::allow(d.ids[..at].iter().copied()),
            Plan::ExactScan,
        ),
        (
            "one past it",
            Filter::allow(d.ids[..at + 1].iter().copied()),
            Plan::FilteredWalk,
        ),
        (
            "50%",
            Filter::allow(d.ids.iter().copied().step_by(2)),
            Plan::FilteredWalk,
        ),
    ];
    for (what, f, plan) in cases {
        let params = SearchParams::default().with_filter(f.clone());
        let mut hits = 0;
        for q in d.queries.iter().take(20) {
            let e = idx.explain(q, 10, &params).unwrap();
            assert_eq!(e.plan, plan, "{what}: {e}");
            assert_eq!(e.matches, Some(idx.count(&f).unwrap()), "{what}");
            assert_eq!(e.hits, idx.search(q, 10, &params).unwrap(), "{what}");
            let want = exact(&f, q);
            if plan == Plan::ExactScan {
                // Exact (ids; the kernels round distances their own way).
                let ids =
                    |v: &[vecsearch_core::Neighbor]| v.iter().map(|h| h.id).collect::<Vec<_>>();
                assert_eq!(ids(&e.hits), ids(&want), "{what}");
                assert_eq!(e.scored, e.matches, "{what}: a scan scores the matches");
            }
            hits += e
                .hits
                .iter()
                .filter(|h| want.iter().any(|w| w.id == h.id))
                .count();
        }
        let r = hits as f64 / 200.0;
        assert!(r >= 0.95, "{what}: recall {r}");
    }
    // Unfiltered, and a filter matching nothing.
    let e = idx
        .explain(&d.queries[0], 10, &SearchParams::default())
        .unwrap();
    assert_eq!(e.plan, Plan::Walk);
    let none = SearchParams::default().with_filter(Filter::allow([u64::MAX]));
    let e = idx.explain(&d.queries[0], 10, &none).unwrap();
    assert_eq!(
        (e.plan, e.matches, e.hits.len()),
        (Plan::Nothing, Some(0), 0)
    );
}

/// An exact scan answers the same whichever order it reads its matches'
/// rows in: ids and distances, ties (every vector stored twice, under two
/// ids) broken by id either way. The filter admits an eighth of the slots,
/// so by default (`ScanOrder::Auto`) its scan reads them in slot order.
#[test]
fn exact_scans_answer_alike_in_id_and_slot_order() {
    use crate::tuning::{set_scan_order, ScanOrder};
    use vecsearch_core::Plan;
    let d = data(2_000, 8, Metric::L2, 11);
    let idx = index(IndexSpec::new(8, Metric::L2).with_threads(2));
    let twice: Vec<Vec<f32>> = d.points.iter().chain(&d.points).cloned().collect();
    let ids: Vec<u64> = (0..twice.len() as u64).map(|i| i * 5 + 3).collect();
    idx.add_batch(&ids, &twice).unwrap();
    // Both copies of every eighth vector of the first half, and of some
    // of the second half's alone.
    let allowed: Vec<u64> = (0..2_000)
        .step_by(16)
        .flat_map(|i| [ids[i], ids[i + 2_000]])
        .chain(ids.iter().copied().skip(2_001).step_by(16))
        .collect();
    assert!(crate::graph::in_slot_order(allowed.len(), twice.len()));
    let params = SearchParams::default().with_filter(Filter::allow(allowed));
    for q in d.queries.iter().take(20) {
        let mut answers = Vec::new();
        for order in [ScanOrder::Ids, ScanOrder::Slots, ScanOrder::Auto] {
            set_scan_order(order);
            let e = idx.explain(q, 10, &params).unwrap();
            assert_eq!(e.plan, Plan::ExactScan);
            answers.push(e.hits);
        }
        set_scan_order(ScanOrder::Auto);
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0], answers[2]);
        // The copies tie: each pair comes back lower id first.
        let h = &answers[0];
        assert!(h.windows(2).all(|w| w[0].distance < w[1].distance
            || (w[0].distance == w[1].distance && w[0].id < w[1].id)));
    }
}

#[test]
fn reach_scales_with_the_filters_share() {
    use crate::graph::reach;
    assert_eq!(
        reach(64, 10, 20_000, 200_000),
        26,
        "10%: 4 x 64 x 0.1, rounded up"
    );
    assert_eq!(reach(64, 10, 100_000, 200_000), 64, "50%: no bound");
    assert_eq!(
        reach(64, 10, 39_000, 200_000),
        50,
        "19.5%: 4 x 64 x 0.195 = 49.9"
    );
    assert_eq!(reach(64, 10, 1_000, 200_000), 10, "never below k");
    assert_eq!(reach(8, 10, 1_000, 200_000), 8, "nor above ef");
    assert_eq!(reach(64, 10, 5, 0), 64, "an empty index divides by nothing");
}

/// `slot_of` never answers with a deleted slot that still holds the id:
/// with few ids (the id table's hash) and with many dense ones (its direct
/// array), through deletes, reused slots and re-adds.
#[test]
fn slot_of_never_answers_with_a_deleted_slot() {
    for n in [10u64, 1000] {
        let idx = index(IndexSpec::new(4, Metric::L2).with_threads(1));
        let rows: Vec<Vec<f32>> = (0..n + 2).map(|i| vec![i as f32; 4]).collect();
        let ids: Vec<u64> = (0..n).collect();
        // Batches under `ORDER_MIN`: placed in order, each id in the slot
        // of its own number.
        for (i, r) in ids.chunks(500).zip(rows[..n as usize].chunks(500)) {
            idx.add_batch(i, r).unwrap();
        }
        let slot = |id: u64| idx.inner().engine().inner.read().slot_of(id);
        assert_eq!(slot(3), Some(3), "added in order: the id's own slot");
        idx.delete(3).unwrap();
        assert_eq!(
            idx.inner().engine().inner.read().ids[3],
            3,
            "the slot keeps it"
        );
        assert_eq!(slot(3), None, "but it is deleted");
        // Slot 3 is reused by id n + 1; id 3 comes back elsewhere.
        idx.add_batch(&[n + 1], &rows[n as usize + 1..]).unwrap();
        assert_eq!(slot(n + 1), Some(3));
        idx.add_batch(&[3], &rows[3..4]).unwrap();
        assert_eq!(slot(3), Some(n as u32));
        assert_eq!(slot(n), None, "never added");
        let hits = idx.search(&rows[3], 1, &SearchParams::default()).unwrap();
        assert_eq!(hits[0].id, 3);
    }
}

/// A batch of at least `ORDER_MIN` vectors is placed in locality order
/// (near vectors in consecutive slots), whatever the caller's order, and
/// every id still holds its own vector afterwards, through updates of
/// present ids and reused slots in the same batch.
#[test]
fn a_large_batch_is_placed_in_locality_order_and_keeps_every_vector() {
    let d = data(4000, 16, Metric::L2, 11);
    let idx = index(IndexSpec::new(16, Metric::L2).with_threads(2));
    idx.add_batch(&d.ids[..1500], &d.points[..1500]).unwrap();
    for &id in &d.ids[..300] {
        assert!(idx.delete(id).unwrap());
    }
    // 500 updates of present ids (moved to another point's vector), 300
    // new ids into the freed slots, the rest into new slots.
    let mut ids: Vec<u64> = d.ids[1000..1500].to_vec();
    let mut rows: Vec<Vec<f32>> = d.points[..500].to_vec();
    ids.extend(&d.ids[1500..]);
    rows.extend(d.points[1500..].iter().cloned());
    idx.add_batch(&ids, &rows).unwrap();
    assert_eq!(idx.len().unwrap(), 1200 + 2500);
    for (id, row) in ids
        .iter()
        .zip(&rows)
        .chain(d.ids[300..1000].iter().zip(&d.points[300..1000]))
    {
        assert_eq!(
            idx.get(*id).unwrap().as_deref(),
            Some(row.as_slice()),
            "id {id}"
        );
    }
    for &id in &d.ids[..300] {
        assert_eq!(idx.get(id).unwrap(), None);
    }
    // The new slots of the second batch hold near vectors side by side:
    // consecutive rows are far nearer than consecutive rows of the batch.
    let st = idx.inner().engine().inner.read();
    let step = |a: &[f32], b: &[f32]| -> f64 {
        a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum()
    };
    let fresh: Vec<Vec<f32>> = (1500..st.len() as u32)
        .map(|s| st.rows.vector(s).into_owned())
        .collect();
    assert_eq!(fresh.len(), 2200);
    let mean = |v: &[Vec<f32>]| {
        v.windows(2).map(|w| step(&w[0], &w[1])).sum::<f64>() / (v.len() - 1) as f64
    };
    let (placed, given) = (mean(&fresh), mean(&d.points[1800..]));
    assert!(
        placed < 0.5 * given,
        "consecutive rows {placed:.1} apart, the batch's {given:.1}"
    );
}

/// `slots_of` answers as `slot_of` for each id, in order, for lists
/// shorter and longer than its look-ahead, with absent and deleted ids:
/// sparse ids (one large batch, placed in locality order; the id table's
/// hash) and dense ones (0..3000 in small batches, mostly in the slot of
/// their own number; its direct array), some moved by deletes and reused
/// slots.
#[test]
fn slots_of_answers_as_slot_of() {
    for own_numbers in [false, true] {
        let idx = index(IndexSpec::new(4, Metric::L2).with_threads(1));
        let ids: Vec<u64> = match own_numbers {
            false => (0..3000u64).map(|i| i * 7 + 2).collect(),
            true => (0..3000u64).collect(),
        };
        let rows: Vec<Vec<f32>> = (0..3000)
            .map(|i| vec![(i % 97) as f32, (i / 97) as f32, 0.0, 1.0])
            .collect();
        let batch = if own_numbers { 500 } else { 3000 };
        for (i, r) in ids.chunks(batch).zip(rows.chunks(batch)) {
            idx.add_batch(i, r).unwrap();
        }
        for &id in ids.iter().step_by(5) {
            idx.delete(id).unwrap();
        }
        // Some deleted ids come back, into other ids' freed slots.
        let back: Vec<u64> = ids.iter().step_by(50).copied().collect();
        let again: Vec<Vec<f32>> = back
            .iter()
            .map(|&b| vec![b as f32, 0.5, 0.5, 0.5])
            .collect();
        idx.add_batch(&back, &again).unwrap();
        slots_of_matches(&idx, &ids, own_numbers);
    }
}

fn slots_of_matches(idx: &Blocking<NativeIndex>, ids: &[u64], own_numbers: bool) {
    let st = idx.inner().engine().inner.read();
    if own_numbers {
        let own = ids
            .iter()
            .filter(|&&id| st.slot_of(id) == Some(id as u32))
            .count();
        assert!(own > 2000, "{own} ids in their own slot");
    }
    for n in [0usize, 1, 15, 16, 17, 40, 21_000] {
        // Mostly stored ids (a fifth of them deleted), every fourth absent.
        let asked: Vec<u64> = (0..n)
            .map(|i| match i % 4 {
                3 => i as u64 * 7 + 5 + 100_000,
                _ => ids[i * 37 % ids.len()],
            })
            .collect();
        let want: Vec<u32> = asked.iter().filter_map(|&id| st.slot_of(id)).collect();
        assert_eq!(
            st.slots_of(asked.iter().copied(), n),
            want,
            "{n} ids, own numbers {own_numbers}"
        );
        // The same slots, distinct, the last slot among them, put in
        // ascending order from descending.
        let mut distinct = want.clone();
        distinct.push(st.len() as u32 - 1);
        distinct.sort_unstable();
        distinct.dedup();
        let mut slots: Vec<u32> = distinct.iter().rev().copied().collect();
        st.ascending(&mut slots);
        assert_eq!(slots, distinct, "{n} ids, own numbers {own_numbers}");
    }
}

/// A search scores each node it visits once: the descent's nodes seed the
/// level below instead of being scored again there, on every level and at
/// the bottom, before churn (one greedy path on level 1) and after it (the
/// level-1 beam).
#[test]
fn a_search_scores_no_node_twice() {
    let d = data(20_000, 24, Metric::L2, 41);
    let idx = index(IndexSpec::new(24, Metric::L2).with_threads(1));
    idx.add_batch(&d.ids, &d.points).unwrap();
    let check = |idx: &Blocking<NativeIndex>, when: &str| {
        let g = &idx.inner().engine().inner;
        assert!(g.entry().is_some_and(|e| e.level >= 2), "{when}: levels");
        for (i, q) in d.queries.iter().enumerate() {
            for ef in [10, 64] {
                let (scored, visited) = g.scored_and_visited(q, ef);
                assert_eq!(scored, visited, "{when}: query {i} at ef {ef}");
            }
        }
    };
    check(&idx, "before churn");
    // Moves: a quarter of the ids take other points' vectors.
    idx.add_batch(&d.ids[..5_000], &d.points[5_000..10_000])
        .unwrap();
    assert!(idx.inner().engine().inner.read().churned);
    check(&idx, "after churn");
}

/// A filtered walk that has admitted nothing after `stall` rows gives up
/// then for the scan of the matches, not at its budget: the filter avoids
/// the query's neighbourhood (a fifth of the points, 90 away from the rest
/// and the queries). Its answers are exact either way.
#[test]
fn a_walk_that_meets_no_match_gives_up_before_its_budget() {
    use crate::graph::stall;
    use vecsearch_core::plan::walk_budget;
    use vecsearch_core::Plan;
    let (n, dim) = (20_000, 32);
    let mut rng = Rng::new(31);
    let far = |i: usize| i.is_multiple_of(5);
    let points: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            let centre = if far(i) { 16.0 } else { 0.0 };
            (0..dim).map(|_| centre + rng.normal() as f32).collect()
        })
        .collect();
    let ids: Vec<u64> = (0..n as u64).collect();
    let idx = index(IndexSpec::new(dim, Metric::L2).with_threads(1));
    idx.add_batch(&ids, &points).unwrap();
    let g = &idx.inner().engine().inner;
    let st = g.read();
    let admit = |s: u32| far(st.ids[s as usize] as usize);
    let matches = n / 5;
    let (budget, stop) = (
        walk_budget(matches, 64),
        stall(matches, n, walk_budget(matches, 64)),
    );
    assert!(stop < budget / 2, "stall {stop}, budget {budget}");
    for _ in 0..10 {
        let q: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
        let (hits, trace) = g.walk(
            &st,
            &q,
            10,
            64,
            admit,
            || 10,
            Plan::FilteredWalk,
            Some(matches),
        );
        assert_eq!(trace.plan, Plan::WalkThenScan);
        assert!(hits.is_empty(), "the caller scans");
        // It stops within one expansion (at most m0 rows) past the stall.
        let scored = trace.scored.unwrap_or(0);
        assert!(
            scored <= stop + st.m0,
            "scored {scored}, stall {stop}, budget {budget}"
        );
    }
}

/// A filtered walk follows the nodes its filter rejects only while they are
/// nearer than its `reach`-th match: at a 10% filter it scores fewer rows
/// than the same walk following them as far as its `ef`-th match (what a
/// 100% share asks), at the same recall.
#[test]
fn a_sparse_filter_walk_follows_rejected_nodes_only_near_its_matches() {
    use vecsearch_core::Plan;
    let d = data(20_000, 32, Metric::L2, 21);
    // One thread: the same graph every run.
    let idx = index(IndexSpec::new(32, Metric::L2).with_threads(1));
    idx.add_batch(&d.ids, &d.points).unwrap();
    let g = &idx.inner().engine().inner;
    let st = g.read();
    let admit = |s: u32| s % 10 == 3;
    let admitted: std::collections::HashSet<u64> = (0..st.len() as u32)
        .filter(|&s| admit(s))
        .map(|s| st.ids[s as usize])
        .collect();
    let matches = admitted.len();
    let (mut scored, mut found) = ([0usize; 2], [0usize; 2]);
    for q in &d.queries {
        let mut exact: Vec<(f32, u64)> = (0..st.len() as u32)
            .filter(|&s| admit(s))
            .map(|s| (st.rows.exact(q, s), st.ids[s as usize]))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let want: Vec<u64> = exact.iter().take(10).map(|e| e.1).collect();
        // Bounded (the filter's share), then as if the filter admitted all.
        for (i, m) in [matches, st.live()].into_iter().enumerate() {
            let (hits, trace) = g.walk(&st, q, 10, 64, admit, || 10, Plan::FilteredWalk, Some(m));
            // The bounded walk ends within its budget (a quarter of the
            // matches, at least 32 x ef); unbounded, it did not
            // (`WalkThenScan`).
            assert_eq!(
                trace.plan,
                Plan::FilteredWalk,
                "{}",
                ["bounded", "unbounded"][i]
            );
            assert!(
                hits.iter().all(|h| admitted.contains(&h.id)),
                "only admitted ids"
            );
            scored[i] += trace.scored.unwrap_or(0);
            found[i] += hits.iter().filter(|h| want.contains(&h.id)).count();
        }
    }
    let n = d.queries.len() as f64 * 10.0;
    let (bounded, free) = (found[0] as f64 / n, found[1] as f64 / n);
    eprintln!(
        "rows scored: bounded {}, unbounded {}",
        scored[0], scored[1]
    );
    assert!(
        (scored[0] as f64) < 0.8 * scored[1] as f64,
        "bounded walk scored {} rows, unbounded {}",
        scored[0],
        scored[1]
    );
    assert!(
        bounded >= 0.95 && bounded >= free - 0.02,
        "recall {bounded} bounded, {free} unbounded"
    );
}

#[test]
fn parallel_builds_leave_no_node_unreachable() {
    // Small graphs built on two threads: inserters link to nodes whose own
    // links are still being written; none of those links may be lost.
    for seed in 0..40 {
        let d = data(300, 16, Metric::L2, 100 + seed);
        let idx = index(IndexSpec::new(16, Metric::L2).with_threads(2));
        idx.add_batch(&d.ids, &d.points).unwrap();
        let wide = SearchParams::default().with_ef(512);
        for (id, p) in d.ids.iter().zip(&d.points) {
            let got = idx.search(p, 1, &wide).unwrap();
            assert_eq!(got[0].id, *id, "seed {seed}: node {id} unreachable");
        }
    }
}

#[test]
fn huge_k_and_ef_are_served() {
    let d = data(200, 4, Metric::L2, 3);
    let idx = index(IndexSpec::new(4, Metric::L2));
    idx.add_batch(&d.ids, &d.points).unwrap();
    let all = idx
        .search(
            &d.queries[0],
            usize::MAX,
            &SearchParams::default().with_ef(usize::MAX),
        )
        .unwrap();
    assert_eq!(all.len(), 200);
    let f = Filter::allow(d.ids.iter().copied().take(3));
    let got = idx
        .search(
            &d.queries[0],
            usize::MAX,
            &SearchParams::default().with_filter(f),
        )
        .unwrap();
    assert_eq!(got.len(), 3);
}

#[test]
fn an_impossible_capacity_hint_is_not_an_abort() {
    let idx = index(IndexSpec::new(64, Metric::L2).with_capacity(usize::MAX));
    idx.add(1, &[0.5; 64]).unwrap();
    assert_eq!(idx.len().unwrap(), 1);
}

#[test]
fn single_thread_builds_are_reproducible() {
    let d = data(1500, 12, Metric::Cosine, 4);
    let path = [temp("repro-a.vsn"), temp("repro-b.vsn")];
    for p in &path {
        let idx = index(IndexSpec::new(12, Metric::Cosine).with_threads(1));
        idx.add_batch(&d.ids, &d.points).unwrap();
        idx.save(p).unwrap();
    }
    assert_eq!(
        std::fs::read(&path[0]).unwrap(),
        std::fs::read(&path[1]).unwrap()
    );
}

#[test]
fn open_answers_as_before_and_keeps_deletions_and_parameters() {
    let d = data(2000, 10, Metric::InnerProduct, 6);
    let spec = IndexSpec::new(10, Metric::InnerProduct)
        .with_m(8)
        .with_ef_construction(50);
    let idx = index(spec.clone());
    idx.add_batch(&d.ids, &d.points).unwrap();
    for &id in d.ids.iter().step_by(7) {
        idx.delete(id).unwrap();
    }
    let path = temp("round.vsn");
    idx.save(&path).unwrap();
    // M and ef_construction come from the file.
    let opened = Blocking::new(Box::new(
        vecsearch_core::exec::block_on(NativeIndex::open(
            &path,
            IndexSpec::new(10, Metric::InnerProduct),
        ))
        .unwrap(),
    ));
    assert_eq!(opened.inner().spec().m, 8);
    assert_eq!(opened.inner().spec().ef_construction, 50);
    assert_eq!(opened.len().unwrap(), idx.len().unwrap());
    for q in &d.queries {
        let p = SearchParams::default();
        assert_eq!(
            opened.search(q, 10, &p).unwrap(),
            idx.search(q, 10, &p).unwrap()
        );
    }
    // Deleted slots are reused after open, too.
    let nodes = opened.inner().engine().inner.read().len();
    opened.add(7_000_001, &d.points[0]).unwrap();
    assert_eq!(opened.inner().engine().inner.read().len(), nodes);
    let wrong =
        vecsearch_core::exec::block_on(NativeIndex::open(&path, IndexSpec::new(10, Metric::L2)));
    assert!(matches!(wrong, Err(Error::InvalidArgument(_))));
}

#[test]
fn searches_are_safe_beside_inserts_upserts_and_deletes() {
    let d = data(3000, 16, Metric::L2, 12);
    let idx = index(IndexSpec::new(16, Metric::L2).with_threads(2));
    idx.add_batch(&d.ids[..1000], &d.points[..1000]).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            idx.add_batch(&d.ids[1000..], &d.points[1000..]).unwrap();
            for round in 0..3u32 {
                for i in (0..3000).step_by(3) {
                    // Uniform vectors: a torn read would show unequal components.
                    idx.add(10_000_000 + i as u64, &[(i as u32 * 4 + round) as f32; 16])
                        .unwrap();
                }
                for i in (0..3000).step_by(9) {
                    idx.delete(10_000_000 + i as u64).unwrap();
                    idx.delete(d.ids[i]).unwrap();
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Release);
        });
        for t in 0..2 {
            let (idx, d, stop) = (&idx, &d, &stop);
            s.spawn(move || {
                let mut i = t;
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let got = idx
                        .search(&d.points[i % 3000], 10, &SearchParams::default())
                        .unwrap();
                    assert!(got
                        .windows(2)
                        .all(|w| (w[0].distance, w[0].id) <= (w[1].distance, w[1].id)));
                    if let Some(v) = idx.get(10_000_000 + (i % 1000 * 3) as u64).unwrap() {
                        assert!(v.iter().all(|&x| x == v[0]), "torn vector {v:?}");
                    }
                    i += 2;
                }
            });
        }
    });
    let live = idx.len().unwrap();
    assert_eq!(live, 3000 - 334 + 1000 - 334);
    let r = idx
        .search(&d.points[1], 10, &SearchParams::default())
        .unwrap();
    assert_eq!(r.len(), 10);
}

#[test]
fn concurrent_batches_and_deletes_end_in_the_exact_state() {
    let d = data(6000, 12, Metric::L2, 15);
    let idx = index(IndexSpec::new(12, Metric::L2).with_threads(2));
    idx.add_batch(&d.ids[..2000], &d.points[..2000]).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            idx.add_batch(&d.ids[2000..4000], &d.points[2000..4000])
                .unwrap()
        });
        s.spawn(|| idx.add_batch(&d.ids[4000..], &d.points[4000..]).unwrap());
        s.spawn(|| {
            for &id in d.ids[..2000].iter().step_by(2) {
                assert!(idx.delete(id).unwrap());
            }
        });
    });
    assert_eq!(idx.len().unwrap(), 5000);
    let wide = SearchParams::default().with_ef(200);
    let mut missed = 0;
    for (i, (id, p)) in d.ids.iter().zip(&d.points).enumerate() {
        let got = idx.search(p, 1, &wide).unwrap();
        if i < 2000 && i % 2 == 0 {
            assert_ne!(got[0].id, *id, "deleted id {id} returned");
        } else if got[0].id != *id {
            missed += 1;
        }
    }
    // HNSW's pruning leaves the odd node unreachable, with or without
    // concurrency (0-2 of 6,000 here over seeds); lost links would show as many.
    assert!(
        missed <= 5,
        "{missed} of 5000 points not found at their own vector"
    );
}

// ---------- crafted files ----------

/// A body in the native format, field by field, so a test can damage one.
#[derive(Clone)]
struct Body {
    m: u32,
    efc: u32,
    n: u64,
    entry: (u32, u32),
    ids: Vec<u64>,
    levels: Vec<u8>,
    deleted: Vec<u8>,
    vectors: Vec<f32>,
    links0: Vec<u32>,
    upper: Vec<u32>,
    live: u64,
}

const DIM: usize = 2;

/// Three nodes, m 2: node 0 has level 1 and is the entry point.
fn good_body() -> Body {
    let list0 = |links: &[u32]| {
        let mut l = vec![links.len() as u32];
        l.extend_from_slice(links);
        l.resize(5, 0);
        l
    };
    Body {
        m: 2,
        efc: 10,
        n: 3,
        entry: (0, 1),
        ids: vec![10, 11, 12],
        levels: vec![1, 0, 0],
        deleted: vec![0, 0, 0],
        vectors: vec![0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        links0: [list0(&[1, 2]), list0(&[0, 2]), list0(&[0, 1])].concat(),
        upper: vec![0, 0, 0],
        live: 3,
    }
}

fn write_body(path: &std::path::Path, b: &Body) {
    let mut w = Writer::default();
    w.u32(b.m);
    w.u32(b.efc);
    w.u64(7);
    w.u64(b.n);
    w.u32(b.entry.0);
    w.u32(b.entry.1);
    w.u64s(&b.ids);
    w.buf.extend_from_slice(&b.levels);
    w.buf.extend_from_slice(&b.deleted);
    w.f32s(&b.vectors);
    w.u32s(&b.links0);
    w.u32s(&b.upper);
    let header = Header {
        magic: *b"VSNATIVE",
        version: 1,
        metric: Metric::L2,
        dim: DIM,
        count: b.live,
    };
    write_atomic(path, &header, &w.buf).unwrap();
}

fn open(path: &std::path::Path) -> vecsearch_core::Result<NativeIndex> {
    vecsearch_core::exec::block_on(NativeIndex::open(path, IndexSpec::new(DIM, Metric::L2)))
}

#[test]
fn a_well_formed_crafted_file_opens_and_answers() {
    let path = temp("crafted-good.vsn");
    write_body(&path, &good_body());
    let idx = Blocking::new(Box::new(open(&path).unwrap()));
    let got = idx
        .search(&[0.9, 0.1], 3, &SearchParams::default())
        .unwrap();
    assert_eq!(got.iter().map(|n| n.id).collect::<Vec<_>>(), [11, 10, 12]);
}

#[test]
fn every_crafted_damage_is_corrupt_not_a_panic() {
    type Damage = (&'static str, fn(&mut Body));
    let damages: Vec<Damage> = vec![
        ("link out of range", |b| b.links0[1] = 3),
        ("link u32::MAX", |b| b.links0[2] = u32::MAX),
        ("count above capacity", |b| b.links0[0] = 5),
        ("upper link to a level-0 node", |b| b.upper = vec![1, 1, 0]),
        ("upper link out of range", |b| b.upper = vec![1, 9, 0]),
        ("upper count above m", |b| b.upper = vec![3, 1, 2]),
        ("level above the maximum", |b| b.levels[1] = 200),
        ("entry out of range", |b| b.entry = (3, 0)),
        ("entry level wrong", |b| b.entry = (0, 5)),
        ("no entry in a non-empty graph", |b| b.entry = (u32::MAX, 0)),
        ("duplicate live ids", |b| b.ids[2] = 10),
        ("NaN vector", |b| b.vectors[3] = f32::NAN),
        ("infinite vector", |b| b.vectors[0] = f32::INFINITY),
        ("deleted flag 2", |b| b.deleted[1] = 2),
        ("live count mismatch", |b| b.live = 2),
        ("m zero", |b| b.m = 0),
        ("m huge", |b| b.m = 1 << 30),
        ("ef_construction zero", |b| b.efc = 0),
        ("node count huge", |b| b.n = u64::MAX),
        ("node count larger than the data", |b| b.n = 4),
        ("node count smaller than the data", |b| b.n = 2),
        ("upper lists missing", |b| b.upper.clear()),
        ("trailing bytes", |b| b.upper.push(0)),
    ];
    let path = temp("crafted.vsn");
    for (what, damage) in damages {
        let mut b = good_body();
        damage(&mut b);
        write_body(&path, &b);
        match open(&path) {
            Err(Error::Corrupt(_)) => {}
            Err(e) => panic!("{what}: expected Corrupt, got {e}"),
            Ok(_) => panic!("{what}: a damaged file opened"),
        }
    }
    // A deleted duplicate is not a duplicate.
    let mut b = good_body();
    b.ids[2] = 10;
    b.deleted[2] = 1;
    b.live = 2;
    write_body(&path, &b);
    let idx = Blocking::new(Box::new(open(&path).unwrap()));
    assert_eq!(idx.len().unwrap(), 2);
}

#[test]
fn every_bit_flip_and_truncation_of_a_saved_index_is_rejected() {
    let d = data(60, DIM, Metric::L2, 1);
    let idx = index(IndexSpec::new(DIM, Metric::L2).with_m(2));
    idx.add_batch(&d.ids, &d.points).unwrap();
    let path = temp("flip.vsn");
    idx.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    for cut in [0, 47, 48, 100, good.len() - 1] {
        std::fs::write(&path, &good[..cut]).unwrap();
        assert!(open(&path).is_err(), "cut at {cut}");
    }
    for bit in (0..good.len() * 8).step_by(13) {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&path, &bad).unwrap();
        assert!(open(&path).is_err(), "bit {bit}");
    }
}

/// Rule "nothing is orphaned", bug 2 of the reliability issue: this sequence
/// (two zero vectors, an upsert moving id 56 twice) left id
/// 9007199254740993 with no way in, so no search at any ef returned it.
#[test]
fn nothing_is_orphaned_upsert_repro() {
    let idx = index(IndexSpec::new(8, Metric::L2).with_threads(1));
    idx.add_batch(
        &[112, 533, 594, 184, 184, 56, 9],
        &[
            vec![
                -0.0008142464,
                -0.9998259,
                0.9999091,
                -0.9999297,
                -1.0005387,
                1.0004241,
                0.99924594,
                1.0006686,
            ],
            vec![1.0, -1.0, 1.0, -1.0, -1.0, 1.0, -1.0, 0.0],
            vec![
                0.31750816,
                0.7051015,
                -0.8600112,
                -0.35215133,
                0.2696521,
                0.5897009,
                -0.95302236,
                0.28992862,
            ],
            vec![
                0.45518926,
                0.29819965,
                -0.08639166,
                -0.3493745,
                -0.34942767,
                -0.574614,
                -0.8874585,
                0.9035805,
            ],
            vec![0.0, -1.0, 1.0, 0.0, 0.0, -1.0, -1.0, -1.0],
            vec![1.0, 1.0, -1.0, 1.0, -1.0, 0.0, 1.0, 0.0],
            vec![
                -1.1858592, -1.997656, 2.0038445, -1.0491939, 2.1909053, -1.563575, 0.8828887,
                0.1495626,
            ],
        ],
    )
    .unwrap();
    idx.add(457, &[0.0; 8]).unwrap();
    idx.add(
        595,
        &[
            0.4632302,
            -0.6177308,
            0.60173583,
            -0.72143555,
            0.5582098,
            -0.8259339,
            0.81619835,
            -0.11280924,
        ],
    )
    .unwrap();
    idx.add_batch(
        &[180, 235, 56, 112, 396, 56, 183],
        &[
            vec![0.0, 0.0, 1.0, -1.0, 1.0, -1.0, -1.0, -1.0],
            vec![
                0.31750816,
                0.7051015,
                -0.8600112,
                -0.35215133,
                0.2696521,
                0.5897009,
                -0.95302236,
                0.28992862,
            ],
            vec![0.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 1.0],
            vec![
                -0.46755967,
                0.55510587,
                0.33775812,
                0.23456708,
                0.28240883,
                -0.15248802,
                0.22615674,
                0.8009425,
            ],
            vec![0.0, -1.0, 1.0, 0.0, 0.0, -1.0, -1.0, -1.0],
            vec![
                -1.3603318, -0.7320006, -2.6460109, 2.4469972, 1.7577245, -1.4320285, 2.6014295,
                2.672474,
            ],
            vec![
                0.0626589,
                0.659613,
                0.18033788,
                0.24335305,
                0.025826287,
                0.47439146,
                -0.838996,
                0.46580815,
            ],
        ],
    )
    .unwrap();
    idx.add(56, &[1.0, 0.0, -1.0, -1.0, 1.0, 1.0, 1.0, 0.0])
        .unwrap();
    idx.add(
        9007199254740993,
        &[1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0, 0.0],
    )
    .unwrap();
    idx.add(594, &[0.0; 8]).unwrap();
    assert_eq!(idx.inner().engine().unreachable_ids(), Vec::<u64>::new());
    // ef below the live count, so the graph is walked, not scanned.
    let q = [1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0, 0.0];
    let got = idx
        .search(&q, 1, &SearchParams::default().with_ef(4))
        .unwrap();
    assert_eq!(got[0].id, 9007199254740993);
}

/// Rule "nothing is orphaned" at scale: 20,000 clustered points with 2%
/// exact duplicates, three rounds of upserting 30% and deleting and
/// re-adding 10%: a walk of the graph finds every live node, after the
/// build and after each round.
#[test]
fn nothing_is_orphaned_after_build_and_churn() {
    let n = 20_000;
    let d = data(n * 2, 24, Metric::L2, 77);
    let mut live: Vec<Vec<f32>> = d.points[..n].to_vec();
    let mut rng = Rng::new(5);
    for i in 0..n / 50 {
        let src = rng.below(n);
        live[(i * 50 + 7) % n] = live[src].clone();
    }
    let ids: Vec<u64> = (0..n as u64).collect();
    let idx = index(IndexSpec::new(24, Metric::L2));
    idx.add_batch(&ids, &live).unwrap();
    let cut = idx.inner().engine().unreachable_ids();
    assert!(
        cut.is_empty(),
        "after the build, {} cut off: {cut:?}",
        cut.len()
    );
    eprintln!("misses after build: {}", self_misses(&idx, &ids, &live));
    let mut spare = n;
    for round in 0..3 {
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let moved = &order[..n * 3 / 10];
        for &i in moved {
            spare += 1;
            live[i] = d.points[spare % d.points.len()].clone();
        }
        let m_ids: Vec<u64> = moved.iter().map(|&i| ids[i]).collect();
        let m_vs: Vec<Vec<f32>> = moved.iter().map(|&i| live[i].clone()).collect();
        idx.add_batch(&m_ids, &m_vs).unwrap();
        let gone = &order[n * 3 / 10..n * 4 / 10];
        for &i in gone {
            idx.delete(ids[i]).unwrap();
        }
        for &i in gone {
            idx.add(ids[i], &live[i]).unwrap();
        }
        let cut = idx.inner().engine().unreachable_ids();
        assert!(
            cut.is_empty(),
            "round {round}: {} cut off: {cut:?}",
            cut.len()
        );
        eprintln!(
            "misses after round {round}: {}",
            self_misses(&idx, &ids, &live)
        );
    }
    let mut missed = 0;
    for (id, v) in ids.iter().zip(&live) {
        let got = idx.search(v, 10, &SearchParams::default()).unwrap();
        if !got.iter().any(|x| x.id == *id || x.distance == 0.0) {
            missed += 1;
        }
    }
    eprintln!("self-search misses at the default ef after churn: {missed} of {n}");
    assert!(
        missed * 1000 <= n,
        "{missed} of {n} stored vectors not found at the default ef"
    );
}

fn self_misses(idx: &Blocking<NativeIndex>, ids: &[u64], live: &[Vec<f32>]) -> usize {
    let mut missed = 0;
    for (id, v) in ids.iter().zip(live) {
        let got = idx.search(v, 10, &SearchParams::default()).unwrap();
        if !got.iter().any(|x| x.id == *id || x.distance == 0.0) {
            missed += 1;
        }
    }
    missed
}

// ---------- the neighbour-list seqlock (links.rs) ----------

#[test]
fn links_write_then_read_and_cut_to_capacity() {
    let list: Vec<std::sync::atomic::AtomicU32> = crate::links::empty(3).collect();
    let mut out = Vec::new();
    crate::links::read(&list, &mut out);
    assert!(out.is_empty());
    crate::links::write(&list, &[4, 5]);
    crate::links::read(&list, &mut out);
    assert_eq!(out, [4, 5]);
    crate::links::write(&list, &[1, 2, 3, 9]);
    crate::links::read(&list, &mut out);
    assert_eq!(out, [1, 2, 3]);
    crate::links::read(&[], &mut out);
    assert!(out.is_empty());
}

#[test]
fn links_readers_never_see_a_torn_list() {
    // The writer always stores lists whose entries all equal the list's
    // length; a torn read would mix lengths.
    let list: Vec<std::sync::atomic::AtomicU32> = crate::links::empty(16).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200_000u32 {
                let n = i % 17;
                crate::links::write(&list, &vec![n; n as usize]);
            }
            stop.store(true, std::sync::atomic::Ordering::Release);
        });
        s.spawn(|| {
            let mut out = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                crate::links::read(&list, &mut out);
                assert!(
                    out.iter().all(|&x| x as usize == out.len()),
                    "torn: {out:?}"
                );
            }
        });
    });
}

/// Each storage kind survives a save and an open: the file keeps the kind
/// (whatever the opening spec says), and the opened index answers as the
/// saved one did. Version-1 files (before storage kinds) open as f32: the
/// crafted-file tests above write version 1.
#[test]
fn files_keep_their_storage_kind() {
    use vecsearch_core::Storage;
    let d = data(800, 24, Metric::L2, 31);
    for kind in Storage::ALL {
        let idx = index(IndexSpec::new(24, Metric::L2).with_storage(kind));
        idx.add_batch(&d.ids, &d.points).unwrap();
        let path = temp(&format!("storage-{kind}.vsn"));
        idx.save(&path).unwrap();
        // The opening spec asks for f32: the file's kind wins.
        let opened = vecsearch_core::exec::block_on(NativeIndex::open(
            &path,
            IndexSpec::new(24, Metric::L2),
        ));
        let back = Blocking::new(Box::new(opened.unwrap_or_else(|e| panic!("{kind}: {e}"))));
        assert_eq!(back.inner().spec().storage, kind);
        assert_eq!(
            back.get(d.ids[3]).unwrap(),
            idx.get(d.ids[3]).unwrap(),
            "{kind}"
        );
        for q in d.points.iter().step_by(97) {
            let p = SearchParams::default();
            assert_eq!(
                back.search(q, 5, &p).unwrap(),
                idx.search(q, 5, &p).unwrap(),
                "{kind}"
            );
        }
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn an_unknown_storage_kind_in_a_file_is_corrupt() {
    let path = temp("storage-unknown.vsn");
    let idx = index(IndexSpec::new(DIM, Metric::L2));
    idx.add(1, &[0.5; DIM]).unwrap();
    idx.save(&path).unwrap();
    // The storage code is the body's third word; rewrite it through the
    // checksummed envelope so only the field is wrong.
    let (header, mut body) = vecsearch_core::persist::read_checked(&path, b"VSNATIVE", 2).unwrap();
    body[8..12].copy_from_slice(&7u32.to_le_bytes());
    write_atomic(&path, &header, &body).unwrap();
    match open(&path) {
        Err(Error::Corrupt(m)) => assert!(m.contains("storage kind 7"), "{m}"),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("expected Corrupt, the file opened"),
    }
    std::fs::remove_file(&path).ok();
}
