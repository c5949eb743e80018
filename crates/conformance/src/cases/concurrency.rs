//! Searches beside writers.

#[allow(unused_imports)]
use super::*;

/// Searches on several threads beside writers that upsert and delete: no
/// crash, no torn vector, every result well-formed, the final state exact.
pub async fn concurrent_searches_beside_writes(h: &Harness) -> Case {
    let idx = fresh(h, 16, Metric::L2).await?;
    let set = Set::new(2000, 0, 16, Metric::L2, 59);
    fill(&*idx, &set.ids, &set.points).await?;
    let idx: &dyn VectorIndex = &*idx;
    // Writers store vectors whose components are all equal, so a torn read
    // (half old, half new) shows as unequal components.
    let uniform = |id: u64, round: u64| vec![((id % 97) * 10 + round) as f32; 16];
    let writer_ids = |w: u64| (0..50u64).map(move |i| 5_000_000 + w * 1000 + i);
    let errors = std::sync::Mutex::new(Vec::<String>::new());
    let record = |e: String| errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let record = &record;
            s.spawn(move || {
                (h.block_on)(Box::pin(async move {
                    for round in 0..6u64 {
                        for id in writer_ids(w) {
                            if let Err(e) = idx.add(id, &uniform(id, round)).await {
                                record(format!("writer add: {e}"));
                            }
                        }
                        for id in writer_ids(w).step_by(5) {
                            if let Err(e) = idx.delete(id).await {
                                record(format!("writer delete: {e}"));
                            }
                        }
                    }
                }))
            });
        }
        for r in 0..2u64 {
            let (record, set) = (&record, &set);
            s.spawn(move || {
                (h.block_on)(Box::pin(async move {
                    for i in 0..150usize {
                        let q = &set.points[(i * 13 + r as usize) % set.points.len()];
                        match idx.search(q, 10, &SearchParams::default()).await {
                            Ok(got) => {
                                if got.len() != 10 {
                                    record(format!("search returned {} of 10", got.len()));
                                }
                                if let Err(Why::Fail(m)) = check_sorted(&got) {
                                    record(m);
                                }
                            }
                            Err(e) => record(format!("search: {e}")),
                        }
                        let id = 5_000_000 + (i as u64 % 2) * 1000 + (i as u64 % 50);
                        match idx.get(id).await {
                            Ok(Some(v)) if v.iter().any(|&x| x != v[0]) => {
                                record(format!("torn vector for id {id}: {v:?}"))
                            }
                            Ok(_) => {}
                            Err(e) => record(format!("get: {e}")),
                        }
                    }
                }))
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    ensure!(
        errors.is_empty(),
        "{} problems, first: {}",
        errors.len(),
        errors[0]
    );
    idx.sync().await?;
    // Each writer leaves 40 of its 50 ids (every fifth deleted in the last round).
    ensure!(
        len(idx).await? == 2000 + 80,
        "len after concurrent writes is not 2080"
    );
    for w in 0..2u64 {
        for id in writer_ids(w) {
            let got = idx.get(id).await?;
            let want_present = (id - 5_000_000 - w * 1000) % 5 != 0;
            ensure!(
                got.is_some() == want_present,
                "id {id} present = {}, expected {want_present}",
                got.is_some()
            );
            if let Some(v) = got {
                ensure!(
                    v == uniform(id, 5),
                    "id {id} does not hold its last written vector"
                );
            }
        }
    }
    Ok(())
}
