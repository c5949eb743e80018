//! A Milvus server that goes away mid-use gives errors, never a panic or a
//! hang, and the same index works again once the server is back.
//!
//! Runs only when `VECSEARCH_MILVUS_URL` is set and the server there is the
//! one `scripts/milvus.sh` manages (it stops and restarts it). Whatever
//! happens, the server is left as it was found: running.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use vecsearch_core::synthetic::Rng;
use vecsearch_core::{Error, IndexSpec, Metric, SearchParams};

/// Longest a call may take while the server is down (retries included).
const DOWN_CALL_LIMIT: Duration = Duration::from_secs(20);
/// Longest the index may take to work again after the server is back.
const RECOVERY_LIMIT: Duration = Duration::from_secs(180);
const DIM: usize = 8;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/milvus.sh")
}

fn milvus(cmd: &str) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(script())
        .arg(cmd)
        .output()
        .map_err(|e| format!("cannot run milvus.sh {cmd}: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("milvus.sh {cmd} failed: {text}"))
    }
}

/// Restarts the server if the test stopped it and did not start it again,
/// also when the test fails or panics.
struct Restore {
    stopped: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.stopped {
            match milvus("start") {
                Ok(_) => eprintln!("restart_milvus: restarted the server on the way out"),
                Err(e) => eprintln!("restart_milvus: could not restart the server: {e}"),
            }
        }
    }
}

fn vector(rng: &mut Rng) -> Vec<f32> {
    (0..DIM)
        .map(|_| (rng.uniform() * 2.0 - 1.0) as f32)
        .collect()
}

/// Runs `fut`, which must fail promptly while the server is down.
async fn must_fail<T: std::fmt::Debug>(
    what: &str,
    fut: impl Future<Output = vecsearch_core::Result<T>>,
) -> Result<(), String> {
    let start = Instant::now();
    match tokio::time::timeout(DOWN_CALL_LIMIT, fut).await {
        Err(_) => Err(format!(
            "{what} hung for {DOWN_CALL_LIMIT:?} with the server down"
        )),
        Ok(Ok(v)) => Err(format!("{what} returned Ok({v:?}) with the server down")),
        Ok(Err(e)) => {
            println!(
                "restart_milvus: server down: {what} -> {} error after {:.2} s: {e}",
                match e {
                    Error::Unavailable(_) => "Unavailable",
                    Error::Remote { .. } => "Remote",
                    _ => "other",
                },
                start.elapsed().as_secs_f64()
            );
            if matches!(e, Error::Unavailable(_)) {
                Ok(())
            } else {
                Err(format!("{what}: expected Unavailable, got {e}"))
            }
        }
    }
}

async fn run(base: &str, restore: &mut Restore) -> Result<(), String> {
    let uri = format!(
        "{}/vstest_restart_{}?timeout_ms=3000&retries=3",
        base.trim_end_matches('/'),
        std::process::id()
    );
    let spec = IndexSpec::new(DIM, Metric::L2);
    let idx = vecsearch_remote::open_uri(&uri, spec.clone())
        .await
        .map_err(|e| format!("open: {e}"))?;
    let mut rng = Rng::new(7);
    let ids: Vec<u64> = (0..200).collect();
    let points: Vec<Vec<f32>> = ids.iter().map(|_| vector(&mut rng)).collect();
    let e = |what: &'static str| move |err: Error| format!("{what}: {err}");
    idx.add_batch(&ids, &points).await.map_err(e("add_batch"))?;
    idx.sync().await.map_err(e("sync"))?;
    let before = idx
        .search(&points[5], 1, &SearchParams::default())
        .await
        .map_err(e("search"))?;
    if before.first().map(|n| n.id) != Some(5) {
        return Err(format!("search before the stop: {before:?}"));
    }

    milvus("stop")?;
    restore.stopped = true;
    println!("restart_milvus: server stopped");
    let p = SearchParams::default();
    must_fail("search", idx.search(&points[0], 5, &p)).await?;
    must_fail("search_batch", idx.search_batch(&points[..4], 5, &p)).await?;
    must_fail("add", idx.add(1000, &points[0])).await?;
    must_fail("add_batch", idx.add_batch(&[1001, 1002], &points[..2])).await?;
    must_fail("delete", idx.delete(7)).await?;
    must_fail("get", idx.get(3)).await?;
    must_fail("len", idx.len()).await?;
    must_fail("open", async {
        vecsearch_remote::open_uri(&uri, spec.clone())
            .await
            .map(|i| i.backend().to_string())
    })
    .await?;

    milvus("start")?;
    restore.stopped = false;
    println!("restart_milvus: server started again");
    let start = Instant::now();
    loop {
        match idx.search(&points[5], 1, &p).await {
            Ok(got) if got.first().map(|n| n.id) == Some(5) => break,
            Ok(got) => return Err(format!("search after the restart: {got:?}")),
            Err(err) if start.elapsed() < RECOVERY_LIMIT => {
                println!(
                    "restart_milvus: not yet ({:.1} s): {err}",
                    start.elapsed().as_secs_f64()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(err) => {
                return Err(format!(
                    "index not usable {RECOVERY_LIMIT:?} after the restart: {err}"
                ))
            }
        }
    }
    println!(
        "restart_milvus: the index answers again {:.1} s after the server is healthy",
        start.elapsed().as_secs_f64()
    );
    let fresh = vec![9.0f32; DIM];
    idx.add(500, &fresh).await.map_err(e("add after restart"))?;
    if !idx.delete(7).await.map_err(e("delete after restart"))? {
        return Err("delete(7) after the restart returned false".into());
    }
    idx.sync().await.map_err(e("sync after restart"))?;
    let n = idx.len().await.map_err(e("len after restart"))?;
    if n != 200 {
        return Err(format!("len after restart is {n}, expected 200"));
    }
    let got = idx
        .search(&fresh, 1, &p)
        .await
        .map_err(e("search after restart"))?;
    if got.first().map(|n| n.id) != Some(500) {
        return Err(format!(
            "the vector added after the restart is not found: {got:?}"
        ));
    }
    if idx.get(3).await.map_err(e("get after restart"))?.as_deref() != Some(&points[3][..]) {
        return Err("get(3) after the restart does not return the stored vector".into());
    }
    drop(idx);
    vecsearch_remote::drop_collection(&uri)
        .await
        .map_err(e("drop_collection"))?;
    Ok(())
}

fn main() -> ExitCode {
    let base = match std::env::var("VECSEARCH_MILVUS_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            println!("restart_milvus: skipped (VECSEARCH_MILVUS_URL not set)");
            return ExitCode::SUCCESS;
        }
    };
    // Only a server the script manages can be stopped and started here.
    match milvus("status") {
        Ok(s) if s.contains("running") => {}
        other => {
            println!(
                "restart_milvus: skipped (the server is not one scripts/milvus.sh runs: {other:?})"
            );
            return ExitCode::SUCCESS;
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            println!("restart_milvus: FAIL cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut restore = Restore { stopped: false };
    let result = rt.block_on(run(&base, &mut restore));
    drop(restore);
    match result {
        Ok(()) => {
            println!("restart_milvus: ok");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("restart_milvus: FAIL {why}");
            ExitCode::FAILURE
        }
    }
}
