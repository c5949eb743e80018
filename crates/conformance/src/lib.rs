//! The `VectorIndex` contract as code. The contract itself is the
//! [`contract`] module (the crate's `CONTRACT.md`), rule by rule with the
//! cases that prove each rule.
//!
//! One `pub async fn` per rule in [`cases`], each taking a [`Harness`] that
//! makes fresh indexes of the backend under test; [`run_all`] runs every case
//! the backend's capabilities allow, in the pattern of `object_store`'s
//! shared integration suite. Each backend crate calls [`run_main`] from a
//! `harness = false` test target, so every case prints one line that reaches
//! the CI log:
//!
//! ```text
//! conformance: native upsert_replaces_vector ok (0.01 s)
//! conformance: milvus save_open_round_trip skipped (no persistence)
//! ```
#![warn(missing_docs)]

pub mod blocking;
#[macro_use]
mod verdict;
pub mod cases;

/// The contract every backend keeps, with the cases that prove each rule.
#[doc = include_str!("../CONTRACT.md")]
pub mod contract {}
mod data;
mod harness;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::Instant;

pub use harness::{BoxFuture, Harness};

/// How one case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The backend kept the rule.
    Ok,
    /// The backend broke the rule; says how.
    Fail(String),
    /// The backend declares it lacks a capability the case needs; says which.
    Skipped(String),
}

/// Every case's outcome, in order.
#[derive(Debug, Default)]
pub struct Report {
    /// `(case, outcome)` pairs.
    pub outcomes: Vec<(&'static str, Outcome)>,
}

impl Report {
    /// Number of cases that ended so.
    pub fn count(&self, pred: fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| pred(o)).count()
    }

    /// Whether no case failed.
    pub fn passed(&self) -> bool {
        self.count(|o| matches!(o, Outcome::Fail(_))) == 0
    }
}

/// Runs every case on `h`, printing one line per case, and returns the report.
/// Set `VECSEARCH_CASES` to a comma-separated list of substrings to run only
/// the cases whose names contain one of them.
pub async fn run_all(h: &Harness) -> Report {
    let mut report = run_cases(h, |_| true).await;
    // Every other storage kind the backend declares: the cases whose
    // promises depend on how vectors are held.
    let kinds = match cases::caps(h).await {
        Ok(c) => c.storages,
        Err(_) => Vec::new(),
    };
    for kind in kinds.into_iter().filter(|&k| k != h.storage) {
        let hk = h.clone().with_storage(kind);
        let r = run_cases(&hk, |name| cases::STORAGE_CASES.contains(&name)).await;
        report.outcomes.extend(r.outcomes);
    }
    report
}

async fn run_cases(h: &Harness, pick: impl Fn(&str) -> bool) -> Report {
    let only: Vec<String> = std::env::var("VECSEARCH_CASES")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let mut report = Report::default();
    for (name, case) in cases::all() {
        if !pick(name) || (!only.is_empty() && !only.iter().any(|o| name.contains(o.as_str()))) {
            continue;
        }
        let start = Instant::now();
        let outcome = run_one(h, case).await;
        let secs = start.elapsed().as_secs_f64();
        match &outcome {
            Outcome::Ok => println!("conformance: {} {name} ok ({secs:.2} s)", h.name),
            Outcome::Fail(why) => println!("conformance: {} {name} FAIL {why}", h.name),
            Outcome::Skipped(why) => println!("conformance: {} {name} skipped ({why})", h.name),
        }
        report.outcomes.push((name, outcome));
    }
    report
}

async fn run_one(h: &Harness, case: cases::CaseFn) -> Outcome {
    // A panic in a backend is a failure of that case, not the end of the run.
    let fut = std::panic::AssertUnwindSafe(case(h));
    match catch_unwind_future(fut).await {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(cases::Why::Fail(m))) => Outcome::Fail(m),
        Ok(Err(cases::Why::Skip(m))) => Outcome::Skipped(m),
        Err(msg) => Outcome::Fail(format!("panicked: {msg}")),
    }
}

async fn catch_unwind_future<F: std::future::Future>(
    fut: AssertUnwindSafe<F>,
) -> Result<F::Output, String> {
    let mut fut = std::pin::pin!(fut.0);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(p) => std::task::Poll::Ready(Err(panic_message(&p))),
        }
    })
    .await
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".into())
}

/// Runs the whole suite on `h` with the harness's executor, prints the
/// summary line (`conformance: N passed, N failed, N skipped`) and returns
/// the exit code a `harness = false` test target returns: failure when any
/// case failed or none ran.
pub fn run_main(h: Harness) -> ExitCode {
    println!("conformance: running the suite on backend {}", h.name);
    let report = std::sync::Mutex::new(Report::default());
    (h.block_on)(Box::pin(async {
        let r = run_all(&h).await;
        *report.lock().unwrap_or_else(|e| e.into_inner()) = r;
    }));
    let report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    let passed = report.count(|o| matches!(o, Outcome::Ok));
    let failed = report.count(|o| matches!(o, Outcome::Fail(_)));
    let skipped = report.count(|o| matches!(o, Outcome::Skipped(_)));
    println!(
        "conformance ({}): {passed} passed, {failed} failed, {skipped} skipped",
        h.name
    );
    println!("conformance: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 || passed == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
