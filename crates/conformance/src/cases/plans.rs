//! `explain`: the plan a search took, reported beside the very hits
//! `search` returns.

use vecsearch_core::synthetic::exact_knn;
use vecsearch_core::{Filter, Neighbor, Payload, Plan, Schema};

#[allow(unused_imports)]
use super::*;

/// `explain` returns the hits `search` returns (a server's: hits its
/// search gives, see [`agreeing_explain`]); on a local backend it
/// reports the filter's exact match count; a plan it calls exact is exact
/// (ids and order, ties to the lowest id); a filter matching 10 points is
/// answered by an exact plan; a 50% filter too large to scan keeps recall
/// 0.95 whatever plan it took.
pub async fn explain_reports_the_plan(h: &Harness) -> Case {
    let c = caps(h).await?;
    if !c.payloads || !c.filter {
        return Err(Why::Skip("no payloads".into()));
    }
    // 50% of 36,000 x 64 is past the local planners' scan crossover
    // (`vecsearch_core::plan::SCAN_BELOW_COORDS`), so it walks.
    let n = scaled(h, 36_000, 2_000);
    let dim = 64;
    let schema = Schema::new().keyword("half").integer("i");
    let idx = h
        .create(IndexSpec::new(dim, Metric::L2).with_schema(schema))
        .await?;
    let set = Set::new(n, 20, dim, Metric::L2, 83);
    let payloads: Vec<Payload> = (0..n)
        .map(|i| {
            Payload::new()
                .with("half", if i % 2 == 0 { "even" } else { "odd" })
                .with("i", i as i64)
        })
        .collect();
    idx.add_batch_with_payloads(&set.ids, &set.points, &payloads)
        .await?;
    idx.sync().await?;
    idx.finish_indexing().await?;
    let ids = |v: &[Neighbor]| v.iter().map(|h| h.id).collect::<Vec<_>>();
    let cases = [
        ("10 matches", Filter::between("i", 100, 110), Some(10)),
        ("50%", Filter::eq("half", "even"), Some(n.div_ceil(2))),
        ("no filter", Filter::all(), None),
    ];
    for (what, f, matches) in cases {
        let params = match matches {
            Some(_) => SearchParams::default().with_filter(f.clone()),
            None => SearchParams::default(),
        };
        let admitted: Vec<(u64, &[f32])> = (0..n)
            .filter(|&i| match what {
                "10 matches" => (100..=109).contains(&i),
                "50%" => i % 2 == 0,
                _ => true,
            })
            .map(|i| (set.ids[i], set.points[i].as_slice()))
            .collect();
        let mut found = 0;
        for q in &set.queries {
            let e = agreeing_explain(h, &*idx, q, &params, what).await?;
            if e.plan != Plan::Server {
                if let (Some(want), Some(got)) = (matches, e.matches) {
                    if got != want {
                        return Err(fail(format!(
                            "{what}: explain counted {got} matches of {want}"
                        )));
                    }
                } else if matches.is_some() {
                    return Err(fail(format!(
                        "{what}: a local backend gave no match count ({e})"
                    )));
                }
            }
            let truth = exact_knn(Metric::L2, &admitted, q, 10);
            if e.plan.is_exact() && ids(&e.hits) != ids(&truth) {
                return Err(fail(format!(
                    "{what}: plan {} is exact, but returned {:?} where the exact answer is {:?}",
                    e.plan,
                    ids(&e.hits),
                    ids(&truth)
                )));
            }
            if what == "10 matches" && e.plan != Plan::Server && !e.plan.is_exact() {
                return Err(fail(format!("{what}: answered by {}, not exactly", e.plan)));
            }
            found += e
                .hits
                .iter()
                .filter(|h| truth.iter().any(|t| t.id == h.id))
                .count();
        }
        let recall = found as f64 / (10 * set.queries.len()) as f64;
        if recall < 0.95 {
            return Err(fail(format!("{what}: recall@10 {recall:.3}")));
        }
    }
    Ok(())
}

/// How many times a server's explain and search are asked again when their
/// answers differ.
const SERVER_RETRIES: usize = 5;

/// `explain` for `q`, checked against `search` with the same parameters.
///
/// A local plan must give `search`'s hits at once. A server plan's explain
/// is the server's own search, and a server may answer the same search two
/// ways while it reorganises its segments on its own clock: Milvus 2.3.5
/// did, in 2 of 4 runs of this case and again in 2 of 5, 8 ms to 4.4 s
/// after `finish_indexing` reported every row served by its index (the
/// same query's later calls all agreed). So for a server the pair is asked again,
/// up to [`SERVER_RETRIES`] times, until explain and search agree; an
/// explain that sends another request than search never agrees, and fails.
async fn agreeing_explain(
    h: &Harness,
    idx: &dyn VectorIndex,
    q: &[f32],
    params: &SearchParams,
    what: &str,
) -> std::result::Result<vecsearch_core::Explain, Why> {
    let ids = |v: &[Neighbor]| v.iter().map(|h| h.id).collect::<Vec<_>>();
    let mut tries = 0;
    loop {
        let e = idx.explain(q, 10, params).await?;
        let s = idx.search(q, 10, params).await?;
        if ids(&e.hits) == ids(&s) {
            if tries > 0 {
                println!(
                    "conformance: {} explain_reports_the_plan: {what}: explain and search agreed on try {} (the server answered the same search two ways)",
                    h.name(),
                    tries + 1
                );
            }
            return Ok(e);
        }
        if e.plan != Plan::Server || tries == SERVER_RETRIES {
            return Err(fail(format!(
                "{what}: explain returned {:?}, search {:?} (plan {}, {} tries)",
                ids(&e.hits),
                ids(&s),
                e.plan,
                tries + 1
            )));
        }
        tries += 1;
    }
}

/// A filter whose matches all lie far from the query (every point nearer
/// the query is rejected) is answered exactly by a local backend: its walk
/// would score its way across every rejected point first, so it gives up
/// at its budget ([`vecsearch_core::plan::walk_budget`]) for the scan of
/// the matches (`walk_then_scan`), or scans them from the start. A server
/// plans for itself; its hits must still be admitted.
pub async fn far_filters_are_answered_exactly(h: &Harness) -> Case {
    let c = caps(h).await?;
    if !c.payloads || !c.filter {
        return Err(Why::Skip("no payloads".into()));
    }
    // A fifth of 40,000 x 128 is past the local planners' scan crossover
    // (`vecsearch_core::plan::SCAN_BELOW_COORDS`): a walk is tried first.
    let n = scaled(h, 40_000, 4_000);
    let dim = 128;
    let idx = h
        .create(IndexSpec::new(dim, Metric::L2).with_schema(Schema::new().keyword("side")))
        .await?;
    // Four points in five around the origin, one in five around a point
    // about 90 away (the blobs' own radius is about 11).
    let mut rng = vecsearch_core::synthetic::Rng::new(97);
    let far = |i: usize| i.is_multiple_of(5);
    let points: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            let centre = if far(i) { 8.0 } else { 0.0 };
            (0..dim).map(|_| centre + rng.normal() as f32).collect()
        })
        .collect();
    let ids: Vec<u64> = (0..n as u64).map(|i| i * 3 + 1).collect();
    let payloads: Vec<Payload> = (0..n)
        .map(|i| Payload::new().with("side", if far(i) { "far" } else { "near" }))
        .collect();
    idx.add_batch_with_payloads(&ids, &points, &payloads)
        .await?;
    idx.sync().await?;
    idx.finish_indexing().await?;
    let admitted: Vec<(u64, &[f32])> = (0..n)
        .filter(|&i| far(i))
        .map(|i| (ids[i], points[i].as_slice()))
        .collect();
    let params = SearchParams::default().with_filter(Filter::eq("side", "far"));
    let mut plans = std::collections::BTreeMap::new();
    for _ in 0..10 {
        let q: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
        let e = agreeing_explain(h, &*idx, &q, &params, "far filter").await?;
        *plans.entry(e.plan.name()).or_insert(0) += 1;
        let truth = exact_knn(Metric::L2, &admitted, &q, 10);
        let got: Vec<u64> = e.hits.iter().map(|h| h.id).collect();
        if let Some(h) = e.hits.iter().find(|h| h.id % 15 != 1) {
            return Err(fail(format!("id {} is not on the far side", h.id)));
        }
        if e.plan == Plan::Server {
            continue;
        }
        let want: Vec<u64> = truth.iter().map(|t| t.id).collect();
        if !e.plan.is_exact() || got != want {
            return Err(fail(format!(
                "plan {}: {got:?} where the exact answer is {want:?} ({e})",
                e.plan
            )));
        }
    }
    eprintln!(
        "conformance: {} far_filters_are_answered_exactly: plans {plans:?}",
        h.name
    );
    Ok(())
}
