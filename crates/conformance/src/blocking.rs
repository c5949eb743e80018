//! The blocking face with no async runtime: "every backend works from
//! synchronous code with no async runtime (through the blocking face) as
//! well as from inside one: no call panics for want of a reactor".

use std::sync::Arc;

use vecsearch_core::{Blocking, Filter, IndexSpec, Metric, SearchParams, VectorIndex};

use crate::cases::{fail, Case, Why};
use crate::Harness;

/// Opens, writes, syncs, reads and deletes through [`Blocking`] on a plain
/// thread that has no async runtime, as a user of
/// `vecsearch::open_blocking` would: every call must return (no panic for
/// want of a reactor or timer) with the contract's answers. Skipped for a
/// harness without [`Harness::with_blocking_factory`].
pub async fn blocking_without_runtime(h: &Harness) -> Case {
    let Some(factory) = h.blocking_factory.clone() else {
        return Err(Why::Skip("no blocking factory".into()));
    };
    // A thread of our own: no runtime is entered on it, whatever the
    // harness's executor is. `offload` wakes us from that thread, so the
    // harness's executor is not blocked meanwhile.
    let outcome = vecsearch_core::exec::offload(move || Ok(run_plain(factory))).await;
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(m)) => Err(fail(m)),
        // `offload` turns a panic on the thread into `Unavailable`.
        Err(e) => Err(fail(format!(
            "a blocking call panicked or the thread failed: {e}"
        ))),
    }
}

type Factory = dyn Fn(IndexSpec) -> vecsearch_core::Result<Blocking<dyn VectorIndex>> + Send + Sync;

fn run_plain(factory: Arc<Factory>) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_string();
        move |e: vecsearch_core::Error| format!("{what}: unexpected error: {e}")
    };
    let check = |held: bool, msg: String| if held { Ok(()) } else { Err(msg) };
    let dim = 8;
    let unit = |i: usize| {
        let mut v = vec![0.0f32; dim];
        v[i % dim] = 1.0;
        v[(i + 1) % dim] = 0.5 * i as f32;
        v
    };
    let idx = factory(IndexSpec::new(dim, Metric::L2)).map_err(err("open"))?;
    let sync = |idx: &Blocking<dyn VectorIndex>| {
        vecsearch_core::exec::block_on(idx.inner().sync()).map_err(err("sync"))
    };

    idx.add(1, &unit(1)).map_err(err("add"))?;
    let ids = [2u64, 3, 4, 5];
    let vectors: Vec<Vec<f32>> = (2..6).map(unit).collect();
    idx.add_batch(&ids, &vectors).map_err(err("add_batch"))?;
    // An upsert, so `sync` has a changed vector to wait for.
    idx.add(5, &unit(6)).map_err(err("add (upsert)"))?;
    sync(&idx)?;
    let n = idx.len().map_err(err("len"))?;
    check(n == 5, format!("len after 5 adds is {n}"))?;

    let p = SearchParams::default();
    let hits = idx.search(&unit(3), 3, &p).map_err(err("search"))?;
    check(
        hits.len() == 3 && hits[0].id == 3 && hits[0].distance.abs() < 1e-3,
        format!("search for id 3's vector returned {hits:?}"),
    )?;
    let filtered = SearchParams::default().with_filter(Filter::allow([2, 4]));
    let hits = idx
        .search(&unit(3), 5, &filtered)
        .map_err(err("search with filter"))?;
    let mut got: Vec<u64> = hits.iter().map(|n| n.id).collect();
    got.sort_unstable();
    check(
        got == [2, 4],
        format!("filtered search returned ids {got:?}, expected [2, 4]"),
    )?;
    let batch = idx
        .search_batch(&[unit(1), unit(2)], 1, &p)
        .map_err(err("search_batch"))?;
    check(
        batch.len() == 2 && batch[0][0].id == 1 && batch[1][0].id == 2,
        format!("search_batch returned {batch:?}"),
    )?;

    let v = idx.get(2).map_err(err("get"))?;
    check(
        v.as_deref() == Some(&unit(2)[..]),
        format!("get(2) returned {v:?}"),
    )?;
    let v = idx.get(5).map_err(err("get"))?;
    check(
        v.as_deref() == Some(&unit(6)[..]),
        format!("get(5) after the upsert returned {v:?}"),
    )?;
    let none = idx.get(999).map_err(err("get absent"))?;
    check(none.is_none(), format!("get(999) returned {none:?}"))?;

    let was = idx.delete(3).map_err(err("delete"))?;
    check(was, "delete(3) of a present id returned false".into())?;
    let again = idx.delete(999).map_err(err("delete absent"))?;
    check(!again, "delete(999) of an absent id returned true".into())?;
    sync(&idx)?;
    let n = idx.len().map_err(err("len"))?;
    check(n == 4, format!("len after a delete is {n}, expected 4"))?;
    let gone = idx.get(3).map_err(err("get deleted"))?;
    check(
        gone.is_none(),
        format!("get(3) after delete returned {gone:?}"),
    )?;
    let hits = idx.search(&unit(3), 10, &p).map_err(err("search"))?;
    check(
        hits.len() == 4 && hits.iter().all(|n| n.id != 3),
        format!("search after deleting id 3 returned {hits:?}"),
    )?;
    // Dropped here, on the plain thread too.
    drop(idx);
    Ok(())
}
