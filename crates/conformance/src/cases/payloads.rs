//! Payloads and filters: the filter language means the same on every
//! backend (a hand-written table with its own oracle), answers agree with an
//! exact model under random sequences, filtered recall holds at every
//! selectivity and shape, payloads survive writes and files, and bad input
//! is refused without a change.

use std::collections::BTreeMap;

use vecsearch_core::synthetic::exact_knn;
use vecsearch_core::{Filter, Neighbor, Payload, Schema};

#[allow(unused_imports)]
use super::*;

/// The fields every payload case uses.
pub fn schema() -> Schema {
    Schema::new()
        .keyword("tenant")
        .integer("date")
        .float("score")
        .bool("public")
        .keyword_list("tags")
        .integer_list("years")
}

async fn payload_index(h: &Harness, dim: usize) -> Result<Box<dyn VectorIndex>, Why> {
    let c = caps(h).await?;
    if !c.payloads {
        return Err(Why::Skip("no payloads".into()));
    }
    Ok(
        h.create(IndexSpec::new(dim, Metric::L2).with_schema(schema()))
            .await?,
    )
}

// ---------- the fixed table ----------

/// One of the 200 fixed payloads, as plain fields for the table's oracle.
#[derive(Debug, Clone, Default)]
struct Row {
    tenant: Option<&'static str>,
    date: Option<i64>,
    score: Option<f64>,
    public: Option<bool>,
    tags: Option<Vec<&'static str>>,
    years: Option<Vec<i64>>,
}

const TENANTS: [&str; 3] = ["acme", "globex", "o'hara \"q\""];
const TAGS: [&str; 4] = ["legal", "eu", "draft", "x y"];

fn row(i: u64) -> Row {
    let pick = |n: u64, m: u64| (i * n + i / m) % 7;
    Row {
        tenant: (i % 5 != 4).then(|| TENANTS[(i % 3) as usize]),
        date: (i % 4 != 3).then(|| 1_600_000_000 + (i as i64 % 40) * 10_000_000 - 5),
        score: (i % 6 != 5).then(|| (i as f64 - 100.0) / 8.0),
        public: (i % 7 != 6).then_some(i.is_multiple_of(2)),
        tags: (pick(3, 11) != 0).then(|| {
            TAGS.iter()
                .enumerate()
                .filter(|(t, _)| (i >> t) & 1 == 1 && !(i + *t as u64).is_multiple_of(3))
                .map(|(_, s)| *s)
                .collect()
        }),
        years: (i % 9 != 8).then(|| {
            (0..(i % 4) as i64)
                .map(|k| 2020 + ((i as i64 + k) % 6))
                .collect()
        }),
    }
}

fn payload_of(r: &Row) -> Payload {
    let mut p = Payload::new();
    if let Some(t) = r.tenant {
        p.insert("tenant", t);
    }
    if let Some(d) = r.date {
        p.insert("date", d);
    }
    if let Some(s) = r.score {
        p.insert("score", s);
    }
    if let Some(b) = r.public {
        p.insert("public", b);
    }
    if let Some(t) = &r.tags {
        p.insert("tags", t.clone());
    }
    if let Some(y) = &r.years {
        p.insert("years", y.clone());
    }
    p
}

type Oracle = fn(&Row) -> bool;

/// The table: each expression with its meaning written out by hand over the
/// plain fields (not through `Filter::admits`), so a backend and the core's
/// evaluator are both checked against it.
fn table() -> Vec<(Filter, Oracle)> {
    vec![
        (Filter::eq("tenant", "acme"), |r| r.tenant == Some("acme")),
        (Filter::eq("tenant", "o'hara \"q\""), |r| {
            r.tenant == Some("o'hara \"q\"")
        }),
        (Filter::eq("tenant", "nobody"), |_| false),
        (Filter::eq("public", true), |r| r.public == Some(true)),
        (Filter::eq("date", 1_600_000_000 - 5), |r| {
            r.date == Some(1_600_000_000 - 5)
        }),
        (Filter::is_in("tenant", ["acme", "globex"]), |r| {
            matches!(r.tenant, Some("acme" | "globex"))
        }),
        (Filter::is_in("tenant", Vec::<&str>::new()), |_| false),
        (Filter::not_in("tenant", ["acme"]), |r| {
            r.tenant.is_some_and(|t| t != "acme")
        }),
        (Filter::eq("tenant", "acme").negate(), |r| {
            r.tenant != Some("acme")
        }),
        (Filter::not_in("public", [false]), |r| {
            r.public == Some(true)
        }),
        (Filter::range("date").gte(1_700_000_000), |r| {
            r.date.is_some_and(|d| d >= 1_700_000_000)
        }),
        (Filter::between("date", 1_650_000_000, 1_750_000_000), |r| {
            r.date
                .is_some_and(|d| (1_650_000_000..1_750_000_000).contains(&d))
        }),
        (Filter::range("date").gt(1_699_999_995), |r| {
            r.date.is_some_and(|d| d > 1_699_999_995)
        }),
        (Filter::range("date").lt(1_599_999_995.5), |r| {
            r.date.is_some_and(|d| (d as f64) < 1_599_999_995.5)
        }),
        (Filter::range("score").gt(0), |r| {
            r.score.is_some_and(|s| s > 0.0)
        }),
        (Filter::range("score").lte(-3.125), |r| {
            r.score.is_some_and(|s| s <= -3.125)
        }),
        (
            Filter::range("score")
                .gte(1)
                .and(Filter::range("score").lt(2.5)),
            |r| r.score.is_some_and(|s| (1.0..2.5).contains(&s)),
        ),
        (Filter::range("score").gt(0).negate(), |r| {
            !r.score.is_some_and(|s| s > 0.0)
        }),
        (Filter::contains("tags", "legal"), |r| {
            r.tags.as_ref().is_some_and(|t| t.contains(&"legal"))
        }),
        (Filter::contains("tags", "x y"), |r| {
            r.tags.as_ref().is_some_and(|t| t.contains(&"x y"))
        }),
        (Filter::contains_any("tags", ["legal", "eu"]), |r| {
            r.tags
                .as_ref()
                .is_some_and(|t| t.contains(&"legal") || t.contains(&"eu"))
        }),
        (Filter::contains_all("tags", ["legal", "eu"]), |r| {
            r.tags
                .as_ref()
                .is_some_and(|t| t.contains(&"legal") && t.contains(&"eu"))
        }),
        (Filter::contains_all("tags", Vec::<&str>::new()), |r| {
            r.tags.is_some()
        }),
        (Filter::contains("tags", "legal").negate(), |r| {
            !r.tags.as_ref().is_some_and(|t| t.contains(&"legal"))
        }),
        (Filter::contains("years", 2021), |r| {
            r.years.as_ref().is_some_and(|y| y.contains(&2021))
        }),
        (Filter::contains_any("years", [2020, 2025]), |r| {
            r.years
                .as_ref()
                .is_some_and(|y| y.contains(&2020) || y.contains(&2025))
        }),
        (Filter::len_range("tags", None, Some(0)), |r| {
            r.tags.as_ref().is_some_and(|t| t.is_empty())
        }),
        (Filter::len_range("tags", Some(2), None), |r| {
            r.tags.as_ref().is_some_and(|t| t.len() >= 2)
        }),
        (Filter::len_range("years", Some(1), Some(2)), |r| {
            r.years.as_ref().is_some_and(|y| (1..=2).contains(&y.len()))
        }),
        (Filter::len_range("tags", Some(1), None).negate(), |r| {
            r.tags.as_ref().is_none_or(|t| t.is_empty())
        }),
        (Filter::is_null("tenant"), |r| r.tenant.is_none()),
        (Filter::is_null("score").negate(), |r| r.score.is_some()),
        (Filter::all(), |_| true),
        (Filter::none(), |_| false),
        (Filter::none().negate(), |_| true),
        (Filter::allow([id_of(3), id_of(4), id_of(150), 5]), |_| {
            false
        }),
        (Filter::exclude([id_of(3), id_of(4)]), |_| true),
        (
            Filter::eq("tenant", "acme")
                .and(Filter::range("date").gte(1_700_000_000))
                .and(Filter::contains("tags", "legal")),
            |r| {
                r.tenant == Some("acme")
                    && r.date.is_some_and(|d| d >= 1_700_000_000)
                    && r.tags.as_ref().is_some_and(|t| t.contains(&"legal"))
            },
        ),
        (
            Filter::eq("tenant", "globex")
                .or(Filter::is_null("tenant").and(Filter::eq("public", false))),
            |r| r.tenant == Some("globex") || (r.tenant.is_none() && r.public == Some(false)),
        ),
        (
            Filter::eq("public", true)
                .negate()
                .and(Filter::not_in("tenant", ["globex"]).or(Filter::contains("years", 2022))),
            |r| {
                r.public != Some(true)
                    && (r.tenant.is_some_and(|t| t != "globex")
                        || r.years.as_ref().is_some_and(|y| y.contains(&2022)))
            },
        ),
        (
            Filter::contains_any("tags", ["draft"])
                .or(Filter::range("score").lt(-10))
                .negate()
                .and(Filter::is_null("date").negate()),
            |r| {
                !(r.tags.as_ref().is_some_and(|t| t.contains(&"draft"))
                    || r.score.is_some_and(|s| s < -10.0))
                    && r.date.is_some()
            },
        ),
    ]
}

/// The ids an id-only row of the table admits beyond its oracle.
fn id_rule(f: &Filter, id: u64, base: bool) -> bool {
    match f {
        Filter::HasId(ids) => ids.contains(&id),
        Filter::Not(inner) if matches!(**inner, Filter::HasId(_)) => !id_rule(inner, id, base),
        _ => base,
    }
}

const TABLE_N: usize = 200;

/// Every operator of the language over 200 fixed payloads (missing fields,
/// empty lists, negation over missing, nested and/or/not), each expression's
/// admitted ids checked by `count` and by a search wide enough to be exact.
pub async fn filter_semantics(h: &Harness) -> Case {
    let idx = payload_index(h, 4).await?;
    let rows: Vec<Row> = (0..TABLE_N as u64).map(row).collect();
    let ids: Vec<u64> = (0..TABLE_N).map(id_of).collect();
    let vectors: Vec<Vec<f32>> = (0..TABLE_N)
        .map(|i| vec![i as f32, (i % 7) as f32, 1.0, -(i as f32) / 3.0])
        .collect();
    let payloads: Vec<Payload> = rows.iter().map(payload_of).collect();
    idx.add_batch_with_payloads(&ids, &vectors, &payloads)
        .await?;
    idx.sync().await?;
    let q = [50.0, 3.0, 1.0, -10.0];
    let params = |f: &Filter| {
        SearchParams::default()
            .with_ef(TABLE_N)
            .with_filter(f.clone())
    };
    for (f, oracle) in table() {
        let want: Vec<u64> = ids
            .iter()
            .zip(&rows)
            .filter(|(&id, r)| id_rule(&f, id, oracle(r)))
            .map(|(&id, _)| id)
            .collect();
        let core: Vec<u64> = ids
            .iter()
            .zip(&payloads)
            .filter(|(&id, p)| f.admits(id, Some(p)))
            .map(|(&id, _)| id)
            .collect();
        ensure!(
            core == want,
            "the core's meaning of {f:?} disagrees with the table: {core:?} vs {want:?}"
        );
        let counted = idx.count(&f).await?;
        ensure!(
            counted == want.len(),
            "count({f:?}) = {counted}, the table says {}",
            want.len()
        );
        let got = idx.search(&q, TABLE_N, &params(&f)).await?;
        let mut got_ids: Vec<u64> = got.iter().map(|n| n.id).collect();
        got_ids.sort_unstable();
        ensure!(
            got_ids == want,
            "search with {f:?}: got {} ids {got_ids:?}, the table says {} ids {want:?}",
            got_ids.len(),
            want.len()
        );
        let live: Vec<(u64, &[f32])> = ids
            .iter()
            .zip(&vectors)
            .filter(|(id, _)| want.contains(id))
            .map(|(&id, v)| (id, v.as_slice()))
            .collect();
        let top = idx.search(&q, 5, &params(&f)).await?;
        let exact: Vec<u64> = exact_knn(Metric::L2, &live, &q, 5)
            .iter()
            .map(|n| n.id)
            .collect();
        let top: Vec<u64> = top.iter().map(|n| n.id).collect();
        ensure!(top == exact, "k = 5 with {f:?}: {top:?}, exactly {exact:?}");
    }
    // The JSON form means the same.
    let json = r#"{"and": [{"eq": {"field": "tenant", "value": "acme"}},
                           {"range": {"field": "date", "gte": 1700000000}},
                           {"not": {"contains": {"field": "tags", "value": "draft"}}}]}"#;
    let f: Filter = serde_json::from_str(json).map_err(|e| fail(format!("JSON filter: {e}")))?;
    let want = rows
        .iter()
        .filter(|r| {
            r.tenant == Some("acme")
                && r.date.is_some_and(|d| d >= 1_700_000_000)
                && !r.tags.as_ref().is_some_and(|t| t.contains(&"draft"))
        })
        .count();
    ensure!(
        idx.count(&f).await? == want,
        "the JSON filter counts differently"
    );
    Ok(())
}

// ---------- the random model ----------

type PModel = BTreeMap<u64, (Vec<f32>, Payload)>;

fn random_payload(rng: &mut Rng) -> Payload {
    let mut p = Payload::new();
    let coin = |rng: &mut Rng| rng.below(4) != 0;
    if coin(rng) {
        p.insert("tenant", TENANTS[rng.below(3)]);
    }
    if coin(rng) {
        p.insert("date", rng.below(6) as i64 * 10 - 20);
    }
    if coin(rng) {
        p.insert("score", rng.below(9) as f64 / 2.0 - 2.0);
    }
    if coin(rng) {
        p.insert("public", rng.below(2) == 0);
    }
    if coin(rng) {
        let n = rng.below(4);
        p.insert(
            "tags",
            (0..n).map(|_| TAGS[rng.below(4)]).collect::<Vec<&str>>(),
        );
    }
    if coin(rng) {
        let n = rng.below(3);
        p.insert(
            "years",
            (0..n)
                .map(|_| 2020 + rng.below(4) as i64)
                .collect::<Vec<i64>>(),
        );
    }
    p
}

fn random_filter(rng: &mut Rng, depth: usize, ids: &[u64]) -> Filter {
    let leaf = depth == 0 || rng.below(3) == 0;
    if !leaf {
        let n = rng.below(4);
        return match rng.below(3) {
            0 => Filter::And((0..n).map(|_| random_filter(rng, depth - 1, ids)).collect()),
            1 => Filter::Or((0..n).map(|_| random_filter(rng, depth - 1, ids)).collect()),
            _ => random_filter(rng, depth - 1, ids).negate(),
        };
    }
    let tenant = |rng: &mut Rng| TENANTS[rng.below(3)];
    match rng.below(14) {
        0 => Filter::eq("tenant", tenant(rng)),
        1 => Filter::is_in(
            "tenant",
            (0..rng.below(3)).map(|_| tenant(rng)).collect::<Vec<_>>(),
        ),
        2 => Filter::not_in("tenant", [tenant(rng)]),
        3 => Filter::eq("public", rng.below(2) == 0),
        4 => Filter::range("date").gte(rng.below(6) as i64 * 10 - 25),
        5 => Filter::between("score", rng.below(5) as f64 - 2.5, rng.below(5) as i64),
        6 => Filter::contains("tags", TAGS[rng.below(4)]),
        7 => Filter::contains_any("tags", [TAGS[rng.below(4)], TAGS[rng.below(4)]]),
        8 => Filter::contains_all(
            "tags",
            (0..rng.below(3))
                .map(|_| TAGS[rng.below(4)])
                .collect::<Vec<_>>(),
        ),
        9 => Filter::len_range(
            "years",
            Some(rng.below(2) as u32),
            Some(1 + rng.below(2) as u32),
        ),
        10 => Filter::is_null(["tenant", "date", "score", "public"][rng.below(4)]),
        11 => Filter::contains("years", 2020 + rng.below(4) as i64),
        12 => Filter::allow((0..1 + rng.below(6)).map(|_| ids[rng.below(ids.len())])),
        _ => Filter::exclude((0..1 + rng.below(3)).map(|_| ids[rng.below(ids.len())])),
    }
}

/// Seeded random sequences over payloads: adds with and without payloads,
/// `set_payload`, deletes, `delete_where`, `count`, `get_payload`, searches
/// with random filters (depth up to 3) against an exact model; the answer
/// must be the exact one when the filter admits no more ids than `ef`. Save
/// and reopen along the way where the backend has files.
pub async fn model_random_payload_ops(h: &Harness) -> Case {
    let c = caps(h).await?;
    if !c.payloads {
        return Err(Why::Skip("no payloads".into()));
    }
    let (seeds, n_ops) = if h.scale >= 1.0 { (12, 600) } else { (2, 120) };
    for seed in 0..seeds {
        if let Err((at, why)) = payload_run(h, seed, n_ops, c.persistence).await {
            return Err(fail(format!("seed {seed}, op {at}: {why}")));
        }
    }
    Ok(())
}

async fn payload_run(
    h: &Harness,
    seed: u64,
    n_ops: usize,
    persist: bool,
) -> Result<(), (usize, String)> {
    let dim = 4;
    let mut rng = Rng::new(seed * 977 + 13);
    let pool: Vec<u64> = (0..40u64).map(|i| 10 + 3 * i).collect();
    let mut idx = h
        .create(IndexSpec::new(dim, Metric::L2).with_schema(schema()))
        .await
        .map_err(|e| (0, format!("create: {e}")))?;
    let dir = TempDir::new("pmodel").map_err(|_| (0, "no temp dir".to_string()))?;
    let mut model = PModel::new();
    let vector =
        |rng: &mut Rng| -> Vec<f32> { (0..dim).map(|_| rng.below(5) as f32 - 2.0).collect() };
    for i in 0..n_ops {
        let e =
            |what: &'static str| move |err: vecsearch_core::Error| (i, format!("{what}: {err}"));
        match rng.below(100) {
            0..=24 => {
                let id = pool[rng.below(pool.len())];
                let v = vector(&mut rng);
                if rng.below(4) == 0 {
                    idx.add(id, &v).await.map_err(e("add"))?;
                    model.insert(id, (v, Payload::new()));
                } else {
                    let p = random_payload(&mut rng);
                    idx.add_with_payload(id, &v, &p)
                        .await
                        .map_err(e("add_with_payload"))?;
                    model.insert(id, (v, p));
                }
            }
            25..=34 => {
                let n = 1 + rng.below(6);
                let ids: Vec<u64> = (0..n).map(|_| pool[rng.below(pool.len())]).collect();
                let vs: Vec<Vec<f32>> = (0..n).map(|_| vector(&mut rng)).collect();
                let ps: Vec<Payload> = (0..n).map(|_| random_payload(&mut rng)).collect();
                idx.add_batch_with_payloads(&ids, &vs, &ps)
                    .await
                    .map_err(e("add_batch_with_payloads"))?;
                for ((id, v), p) in ids.iter().zip(vs).zip(ps) {
                    model.insert(*id, (v, p));
                }
            }
            35..=42 => {
                let id = pool[rng.below(pool.len())];
                let p = random_payload(&mut rng);
                let got = idx.set_payload(id, &p).await.map_err(e("set_payload"))?;
                let want = model.contains_key(&id);
                if got != want {
                    return Err((i, format!("set_payload({id}) said {got}, the model {want}")));
                }
                if let Some(entry) = model.get_mut(&id) {
                    entry.1 = p;
                }
            }
            43..=50 => {
                let id = pool[rng.below(pool.len())];
                let got = idx.delete(id).await.map_err(e("delete"))?;
                if got != model.remove(&id).is_some() {
                    return Err((i, format!("delete({id}) said {got}")));
                }
            }
            51..=54 => {
                let f = random_filter(&mut rng, 2, &pool);
                let n = idx.delete_where(&f).await.map_err(e("delete_where"))?;
                let before = model.len();
                model.retain(|id, (_, p)| !f.admits(*id, Some(p)));
                if n != before - model.len() {
                    return Err((
                        i,
                        format!(
                            "delete_where({f:?}) deleted {n}, the model {}",
                            before - model.len()
                        ),
                    ));
                }
            }
            55..=62 => {
                let f = random_filter(&mut rng, 3, &pool);
                idx.sync().await.map_err(e("sync"))?;
                let n = idx.count(&f).await.map_err(e("count"))?;
                let want = model
                    .iter()
                    .filter(|(id, (_, p))| f.admits(**id, Some(p)))
                    .count();
                if n != want {
                    return Err((i, format!("count({f:?}) = {n}, the model {want}")));
                }
            }
            63..=68 => {
                let id = pool[rng.below(pool.len())];
                let got = idx.get_payload(id).await.map_err(e("get_payload"))?;
                let want = model.get(&id).map(|(_, p)| p.clone());
                if got != want {
                    return Err((
                        i,
                        format!("get_payload({id}) = {got:?}, the model {want:?}"),
                    ));
                }
            }
            69..=96 => {
                let f = random_filter(&mut rng, 3, &pool);
                let q = vector(&mut rng);
                let k = 1 + rng.below(8);
                let ef = [None, Some(1 + rng.below(8)), Some(64)][rng.below(3)];
                idx.sync().await.map_err(e("sync"))?;
                let p = SearchParams {
                    ef,
                    filter: Some(f.clone()),
                    ..SearchParams::default()
                };
                let got = idx.search(&q, k, &p).await.map_err(e("search"))?;
                let width = ef.unwrap_or(idx.spec().ef_search).max(k);
                check_filtered(&model, &q, k, &f, width, &got).map_err(|m| (i, m))?;
            }
            _ => {
                if persist && h.opener.is_some() {
                    let path = dir.0.join("pmodel.vs");
                    idx.save(&path).await.map_err(e("save"))?;
                    let spec = IndexSpec::new(dim, Metric::L2);
                    idx = open(h, &path, spec).await.map_err(e("open after save"))?;
                    if idx.spec().schema != schema() {
                        return Err((i, "the reopened index lost its schema".into()));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `min(k, admitted)` results, all admitted, exact distances, sorted; the
/// exact answer (ties by id) when the admitted set is no larger than `ef`.
fn check_filtered(
    model: &PModel,
    q: &[f32],
    k: usize,
    f: &Filter,
    ef: usize,
    got: &[Neighbor],
) -> Result<(), String> {
    let admitted: Vec<(u64, &[f32])> = model
        .iter()
        .filter(|(id, (_, p))| f.admits(**id, Some(p)))
        .map(|(&id, (v, _))| (id, v.as_slice()))
        .collect();
    let want_len = k.min(admitted.len());
    if got.len() != want_len {
        return Err(format!(
            "search (k {k}, {f:?}) returned {} results, {want_len} admitted",
            got.len()
        ));
    }
    for n in got {
        let Some((_, v)) = admitted.iter().find(|(id, _)| *id == n.id) else {
            return Err(format!("id {} is not admitted by {f:?}", n.id));
        };
        if !agrees(n.distance, exact_distance(Metric::L2, v, q)) {
            return Err(format!(
                "id {} at {}, not its exact distance",
                n.id, n.distance
            ));
        }
    }
    if admitted.len() <= ef || ef >= model.len() {
        let exact: Vec<u64> = exact_knn(Metric::L2, &admitted, q, k)
            .iter()
            .map(|n| n.id)
            .collect();
        let ids: Vec<u64> = got.iter().map(|n| n.id).collect();
        if ids != exact {
            return Err(format!(
                "small is exact: {f:?} admits {} <= ef {ef}: got {ids:?}, exactly {exact:?}",
                admitted.len()
            ));
        }
    }
    Ok(())
}

// ---------- recall at every selectivity ----------

/// 20,000 points; filters admitting 50%, 10%, 1% and 0.1% from unrelated
/// fields (an AND of a 10-value and a 100-value field), and 10% from a field
/// that follows the clusters, with the query's own value (correlated) and a
/// far one (anti-correlated): recall@10 >= 0.95 at the default parameters,
/// and never fewer than `min(k, matches)` results.
pub async fn filtered_recall(h: &Harness) -> Case {
    let c = caps(h).await?;
    if !c.payloads {
        return Err(Why::Skip("no payloads".into()));
    }
    let n = scaled(h, 20_000, 2_000);
    let dim = 32;
    let schema = Schema::new().keyword("a").keyword("b").integer("c");
    let idx = h
        .create(IndexSpec::new(dim, Metric::L2).with_schema(schema))
        .await?;
    let set = Set::new(n, 40, dim, Metric::L2, 59);
    let pivots: Vec<&[f32]> = (0..10)
        .map(|i| set.points[i * (n / 10)].as_slice())
        .collect();
    let nearest = |v: &[f32]| -> usize {
        (0..pivots.len())
            .min_by(|&x, &y| {
                exact_distance(Metric::L2, v, pivots[x]).total_cmp(&exact_distance(
                    Metric::L2,
                    v,
                    pivots[y],
                ))
            })
            .unwrap_or(0)
    };
    let mut rng = Rng::new(61);
    let rows: Vec<(usize, usize, usize)> = set
        .points
        .iter()
        .map(|v| (rng.below(10), rng.below(100), nearest(v)))
        .collect();
    let payloads: Vec<Payload> = rows
        .iter()
        .map(|&(a, b, c)| {
            Payload::new()
                .with("a", format!("a{a}"))
                .with("b", format!("b{b}"))
                .with("c", c as i64)
        })
        .collect();
    idx.add_batch_with_payloads(&set.ids, &set.points, &payloads)
        .await?;
    idx.sync().await?;
    idx.finish_indexing().await?;
    let fixed: Vec<(&str, Filter)> = vec![
        (
            "50% (a in 5 of 10)",
            Filter::is_in("a", ["a0", "a1", "a2", "a3", "a4"]),
        ),
        ("10% (a == a3)", Filter::eq("a", "a3")),
        ("1% (b == b7)", Filter::eq("b", "b7")),
        (
            "0.1% (a == a3 and b == b7)",
            Filter::eq("a", "a3").and(Filter::eq("b", "b7")),
        ),
    ];
    let mut report = Vec::new();
    for q in 0..set.queries.len() {
        let own = nearest(&set.queries[q]) as i64;
        let far =
            (0..pivots.len())
                .max_by(|&x, &y| {
                    exact_distance(Metric::L2, &set.queries[q], pivots[x])
                        .total_cmp(&exact_distance(Metric::L2, &set.queries[q], pivots[y]))
                })
                .unwrap_or(0) as i64;
        let mut shapes = fixed.clone();
        shapes.push(("10% correlated (c == own)", Filter::eq("c", own)));
        shapes.push(("10% anti-correlated (c == far)", Filter::eq("c", far)));
        for (name, f) in shapes {
            let admitted: Vec<(u64, &[f32])> = set
                .ids
                .iter()
                .zip(&set.points)
                .zip(&payloads)
                .filter(|((&id, _), p)| f.admits(id, Some(p)))
                .map(|((&id, v), _)| (id, v.as_slice()))
                .collect();
            let truth = set.truth(&admitted, q, 10);
            let got = idx
                .search(
                    &set.queries[q],
                    10,
                    &SearchParams::default().with_filter(f.clone()),
                )
                .await?;
            ensure!(
                got.len() == truth.len(),
                "{name}, query {q}: {} results, {} expected (min(k, matches))",
                got.len(),
                truth.len()
            );
            let hit = got
                .iter()
                .filter(|g| truth.iter().any(|t| t.id == g.id))
                .count();
            let r = if truth.is_empty() {
                1.0
            } else {
                hit as f64 / truth.len() as f64
            };
            match report.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, sum, count)) => {
                    *sum += r;
                    *count += 1;
                }
                None => report.push((name, r, 1usize)),
            }
        }
    }
    for (name, sum, count) in &report {
        let r = sum / *count as f64;
        ensure!(r >= 0.95, "{name}: recall@10 {r:.3} < 0.95 ({n} points)");
    }
    Ok(())
}

// ---------- payloads through writes and files ----------

/// Upsert replaces vector and payload together, delete removes both, a
/// re-added id starts without a payload, and save and open keep payloads
/// and the filters over them.
pub async fn payload_survives(h: &Harness) -> Case {
    let idx = payload_index(h, 4).await?;
    let ids: Vec<u64> = (0..50).map(id_of).collect();
    let vs: Vec<Vec<f32>> = (0..50).map(|i| vec![i as f32, 0.0, 1.0, 2.0]).collect();
    let ps: Vec<Payload> = (0..50u64).map(|i| payload_of(&row(i))).collect();
    idx.add_batch_with_payloads(&ids, &vs, &ps).await?;
    idx.sync().await?;
    ensure!(
        idx.get_payload(ids[7]).await? == Some(ps[7].clone()),
        "get_payload after add"
    );
    let acme = Filter::eq("tenant", "acme");
    let before = idx.count(&acme).await?;
    // An upsert without payload clears it; with one replaces it.
    let a_acme = (0..50)
        .find(|&i| row(i as u64).tenant == Some("acme"))
        .unwrap_or(0);
    idx.add(ids[a_acme], &vs[a_acme]).await?;
    idx.sync().await?;
    ensure!(
        idx.get_payload(ids[a_acme]).await? == Some(Payload::new()),
        "add without payload kept the old one"
    );
    ensure!(
        idx.count(&acme).await? == before - 1,
        "count after the payload was cleared"
    );
    idx.add_with_payload(
        ids[a_acme],
        &vs[a_acme],
        &Payload::new().with("tenant", "acme"),
    )
    .await?;
    idx.sync().await?;
    ensure!(
        idx.count(&acme).await? == before,
        "count after the payload came back"
    );
    // set_payload changes the payload, not the vector; absent ids are not created.
    ensure!(
        idx.set_payload(ids[3], &Payload::new().with("date", 5_i64))
            .await?,
        "set_payload on a present id"
    );
    ensure!(
        !idx.set_payload(9, &Payload::new()).await?,
        "set_payload on an absent id said true"
    );
    idx.sync().await?;
    ensure!(!idx.contains(9).await?, "set_payload created an id");
    let v3 = idx.get(ids[3]).await?.ok_or_else(|| fail("id lost"))?;
    ensure!(
        same_vector(Metric::L2, &v3, &vs[3]),
        "set_payload changed the vector"
    );
    ensure!(
        idx.count(&Filter::eq("date", 5)).await? == 1,
        "the new payload is not filtered on"
    );
    // Delete removes both; a re-add has no payload.
    ensure!(idx.delete(ids[4]).await?, "delete");
    idx.sync().await?;
    ensure!(
        idx.get_payload(ids[4]).await?.is_none(),
        "a deleted id kept its payload"
    );
    idx.add(ids[4], &vs[4]).await?;
    idx.sync().await?;
    ensure!(
        idx.get_payload(ids[4]).await? == Some(Payload::new()),
        "a re-added id got its old payload back"
    );
    // delete_where.
    let gone = idx.delete_where(&Filter::eq("tenant", "globex")).await?;
    idx.sync().await?;
    ensure!(
        gone > 0 && idx.count(&Filter::eq("tenant", "globex")).await? == 0,
        "delete_where left matches"
    );
    ensure!(idx.len().await? == 50 - gone, "len after delete_where");
    // Files.
    let c = caps(h).await?;
    if c.persistence && h.opener.is_some() {
        let dir = TempDir::new("payload")?;
        let path = dir.0.join("p.vs");
        idx.save(&path).await?;
        let back = open(h, &path, IndexSpec::new(4, Metric::L2)).await?;
        ensure!(back.spec().schema == schema(), "the file lost the schema");
        for &id in &ids {
            ensure!(
                back.get_payload(id).await? == idx.get_payload(id).await?,
                "id {id}'s payload changed through save and open"
            );
        }
        for (f, _) in table() {
            ensure!(
                back.count(&f).await? == idx.count(&f).await?,
                "count({f:?}) changed through save and open"
            );
        }
        // A spec with another schema is refused; one with none takes the file's.
        let other = IndexSpec::new(4, Metric::L2).with_schema(Schema::new().keyword("x"));
        ensure!(
            open(h, &path, other).await.is_err(),
            "opened with another schema"
        );
    }
    Ok(())
}

/// Bad payloads and filters get `InvalidArgument`, naming the problem, and
/// change nothing: an unknown field, a wrong type, NaN, a keyword over the
/// limit, a filter deeper than the limit, a payload on an index without a
/// schema.
pub async fn payload_bad_input(h: &Harness) -> Case {
    let idx = payload_index(h, 4).await?;
    let v = [1.0, 2.0, 3.0, 4.0];
    idx.add_with_payload(1, &v, &Payload::new().with("tenant", "acme"))
        .await?;
    idx.sync().await?;
    let long = "x".repeat(vecsearch_core::payload::MAX_KEYWORD_BYTES + 1);
    let bad = [
        (
            "an unknown field",
            Payload::new().with("nope", 1_i64),
            "nope",
        ),
        (
            "a wrong type",
            Payload::new().with("date", "yesterday"),
            "date",
        ),
        ("NaN", Payload::new().with("score", f64::NAN), "score"),
        (
            "a long keyword",
            Payload::new().with("tenant", long.as_str()),
            "tenant",
        ),
        (
            "a list for a single value",
            Payload::new().with("tenant", ["a"]),
            "tenant",
        ),
    ];
    for (what, p, field) in &bad {
        for r in [
            idx.add_with_payload(1, &[9.0; 4], p).await,
            idx.add_with_payload(2, &v, p).await,
            idx.add_batch_with_payloads(
                &[3, 4],
                &[v.to_vec(), v.to_vec()],
                &[Payload::new(), p.clone()],
            )
            .await,
            idx.set_payload(1, p).await.map(|_| ()),
        ] {
            match r {
                Err(vecsearch_core::Error::InvalidArgument(m)) if m.contains(field) => {}
                other => {
                    return Err(fail(format!(
                        "{what}: {other:?}, expected InvalidArgument naming {field:?}"
                    )))
                }
            }
        }
    }
    idx.sync().await?;
    ensure!(idx.len().await? == 1, "a refused write changed len");
    ensure!(
        idx.get_payload(1).await? == Some(Payload::new().with("tenant", "acme")),
        "a refused write changed a payload"
    );
    let got = idx.get(1).await?.ok_or_else(|| fail("id 1 lost"))?;
    ensure!(
        same_vector(Metric::L2, &got, &v),
        "a refused write changed a vector"
    );
    let mut deep = Filter::eq("date", 1);
    for _ in 0..vecsearch_core::filter::MAX_FILTER_DEPTH {
        deep = deep.negate();
    }
    let bad_filters = [
        Filter::eq("nope", 1),
        Filter::eq("date", "x"),
        Filter::range("tenant").gt(1),
        Filter::contains("tenant", "a"),
        Filter::range("score").lt(f64::NAN),
        deep,
    ];
    for f in &bad_filters {
        let s = idx
            .search(&v, 1, &SearchParams::default().with_filter(f.clone()))
            .await;
        ensure!(
            matches!(s, Err(vecsearch_core::Error::InvalidArgument(_))),
            "search with {f:?}: {s:?}"
        );
        let c = idx.count(f).await;
        ensure!(
            matches!(c, Err(vecsearch_core::Error::InvalidArgument(_))),
            "count with {f:?}: {c:?}"
        );
        let d = idx.delete_where(f).await;
        ensure!(
            matches!(d, Err(vecsearch_core::Error::InvalidArgument(_))),
            "delete_where with {f:?}: {d:?}"
        );
    }
    ensure!(idx.len().await? == 1, "a refused delete_where deleted");
    // An index without a schema takes no payloads.
    let plain = h.create(IndexSpec::new(4, Metric::L2)).await?;
    match plain
        .add_with_payload(1, &v, &Payload::new().with("tenant", "a"))
        .await
    {
        Err(vecsearch_core::Error::InvalidArgument(m)) if m.contains("schema") => {}
        other => {
            return Err(fail(format!(
                "a payload on an index without schema: {other:?}"
            )))
        }
    }
    plain.sync().await?;
    ensure!(plain.len().await? == 0, "a refused payload wrote a vector");
    // An empty payload is no payload, and allowed.
    plain.add_with_payload(1, &v, &Payload::new()).await?;
    Ok(())
}

/// A backend without payloads refuses a schema at creation with `Unsupported`.
pub async fn payloads_unsupported_fail_at_creation(h: &Harness) -> Case {
    let c = caps(h).await?;
    if c.payloads {
        return Err(Why::Skip("the backend stores payloads".into()));
    }
    match h
        .create(IndexSpec::new(4, Metric::L2).with_schema(schema()))
        .await
    {
        Err(vecsearch_core::Error::Unsupported(_)) => Ok(()),
        Err(e) => Err(fail(format!("a schema on a backend without payloads: {e}"))),
        Ok(_) => Err(fail("a backend without payloads accepted a schema")),
    }
}
