//! Opening an existing collection on the real Milvus: the same spec finds
//! the data written before; another dim or metric is refused with
//! `InvalidArgument` and the collection keeps everything. Skipped, saying
//! so, when `VECSEARCH_MILVUS_URL` is unset.

use std::process::ExitCode;

use vecsearch_core::{Error, IndexSpec, Metric, SearchParams};

async fn run(base: &str) -> Result<(), String> {
    let uri = format!(
        "{}/vstest_reopen_{}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    let e = |what: &'static str| move |err: Error| format!("{what}: {err}");
    let spec = IndexSpec::new(3, Metric::Cosine);
    let first = vecsearch_remote::open_uri(&uri, spec.clone())
        .await
        .map_err(e("create"))?;
    let vectors = vec![
        vec![1.0, 0.0, 0.0],
        vec![0.0, 1.0, 0.0],
        vec![0.0, 0.0, 1.0],
    ];
    first
        .add_batch(&[10, 20, 30], &vectors)
        .await
        .map_err(e("add_batch"))?;
    first.sync().await.map_err(e("sync"))?;
    drop(first);

    for (what, bad) in [
        ("another dim", IndexSpec::new(4, Metric::Cosine)),
        ("another metric", IndexSpec::new(3, Metric::L2)),
    ] {
        match vecsearch_remote::open_uri(&uri, bad).await {
            Err(Error::InvalidArgument(m)) => println!("reopen_milvus: {what}: refused: {m}"),
            Err(other) => return Err(format!("{what}: expected InvalidArgument, got {other}")),
            Ok(_) => return Err(format!("{what}: opened a mismatched collection")),
        }
    }
    match vecsearch_remote::open_uri(&uri, IndexSpec::new(3, Metric::Jaccard)).await {
        Err(Error::Unsupported(_)) => {}
        other => {
            return Err(format!(
                "jaccard: expected Unsupported, got {:?}",
                other.err()
            ))
        }
    }

    let again = vecsearch_remote::open_uri(&uri, spec)
        .await
        .map_err(e("reopen"))?;
    let n = again.len().await.map_err(e("len"))?;
    if n != 3 {
        return Err(format!(
            "the reopened collection holds {n} vectors, expected 3"
        ));
    }
    let got = again
        .search(&[0.0, 0.9, 0.1], 1, &SearchParams::default())
        .await
        .map_err(e("search"))?;
    if got.first().map(|n| n.id) != Some(20) {
        return Err(format!("search on the reopened collection: {got:?}"));
    }
    drop(again);
    match vecsearch_remote::drop_collection(&uri).await {
        Ok(true) => {}
        other => return Err(format!("drop_collection: {other:?}")),
    }
    match vecsearch_remote::drop_collection(&uri).await {
        Ok(false) => Ok(()),
        other => Err(format!("dropping an absent collection: {other:?}")),
    }
}

fn main() -> ExitCode {
    let base = match std::env::var("VECSEARCH_MILVUS_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            println!("reopen_milvus: skipped (VECSEARCH_MILVUS_URL not set)");
            return ExitCode::SUCCESS;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            println!("reopen_milvus: FAIL cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&base)) {
        Ok(()) => {
            println!("reopen_milvus: ok");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("reopen_milvus: FAIL {why}");
            ExitCode::FAILURE
        }
    }
}
