//! Reads: ordering and ties, `k = 0`, `k > len`, widening at small `ef`, `get`.

#[allow(unused_imports)]
use super::*;

/// Equal distances are ordered by id.
pub async fn results_sorted_ties_by_id(h: &Harness) -> Case {
    let idx = fresh(h, 8, Metric::L2).await?;
    let set = Set::new(200, 1, 8, Metric::L2, 3);
    fill(&*idx, &set.ids, &set.points).await?;
    let twin = vec![9.0f32; 8];
    let twin_ids = [90_000_009u64, 90_000_003, 90_000_007, 90_000_001];
    fill(&*idx, &twin_ids, &vec![twin.clone(); 4]).await?;
    let got = idx.search(&twin, 4, &default_params()).await?;
    let ids: Vec<u64> = got.iter().map(|n| n.id).collect();
    ensure!(
        ids == [90_000_001, 90_000_003, 90_000_007, 90_000_009],
        "four equal vectors should come back ordered by id, got {ids:?}"
    );
    Ok(())
}

/// `k = 0` and an empty index give an empty result.
pub async fn k_zero_and_empty_index(h: &Harness) -> Case {
    let idx = fresh(h, 8, Metric::L2).await?;
    let q = vec![0.5f32; 8];
    ensure!(
        idx.search(&q, 10, &default_params()).await?.is_empty(),
        "empty index returned results"
    );
    ensure!(len(&*idx).await? == 0, "a new index is not empty");
    fill(&*idx, &[1, 2], &[vec![1.0; 8], vec![2.0; 8]]).await?;
    ensure!(
        idx.search(&q, 0, &default_params()).await?.is_empty(),
        "k = 0 returned results"
    );
    let batch = idx
        .search_batch(&[q.clone(), q], 0, &default_params())
        .await?;
    ensure!(
        batch.len() == 2 && batch.iter().all(Vec::is_empty),
        "k = 0 batch: {batch:?}"
    );
    Ok(())
}

/// `k > len` returns every vector.
pub async fn k_larger_than_len(h: &Harness) -> Case {
    let idx = fresh(h, 8, Metric::L2).await?;
    let set = Set::new(30, 1, 8, Metric::L2, 5);
    fill(&*idx, &set.ids, &set.points).await?;
    let got = idx.search(&set.queries[0], 100, &default_params()).await?;
    check_sorted(&got)?;
    let mut ids: Vec<u64> = got.iter().map(|n| n.id).collect();
    ids.sort_unstable();
    ensure!(
        ids == set.ids,
        "k = 100 over 30 vectors returned {} ids, not all 30",
        ids.len()
    );
    Ok(())
}

/// A search width far below k, over an index that is mostly deleted, still
/// returns `min(k, len)` live neighbours (the backend widens its search).
pub async fn small_ef_still_returns_k(h: &Harness) -> Case {
    let idx = fresh(h, 16, Metric::L2).await?;
    let set = Set::new(1000, 5, 16, Metric::L2, 7);
    fill(&*idx, &set.ids, &set.points).await?;
    for (i, id) in set.ids.iter().enumerate() {
        if i % 5 != 0 {
            idx.delete(*id).await?;
        }
    }
    idx.sync().await?;
    let live = set.live().into_iter().step_by(5).collect::<Vec<_>>();
    for (q, query) in set.queries.iter().enumerate() {
        let got = idx
            .search(query, 50, &SearchParams::default().with_ef(1))
            .await?;
        check_sorted(&got)?;
        ensure!(
            got.len() == 50,
            "k = 50, ef = 1 over 200 live of 1000: {} results",
            got.len()
        );
        ensure!(
            got.iter().all(|n| (n.id - id_of(0)).is_multiple_of(35)),
            "a deleted id was returned"
        );
        let truth = set.truth(&live, q, 50);
        let r = vecsearch_core::synthetic::recall(&got, &truth);
        ensure!(
            r >= 0.5,
            "recall@50 with ef = 1 is {r:.2}: the widened search is not a search"
        );
    }
    Ok(())
}

/// `get` returns what was stored (a direction for cosine), `None` for absent ids.
pub async fn get_returns_stored_vector(h: &Harness) -> Case {
    for metric in [Metric::L2, Metric::Cosine] {
        let idx = match fresh(h, 16, metric).await {
            Err(Why::Skip(_)) => continue,
            other => other?,
        };
        let set = Set::new(50, 0, 16, metric, 9);
        fill(&*idx, &set.ids, &set.points).await?;
        for (id, v) in set.ids.iter().zip(&set.points) {
            let got = idx
                .get(*id)
                .await?
                .ok_or_else(|| fail(format!("{metric}: get({id}) is None")))?;
            ensure!(
                same_vector(metric, &got, &idx.spec().storage.stored(v)),
                "{metric}: get({id}) returned another vector"
            );
        }
        ensure!(
            idx.get(42).await?.is_none(),
            "get of an absent id returned a vector"
        );
    }
    Ok(())
}
