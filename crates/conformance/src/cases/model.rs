//! `model_random_ops`: seeded random sequences of every operation, each
//! answer compared with an exact in-memory model; a failing sequence is
//! shrunk to the shortest one that still fails and printed as Rust code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use vecsearch_core::distance::{agrees, exact_distance, prepare};
use vecsearch_core::synthetic::Rng;
use vecsearch_core::{Filter, IndexSpec, Metric, Neighbor, SearchParams, Storage, VectorIndex};

use super::{caps, fail, open, Case, TempDir, Why};
use crate::data::{check_sorted, same_vector};
use crate::Harness;

/// One step of a sequence. Vectors are raw (as the caller passes them).
#[derive(Debug, Clone)]
enum Op {
    Add(u64, Vec<f32>),
    AddBatch(Vec<u64>, Vec<Vec<f32>>),
    Delete(u64),
    Get(u64),
    Len,
    Search {
        q: Vec<f32>,
        k: usize,
        ef: Option<usize>,
        filter: Option<Vec<u64>>,
    },
    SearchBatch {
        qs: Vec<Vec<f32>>,
        k: usize,
        ef: Option<usize>,
    },
    /// A write that must be refused and change nothing.
    BadAdd(u64, Vec<f32>),
    BadBatch(Vec<u64>, Vec<Vec<f32>>),
    SaveReopen,
}

/// How many sequences and steps: `VECSEARCH_MODEL_SEEDS` and
/// `VECSEARCH_MODEL_OPS` run more.
fn budget(h: &Harness) -> (u64, usize) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seeds = env("VECSEARCH_MODEL_SEEDS").unwrap_or(if h.scale >= 1.0 { 20 } else { 2 });
    let ops = env("VECSEARCH_MODEL_OPS").unwrap_or(if h.scale >= 1.0 { 2000 } else { 150 });
    (seeds, ops as usize)
}

/// Random op sequences for every metric the backend serves, 20 seeds x
/// 2,000 ops each by default for local backends.
pub async fn model_random_ops(h: &Harness) -> Case {
    let c = caps(h).await?;
    let (seeds, n_ops) = budget(h);
    let dim = 6;
    for metric in [
        Metric::L2,
        Metric::Cosine,
        Metric::InnerProduct,
        Metric::Jaccard,
    ] {
        if !c.serves(metric) {
            continue;
        }
        for seed in 0..seeds {
            let ops = generate(
                seed * 31 + metric.code() as u64,
                n_ops,
                dim,
                metric,
                c.max_id,
            );
            if let Err(first) = run(h, dim, metric, &ops).await {
                let (small, why) = shrink(h, dim, metric, ops, first).await;
                return Err(fail(format!(
                    "{metric} seed {seed}: {why}\nshortest failing sequence ({} ops):\n{}",
                    small.len(),
                    as_rust(dim, metric, &small)
                )));
            }
        }
    }
    Ok(())
}

// ---------- generation ----------

fn generate(seed: u64, n: usize, dim: usize, metric: Metric, max_id: u64) -> Vec<Op> {
    let mut rng = Rng::new(seed ^ 0x0DE1_5EED);
    // A small id space (so upserts, deletes and re-adds collide), plus ids at
    // the backend's limit.
    let ids: Vec<u64> = (0..48u64)
        .map(|i| match i {
            0 => 0,
            1 => max_id,
            2 => max_id - 1,
            3 => 1 << 53 | 1,
            _ => 100 + 7 * i,
        })
        .collect();
    let pick_id = |rng: &mut Rng| ids[rng.below(ids.len())];
    let mut ops = Vec::with_capacity(n);
    let mut len_guess = 0usize;
    for _ in 0..n {
        let roll = rng.below(100);
        let op = match roll {
            0..=24 => Op::Add(pick_id(&mut rng), vector(&mut rng, dim, metric)),
            25..=34 => {
                let m = 1 + rng.below(8);
                let ids: Vec<u64> = (0..m).map(|_| pick_id(&mut rng)).collect();
                let vs = (0..m).map(|_| vector(&mut rng, dim, metric)).collect();
                Op::AddBatch(ids, vs)
            }
            35..=49 => Op::Delete(pick_id(&mut rng)),
            50..=54 => Op::Get(pick_id(&mut rng)),
            55..=57 => Op::Len,
            58..=84 => {
                let filter = match rng.below(5) {
                    0 => Some(Vec::new()),
                    1 => Some((0..1 + rng.below(3)).map(|_| pick_id(&mut rng)).collect()),
                    2 => Some((0..20).map(|_| pick_id(&mut rng)).collect()),
                    _ => None,
                };
                Op::Search {
                    q: vector(&mut rng, dim, metric),
                    k: pick_k(&mut rng, len_guess),
                    ef: pick_ef(&mut rng, len_guess),
                    filter,
                }
            }
            85..=91 => Op::SearchBatch {
                qs: (0..1 + rng.below(4))
                    .map(|_| vector(&mut rng, dim, metric))
                    .collect(),
                k: pick_k(&mut rng, len_guess),
                ef: pick_ef(&mut rng, len_guess),
            },
            92..=95 => Op::BadAdd(pick_id(&mut rng), bad_vector(&mut rng, dim, metric)),
            96..=98 => {
                let m = 2 + rng.below(4);
                let ids: Vec<u64> = (0..m).map(|_| pick_id(&mut rng)).collect();
                let mut vs: Vec<Vec<f32>> = (0..m).map(|_| vector(&mut rng, dim, metric)).collect();
                let bad = rng.below(m);
                vs[bad] = bad_vector(&mut rng, dim, metric);
                Op::BadBatch(ids, vs)
            }
            _ => Op::SaveReopen,
        };
        if matches!(op, Op::Add(..) | Op::AddBatch(..)) {
            len_guess = (len_guess + 1).min(ids.len());
        }
        ops.push(op);
    }
    ops
}

fn pick_k(rng: &mut Rng, len: usize) -> usize {
    match rng.below(6) {
        0 => 0,
        1 => len + 1 + rng.below(5),
        2 => 1,
        _ => 1 + rng.below(12),
    }
}

fn pick_ef(rng: &mut Rng, len: usize) -> Option<usize> {
    match rng.below(6) {
        0 => None,
        1 => Some(1 + rng.below(4)),
        2 => Some(len.max(1)),
        3 => Some(len + 1 + rng.below(8)),
        _ => Some(1 + rng.below(len.max(1))),
    }
}

/// Values that make ties, duplicates and zero vectors likely: small integers
/// most of the time, arbitrary floats otherwise.
fn vector(rng: &mut Rng, dim: usize, metric: Metric) -> Vec<f32> {
    loop {
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                let x = if rng.below(3) == 0 {
                    rng.normal() as f32
                } else {
                    rng.below(3) as f32 - 1.0
                };
                if metric == Metric::Jaccard {
                    x.abs()
                } else {
                    x
                }
            })
            .collect();
        if metric != Metric::Cosine || v.iter().any(|&x| x != 0.0) {
            return v;
        }
    }
}

fn bad_vector(rng: &mut Rng, dim: usize, metric: Metric) -> Vec<f32> {
    let mut v = vector(rng, dim, metric);
    match rng.below(4) {
        0 => v[rng.below(dim)] = f32::NAN,
        1 => v[rng.below(dim)] = f32::NEG_INFINITY,
        2 => v.push(1.0),
        _ => match metric {
            Metric::Cosine => v.iter_mut().for_each(|x| *x = 0.0),
            Metric::Jaccard => v[0] = -1.0,
            _ => v.truncate(dim - 1),
        },
    }
    v
}

// ---------- running against the model ----------

/// The model: what the contract says the index holds.
type Model = BTreeMap<u64, Vec<f32>>;

/// Runs `ops` on a fresh index; the position and reason of the first
/// disagreement with the model.
async fn run(h: &Harness, dim: usize, metric: Metric, ops: &[Op]) -> Result<(), (usize, String)> {
    let at = |i: usize| move |m: String| (i, m);
    let mut idx = h
        .create(IndexSpec::new(dim, metric))
        .await
        .map_err(|e| (0, format!("create: {e}")))?;
    let persist = h.opener.is_some() && idx.capabilities().persistence;
    let dir = TempDir::new("model").map_err(|_| (0, "no temp dir".to_string()))?;
    let mut model = Model::new();
    for (i, op) in ops.iter().enumerate() {
        step(h, &mut idx, &mut model, op, persist, &dir)
            .await
            .map_err(at(i))?;
    }
    Ok(())
}

async fn step(
    h: &Harness,
    idx: &mut Box<dyn VectorIndex>,
    model: &mut Model,
    op: &Op,
    persist: bool,
    dir: &TempDir,
) -> Result<(), String> {
    let metric = idx.spec().metric;
    match op {
        Op::Add(id, v) => {
            idx.add(*id, v).await.map_err(|e| format!("add: {e}"))?;
            model.insert(*id, stored(idx.spec(), v));
            idx.sync().await.map_err(|e| format!("sync: {e}"))?;
        }
        Op::AddBatch(ids, vs) => {
            idx.add_batch(ids, vs)
                .await
                .map_err(|e| format!("add_batch: {e}"))?;
            for (id, v) in ids.iter().zip(vs) {
                model.insert(*id, stored(idx.spec(), v));
            }
            idx.sync().await.map_err(|e| format!("sync: {e}"))?;
        }
        Op::Delete(id) => {
            let got = idx.delete(*id).await.map_err(|e| format!("delete: {e}"))?;
            let want = model.remove(id).is_some();
            if got != want {
                return Err(format!(
                    "delete({id}) returned {got}, the model says {want}"
                ));
            }
            idx.sync().await.map_err(|e| format!("sync: {e}"))?;
        }
        Op::Get(id) => {
            let got = idx.get(*id).await.map_err(|e| format!("get: {e}"))?;
            match (got, model.get(id)) {
                (None, None) => {}
                (Some(g), Some(w)) if same_vector(metric, &g, w) => {}
                (g, w) => return Err(format!("get({id}) = {g:?}, the model holds {w:?}")),
            }
        }
        Op::Len => check_len(&**idx, model).await?,
        Op::Search { q, k, ef, filter } => {
            let p = SearchParams {
                ef: *ef,
                filter: filter.as_ref().map(|f| Filter::allow(f.iter().copied())),
                ..SearchParams::default()
            };
            let got = idx
                .search(q, *k, &p)
                .await
                .map_err(|e| format!("search: {e}"))?;
            check_search(&**idx, model, q, *k, &p, &got).await?;
        }
        Op::SearchBatch { qs, k, ef } => {
            let p = SearchParams {
                ef: *ef,
                filter: None,
                ..SearchParams::default()
            };
            let got = idx
                .search_batch(qs, *k, &p)
                .await
                .map_err(|e| format!("search_batch: {e}"))?;
            if got.len() != qs.len() {
                return Err(format!(
                    "search_batch: {} answers for {} queries",
                    got.len(),
                    qs.len()
                ));
            }
            for (q, g) in qs.iter().zip(&got) {
                check_search(&**idx, model, q, *k, &p, g).await?;
            }
        }
        Op::BadAdd(id, v) => {
            if idx.add(*id, v).await.is_ok() {
                return Err(format!("add({id}, {v:?}) was accepted"));
            }
            check_len(&**idx, model).await?;
        }
        Op::BadBatch(ids, vs) => {
            if idx.add_batch(ids, vs).await.is_ok() {
                return Err(format!("a batch with a bad vector was accepted: {vs:?}"));
            }
            check_len(&**idx, model).await?;
            for id in ids {
                let got = idx.get(*id).await.map_err(|e| format!("get: {e}"))?;
                let same = match (&got, model.get(id)) {
                    (None, None) => true,
                    (Some(g), Some(w)) => same_vector(metric, g, w),
                    _ => false,
                };
                if !same {
                    return Err(format!("a refused batch changed id {id}: {got:?}"));
                }
            }
        }
        Op::SaveReopen => {
            if persist {
                let path = dir.0.join("model.vs");
                idx.save(&path).await.map_err(|e| format!("save: {e}"))?;
                let spec = idx.spec().clone();
                *idx = open(h, &path, spec)
                    .await
                    .map_err(|e| format!("open after save: {e}"))?;
                check_len(&**idx, model).await?;
            }
        }
    }
    Ok(())
}

/// What the index holds for `v`: prepared (normalised for `Cosine`) and
/// then stored in the spec's kind, exactly as the front door and the
/// backend do it, so the model's distances are the index's own.
fn stored(spec: &IndexSpec, v: &[f32]) -> Vec<f32> {
    spec.storage.stored(&prepare(spec.metric, v))
}

async fn check_len(idx: &dyn VectorIndex, model: &Model) -> Result<(), String> {
    let got = idx.len().await.map_err(|e| format!("len: {e}"))?;
    if got != model.len() {
        return Err(format!("len is {got}, the model holds {}", model.len()));
    }
    Ok(())
}

/// How far apart two exact distances may be and still be ordered either
/// way by a backend computing in `f32` (relative to `max(1, |d|)`): a few
/// ulps of `f32` and the rounding of a 6-component sum, with room to spare.
/// Farther apart, the exact order is the only right one.
const F32_NOISE: f64 = 1e-5;
/// The same for `F16` storage: its cosine distances may be the contract's
/// tolerance (`1e-3`) off the exact ones (a rounded unit vector is not
/// quite of unit length), so two ids that close may come in either order.
const F16_NOISE: f64 = 2e-3;

/// Every rule a single answer can be held to: `min(k, admitted)` results,
/// unique live admitted ids, exact distances, sorted; and when `ef` covers
/// the live set (or the filter), the exact answer, ties at the k-th
/// distance going to the lowest ids.
async fn check_search(
    idx: &dyn VectorIndex,
    model: &Model,
    q: &[f32],
    k: usize,
    p: &SearchParams,
    got: &[Neighbor],
) -> Result<(), String> {
    let metric = idx.spec().metric;
    let mut admitted: Vec<(u64, f64)> = model
        .iter()
        .filter(|(id, _)| p.filter.as_ref().is_none_or(|f| f.admits(**id, None)))
        .map(|(&id, v)| (id, exact_distance(metric, v, q)))
        .collect();
    let want_len = k.min(admitted.len());
    if got.len() != want_len {
        return Err(format!(
            "search (k {k}, ef {:?}, filter {:?}) returned {} results, expected {want_len}",
            p.ef,
            p.filter,
            got.len()
        ));
    }
    check_sorted(got).map_err(|w| match w {
        Why::Fail(m) | Why::Skip(m) => m,
    })?;
    let mut seen = std::collections::HashSet::new();
    for n in got {
        if !seen.insert(n.id) {
            return Err(format!("id {} returned twice: {got:?}", n.id));
        }
        let Some(&(_, exact)) = admitted.iter().find(|(id, _)| *id == n.id) else {
            return Err(format!("id {} is not live or not admitted: {got:?}", n.id));
        };
        if !n.distance.is_finite() || !agrees(n.distance, exact) {
            return Err(format!(
                "id {} at distance {}, exactly {exact}",
                n.id, n.distance
            ));
        }
    }
    let ef = p.ef.unwrap_or(idx.spec().ef_search).max(k);
    let small = ef >= model.len() || (p.filter.is_some() && admitted.len() <= ef);
    if !small {
        return Ok(());
    }
    // The exact answer: the admitted ids by (distance, id).
    admitted.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    for (i, n) in got.iter().enumerate() {
        if !agrees(n.distance, admitted[i].1) {
            return Err(format!(
                "small is exact: with ef {ef} >= {} live, result {i} is id {} at {}, \
                 the exact {i}th distance is {}",
                model.len(),
                n.id,
                n.distance,
                admitted[i].1
            ));
        }
    }
    // And its ids. A returned id the exact answer leaves out stands in for
    // one it has: only right when the two are too close for `f32` to order
    // and the backend's own distances put the returned one first (ties by
    // id). An exact tie (the same stored vector twice, say) goes to the
    // lowest id whatever the backend's arithmetic.
    let want = &admitted[..want_len];
    let extra: Vec<&Neighbor> = got
        .iter()
        .filter(|n| !want.iter().any(|w| w.0 == n.id))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let exact_of = |id: u64| {
        admitted
            .iter()
            .find(|a| a.0 == id)
            .map_or(f64::NAN, |a| a.1)
    };
    let noise = match idx.spec().storage {
        Storage::F16 => F16_NOISE,
        _ => F32_NOISE,
    };
    for &(m, dm) in want.iter().filter(|w| !got.iter().any(|n| n.id == w.0)) {
        let own = own_distance(idx, q, m).await?;
        if !agrees(own, dm) {
            return Err(format!("id {m} at distance {own}, exactly {dm}"));
        }
        for x in &extra {
            let dx = exact_of(x.id);
            let near = (dm - dx).abs() <= noise * dm.abs().max(1.0);
            let x_first = x.distance < own || (x.distance == own && x.id < m);
            if !(near && x_first) {
                return Err(format!(
                    "small is exact: with ef {ef} >= {} live (or a filter of at most ef ids), \
                     the answer has id {} (at {}, exactly {dx}) where the exact answer has id \
                     {m} (exactly {dm}, {own} by this backend; ties go to the lowest id): {got:?}",
                    model.len(),
                    x.id,
                    x.distance,
                ));
            }
        }
    }
    Ok(())
}

/// The distance the backend itself reports from `q` to the live id `id`:
/// a search admitting that id only.
async fn own_distance(idx: &dyn VectorIndex, q: &[f32], id: u64) -> Result<f32, String> {
    let p = SearchParams::default()
        .with_ef(1)
        .with_filter(Filter::allow([id]));
    let hits = idx
        .search(q, 1, &p)
        .await
        .map_err(|e| format!("search admitting id {id} only: {e}"))?;
    match hits.as_slice() {
        [n] if n.id == id => Ok(n.distance),
        other => Err(format!(
            "a search admitting id {id} only (which is live) returned {other:?}"
        )),
    }
}

// ---------- shrinking ----------

/// Removes chunks, then single ops, while the sequence still fails.
async fn shrink(
    h: &Harness,
    dim: usize,
    metric: Metric,
    ops: Vec<Op>,
    first: (usize, String),
) -> (Vec<Op>, String) {
    let mut best = ops[..=first.0.min(ops.len() - 1)].to_vec();
    let mut why = first.1;
    let mut tries = 0usize;
    let mut chunk = best.len() / 2;
    while chunk >= 1 && tries < 400 {
        let mut i = 0;
        let mut progressed = false;
        while i < best.len() && tries < 400 {
            let end = (i + chunk).min(best.len());
            let mut cand = best[..i].to_vec();
            cand.extend_from_slice(&best[end..]);
            tries += 1;
            if let Err((at, w)) = run(h, dim, metric, &cand).await {
                cand.truncate(at + 1);
                best = cand;
                why = w;
                progressed = true;
            } else {
                i += chunk;
            }
        }
        if !progressed {
            chunk /= 2;
        }
    }
    // Then the items of each batch, and the queries of each batch search.
    let mut i = 0;
    while i < best.len() && tries < 600 {
        let mut j = 0;
        while j < op_items(&best[i]) && op_items(&best[i]) > 1 && tries < 600 {
            let mut cand = best.clone();
            drop_item(&mut cand[i], j);
            tries += 1;
            match run(h, dim, metric, &cand).await {
                Err((at, w)) if at >= i => {
                    cand.truncate(at + 1);
                    best = cand;
                    why = w;
                }
                _ => j += 1,
            }
        }
        i += 1;
    }
    (best, why)
}

fn op_items(op: &Op) -> usize {
    match op {
        Op::AddBatch(ids, _) => ids.len(),
        Op::SearchBatch { qs, .. } => qs.len(),
        _ => 1,
    }
}

fn drop_item(op: &mut Op, j: usize) {
    match op {
        Op::AddBatch(ids, vs) => {
            ids.remove(j);
            vs.remove(j);
        }
        Op::SearchBatch { qs, .. } => {
            qs.remove(j);
        }
        _ => {}
    }
}

fn as_rust(dim: usize, metric: Metric, ops: &[Op]) -> String {
    let v = |x: &[f32]| {
        let parts: Vec<String> = x.iter().map(|c| format!("{c:?}")).collect();
        format!("[{}]", parts.join(", "))
    };
    let mut s = format!(
        "let index = vecsearch::open_blocking(URI, IndexSpec::new({dim}, Metric::{metric:?}))?;\n"
    );
    for op in ops {
        let line =
            match op {
                Op::Add(id, x) => format!("index.add({id}, &{})?;", v(x)),
                Op::AddBatch(ids, xs) => format!(
                    "index.add_batch(&{ids:?}, &[{}])?;",
                    xs.iter()
                        .map(|x| format!("vec!{}", v(x)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Op::Delete(id) => format!("index.delete({id})?;"),
                Op::Get(id) => format!("index.get({id})?;"),
                Op::Len => "index.len()?;".to_string(),
                Op::Search { q, k, ef, filter } => format!(
                    "index.search(&{}, {k}, &SearchParams {{ ef: {ef:?}, filter: {}, ..SearchParams::default() }})?;",
                    v(q),
                    filter.as_ref().map_or("None".to_string(), |f| format!(
                        "Some(Filter::allow({f:?}))"
                    ))
                ),
                Op::SearchBatch { qs, k, ef } => format!(
                "index.search_batch(&[{}], {k}, &SearchParams {{ ef: {ef:?}, filter: None, ..SearchParams::default() }})?;",
                qs.iter().map(|x| format!("vec!{}", v(x))).collect::<Vec<_>>().join(", ")
            ),
                Op::BadAdd(id, x) => format!("assert!(index.add({id}, &{}).is_err());", v(x)),
                Op::BadBatch(ids, xs) => format!(
                    "assert!(index.add_batch(&{ids:?}, &[{}]).is_err());",
                    xs.iter()
                        .map(|x| format!("vec!{}", v(x)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Op::SaveReopen => "index.save(PATH)?; let index = reopen(PATH)?;".to_string(),
            };
        let _ = writeln!(s, "{line}");
    }
    s
}
