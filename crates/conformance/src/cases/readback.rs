//! Reading everything back (`scan`, `ids`), range search and exclude lists.

use std::collections::BTreeMap;

use vecsearch_core::synthetic::exact_knn;
use vecsearch_core::{Filter, Payload};

#[allow(unused_imports)]
use super::*;

/// After random adds (with payloads where the backend takes them), upserts
/// and deletes, a scan in pages of random sizes returns every live id
/// exactly once, ascending, with its stored vector and payload, and never a
/// deleted one; `ids()` lists the same ids.
pub async fn scan_returns_every_live_id(h: &Harness) -> Case {
    let c = caps(h).await?;
    let payloads = c.payloads;
    let spec = IndexSpec::new(4, Metric::L2);
    let spec = if payloads {
        spec.with_schema(crate::cases::payloads::schema())
    } else {
        spec
    };
    let idx = h.create(spec).await?;
    let mut rng = Rng::new(73);
    let mut model: BTreeMap<u64, (Vec<f32>, Payload)> = BTreeMap::new();
    // Ids spread over the whole range, so a server's key ranges are tried.
    let pool: Vec<u64> = (0..300u64)
        .map(|i| match i % 5 {
            0 => i,
            1 => i * 1_000_003,
            2 => c.max_id - i,
            3 => (1 << 40) + i * 7,
            _ => 5_000 + i,
        })
        .collect();
    for round in 0..3 {
        let n = 120;
        let ids: Vec<u64> = (0..n).map(|_| pool[rng.below(pool.len())]).collect();
        let vs: Vec<Vec<f32>> = (0..n)
            .map(|_| (0..4).map(|_| rng.below(9) as f32 - 4.0).collect())
            .collect();
        let ps: Vec<Payload> = (0..n)
            .map(|i| {
                if payloads && i % 3 != 0 {
                    Payload::new().with("date", (round * 1000 + i) as i64)
                } else {
                    Payload::new()
                }
            })
            .collect();
        if payloads {
            idx.add_batch_with_payloads(&ids, &vs, &ps).await?;
        } else {
            idx.add_batch(&ids, &vs).await?;
        }
        // The last of equal ids wins.
        for ((id, v), p) in ids.iter().zip(vs).zip(ps) {
            model.insert(*id, (v, p));
        }
        for _ in 0..40 {
            let id = pool[rng.below(pool.len())];
            idx.delete(id).await?;
            model.remove(&id);
        }
        idx.sync().await?;
    }
    for page in [1usize, 7, 64, 1000] {
        let mut after = None;
        let mut seen: Vec<u64> = Vec::new();
        let mut rounds = 0;
        loop {
            rounds += 1;
            ensure!(
                rounds <= model.len() + 2,
                "page size {page}: the scan does not end"
            );
            let p = idx.scan(after, page).await?;
            ensure!(
                p.records.len() <= page,
                "page size {page}: a page of {}",
                p.records.len()
            );
            for r in &p.records {
                let Some((v, pl)) = model.get(&r.id) else {
                    return Err(fail(format!(
                        "page size {page}: scanned id {} is not live",
                        r.id
                    )));
                };
                ensure!(
                    same_vector(Metric::L2, &r.vector, v),
                    "id {}: scanned vector {:?}, stored {v:?}",
                    r.id,
                    r.vector
                );
                ensure!(
                    &r.payload == pl,
                    "id {}: scanned payload {:?}, stored {pl:?}",
                    r.id,
                    r.payload
                );
                ensure!(
                    seen.last().is_none_or(|&l| l < r.id),
                    "page size {page}: id {} after {:?}",
                    r.id,
                    seen.last()
                );
                seen.push(r.id);
            }
            match p.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let want: Vec<u64> = model.keys().copied().collect();
        ensure!(
            seen == want,
            "page size {page}: scanned {} ids, {} live",
            seen.len(),
            want.len()
        );
    }
    let ids = idx.ids().await?;
    ensure!(
        ids == model.keys().copied().collect::<Vec<_>>(),
        "ids() lists {} ids, {} live",
        ids.len(),
        model.len()
    );
    ensure!(
        matches!(
            idx.scan(None, 0).await,
            Err(vecsearch_core::Error::InvalidArgument(_))
        ),
        "a page of 0 records was accepted"
    );
    Ok(())
}

/// `with_max_distance(d)` returns only hits within `d` (at most `k`,
/// nearest first): exactly the ids within `d` when the search is exact
/// (`ef` at least the live count); NaN is refused.
pub async fn range_search(h: &Harness) -> Case {
    let idx = fresh(h, 8, Metric::L2).await?;
    let set = Set::new(400, 5, 8, Metric::L2, 79);
    fill(&*idx, &set.ids, &set.points).await?;
    let live = set.live();
    for q in 0..set.queries.len() {
        let all = set.truth(&live, q, live.len());
        // About 5% of the points, halfway to the next distance: no point
        // sits where f32 rounding could put it on either side.
        let m = (all.len() / 20..all.len() - 1)
            .find(|&i| all[i + 1].distance > all[i].distance * 1.001)
            .unwrap_or(all.len() - 1);
        let d = match all.get(m + 1) {
            Some(next) => (all[m].distance + next.distance) / 2.0,
            None => all[m].distance * 2.0 + 1.0,
        };
        let p = SearchParams::default().with_ef(400).with_max_distance(d);
        let got = idx.search(&set.queries[q], 50, &p).await?;
        let want: Vec<u64> = all
            .iter()
            .filter(|n| n.distance <= d)
            .take(50)
            .map(|n| n.id)
            .collect();
        let ids: Vec<u64> = got.iter().map(|n| n.id).collect();
        ensure!(
            got.iter().all(|n| n.distance <= d),
            "a hit beyond max_distance {d}"
        );
        ensure!(
            ids == want,
            "query {q}, within {d}: got {ids:?}, exactly {want:?}"
        );
        let none = idx
            .search(
                &set.queries[q],
                10,
                &SearchParams::default().with_max_distance(-1.0),
            )
            .await?;
        ensure!(none.is_empty(), "max_distance -1 returned hits");
    }
    let nan = idx
        .search(
            &set.queries[0],
            10,
            &SearchParams::default().with_max_distance(f32::NAN),
        )
        .await;
    ensure!(
        matches!(nan, Err(vecsearch_core::Error::InvalidArgument(_))),
        "max_distance NaN: {nan:?}"
    );
    Ok(())
}

/// An exclude list (`Filter::exclude`): a dedup job searches each row
/// against the index without itself and finds its nearest other row.
pub async fn exclude_list(h: &Harness) -> Case {
    let c = caps(h).await?;
    if !c.filter {
        return Err(Why::Skip("no filter".into()));
    }
    let idx = fresh(h, 8, Metric::L2).await?;
    let set = Set::new(300, 1, 8, Metric::L2, 83);
    fill(&*idx, &set.ids, &set.points).await?;
    let live = set.live();
    for i in (0..300).step_by(37) {
        let me = set.ids[i];
        let p = SearchParams::default()
            .with_ef(300)
            .with_filter(Filter::exclude([me]));
        let got = idx.search(&set.points[i], 3, &p).await?;
        let others: Vec<(u64, &[f32])> = live.iter().copied().filter(|(id, _)| *id != me).collect();
        let want: Vec<u64> = exact_knn(Metric::L2, &others, &set.points[i], 3)
            .iter()
            .map(|n| n.id)
            .collect();
        let ids: Vec<u64> = got.iter().map(|n| n.id).collect();
        ensure!(
            ids == want,
            "row {me} without itself: got {ids:?}, exactly {want:?}"
        );
    }
    Ok(())
}

/// Ids of `scan_beside_writers`: `4i` stay live for the whole scan, `4i+1`
/// are deleted before it and never written again, `4i+3` are the writers'
/// (writer `w` takes those with `i % 2 == w`).
fn beside_id(i: u64, kind: u64) -> u64 {
    4 * i + kind
}

/// A scan beside writers: while two writers add, upsert (also in batches
/// repeating an id) and delete ids of their own, interleaved with the ids
/// of the scan, paged scans and `ids()` return every id that was live for
/// the whole scan exactly once (with its vector), ascending, and never one
/// deleted before the scan began.
pub async fn scan_beside_writers(h: &Harness) -> Case {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    if !caps(h).await?.stable_reads {
        return Err(Why::Skip(
            "reads are bounded-stale beside writes (stable_reads: false)".into(),
        ));
    }

    let idx = h.create(IndexSpec::new(4, Metric::L2)).await?;
    let n = scaled(h, 600, 150) as u64;
    let vector = |id: u64, round: u64| -> Vec<f32> {
        vec![(id % 17) as f32, (id % 5) as f32, round as f32, 1.0]
    };
    // The fixed ids, those deleted before the scan, half the writers' ids.
    let mut ids: Vec<u64> = Vec::new();
    for i in 0..n {
        ids.extend([beside_id(i, 0), beside_id(i, 1)]);
        if i % 4 < 2 {
            ids.push(beside_id(i, 3));
        }
    }
    let vs: Vec<Vec<f32>> = ids.iter().map(|&id| vector(id, 0)).collect();
    idx.add_batch(&ids, &vs).await?;
    let gone: Vec<u64> = (0..n).map(|i| beside_id(i, 1)).collect();
    idx.delete_batch(&gone).await?;
    idx.sync().await?;

    let idx: &dyn VectorIndex = &*idx;
    let done = AtomicBool::new(false);
    let ops = AtomicUsize::new(0);
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let record = |m: String| problems.lock().unwrap_or_else(|p| p.into_inner()).push(m);
    let mut verdict: Case = Ok(());
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (done, ops, record) = (&done, &ops, &record);
            s.spawn(move || {
                (h.block_on)(Box::pin(async move {
                    let mut rng = Rng::new(97 + w);
                    let mine =
                        |rng: &mut Rng| beside_id(2 * rng.below(n as usize / 2) as u64 + w, 3);
                    let mut round = 1;
                    // Until the scans are done: a count, not a clock.
                    while !done.load(Ordering::Acquire) {
                        round += 1;
                        let id = mine(&mut rng);
                        let result = match rng.below(4) {
                            0 | 1 => idx.add(id, &vector(id, round)).await,
                            2 => idx.delete(id).await.map(|_| ()),
                            _ => {
                                let other = mine(&mut rng);
                                let vs = [
                                    vector(id, round),
                                    vector(other, round),
                                    vector(id, round + 1),
                                ];
                                idx.add_batch(&[id, other, id], &vs).await
                            }
                        };
                        if let Err(e) = result {
                            record(format!("writer {w}: {e}"));
                        }
                        ops.fetch_add(1, Ordering::AcqRel);
                    }
                }))
            });
        }
        // The reader on a thread of its own too: the case's own thread is
        // inside the harness's executor, which may not be entered again.
        let (done, ops, problems, verdict, vector) =
            (&done, &ops, &problems, &mut verdict, &vector);
        s.spawn(move || {
            (h.block_on)(Box::pin(async move {
                // The writers have begun before the first page is read.
                while ops.load(Ordering::Acquire) < 4 && problems_empty(problems) {
                    std::thread::yield_now();
                }
                *verdict = scans_beside(idx, n, vector).await;
                done.store(true, Ordering::Release);
            }))
        });
    });
    verdict?;
    let problems = problems.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(first) = problems.first() {
        return Err(fail(format!(
            "{} writer errors in {} writes, first: {first}",
            problems.len(),
            ops.load(Ordering::Relaxed)
        )));
    }
    Ok(())
}

fn problems_empty(p: &std::sync::Mutex<Vec<String>>) -> bool {
    p.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
}

/// `scan_beside_writers`'s reading side: paged scans of several sizes and
/// `ids()`, each checked against the ids live for the whole of it.
async fn scans_beside(
    idx: &dyn VectorIndex,
    n: u64,
    vector: &(dyn Fn(u64, u64) -> Vec<f32> + Sync),
) -> Case {
    let check_id = |what: &str, id: u64, last: Option<u64>| -> Case {
        ensure!(
            last.is_none_or(|l| l < id),
            "{what}: id {id} after {last:?} (twice, or out of order)"
        );
        ensure!(
            id % 4 != 1,
            "{what}: id {id} came back, deleted before the scan began"
        );
        ensure!(
            id % 4 != 2 && id < 4 * n,
            "{what}: id {id} was never written"
        );
        Ok(())
    };
    for page in [3usize, 64] {
        let what = format!("scan in pages of {page}");
        let (mut after, mut last, mut fixed) = (None, None, 0u64);
        let mut rounds = 0;
        loop {
            rounds += 1;
            ensure!(
                rounds <= 4 * n as usize + 2,
                "{what}: the scan does not end"
            );
            let p = idx.scan(after, page).await?;
            ensure!(
                p.records.len() <= page,
                "{what}: a page of {}",
                p.records.len()
            );
            for r in &p.records {
                check_id(&what, r.id, last)?;
                if r.id % 4 == 0 {
                    ensure!(
                        r.id == 4 * fixed,
                        "{what}: id {} live for the whole scan is missing",
                        4 * fixed
                    );
                    ensure!(
                        same_vector(Metric::L2, &r.vector, &vector(r.id, 0)),
                        "{what}: id {}: scanned vector {:?}, stored {:?}",
                        r.id,
                        r.vector,
                        vector(r.id, 0)
                    );
                    fixed += 1;
                }
                last = Some(r.id);
            }
            match p.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        ensure!(
            fixed == n,
            "{what}: {fixed} of the {n} ids live for the whole scan came back"
        );
    }
    let (mut last, mut fixed) = (None, 0u64);
    for id in idx.ids().await? {
        check_id("ids()", id, last)?;
        fixed += u64::from(id % 4 == 0);
        last = Some(id);
    }
    ensure!(
        fixed == n,
        "ids(): {fixed} of the {n} ids live for the whole call came back"
    );
    Ok(())
}
