//! Readers beside writers see whole versions; saves to one path at once
//! each stay atomic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vecsearch_core::distance::{agrees, exact_distance};
use vecsearch_core::synthetic::Rng;
use vecsearch_core::{Filter, IndexSpec, Metric, SearchParams, VectorIndex};

use super::{caps, fail, fill, fresh, open, Case, TempDir, Why};
use crate::data::{same_vector, Set};
use crate::Harness;

const DIM: usize = 8;

/// Every vector each id ever had, recorded before the write is issued.
type History = Mutex<HashMap<u64, Vec<Vec<f32>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Two writers (disjoint ids: add, upsert, delete, add_batch with repeated
/// ids) and two readers (search, filtered search, search_batch, get) for a
/// few seconds: every distance a reader gets back belongs to a vector its id
/// had, and every `get` is one whole version.
pub async fn concurrent_reads_see_whole_versions(h: &Harness) -> Case {
    let idx = fresh(h, DIM, Metric::L2).await?;
    let set = Set::new(3000, 64, DIM, Metric::L2, 81);
    fill(&*idx, &set.ids, &set.points).await?;
    let history: History = Mutex::new(
        set.ids
            .iter()
            .zip(&set.points)
            .map(|(&id, v)| (id, vec![stored(&*idx, v)]))
            .collect(),
    );
    // `VECSEARCH_RACE_SECS` runs longer (the bug this hunts showed in two
    // of four 20-s runs).
    let secs = std::env::var("VECSEARCH_RACE_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(if h.scale >= 1.0 { 3.0 } else { 2.0 });
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let stop = AtomicBool::new(false);
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let ops = AtomicUsize::new(0);
    let idx: &dyn VectorIndex = &*idx;
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (history, problems, stop, ops) = (&history, &problems, &stop, &ops);
            s.spawn(move || {
                (h.block_on)(Box::pin(async move {
                    write_loop(idx, w, history, problems, until, ops).await;
                    stop.store(true, Ordering::Release);
                }))
            });
        }
        for r in 0..2u64 {
            let (history, problems, stop, set, ops) = (&history, &problems, &stop, &set, &ops);
            s.spawn(move || {
                (h.block_on)(Box::pin(async move {
                    read_loop(idx, r, set, history, problems, stop, ops).await;
                }))
            });
        }
    });
    let problems = problems.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(first) = problems.first() {
        return Err(fail(format!(
            "{} problems in {} operations, first: {first}",
            problems.len(),
            ops.load(Ordering::Relaxed)
        )));
    }
    Ok(())
}

/// `v` as the index holds it (rounded for f16 storage).
fn stored(idx: &dyn VectorIndex, v: &[f32]) -> Vec<f32> {
    idx.spec().storage.stored(v)
}

fn writer_id(w: u64, i: u64) -> u64 {
    (1 << 40) + w * 100_000 + i
}

async fn write_loop(
    idx: &dyn VectorIndex,
    w: u64,
    history: &History,
    problems: &Mutex<Vec<String>>,
    until: Instant,
    ops: &AtomicUsize,
) {
    let mut rng = Rng::new(900 + w);
    let next =
        |rng: &mut Rng| -> Vec<f32> { (0..DIM).map(|_| rng.normal() as f32 * 3.0).collect() };
    while Instant::now() < until {
        let id = writer_id(w, rng.below(200) as u64);
        let result = match rng.below(10) {
            0..=4 => {
                let v = next(&mut rng);
                lock(history).entry(id).or_default().push(stored(idx, &v));
                idx.add(id, &v).await
            }
            5..=6 => idx.delete(id).await.map(|_| ()),
            _ => {
                // A batch repeating one id: only its last vector may be seen,
                // but recording both keeps the check about torn reads.
                let other = writer_id(w, rng.below(200) as u64);
                let ids = [id, other, id];
                let vs: Vec<Vec<f32>> = (0..3).map(|_| next(&mut rng)).collect();
                {
                    let mut hist = lock(history);
                    for (i, v) in ids.iter().zip(&vs) {
                        hist.entry(*i).or_default().push(stored(idx, v));
                    }
                }
                idx.add_batch(&ids, &vs).await
            }
        };
        ops.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = result {
            lock(problems).push(format!("writer {w}: {e}"));
        }
    }
}

async fn read_loop(
    idx: &dyn VectorIndex,
    r: u64,
    set: &Set,
    history: &History,
    problems: &Mutex<Vec<String>>,
    stop: &AtomicBool,
    ops: &AtomicUsize,
) {
    let mut rng = Rng::new(700 + r);
    let report = |m: String| lock(problems).push(m);
    while !stop.load(Ordering::Acquire) {
        let q = &set.queries[rng.below(set.queries.len())];
        let answers = match rng.below(4) {
            0 => idx
                .search(q, 10, &SearchParams::default())
                .await
                .map(|a| vec![(q.clone(), a)]),
            1 => {
                let allow: Vec<u64> = (0..300).map(|i| writer_id(i % 2, i / 2 % 200)).collect();
                let p = SearchParams::default().with_filter(Filter::allow(allow));
                idx.search(q, 10, &p).await.map(|a| vec![(q.clone(), a)])
            }
            2 => {
                let qs: Vec<Vec<f32>> = (0..4)
                    .map(|_| set.queries[rng.below(set.queries.len())].clone())
                    .collect();
                idx.search_batch(&qs, 10, &SearchParams::default())
                    .await
                    .map(|a| qs.into_iter().zip(a).collect())
            }
            _ => {
                let id = writer_id(rng.below(2) as u64, rng.below(200) as u64);
                match idx.get(id).await {
                    Ok(Some(v)) => {
                        let hist = lock(history);
                        let known = hist
                            .get(&id)
                            .is_some_and(|vs| vs.iter().any(|h| same_vector(Metric::L2, &v, h)));
                        if !known {
                            report(format!("get({id}) = {v:?}, a vector it never had"));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => report(format!("get: {e}")),
                }
                Ok(Vec::new())
            }
        };
        ops.fetch_add(1, Ordering::Relaxed);
        match answers {
            Ok(list) => {
                for (q, hits) in list {
                    check_versions(&q, &hits, history, &report);
                }
            }
            Err(e) => report(format!("reader: {e}")),
        }
    }
}

fn check_versions(
    q: &[f32],
    hits: &[vecsearch_core::Neighbor],
    history: &History,
    report: &impl Fn(String),
) {
    let hist = lock(history);
    for n in hits {
        let ok = hist.get(&n.id).is_some_and(|vs| {
            vs.iter()
                .any(|v| agrees(n.distance, exact_distance(Metric::L2, v, q)))
        });
        if !ok {
            report(format!(
                "id {} at distance {}, which no vector it had gives",
                n.id, n.distance
            ));
        }
    }
}

/// Three threads saving one index to one path beside a writer and a thread
/// opening the path in a loop: every save `Ok`, every open a whole index,
/// and after the last save the file answers like the index did.
pub async fn concurrent_saves(h: &Harness) -> Case {
    if h.opener.is_none() || !caps(h).await?.persistence {
        return Err(Why::Skip("no persistence".into()));
    }
    let idx = fresh(h, DIM, Metric::L2).await?;
    let set = Set::new(3000, 20, DIM, Metric::L2, 83);
    fill(&*idx, &set.ids, &set.points).await?;
    let dir = TempDir::new("saves")?;
    let path = dir.0.join("shared.vs");
    idx.save(&path).await?;
    let spec: IndexSpec = idx.spec().clone();
    let idx: &dyn VectorIndex = &*idx;
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let saving = AtomicUsize::new(3);
    let opens = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..3 {
            let (path, problems, saving) = (&path, &problems, &saving);
            s.spawn(move || {
                (h.block_on)(Box::pin(async move {
                    for i in 0..6 {
                        if let Err(e) = idx.save(path).await {
                            lock(problems).push(format!("saver {t}, save {i}: {e}"));
                        }
                    }
                    saving.fetch_sub(1, Ordering::AcqRel);
                }))
            });
        }
        {
            let (problems, saving) = (&problems, &saving);
            s.spawn(move || {
                (h.block_on)(Box::pin(async move {
                    let mut i = 0u64;
                    while saving.load(Ordering::Acquire) > 0 {
                        let v: Vec<f32> = (0..DIM).map(|d| (i + d as u64) as f32).collect();
                        if let Err(e) = idx.add(5_000_000 + i % 500, &v).await {
                            lock(problems).push(format!("writer: {e}"));
                        }
                        i += 1;
                    }
                }))
            });
        }
        {
            let (path, problems, saving, opens, spec) = (&path, &problems, &saving, &opens, &spec);
            s.spawn(move || {
                (h.block_on)(Box::pin(async move {
                    while saving.load(Ordering::Acquire) > 0 {
                        match open(h, path, spec.clone()).await {
                            Ok(back) => match back.len().await {
                                Ok(n) if n >= 3000 => {}
                                Ok(n) => lock(problems).push(format!("an open saw {n} vectors")),
                                Err(e) => lock(problems).push(format!("len: {e}")),
                            },
                            Err(e) => lock(problems).push(format!("an open failed: {e}")),
                        }
                        opens.fetch_add(1, Ordering::Relaxed);
                    }
                }))
            });
        }
    });
    let problems = problems.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(first) = problems.first() {
        return Err(fail(format!(
            "{} problems ({} opens), first: {first}",
            problems.len(),
            opens.load(Ordering::Relaxed)
        )));
    }
    // The last save is the file.
    idx.save(&path).await?;
    let back = open(h, &path, spec).await?;
    if back.len().await? != idx.len().await? {
        return Err(fail("the file after the last save has another length"));
    }
    let p = SearchParams::default().with_ef(10_000);
    for q in &set.queries {
        let a = idx.search(q, 10, &p).await?;
        let b = back.search(q, 10, &p).await?;
        if a != b {
            return Err(fail(format!(
                "after the last save the file answers {b:?}, the index {a:?}"
            )));
        }
    }
    if std::fs::read_dir(&dir.0).map_or(0, |d| d.count()) != 1 {
        return Err(fail("saves left temporary files beside the index"));
    }
    Ok(())
}
