//! Data sets and checks the cases share.

use vecsearch_core::synthetic::{clustered, exact_knn, recall};
use vecsearch_core::{Metric, Neighbor, SearchParams, VectorIndex};

use crate::cases::{fail, Why};

/// Points and held-out queries from one seeded clustered set, with ids that
/// are neither dense nor zero-based (so slot/id confusion shows).
pub struct Set {
    pub metric: Metric,
    pub ids: Vec<u64>,
    pub points: Vec<Vec<f32>>,
    pub queries: Vec<Vec<f32>>,
}

pub fn id_of(i: usize) -> u64 {
    1_000_003 + 7 * i as u64
}

impl Set {
    pub fn new(n: usize, nq: usize, dim: usize, metric: Metric, seed: u64) -> Set {
        let clusters = (n / 500).clamp(8, 64);
        let all = clustered(n + nq, dim, clusters, seed, metric).to_rows();
        let (points, queries) = all.split_at(n);
        Set {
            metric,
            ids: (0..n).map(id_of).collect(),
            points: points.to_vec(),
            queries: queries.to_vec(),
        }
    }

    /// Exact k-NN of query `q` among `(id, vector)` pairs.
    pub fn truth(&self, live: &[(u64, &[f32])], q: usize, k: usize) -> Vec<Neighbor> {
        exact_knn(self.metric, live, &self.queries[q], k)
    }

    pub fn live(&self) -> Vec<(u64, &[f32])> {
        self.ids
            .iter()
            .copied()
            .zip(self.points.iter().map(Vec::as_slice))
            .collect()
    }
}

/// Mean recall@k of `idx` over the set's queries against exact search over `live`.
pub async fn mean_recall(
    idx: &dyn VectorIndex,
    set: &Set,
    live: &[(u64, &[f32])],
    k: usize,
    params: &SearchParams,
) -> Result<f64, Why> {
    let results = idx.search_batch(&set.queries, k, params).await?;
    let mut total = 0.0;
    for (q, got) in results.iter().enumerate() {
        let admitted: Vec<(u64, &[f32])> = match &params.filter {
            Some(f) => live
                .iter()
                .filter(|(id, _)| f.admits(*id, None))
                .copied()
                .collect(),
            None => live.to_vec(),
        };
        let truth = set.truth(&admitted, q, k);
        check_sorted(got)?;
        if got.len() != truth.len() {
            return Err(fail(format!(
                "query {q}: {} results, expected min(k, len) = {}",
                got.len(),
                truth.len()
            )));
        }
        total += recall(got, &truth);
    }
    Ok(total / set.queries.len().max(1) as f64)
}

/// Distances ascending, ties by id.
pub fn check_sorted(list: &[Neighbor]) -> Result<(), Why> {
    for w in list.windows(2) {
        let ordered =
            w[0].distance < w[1].distance || (w[0].distance == w[1].distance && w[0].id < w[1].id);
        if !ordered {
            return Err(fail(format!(
                "results not sorted by (distance, id): {:?} before {:?}",
                w[0], w[1]
            )));
        }
    }
    Ok(())
}

/// Whether `got` points the same way as `want` (the backend may normalise
/// for cosine) or equals it.
pub fn same_vector(metric: Metric, got: &[f32], want: &[f32]) -> bool {
    if got.len() != want.len() {
        return false;
    }
    if metric == Metric::Cosine {
        return vecsearch_core::distance::exact_distance(Metric::Cosine, got, want).abs() < 1e-4;
    }
    got.iter()
        .zip(want)
        .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0))
}
