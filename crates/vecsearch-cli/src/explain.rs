//! `vecsearch explain URI`: one search, and how the index answered it (the
//! library's `VectorIndex::explain`), so a user can see why a filtered
//! query was slow: an exact scan of many matches, or a walk through a
//! sparse filter.

use std::time::Instant;

use vecsearch::backend::exec::block_on;
use vecsearch::{Filter, SearchParams};

use crate::copy::open_existing;
use crate::ExplainArgs;

/// Runs the search and prints the plan and the hits.
pub fn run(a: &ExplainArgs) -> Result<(), String> {
    let idx = open_existing(&a.uri, a.dim, a.metric, a.schema.as_deref())?;
    let query: Vec<f32> = match (&a.query, a.like) {
        (Some(json), _) => serde_json::from_str(json)
            .map_err(|e| format!("--query is not a JSON array of numbers: {e}"))?,
        (None, Some(id)) => block_on(idx.get(id))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("--like {id}: no vector with that id"))?,
        (None, None) => return Err("give the query: --query '[...]' or --like ID".into()),
    };
    let mut params = SearchParams {
        ef: a.ef,
        ..SearchParams::default()
    };
    if let Some(json) = &a.filter {
        let f: Filter = serde_json::from_str(json).map_err(|e| format!("--filter: {e}"))?;
        params = params.with_filter(f);
    }
    let t = Instant::now();
    let e = block_on(idx.explain(&query, a.k, &params)).map_err(|e| e.to_string())?;
    let us = t.elapsed().as_secs_f64() * 1e6;
    println!("{e}, {us:.0} µs");
    println!("{}", why(&e));
    for h in &e.hits {
        println!("{}\t{}", h.id, h.distance);
    }
    Ok(())
}

/// One sentence on what the plan means for speed.
fn why(e: &vecsearch::Explain) -> String {
    use vecsearch::Plan;
    let share = match e.matches {
        Some(m) if e.live > 0 => {
            format!(" ({:.3}% of the index)", 100.0 * m as f64 / e.live as f64)
        }
        _ => String::new(),
    };
    match e.plan {
        Plan::ExactScan => format!(
            "Every matching row{share} was scored: exact, and as fast as the matches are few."
        ),
        Plan::FilteredWalk => format!(
            "The graph was walked, keeping the rows the filter admits{share}: the rarer the matches, the more rows the walk passes."
        ),
        Plan::TwoHopWalk => "The graph was walked two hops at a time over rows the filter rejects.".into(),
        Plan::WalkThenScan => format!(
            "The walk scored more rows than its budget (native: a quarter of the matches{share}, or fewer rows without meeting one; hnswlib: all of them), so it scanned the matches instead: exact. The matches lie far from the query."
        ),
        Plan::WalkWidened => "The walk came back short and was completed by an exact scan: the graph has regions its walk misses (many deletes?).".into(),
        Plan::Walk => "An unfiltered graph walk.".into(),
        Plan::Nothing => "Nothing to search: k is 0 or the filter admits no id.".into(),
        Plan::Server => "The server planned the search itself (Qdrant and Milvus do not say how).".into(),
        _ => String::new(),
    }
}
