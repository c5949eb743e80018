//! Writes: upserts, batches, deletes, ids at the backend's limit.

#[allow(unused_imports)]
use super::*;

/// Adding an existing id replaces its vector: only the new one is found.
pub async fn upsert_replaces_vector(h: &Harness) -> Case {
    let idx = fresh(h, 16, Metric::L2).await?;
    let set = Set::new(300, 0, 16, Metric::L2, 13);
    fill(&*idx, &set.ids, &set.points).await?;
    let id = set.ids[17];
    let new = vec![25.0f32; 16];
    idx.add(id, &new).await?;
    idx.sync().await?;
    ensure!(len(&*idx).await? == 300, "an upsert changed len");
    let got = idx
        .get(id)
        .await?
        .ok_or_else(|| fail("upserted id vanished"))?;
    ensure!(
        same_vector(Metric::L2, &got, &new),
        "get returns the old vector after an upsert"
    );
    let near_new = idx.search(&new, 1, &default_params()).await?;
    ensure!(
        near_new
            .first()
            .is_some_and(|n| n.id == id && n.distance.abs() < 1e-3),
        "the new vector is not found at distance 0: {near_new:?}"
    );
    let near_old = idx.search(&set.points[17], 5, &default_params()).await?;
    if let Some(n) = near_old.iter().find(|n| n.id == id) {
        let exact = exact_distance(Metric::L2, &set.points[17], &new);
        ensure!(
            agrees(n.distance, exact),
            "the old vector is still found (distance {})",
            n.distance
        );
    }
    Ok(())
}

/// In a batch, the last of two equal ids wins.
pub async fn batch_last_duplicate_wins(h: &Harness) -> Case {
    let idx = fresh(h, 4, Metric::L2).await?;
    let (a, b, c) = (vec![1.0f32; 4], vec![2.0f32; 4], vec![3.0f32; 4]);
    fill(&*idx, &[7, 8, 7], &[a, b, c.clone()]).await?;
    ensure!(len(&*idx).await? == 2, "two distinct ids should give len 2");
    let got = idx.get(7).await?.ok_or_else(|| fail("id 7 missing"))?;
    ensure!(
        same_vector(Metric::L2, &got, &c),
        "id 7 holds {got:?}, not the last vector of the batch"
    );
    Ok(())
}

/// `add_batch` leaves the index as the same adds one by one would.
pub async fn batch_equals_sequential(h: &Harness) -> Case {
    let one = fresh(h, 16, Metric::L2).await?;
    let many = fresh(h, 16, Metric::L2).await?;
    let set = Set::new(300, 20, 16, Metric::L2, 17);
    let mut ids = set.ids.clone();
    let mut points = set.points.clone();
    ids.push(set.ids[5]);
    points.push(vec![-3.0; 16]);
    for (id, v) in ids.iter().zip(&points) {
        one.add(*id, v).await?;
    }
    one.sync().await?;
    fill(&*many, &ids, &points).await?;
    ensure!(
        len(&*one).await? == len(&*many).await?,
        "len differs between batch and one-by-one"
    );
    for id in &set.ids {
        let (a, b) = (one.get(*id).await?, many.get(*id).await?);
        ensure!(a == b, "get({id}) differs between batch and one-by-one");
    }
    let wide = SearchParams::default().with_ef(512);
    for q in &set.queries {
        let a: Vec<u64> = one
            .search(q, 10, &wide)
            .await?
            .iter()
            .map(|n| n.id)
            .collect();
        let b: Vec<u64> = many
            .search(q, 10, &wide)
            .await?
            .iter()
            .map(|n| n.id)
            .collect();
        ensure!(
            a == b,
            "wide searches differ: one-by-one {a:?}, batch {b:?}"
        );
    }
    Ok(())
}

/// `search_batch` equals `search` on each query, in order, with and without a filter.
pub async fn search_batch_equals_search(h: &Harness) -> Case {
    let idx = fresh(h, 16, Metric::L2).await?;
    let set = Set::new(2000, 30, 16, Metric::L2, 19);
    fill(&*idx, &set.ids, &set.points).await?;
    let c = idx.capabilities();
    let mut param_sets = vec![default_params(), SearchParams::default().with_ef(32)];
    if c.filter {
        let f = vecsearch_core::Filter::allow(set.ids.iter().step_by(3).copied());
        param_sets.push(SearchParams::default().with_filter(f));
    }
    for p in &param_sets {
        let batch = idx.search_batch(&set.queries, 10, p).await?;
        ensure!(
            batch.len() == set.queries.len(),
            "search_batch returned {} lists",
            batch.len()
        );
        for (q, got) in set.queries.iter().zip(&batch) {
            let one = idx.search(q, 10, p).await?;
            ensure!(
                &one == got,
                "search_batch differs from search: {got:?} vs {one:?}"
            );
        }
    }
    Ok(())
}

/// Deleting an absent id is `Ok(false)`.
pub async fn delete_absent_is_false(h: &Harness) -> Case {
    let idx = fresh(h, 4, Metric::L2).await?;
    ensure!(
        !idx.delete(5).await?,
        "delete on an empty index returned true"
    );
    fill(&*idx, &[1], &[vec![1.0; 4]]).await?;
    ensure!(
        !idx.delete(5).await?,
        "delete of an absent id returned true"
    );
    ensure!(
        idx.delete(1).await?,
        "delete of a present id returned false"
    );
    idx.sync().await?;
    ensure!(
        !idx.delete(1).await?,
        "a second delete of the same id returned true"
    );
    Ok(())
}

/// A deleted id is never returned, `get` is `None`, `len` is one less.
pub async fn delete_hides_and_counts(h: &Harness) -> Case {
    let idx = fresh(h, 16, Metric::L2).await?;
    let set = Set::new(500, 0, 16, Metric::L2, 23);
    fill(&*idx, &set.ids, &set.points).await?;
    let gone: Vec<usize> = (0..500).step_by(10).collect();
    for &i in &gone {
        ensure!(
            idx.delete(set.ids[i]).await?,
            "delete of id {} returned false",
            set.ids[i]
        );
    }
    idx.sync().await?;
    ensure!(
        len(&*idx).await? == 500 - gone.len(),
        "len is not {} after {} deletes",
        500 - gone.len(),
        gone.len()
    );
    for &i in &gone {
        ensure!(
            idx.get(set.ids[i]).await?.is_none(),
            "get of a deleted id returned a vector"
        );
        let got = idx.search(&set.points[i], 20, &default_params()).await?;
        ensure!(
            got.iter().all(|n| n.id != set.ids[i]),
            "deleted id {} returned by search",
            set.ids[i]
        );
        ensure!(
            got.len() == 20,
            "search after deletes returned {} of 20",
            got.len()
        );
    }
    Ok(())
}

/// A deleted id can be added again and is found again.
pub async fn delete_then_readd(h: &Harness) -> Case {
    let idx = fresh(h, 16, Metric::L2).await?;
    let set = Set::new(200, 0, 16, Metric::L2, 29);
    fill(&*idx, &set.ids, &set.points).await?;
    let id = set.ids[3];
    ensure!(idx.delete(id).await?, "delete returned false");
    let v = vec![-7.0f32; 16];
    idx.add(id, &v).await?;
    idx.sync().await?;
    ensure!(
        len(&*idx).await? == 200,
        "len after delete + re-add is not 200"
    );
    let got = idx.search(&v, 1, &default_params()).await?;
    ensure!(
        got.first().is_some_and(|n| n.id == id),
        "re-added id not found: {got:?}"
    );
    let old = idx.search(&set.points[3], 3, &default_params()).await?;
    if let Some(n) = old.iter().find(|n| n.id == id) {
        ensure!(
            n.distance > 1.0,
            "the deleted vector is found again under the re-added id"
        );
    }
    Ok(())
}

/// Ids up to the backend's limit work; beyond it, a clear error and nothing written.
pub async fn ids_at_the_limit(h: &Harness) -> Case {
    let idx = fresh(h, 4, Metric::L2).await?;
    let max = idx.capabilities().max_id;
    fill(&*idx, &[max, 0], &[vec![1.0; 4], vec![2.0; 4]]).await?;
    let got = idx.search(&[1.0; 4], 1, &default_params()).await?;
    ensure!(
        got.first().is_some_and(|n| n.id == max),
        "id {max} not returned intact: {got:?}"
    );
    if max < u64::MAX {
        match idx.add(max + 1, &[3.0; 4]).await {
            Err(Error::InvalidArgument(_)) => {}
            other => {
                return Err(fail(format!(
                    "id {} beyond the limit: expected InvalidArgument, got {other:?}",
                    max + 1
                )))
            }
        }
        idx.sync().await?;
        ensure!(len(&*idx).await? == 2, "a rejected id changed len");
    }
    Ok(())
}

/// `contains` answers like `get(..).is_some()`, `delete_batch` like deletes
/// one by one (counting the ids that were present), and `add_rows` /
/// `search_rows` over a row-major matrix like `add_batch` / `search_batch`.
pub async fn contains_delete_batch_and_rows(h: &Harness) -> Case {
    let idx = fresh(h, 8, Metric::L2).await?;
    let set = Set::new(200, 5, 8, Metric::L2, 29);
    let flat: Vec<f32> = set.points.iter().flatten().copied().collect();
    idx.add_rows(&set.ids, &flat).await?;
    idx.sync().await?;
    ensure!(len(&*idx).await? == 200, "add_rows did not add 200 rows");
    for i in [0usize, 57, 199] {
        let got = idx.get(set.ids[i]).await?;
        ensure!(
            got.is_some_and(|g| same_vector(Metric::L2, &g, &set.points[i])),
            "row {i} was not stored as given"
        );
    }
    ensure!(
        idx.contains(set.ids[3]).await?,
        "contains misses a stored id"
    );
    ensure!(!idx.contains(42).await?, "contains finds an id never added");
    let gone = [set.ids[3], set.ids[4], 42, set.ids[3]];
    let removed = idx.delete_batch(&gone).await?;
    ensure!(removed == 2, "delete_batch counted {removed}, expected 2");
    idx.sync().await?;
    ensure!(
        !idx.contains(set.ids[3]).await?,
        "a deleted id is still contained"
    );
    ensure!(
        len(&*idx).await? == 198,
        "len after delete_batch is not 198"
    );
    let qflat: Vec<f32> = set.queries.iter().flatten().copied().collect();
    let p = SearchParams::default().with_ef(400);
    let by_rows = idx.search_rows(&qflat, 5, &p).await?;
    let by_batch = idx.search_batch(&set.queries, 5, &p).await?;
    ensure!(by_rows == by_batch, "search_rows differs from search_batch");
    match idx.add_rows(&[1, 2], &flat[..8 * 3]).await {
        Err(Error::InvalidArgument(_)) => {}
        other => return Err(fail(format!("2 ids for 3 rows gave {other:?}"))),
    }
    match idx
        .search(&set.queries[0], 3, &SearchParams::default().with_ef(0))
        .await
    {
        Err(Error::InvalidArgument(_)) => {}
        other => {
            return Err(fail(format!(
                "ef = 0 gave {other:?}, expected InvalidArgument"
            )))
        }
    }
    Ok(())
}
