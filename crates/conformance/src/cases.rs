//! One case per rule of the [contract](crate::contract). Each is a `pub async fn(&Harness)`
//! that a backend's own tests may also call alone.

use std::path::{Path, PathBuf};

use vecsearch_core::distance::{agrees, exact_distance};
use vecsearch_core::persist::{self, Header};
use vecsearch_core::synthetic::Rng;
use vecsearch_core::{
    Capabilities, Error, FlatIndex, IndexSpec, Metric, SearchParams, VectorIndex,
};

use crate::data::{check_sorted, id_of, mean_recall, same_vector, Set};

mod degenerate;
mod model;
mod races;
mod reachability;

use crate::harness::BoxFuture;
use crate::Harness;
pub use degenerate::degenerate_vectors;
pub use model::model_random_ops;
pub use races::{concurrent_reads_see_whole_versions, concurrent_saves};
pub use reachability::reachable_after_churn;

/// Why a case did not pass.
#[derive(Debug)]
pub enum Why {
    /// The rule was broken.
    Fail(String),
    /// A capability the case needs is declared missing.
    Skip(String),
}

impl From<Error> for Why {
    fn from(e: Error) -> Self {
        Why::Fail(format!("unexpected error: {e}"))
    }
}

/// What a case returns.
pub type Case = Result<(), Why>;

/// A case as a function pointer.
pub type CaseFn = for<'a> fn(&'a Harness) -> BoxFuture<'a, Case>;

pub(crate) fn fail(msg: impl Into<String>) -> Why {
    Why::Fail(msg.into())
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        let held: bool = $cond;
        if !held {
            return Err(fail(format!($($msg)+)));
        }
    };
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case, in the order `run_all` runs them.
        pub fn all() -> Vec<(&'static str, CaseFn)> {
            vec![$((stringify!($name), |h: &Harness| -> BoxFuture<'_, Case> { Box::pin($name(h)) })),*]
        }
    };
}

cases!(
    distances_l2,
    distances_cosine,
    distances_inner_product,
    distances_jaccard,
    unsupported_metric_fails_at_creation,
    results_sorted_ties_by_id,
    k_zero_and_empty_index,
    k_larger_than_len,
    small_ef_still_returns_k,
    get_returns_stored_vector,
    upsert_replaces_vector,
    batch_last_duplicate_wins,
    batch_equals_sequential,
    search_batch_equals_search,
    delete_absent_is_false,
    delete_hides_and_counts,
    delete_then_readd,
    ids_at_the_limit,
    bad_input_wrong_dimension,
    bad_input_nan,
    bad_input_infinity,
    bad_input_zero_vector_cosine,
    bad_input_negative_jaccard,
    bad_batch_changes_nothing,
    bad_query_is_rejected,
    filter_only_admitted,
    filter_tiny_allow_list,
    filter_large_allow_list_recall,
    filter_empty_and_deleted,
    recall_l2,
    recall_cosine,
    recall_inner_product,
    recall_jaccard,
    recall_after_deleting_half,
    churn_recall,
    churn_memory_bounded,
    concurrent_searches_beside_writes,
    save_open_round_trip,
    save_is_atomic_and_repeatable,
    open_checks_dim_and_metric,
    corrupt_empty_file,
    corrupt_truncated_file,
    corrupt_bit_flips,
    corrupt_random_bytes,
    corrupt_foreign_file,
    crafted_body_never_crashes,
    model_random_ops,
    degenerate_vectors,
    reachable_after_churn,
    concurrent_reads_see_whole_versions,
    concurrent_saves,
    blocking_without_runtime,
);

use crate::blocking::blocking_without_runtime;

// ---------- shared steps ----------

async fn caps(h: &Harness) -> Result<Capabilities, Why> {
    let probe = h.create(IndexSpec::new(4, Metric::L2)).await?;
    Ok(probe.capabilities())
}

async fn fresh(h: &Harness, dim: usize, metric: Metric) -> Result<Box<dyn VectorIndex>, Why> {
    let c = caps(h).await?;
    if !c.serves(metric) {
        return Err(Why::Skip(format!("metric {metric} not served")));
    }
    Ok(h.create(IndexSpec::new(dim, metric)).await?)
}

async fn fill(idx: &dyn VectorIndex, ids: &[u64], points: &[Vec<f32>]) -> Case {
    idx.add_batch(ids, points).await?;
    idx.sync().await?;
    Ok(())
}

async fn len(idx: &dyn VectorIndex) -> Result<usize, Why> {
    Ok(idx.len().await?)
}

fn default_params() -> SearchParams {
    SearchParams::default()
}

fn scaled(h: &Harness, n: usize, floor: usize) -> usize {
    ((n as f64 * h.scale) as usize).max(floor)
}

// ---------- distances ----------

async fn distances_for(h: &Harness, metric: Metric) -> Case {
    let idx = fresh(h, 24, metric).await?;
    let set = Set::new(400, 20, 24, metric, 11);
    fill(&*idx, &set.ids, &set.points).await?;
    let by_id: std::collections::HashMap<u64, &Vec<f32>> =
        set.ids.iter().copied().zip(&set.points).collect();
    for q in &set.queries {
        let got = idx.search(q, 10, &default_params()).await?;
        ensure!(got.len() == 10, "expected 10 results, got {}", got.len());
        check_sorted(&got)?;
        for n in &got {
            let v = by_id
                .get(&n.id)
                .ok_or_else(|| fail(format!("unknown id {} returned", n.id)))?;
            let exact = exact_distance(metric, q, v);
            ensure!(
                agrees(n.distance, exact),
                "id {}: reported {} but the exact {metric} distance is {exact}",
                n.id,
                n.distance
            );
        }
    }
    Ok(())
}

/// Reported L2 distances equal the exact squared Euclidean distance.
pub async fn distances_l2(h: &Harness) -> Case {
    distances_for(h, Metric::L2).await
}

/// Reported cosine distances equal `1 − cos`.
pub async fn distances_cosine(h: &Harness) -> Case {
    distances_for(h, Metric::Cosine).await
}

/// Reported inner-product distances equal `1 − a·b`.
pub async fn distances_inner_product(h: &Harness) -> Case {
    distances_for(h, Metric::InnerProduct).await
}

/// Reported Jaccard distances equal the weighted Jaccard distance.
pub async fn distances_jaccard(h: &Harness) -> Case {
    distances_for(h, Metric::Jaccard).await
}

/// A metric the backend does not declare fails at creation with `Unsupported`.
pub async fn unsupported_metric_fails_at_creation(h: &Harness) -> Case {
    let c = caps(h).await?;
    let missing: Vec<Metric> = Metric::ALL.into_iter().filter(|m| !c.serves(*m)).collect();
    if missing.is_empty() {
        return Err(Why::Skip("the backend serves every metric".into()));
    }
    for m in missing {
        match h.create(IndexSpec::new(8, m)).await {
            Err(Error::Unsupported(_)) => {}
            Err(e) => return Err(fail(format!("{m}: expected Unsupported, got {e}"))),
            Ok(_) => {
                return Err(fail(format!(
                    "{m}: created an index for an undeclared metric"
                )))
            }
        }
    }
    Ok(())
}

// ---------- reads ----------

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
            got.iter().all(|n| (n.id - id_of(0)) % 35 == 0),
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
                same_vector(metric, &got, v),
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

// ---------- writes ----------

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

// ---------- bad input ----------

async fn expect_rejected_add(
    h: &Harness,
    metric: Metric,
    bad: Vec<f32>,
    is_right: fn(&Error) -> bool,
    what: &str,
) -> Case {
    let idx = fresh(h, 8, metric).await?;
    let good = vec![vec![0.5f32; 8], vec![1.5f32; 8]];
    fill(&*idx, &[1, 2], &good).await?;
    match idx.add(3, &bad).await {
        Err(e) if is_right(&e) => {}
        other => return Err(fail(format!("add with {what}: wrong outcome {other:?}"))),
    }
    match idx.add(1, &bad).await {
        Err(e) if is_right(&e) => {}
        other => return Err(fail(format!("upsert with {what}: wrong outcome {other:?}"))),
    }
    match idx.add_batch(&[4, 5], &[vec![2.5f32; 8], bad]).await {
        Err(e) if is_right(&e) => {}
        other => return Err(fail(format!("batch with {what}: wrong outcome {other:?}"))),
    }
    idx.sync().await?;
    ensure!(len(&*idx).await? == 2, "a rejected write changed len");
    ensure!(
        idx.get(4).await?.is_none(),
        "the good half of a rejected batch was written"
    );
    let v1 = idx.get(1).await?.ok_or_else(|| fail("id 1 vanished"))?;
    ensure!(
        same_vector(metric, &v1, &good[0]),
        "a rejected upsert changed the stored vector"
    );
    Ok(())
}

/// Wrong length: `DimensionMismatch`, nothing written.
pub async fn bad_input_wrong_dimension(h: &Harness) -> Case {
    let is = |e: &Error| {
        matches!(
            e,
            Error::DimensionMismatch {
                expected: 8,
                got: 7
            }
        )
    };
    expect_rejected_add(h, Metric::L2, vec![1.0; 7], is, "7 components").await
}

/// NaN: `InvalidVector`, nothing written.
pub async fn bad_input_nan(h: &Harness) -> Case {
    let mut v = vec![1.0f32; 8];
    v[3] = f32::NAN;
    expect_rejected_add(
        h,
        Metric::L2,
        v,
        |e| matches!(e, Error::InvalidVector(_)),
        "NaN",
    )
    .await
}

/// ±infinity: `InvalidVector`, nothing written.
pub async fn bad_input_infinity(h: &Harness) -> Case {
    for inf in [f32::INFINITY, f32::NEG_INFINITY] {
        let mut v = vec![1.0f32; 8];
        v[7] = inf;
        expect_rejected_add(
            h,
            Metric::L2,
            v,
            |e| matches!(e, Error::InvalidVector(_)),
            "infinity",
        )
        .await?;
    }
    Ok(())
}

/// An all-zero vector under cosine: `InvalidVector`, nothing written.
pub async fn bad_input_zero_vector_cosine(h: &Harness) -> Case {
    let is = |e: &Error| matches!(e, Error::InvalidVector(_));
    expect_rejected_add(h, Metric::Cosine, vec![0.0; 8], is, "a zero vector").await
}

/// A negative component under Jaccard: `InvalidVector`, nothing written.
pub async fn bad_input_negative_jaccard(h: &Harness) -> Case {
    let mut v = vec![1.0f32; 8];
    v[0] = -0.5;
    let is = |e: &Error| matches!(e, Error::InvalidVector(_));
    expect_rejected_add(h, Metric::Jaccard, v, is, "a negative component").await
}

/// A batch whose ids and vectors differ in number is rejected whole.
pub async fn bad_batch_changes_nothing(h: &Harness) -> Case {
    let idx = fresh(h, 4, Metric::L2).await?;
    match idx
        .add_batch(&[1, 2, 3], &[vec![1.0; 4], vec![2.0; 4]])
        .await
    {
        Err(Error::InvalidArgument(_)) => {}
        other => {
            return Err(fail(format!(
                "3 ids, 2 vectors: expected InvalidArgument, got {other:?}"
            )))
        }
    }
    idx.sync().await?;
    ensure!(len(&*idx).await? == 0, "a rejected batch wrote something");
    Ok(())
}

/// A bad query is rejected with the same variants, in single and batch search.
pub async fn bad_query_is_rejected(h: &Harness) -> Case {
    let idx = fresh(h, 8, Metric::L2).await?;
    fill(&*idx, &[1], &[vec![1.0; 8]]).await?;
    let p = default_params();
    ensure!(
        matches!(
            idx.search(&[1.0; 3], 1, &p).await,
            Err(Error::DimensionMismatch { .. })
        ),
        "a short query was not DimensionMismatch"
    );
    let mut nan = vec![1.0f32; 8];
    nan[0] = f32::NAN;
    ensure!(
        matches!(idx.search(&nan, 1, &p).await, Err(Error::InvalidVector(_))),
        "a NaN query was accepted"
    );
    ensure!(
        matches!(
            idx.search_batch(&[vec![1.0; 8], nan], 1, &p).await,
            Err(Error::InvalidVector(_))
        ),
        "a batch with a NaN query was accepted"
    );
    Ok(())
}

// ---------- filters ----------

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
            got.iter().all(|n| f.admits(n.id)),
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

// ---------- recall ----------

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

// ---------- concurrency ----------

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

// ---------- persistence ----------

struct Saved {
    _dir: TempDir,
    path: PathBuf,
    set: Set,
}

async fn saved_index(h: &Harness) -> Result<(Saved, Box<dyn VectorIndex>), Why> {
    if h.opener.is_none() || !caps(h).await?.persistence {
        return Err(Why::Skip("no persistence".into()));
    }
    let idx = fresh(h, 16, Metric::Cosine).await?;
    let set = Set::new(2000, 20, 16, Metric::Cosine, 61);
    fill(&*idx, &set.ids, &set.points).await?;
    for i in (0..2000).step_by(7) {
        idx.delete(set.ids[i]).await?;
    }
    let dir = TempDir::new(h.name())?;
    let path = dir.0.join("index.vs");
    idx.save(&path).await?;
    Ok((
        Saved {
            _dir: dir,
            path,
            set,
        },
        idx,
    ))
}

async fn open(
    h: &Harness,
    path: &Path,
    spec: IndexSpec,
) -> vecsearch_core::Result<Box<dyn VectorIndex>> {
    match &h.opener {
        Some(o) => o(path.to_path_buf(), spec).await,
        None => Err(Error::Unsupported("no opener".into())),
    }
}

/// A saved and reopened index answers every query exactly as before.
pub async fn save_open_round_trip(h: &Harness) -> Case {
    let (s, idx) = saved_index(h).await?;
    let back = open(h, &s.path, idx.spec().clone()).await?;
    ensure!(
        len(&*back).await? == len(&*idx).await?,
        "len differs after reopening"
    );
    for q in &s.set.queries {
        let (a, b) = (
            idx.search(q, 10, &default_params()).await?,
            back.search(q, 10, &default_params()).await?,
        );
        ensure!(a == b, "answers differ after reopening: {a:?} vs {b:?}");
    }
    for id in s.set.ids.iter().take(50) {
        ensure!(
            idx.get(*id).await? == back.get(*id).await?,
            "get({id}) differs after reopening"
        );
    }
    back.add(1, &[1.0; 16]).await?;
    ensure!(
        back.get(1).await?.is_some(),
        "a reopened index does not take writes"
    );
    Ok(())
}

/// Saving twice over the same path works and leaves no temporary file.
pub async fn save_is_atomic_and_repeatable(h: &Harness) -> Case {
    let (s, idx) = saved_index(h).await?;
    idx.add(77, &[2.0; 16]).await?;
    idx.save(&s.path).await?;
    let names: Vec<String> = std::fs::read_dir(s.path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| fail(format!("listing the directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    ensure!(
        names == ["index.vs"],
        "the directory holds {names:?} after saving, not just the index"
    );
    let back = open(h, &s.path, idx.spec().clone()).await?;
    ensure!(
        back.get(77).await?.is_some(),
        "the second save did not replace the first"
    );
    Ok(())
}

/// Opening with another dim or metric is a clear error, not a wrong index.
pub async fn open_checks_dim_and_metric(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    for spec in [
        IndexSpec::new(15, Metric::Cosine),
        IndexSpec::new(16, Metric::L2),
    ] {
        match open(h, &s.path, spec.clone()).await {
            Err(Error::InvalidArgument(_)) | Err(Error::Corrupt(_)) => {}
            other => {
                return Err(fail(format!(
                    "open as {spec:?}: expected an error, got {:?}",
                    other.map(|_| ())
                )))
            }
        }
    }
    Ok(())
}

async fn expect_corrupt(h: &Harness, path: &Path, bytes: &[u8], what: &str) -> Case {
    std::fs::write(path, bytes).map_err(|e| fail(format!("writing the test file: {e}")))?;
    match open(h, path, IndexSpec::new(16, Metric::Cosine)).await {
        Err(Error::Corrupt(_)) | Err(Error::Io { .. }) => Ok(()),
        Err(e) => Err(fail(format!("{what}: expected Corrupt or Io, got {e}"))),
        Ok(_) => Err(fail(format!("{what}: opened without error"))),
    }
}

/// An empty file is `Corrupt`.
pub async fn corrupt_empty_file(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    expect_corrupt(h, &s.path, &[], "an empty file").await
}

/// Every truncation is `Corrupt`.
pub async fn corrupt_truncated_file(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let good = read(&s.path)?;
    for cut in [
        1,
        8,
        47,
        48,
        100,
        good.len() / 2,
        good.len() - 4,
        good.len() - 1,
    ] {
        expect_corrupt(
            h,
            &s.path,
            &good[..cut.min(good.len() - 1)],
            &format!("cut at {cut}"),
        )
        .await?;
    }
    Ok(())
}

/// Flipped bits anywhere are `Corrupt`.
pub async fn corrupt_bit_flips(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let good = read(&s.path)?;
    let mut rng = Rng::new(67);
    for i in 0..64 {
        let mut bad = good.clone();
        // The first 48 flips hit the header and the start of the body, where
        // the structure is; the rest land anywhere.
        let pos = if i < 48 {
            rng.below(good.len().min(256))
        } else {
            rng.below(good.len())
        };
        bad[pos] ^= 1 << rng.below(8);
        expect_corrupt(h, &s.path, &bad, &format!("a bit flipped at byte {pos}")).await?;
    }
    Ok(())
}

/// Random bytes, bare or behind the right magic, are `Corrupt`.
pub async fn corrupt_random_bytes(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let good = read(&s.path)?;
    let mut rng = Rng::new(71);
    for size in [16, 48, 49, 4096, 100_000] {
        let mut bytes: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
        expect_corrupt(h, &s.path, &bytes, &format!("{size} random bytes")).await?;
        bytes[..8.min(size)].copy_from_slice(&good[..8.min(size)]);
        expect_corrupt(
            h,
            &s.path,
            &bytes,
            &format!("the magic and {size} random bytes"),
        )
        .await?;
    }
    Ok(())
}

/// Another backend's file is `Corrupt` (named as such), not misread.
pub async fn corrupt_foreign_file(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let own_magic: [u8; 8] = read(&s.path)?
        .get(..8)
        .and_then(|m| m.try_into().ok())
        .ok_or_else(|| fail("the saved file is shorter than 8 bytes"))?;
    if &own_magic != b"VSFLAT01" {
        let flat = FlatIndex::new(IndexSpec::new(16, Metric::Cosine))?;
        fill(&flat, &s.set.ids, &s.set.points).await?;
        flat.save(&s.path).await?;
    } else {
        let header = Header {
            magic: *b"VSNATIVE",
            version: 1,
            metric: Metric::Cosine,
            dim: 16,
            count: 0,
        };
        persist::write_atomic(&s.path, &header, &[0u8; 64])?;
    }
    let foreign = read(&s.path)?;
    expect_corrupt(h, &s.path, &foreign, "another backend's file").await
}

/// Bodies altered behind valid checksums (so only the backend's own field
/// checks stand between them and the engine) never crash, abort or hang; an
/// index that opens anyway answers searches with well-formed results.
pub async fn crafted_body_never_crashes(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let good = read(&s.path)?;
    let body_len = good.len() - persist::HEADER_LEN;
    let mut rng = Rng::new(73);
    let patterns: [u64; 5] = [u64::MAX, u32::MAX as u64, 1 << 40, 0, 0x7FFF_FFFF];
    for i in 0..80 {
        let mut body = good[persist::HEADER_LEN..].to_vec();
        // Overwrite an aligned word near the start (counts, offsets) or anywhere.
        let limit = if i % 2 == 0 {
            body_len.min(512)
        } else {
            body_len
        };
        let pos = (rng.below(limit.saturating_sub(8).max(1)) / 4) * 4;
        let word = patterns[i % patterns.len()].to_le_bytes();
        let end = (pos + 8).min(body.len());
        body[pos..end].copy_from_slice(&word[..end - pos]);
        let header = Header {
            magic: good[..8].try_into().map_err(|_| fail("short file"))?,
            version: u32::from_le_bytes([good[8], good[9], good[10], good[11]]),
            metric: Metric::Cosine,
            dim: 16,
            count: u64::from_le_bytes(good[24..32].try_into().map_err(|_| fail("short file"))?),
        };
        persist::write_atomic(&s.path, &header, &body)?;
        if let Ok(idx) = open(h, &s.path, IndexSpec::new(16, Metric::Cosine)).await {
            for q in s.set.queries.iter().take(3) {
                if let Ok(got) = idx.search(q, 10, &default_params()).await {
                    ensure!(
                        got.len() <= 10,
                        "a crafted index returned {} results for k = 10",
                        got.len()
                    );
                }
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, Why> {
    std::fs::read(path).map_err(|e| fail(format!("reading {}: {e}", path.display())))
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<TempDir, Why> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("vecsearch-conf-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
