//! hnswlib-specific parts of the contract the shared suite does not reach
//! directly: the states a label moves through (live, deleted, reused slot,
//! revived), growth past the initial capacity, and build flags.

use std::collections::HashSet;

use vecsearch_core::synthetic::clustered;
use vecsearch_core::{exec::block_on, Filter, IndexSpec, Metric, SearchParams, VectorIndex};
use vecsearch_hnswlib::{build_flags, HnswlibIndex};

fn index(dim: usize, metric: Metric) -> HnswlibIndex {
    HnswlibIndex::new(IndexSpec::new(dim, metric)).unwrap()
}

fn ids_of(index: &HnswlibIndex, q: &[f32], k: usize) -> Vec<u64> {
    block_on(index.search(q, k, &SearchParams::default()))
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect()
}

#[test]
fn deleted_id_added_again_is_found_again() {
    let idx = index(4, Metric::L2);
    for id in 0..100u64 {
        block_on(idx.add(id, &[id as f32, 0.0, 0.0, 0.0])).unwrap();
    }
    assert!(block_on(idx.delete(42)).unwrap());
    assert!(
        !block_on(idx.delete(42)).unwrap(),
        "a second delete is Ok(false)"
    );
    assert_eq!(block_on(idx.get(42)).unwrap(), None);
    assert!(!ids_of(&idx, &[42.0, 0.0, 0.0, 0.0], 5).contains(&42));
    // Re-adding the deleted id (with a new vector) revives it in place.
    block_on(idx.add(42, &[500.0, 0.0, 0.0, 0.0])).unwrap();
    assert_eq!(block_on(idx.len()).unwrap(), 100);
    assert_eq!(ids_of(&idx, &[500.0, 0.0, 0.0, 0.0], 1), vec![42]);
    assert_eq!(
        block_on(idx.get(42)).unwrap(),
        Some(vec![500.0, 0.0, 0.0, 0.0])
    );
    // And through a batch, while other deleted slots wait for reuse.
    for id in [7u64, 8, 9] {
        assert!(block_on(idx.delete(id)).unwrap());
    }
    block_on(idx.add_batch(
        &[8, 1000],
        &[vec![-50.0, 0.0, 0.0, 0.0], vec![2000.0, 0.0, 0.0, 0.0]],
    ))
    .unwrap();
    assert_eq!(ids_of(&idx, &[-50.0, 0.0, 0.0, 0.0], 1), vec![8]);
    assert_eq!(ids_of(&idx, &[2000.0, 0.0, 0.0, 0.0], 1), vec![1000]);
    assert_eq!(block_on(idx.len()).unwrap(), 100 - 3 + 2);
}

#[test]
fn upsert_beside_free_slots_leaves_no_twin() {
    // hnswlib's addPoint(replace_deleted=true) on an existing label would put
    // it in a free slot and keep the old one live: the backend must not.
    let idx = index(4, Metric::L2);
    for id in 0..50u64 {
        block_on(idx.add(id, &[id as f32, 1.0, 0.0, 0.0])).unwrap();
    }
    for id in 30..40u64 {
        block_on(idx.delete(id)).unwrap();
    }
    block_on(idx.add(5, &[5.5, 1.0, 0.0, 0.0])).unwrap();
    let all = ids_of(&idx, &[5.0, 1.0, 0.0, 0.0], 100);
    assert_eq!(all.len(), 40);
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        40,
        "an id appears twice"
    );
    assert_eq!(
        block_on(idx.get(5)).unwrap(),
        Some(vec![5.5, 1.0, 0.0, 0.0])
    );
}

#[test]
fn grows_past_capacity_and_reuses_slots() {
    let dim = 8;
    let data = clustered(3000, dim, 10, 1, Metric::L2).to_rows();
    let idx = HnswlibIndex::new(IndexSpec::new(dim, Metric::L2).with_capacity(10)).unwrap();
    // One by one across many doublings, then a batch.
    for (i, v) in data[..500].iter().enumerate() {
        block_on(idx.add(i as u64, v)).unwrap();
    }
    let ids: Vec<u64> = (500..3000).collect();
    block_on(idx.add_batch(&ids, &data[500..])).unwrap();
    assert_eq!(block_on(idx.len()).unwrap(), 3000);
    // The engine's own bytes: the front door's id table is a hash map,
    // whose capacity may move a little under churn (bounded, as the
    // suite's churn_memory_bounded holds for every backend).
    let engine_bytes = |idx: &HnswlibIndex| vecsearch_core::Engine::memory_bytes(idx.engine());
    let mem = engine_bytes(&idx).unwrap();
    // Churn: delete 1000, add 1000 new ids, five times: no growth.
    for round in 0..5u64 {
        let base = 10_000 * (round + 1);
        let gone: Vec<u64> = if round == 0 {
            (0..1000).collect()
        } else {
            (base - 10_000..base - 9000).collect()
        };
        for id in gone {
            assert!(block_on(idx.delete(id)).unwrap());
        }
        let fresh: Vec<u64> = (base..base + 1000).collect();
        block_on(idx.add_batch(&fresh, &data[..1000])).unwrap();
        assert_eq!(block_on(idx.len()).unwrap(), 3000);
    }
    assert_eq!(engine_bytes(&idx).unwrap(), mem, "churn grew the index");
}

#[test]
fn widening_and_filters_return_what_exists() {
    let idx = HnswlibIndex::new(IndexSpec::new(2, Metric::L2).with_ef_search(1)).unwrap();
    for id in 0..400u64 {
        block_on(idx.add(id, &[(id % 20) as f32, (id / 20) as f32])).unwrap();
    }
    for id in 0..350u64 {
        block_on(idx.delete(id)).unwrap();
    }
    // 50 live, ef 1: widening still yields every one of them.
    assert_eq!(ids_of(&idx, &[0.0, 0.0], 80).len(), 50);
    // A filter wide enough for the graph path, admitting few live ids.
    let f = Filter::allow((300..400).chain(1000..2000));
    let got =
        block_on(idx.search(&[0.0, 0.0], 60, &SearchParams::default().with_filter(f))).unwrap();
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|n| (350..400).contains(&n.id)));
}

#[test]
fn jaccard_distance_is_weighted_jaccard() {
    let idx = index(3, Metric::Jaccard);
    block_on(idx.add(1, &[1.0, 2.0, 0.0])).unwrap();
    block_on(idx.add(2, &[0.0, 0.0, 0.0])).unwrap();
    let got = block_on(idx.search(&[2.0, 1.0, 0.0], 2, &SearchParams::default())).unwrap();
    // Σmin = 2, Σmax = 4 → 0.5; against zero: Σmin 0 / Σmax 3 → 1.
    assert_eq!(got[0].id, 1);
    assert!((got[0].distance - 0.5).abs() < 1e-6);
    assert!((got[1].distance - 1.0).abs() < 1e-6);
    let zero = block_on(idx.search(&[0.0, 0.0, 0.0], 1, &SearchParams::default())).unwrap();
    assert_eq!((zero[0].id, zero[0].distance), (2, 0.0));
}

#[test]
fn build_flags_are_reported() {
    assert!(build_flags().contains("-O3"), "{}", build_flags());
}

#[test]
fn writers_beside_readers_never_tear_or_crash() {
    // Every vector written for id i at round r is [v; dim] with one value v,
    // so a torn read (half old, half new) shows as mixed components.
    let dim = 16;
    let idx = std::sync::Arc::new(
        HnswlibIndex::new(IndexSpec::new(dim, Metric::L2).with_capacity(16)).unwrap(),
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for round in 0..40u64 {
                let ids: Vec<u64> = (0..100).map(|i| (round * 37 + i) % 300).collect();
                let rows: Vec<Vec<f32>> = ids
                    .iter()
                    .map(|&i| vec![(i * 1000 + round) as f32; dim])
                    .collect();
                block_on(idx.add_batch(&ids, &rows)).unwrap();
                for id in (round % 7..300).step_by(7) {
                    block_on(idx.delete(id)).unwrap();
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        for t in 0..2u64 {
            let (idx, stop) = (&idx, &stop);
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let q = vec![((n * 7 + t) % 300 * 1000) as f32; dim];
                    let hits = block_on(idx.search(&q, 5, &SearchParams::default())).unwrap();
                    assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
                    let batch =
                        block_on(idx.search_batch(&[q.clone(), q], 3, &SearchParams::default()))
                            .unwrap();
                    assert_eq!(batch.len(), 2);
                    if let Some(v) = block_on(idx.get(n % 300)).unwrap() {
                        assert!(v.iter().all(|&x| x == v[0]), "torn vector {v:?}");
                    }
                }
            });
        }
        writer.join().unwrap();
    });
    let live = block_on(idx.len()).unwrap();
    let all = block_on(idx.search(&[0.0; 16], 1000, &SearchParams::default())).unwrap();
    assert_eq!(all.len(), live);
}

#[test]
fn a_huge_capacity_hint_allocates_only_a_bounded_start() {
    let idx =
        HnswlibIndex::new(IndexSpec::new(4, Metric::L2).with_capacity(usize::MAX / 2)).unwrap();
    assert!(idx.memory_bytes().unwrap() < 1 << 30);
    block_on(idx.add(1, &[1.0, 2.0, 3.0, 4.0])).unwrap();
    assert_eq!(block_on(idx.len()).unwrap(), 1);
}

/// Issue 21: on the exact path (ef at least the live count) a tie at the
/// k-th distance goes to the lowest id, as the contract says. The scan kept
/// the first tied labels it met in slot order (406 and 557 before 56).
#[test]
fn exact_path_breaks_ties_by_lowest_id() {
    let spec = IndexSpec::new(8, Metric::L2).with_threads(1);
    let idx = HnswlibIndex::new(spec).unwrap();
    let zero = vec![0.0f32; 8];
    let small = |seed: u32| -> Vec<f32> {
        (0..8u32)
            .map(|i| ((seed * 7 + i * 3) % 5) as f32 - 2.0)
            .collect()
    };
    let vectors = vec![
        zero.clone(),
        small(1),
        small(2),
        small(3),
        small(4),
        zero.clone(),
        small(5),
        small(6),
    ];
    block_on(idx.add_batch(&[557, 557, 49, 467, 259, 557, 79, 423], &vectors)).unwrap();
    block_on(idx.add(69, &[-1.0, 0.0, 1.0, 1.0, -1.0, -1.0, -1.0, 0.0])).unwrap();
    block_on(idx.add(406, &zero)).unwrap();
    block_on(idx.add(56, &zero)).unwrap();
    let q = [-1.0, -1.0, 1.0, 1.0, -1.0, 0.0, 0.0, 1.0];
    let live = block_on(idx.len()).unwrap();
    // Exact answer: everything, sorted by (distance, id).
    let all = block_on(idx.search(&q, live, &SearchParams::default().with_ef(512))).unwrap();
    assert_eq!(all.len(), live);
    for k in 1..=live {
        let got = block_on(idx.search(&q, k, &SearchParams::default().with_ef(512))).unwrap();
        assert_eq!(got, all[..k], "k {k}: not the exact answer, ties by id");
    }
    let zeros: Vec<u64> = all
        .iter()
        .filter(|n| n.distance == all.iter().find(|m| m.id == 56).unwrap().distance)
        .map(|n| n.id)
        .collect();
    assert_eq!(zeros, [56, 406, 557], "{all:?}");
}
