//! Running work without an async runtime: a minimal `block_on`, a way to move
//! CPU-heavy calls off the caller's (possibly async executor's) thread, and
//! parallel loops over all allowed cores.
//!
//! Neither starts threads per call: offloaded calls run on long-lived
//! worker threads that wait for the next call, and parallel loops run on
//! rayon's one pool per process, so a small batch costs a hand-off
//! (microseconds), not thread starts.
//!
//! The two are kept apart on purpose. Offloaded calls take the backends'
//! locks; a rayon worker waiting for its loop's tasks runs other queued
//! tasks meanwhile, and one that took a lock its own stack already holds
//! would wait for ever. So locking calls never run on rayon's pool, loop
//! tasks never take a lock their caller holds, and a loop started on a rayon
//! worker (a caller inside its own rayon code) runs on that thread alone.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// More threads than this are never started, whatever a spec asks: beyond
/// it they only cost memory and scheduling.
pub const MAX_THREADS: usize = 256;

/// The number of threads for `requested` (0: every core the OS gives us),
/// at most [`MAX_THREADS`].
pub fn resolve_threads(requested: usize) -> usize {
    if requested > 0 {
        requested.min(MAX_THREADS)
    } else {
        thread::available_parallelism().map_or(1, |n| n.get())
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives a future to completion on this thread, parking between polls.
///
/// Enough for every backend: local ones need no reactor, and the remote
/// ones run their requests, waits and retries on a runtime of their own
/// when the caller has none.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    failed: bool,
}

/// Runs `work` on an offload worker and returns a future of its result, so
/// a CPU-heavy call does not hold an async executor's thread. The future
/// needs no reactor: it is woken by the worker. A panic in `work` (a bug)
/// becomes `Err(Error::Internal)` instead of unwinding into the caller.
pub fn offload<T, W>(work: W) -> impl Future<Output = crate::Result<T>> + Send
where
    T: Send + 'static,
    W: FnOnce() -> crate::Result<T> + Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
        failed: false,
    }));
    let worker_slot = Arc::clone(&slot);
    let run = move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let mut s = worker_slot.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(v) => s.value = Some(v),
            Err(_) => s.failed = true,
        }
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    };
    let spawn_error = workers::run(Box::new(run)).err();
    std::future::poll_fn(move |cx| {
        if let Some(e) = &spawn_error {
            return Poll::Ready(Err(crate::Error::Internal(format!(
                "could not start a worker thread: {e}"
            ))));
        }
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = s.value.take() {
            return Poll::Ready(v);
        }
        if s.failed {
            return Poll::Ready(Err(crate::Error::Internal(
                "a worker thread panicked".into(),
            )));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    })
}

/// Calls `f(i)` for every `i` in `0..n` on up to `threads` workers of the
/// pool (0: every core), handing out indices in small chunks so uneven work
/// balances.
pub fn parallel_for<F>(threads: usize, n: usize, f: F)
where
    F: Fn(usize) + Sync,
{
    let threads = resolve_threads(threads)
        .min(rayon::current_num_threads())
        .min(n);
    // On a rayon worker (the caller's own rayon code), waiting for tasks
    // would run unrelated ones on this stack, beside locks it may hold.
    if threads <= 1 || rayon::current_thread_index().is_some() {
        (0..n).for_each(f);
        return;
    }
    let chunk = (n / (threads * 16)).clamp(1, 256);
    let next = AtomicUsize::new(0);
    let work = || loop {
        let start = next.fetch_add(chunk, Ordering::Relaxed);
        if start >= n {
            break;
        }
        (start..(start + chunk).min(n)).for_each(&f);
    };
    // `threads` tasks take chunks until none is left; the calling thread
    // works too (`scope` returns when all are done).
    rayon::scope(|s| {
        for _ in 1..threads {
            s.spawn(|_| work());
        }
        work();
    });
}

/// Long-lived threads for offloaded calls: an idle one takes the next call,
/// a new one starts only when none is idle, and one idle for a while ends.
mod workers {
    use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
    use std::sync::Mutex;
    use std::time::Duration;

    pub(super) type Job = Box<dyn FnOnce() + Send>;

    /// How long an idle worker waits for a call before it ends.
    const IDLE: Duration = Duration::from_secs(10);

    static IDLE_WORKERS: Mutex<Vec<Sender<Job>>> = Mutex::new(Vec::new());

    fn idle() -> std::sync::MutexGuard<'static, Vec<Sender<Job>>> {
        IDLE_WORKERS.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on an idle worker, or on a new one.
    pub(super) fn run(mut job: Job) -> std::io::Result<()> {
        loop {
            let Some(worker) = idle().pop() else { break };
            // A worker that timed out meanwhile hands the job back.
            match worker.send(job) {
                Ok(()) => return Ok(()),
                Err(back) => job = back.0,
            }
        }
        let (tx, rx) = channel::<Job>();
        tx.send(job)
            .map_err(|_| std::io::Error::other("worker channel closed"))?;
        std::thread::Builder::new()
            .name("vecsearch-worker".into())
            .spawn(move || loop {
                match rx.recv_timeout(IDLE) {
                    Ok(job) => {
                        job();
                        idle().push(tx.clone());
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
                }
            })
            .map(|_| ())
    }
}

/// `f` applied to every item on up to `threads` threads, results in order.
pub fn parallel_map<T, R, F>(threads: usize, items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let out: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    parallel_for(threads, items.len(), |i| {
        let r = f(&items[i]);
        *out[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    });
    out.into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offload_completes_under_block_on_and_catches_panics() {
        assert_eq!(block_on(offload(|| Ok(41 + 1))).unwrap(), 42);
        let r: crate::Result<()> = block_on(offload(|| panic!("bug")));
        assert!(matches!(r, Err(crate::Error::Internal(_))));
    }

    #[test]
    fn absurd_thread_counts_are_capped() {
        assert_eq!(resolve_threads(usize::MAX), MAX_THREADS);
        assert!(resolve_threads(0) >= 1);
        let v: Vec<usize> = (0..10).collect();
        assert_eq!(parallel_map(usize::MAX, &v, |x| x + 1).len(), 10);
    }

    #[test]
    fn blocking_calls_from_inside_the_pool_do_not_deadlock() {
        // Every worker blocks on an offloaded call at once.
        let n = rayon::current_num_threads() * 4;
        let v: Vec<usize> = (0..n).collect();
        let out = parallel_map(0, &v, |&x| block_on(offload(move || Ok(x * 3))).unwrap());
        assert_eq!(out, v.iter().map(|x| x * 3).collect::<Vec<_>>());
    }

    /// The deadlock a shared pool invites: an offloaded call holding a lock
    /// runs a parallel loop, and while it waits for the loop's tasks its
    /// thread must never pick up another offloaded call that takes the lock.
    #[test]
    fn a_loop_under_a_lock_never_runs_calls_that_take_it() {
        let lock = Arc::new(std::sync::RwLock::new(0u64));
        thread::scope(|s| {
            for _ in 0..4 {
                let lock = Arc::clone(&lock);
                s.spawn(move || {
                    for _ in 0..300 {
                        let l = Arc::clone(&lock);
                        let read =
                            offload(move || Ok(*l.read().unwrap_or_else(|e| e.into_inner())));
                        block_on(read).unwrap();
                    }
                });
            }
            for _ in 0..2 {
                let lock = Arc::clone(&lock);
                s.spawn(move || {
                    for _ in 0..300 {
                        let l = Arc::clone(&lock);
                        block_on(offload(move || {
                            let mut g = l.write().unwrap_or_else(|e| e.into_inner());
                            parallel_for(0, 64, |i| {
                                std::hint::black_box(i);
                            });
                            *g += 1;
                            Ok(())
                        }))
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(*lock.read().unwrap(), 600);
    }

    #[test]
    fn parallel_map_keeps_order() {
        let v: Vec<usize> = (0..1000).collect();
        let out = parallel_map(4, &v, |x| x * 2);
        assert_eq!(out, v.iter().map(|x| x * 2).collect::<Vec<_>>());
    }
}
