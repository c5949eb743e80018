//! Allow-list filters.

#[allow(unused_imports)]
use super::*;

async fn filter_case(h: &Harness, n: usize, keep_every: usize, min_recall: f64) -> Case {
    let c = caps(h).await?;
    if !c.filter {
        return Err(Why::Skip("no filter".into()));
    }
    let idx = fresh(h, 32, Metric::L2).await?;
    let set = Set::new(n, 50, 32, Metric::L2, 31);
    fill(&*idx, &set.ids, &set.points).await?;
    let f = vecsearch_core::Filter::allow(set.ids.iter().step_by(keep_every).copied());
    let params = SearchParams::default().with_filter(f.clone());
    for q in &set.queries[..5] {
        let got = idx.search(q, 10, &params).await?;
        ensure!(
            got.iter().all(|n| f.admits(n.id, None)),
            "a result outside the allow-list"
        );
    }
    let r = mean_recall(&*idx, &set, &set.live(), 10, &params).await?;
    ensure!(
        r >= min_recall,
        "recall@10 over the admitted set is {r:.3} < {min_recall}"
    );
    Ok(())
}

/// Only admitted ids come back, and they are the nearest admitted ones (10% admitted).
pub async fn filter_only_admitted(h: &Harness) -> Case {
    filter_case(h, 5000, 10, 0.95).await
}

/// A tiny allow-list returns exactly its present ids, in order.
pub async fn filter_tiny_allow_list(h: &Harness) -> Case {
    let c = caps(h).await?;
    if !c.filter {
        return Err(Why::Skip("no filter".into()));
    }
    let idx = fresh(h, 16, Metric::L2).await?;
    let set = Set::new(3000, 1, 16, Metric::L2, 37);
    fill(&*idx, &set.ids, &set.points).await?;
    let chosen = [set.ids[10], set.ids[2000], set.ids[2999]];
    let f = vecsearch_core::Filter::allow(chosen.iter().copied().chain([7]));
    let got = idx
        .search(&set.queries[0], 10, &SearchParams::default().with_filter(f))
        .await?;
    let live: Vec<(u64, &[f32])> = chosen
        .iter()
        .map(|&id| (id, set.points[((id - id_of(0)) / 7) as usize].as_slice()))
        .collect();
    let want: Vec<u64> = set.truth(&live, 0, 10).iter().map(|n| n.id).collect();
    let ids: Vec<u64> = got.iter().map(|n| n.id).collect();
    ensure!(
        ids == want,
        "allow-list of 3 present ids + 1 absent: got {ids:?}, want {want:?}"
    );
    Ok(())
}

/// A large allow-list (half the ids) keeps recall.
pub async fn filter_large_allow_list_recall(h: &Harness) -> Case {
    filter_case(h, 5000, 2, 0.95).await
}

/// An empty allow-list returns nothing; a deleted id in the list is not returned.
pub async fn filter_empty_and_deleted(h: &Harness) -> Case {
    let c = caps(h).await?;
    if !c.filter {
        return Err(Why::Skip("no filter".into()));
    }
    let idx = fresh(h, 8, Metric::L2).await?;
    let set = Set::new(100, 1, 8, Metric::L2, 41);
    fill(&*idx, &set.ids, &set.points).await?;
    let none = SearchParams::default().with_filter(vecsearch_core::Filter::allow([]));
    ensure!(
        idx.search(&set.queries[0], 5, &none).await?.is_empty(),
        "an empty allow-list returned results"
    );
    idx.delete(set.ids[1]).await?;
    idx.sync().await?;
    let f = vecsearch_core::Filter::allow([set.ids[1], set.ids[2]]);
    let got = idx
        .search(&set.queries[0], 5, &SearchParams::default().with_filter(f))
        .await?;
    let ids: Vec<u64> = got.iter().map(|n| n.id).collect();
    ensure!(
        ids == [set.ids[2]],
        "allow-list of a deleted and a live id: got {ids:?}"
    );
    Ok(())
}
