//! One case per rule of the [contract](crate::contract). Each is a `pub async fn(&Harness)`
//! that a backend's own tests may also call alone.

use std::path::{Path, PathBuf};

use vecsearch_core::distance::{agrees, exact_distance};
use vecsearch_core::persist::{self, Header};
use vecsearch_core::synthetic::Rng;
use vecsearch_core::{
    Capabilities, Error, FlatIndex, IndexSpec, Metric, SearchParams, Storage, VectorIndex,
};

use crate::data::{check_sorted, id_of, mean_recall, same_vector, Set};

mod bad_input;
mod concurrency;
mod degenerate;
mod distances;
mod filters;
mod model;
mod payloads;
mod persistence;
mod plans;
mod races;
mod reachability;
mod readback;
mod reads;
mod recall;
mod writes;

use crate::harness::BoxFuture;
pub(crate) use crate::verdict::fail;
pub use crate::verdict::{Case, CaseFn, Why};
use crate::Harness;
pub use bad_input::*;
pub use concurrency::*;
pub use degenerate::degenerate_vectors;
pub use distances::*;
pub use filters::*;
pub use model::model_random_ops;
pub use payloads::{
    filter_semantics, filtered_recall, model_random_payload_ops, payload_bad_input,
    payload_survives, payloads_unsupported_fail_at_creation,
};
pub use persistence::*;
pub use plans::{explain_reports_the_plan, far_filters_are_answered_exactly};
pub use races::{concurrent_reads_see_whole_versions, concurrent_saves};
pub use reachability::reachable_after_churn;
pub use readback::{exclude_list, range_search, scan_beside_writers, scan_returns_every_live_id};
pub use reads::*;
pub use recall::*;
pub use writes::*;

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
    unsupported_storage_fails_at_creation,
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
    contains_delete_batch_and_rows,
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
    payloads_unsupported_fail_at_creation,
    filter_semantics,
    payload_survives,
    payload_bad_input,
    model_random_payload_ops,
    filtered_recall,
    scan_returns_every_live_id,
    scan_beside_writers,
    range_search,
    exclude_list,
    explain_reports_the_plan,
    far_filters_are_answered_exactly,
    recall_l2,
    recall_cosine,
    recall_inner_product,
    recall_jaccard,
    recall_after_deleting_half,
    churn_recall,
    churn_memory_bounded,
    finish_indexing_keeps_answers,
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

/// The cases run again for every storage kind a backend declares besides
/// f32: what they prove (recall, upserts, deletes, filters, churn, files,
/// exact answers to a model) depends on how vectors are held.
pub const STORAGE_CASES: &[&str] = &[
    "distances_l2",
    "distances_cosine",
    "distances_inner_product",
    "distances_jaccard",
    "get_returns_stored_vector",
    "upsert_replaces_vector",
    "delete_hides_and_counts",
    "delete_then_readd",
    "filter_only_admitted",
    "filter_large_allow_list_recall",
    "filter_empty_and_deleted",
    "filtered_recall",
    "scan_returns_every_live_id",
    "recall_l2",
    "recall_cosine",
    "recall_inner_product",
    "recall_jaccard",
    "recall_after_deleting_half",
    "churn_recall",
    "churn_memory_bounded",
    "finish_indexing_keeps_answers",
    "save_open_round_trip",
    "model_random_ops",
    "reachable_after_churn",
    "concurrent_reads_see_whole_versions",
];

// ---------- shared steps ----------

/// The backend's capabilities, from one probe index per run.
pub(crate) async fn caps(h: &Harness) -> Result<Capabilities, Why> {
    if let Some(c) = h.caps.get() {
        return Ok(c.clone());
    }
    let probe = h.create(IndexSpec::new(4, Metric::L2)).await?;
    let c = probe.capabilities();
    let _ = h.caps.set(c.clone());
    Ok(c)
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
