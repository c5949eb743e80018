//! Recall on the suite's clustered data, also after deletes and churn; memory over churn.

#[allow(unused_imports)]
use super::*;

const RECALL_N: usize = 20_000;
const RECALL_DIM: usize = 64;
const MIN_RECALL: f64 = 0.95;

async fn recall_for(h: &Harness, metric: Metric) -> Case {
    let idx = fresh(h, RECALL_DIM, metric).await?;
    let set = Set::new(scaled(h, RECALL_N, RECALL_N), 100, RECALL_DIM, metric, 43);
    fill(&*idx, &set.ids, &set.points).await?;
    let r = mean_recall(&*idx, &set, &set.live(), 10, &default_params()).await?;
    ensure!(
        r >= MIN_RECALL,
        "{metric} recall@10 at default parameters is {r:.3} < {MIN_RECALL}"
    );
    Ok(())
}

/// Recall@10 ≥ 0.95 at default parameters, 20,000 clustered points, dim 64, L2.
pub async fn recall_l2(h: &Harness) -> Case {
    recall_for(h, Metric::L2).await
}

/// The same for cosine.
pub async fn recall_cosine(h: &Harness) -> Case {
    recall_for(h, Metric::Cosine).await
}

/// The same for inner product.
pub async fn recall_inner_product(h: &Harness) -> Case {
    recall_for(h, Metric::InnerProduct).await
}

/// The same for Jaccard.
pub async fn recall_jaccard(h: &Harness) -> Case {
    recall_for(h, Metric::Jaccard).await
}

/// After deleting half the points and adding others, recall holds on what remains.
pub async fn recall_after_deleting_half(h: &Harness) -> Case {
    let idx = fresh(h, RECALL_DIM, Metric::L2).await?;
    let n = scaled(h, RECALL_N, RECALL_N);
    let extra = n / 4;
    let set = Set::new(n + extra, 100, RECALL_DIM, Metric::L2, 47);
    fill(&*idx, &set.ids[..n], &set.points[..n]).await?;
    let mut rng = Rng::new(5);
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let (gone, kept) = order.split_at(n / 2);
    for &i in gone {
        idx.delete(set.ids[i]).await?;
    }
    fill(&*idx, &set.ids[n..], &set.points[n..]).await?;
    let live: Vec<(u64, &[f32])> = kept
        .iter()
        .copied()
        .chain(n..n + extra)
        .map(|i| (set.ids[i], set.points[i].as_slice()))
        .collect();
    ensure!(
        len(&*idx).await? == live.len(),
        "len is not {} after the deletes and adds",
        live.len()
    );
    let r = mean_recall(&*idx, &set, &live, 10, &default_params()).await?;
    ensure!(
        r >= MIN_RECALL,
        "recall@10 after deleting half is {r:.3} < {MIN_RECALL}"
    );
    Ok(())
}

/// `finish_indexing` counts what is stored and changes no answer: after it,
/// recall holds and ids deleted after it stay hidden. (For a server it is
/// where data moves into its index: Milvus seals and indexes its segments.)
pub async fn finish_indexing_keeps_answers(h: &Harness) -> Case {
    let idx = fresh(h, RECALL_DIM, Metric::L2).await?;
    let n = scaled(h, 5_000, 2_000);
    let set = Set::new(n, 100, RECALL_DIM, Metric::L2, 59);
    fill(&*idx, &set.ids, &set.points).await?;
    let p = idx.finish_indexing().await?;
    ensure!(
        p.stored == n && p.unindexed <= p.stored,
        "finish_indexing after {n} adds reported {p:?}"
    );
    let gone: Vec<u64> = set.ids.iter().copied().step_by(10).collect();
    for &id in &gone {
        ensure!(idx.delete(id).await?, "id {id} was not there to delete");
    }
    idx.sync().await?;
    let live: Vec<(u64, &[f32])> = set
        .ids
        .iter()
        .zip(&set.points)
        .filter(|(id, _)| !gone.contains(id))
        .map(|(&id, v)| (id, v.as_slice()))
        .collect();
    ensure!(
        len(&*idx).await? == live.len(),
        "len is not {} after deleting {} indexed ids",
        live.len(),
        gone.len()
    );
    let r = mean_recall(&*idx, &set, &live, 10, &default_params()).await?;
    ensure!(
        r >= MIN_RECALL,
        "recall@10 after finish_indexing and deletes is {r:.3} < {MIN_RECALL}"
    );
    Ok(())
}

struct Churn {
    recall: f64,
    memory_before: Option<usize>,
    memory_after: Option<usize>,
}

async fn churn(h: &Harness) -> Result<Churn, Why> {
    let idx = fresh(h, 32, Metric::L2).await?;
    let n = scaled(h, 10_000, 2_000);
    let rounds = 6;
    let per_round = n / 5;
    let set = Set::new(n + rounds * per_round, 100, 32, Metric::L2, 53);
    fill(&*idx, &set.ids[..n], &set.points[..n]).await?;
    let memory_before = idx.memory_bytes();
    let mut live: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(7);
    let mut next = n;
    for _ in 0..rounds {
        rng.shuffle(&mut live);
        for i in live.drain(..per_round) {
            ensure!(
                idx.delete(set.ids[i]).await?,
                "delete of a live id returned false"
            );
        }
        let fresh_ids: Vec<usize> = (next..next + per_round).collect();
        next += per_round;
        let pts: Vec<Vec<f32>> = fresh_ids.iter().map(|&i| set.points[i].clone()).collect();
        let ids: Vec<u64> = fresh_ids.iter().map(|&i| set.ids[i]).collect();
        fill(&*idx, &ids, &pts).await?;
        live.extend(fresh_ids);
    }
    ensure!(
        len(&*idx).await? == n,
        "len drifted from {n} over the churn rounds"
    );
    let pairs: Vec<(u64, &[f32])> = live
        .iter()
        .map(|&i| (set.ids[i], set.points[i].as_slice()))
        .collect();
    let recall = mean_recall(&*idx, &set, &pairs, 10, &default_params()).await?;
    Ok(Churn {
        recall,
        memory_before,
        memory_after: idx.memory_bytes(),
    })
}

/// Rounds of deleting a fifth and adding as many new points keep recall.
pub async fn churn_recall(h: &Harness) -> Case {
    let c = churn(h).await?;
    ensure!(
        c.recall >= MIN_RECALL,
        "recall@10 after churn is {:.3} < {MIN_RECALL}",
        c.recall
    );
    Ok(())
}

/// The same rounds keep memory bounded (slots reused or compacted).
pub async fn churn_memory_bounded(h: &Harness) -> Case {
    if !caps(h).await?.reports_memory {
        return Err(Why::Skip("the backend does not report its memory".into()));
    }
    let c = churn(h).await?;
    let (Some(before), Some(after)) = (c.memory_before, c.memory_after) else {
        return Err(fail(
            "capabilities say memory is reported, but memory_bytes is None",
        ));
    };
    ensure!(
        after as f64 <= before as f64 * 1.15,
        "memory grew from {before} to {after} bytes over churn with a constant live count"
    );
    Ok(())
}
