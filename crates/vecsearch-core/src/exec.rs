//! Running work without an async runtime: a minimal `block_on`, a way to move
//! CPU-heavy calls off the caller's (possibly async executor's) thread, and
//! parallel loops over all allowed cores.

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
/// Enough for the local backends (their futures need no reactor). Remote
/// backends need a Tokio runtime; use its `block_on` for them.
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

/// Runs `work` on a new thread and returns a future of its result, so a
/// CPU-heavy call does not hold an async executor's thread. The future needs
/// no reactor: it is woken by the worker thread. A panic in `work` (a bug)
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
    let spawned = thread::Builder::new()
        .name("vecsearch-worker".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let mut s = worker_slot.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(v) => s.value = Some(v),
                Err(_) => s.failed = true,
            }
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        });
    let spawn_error = spawned.err().map(|e| e.to_string());
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

/// Calls `f(i)` for every `i` in `0..n` on up to `threads` threads (0: every
/// core), handing out indices in small chunks so uneven work balances.
pub fn parallel_for<F>(threads: usize, n: usize, f: F)
where
    F: Fn(usize) + Sync,
{
    let threads = resolve_threads(threads).min(n);
    if threads <= 1 {
        (0..n).for_each(f);
        return;
    }
    let chunk = (n / (threads * 16)).clamp(1, 256);
    let next = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let start = next.fetch_add(chunk, Ordering::Relaxed);
                if start >= n {
                    break;
                }
                (start..(start + chunk).min(n)).for_each(&f);
            });
        }
    });
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
    fn parallel_map_keeps_order() {
        let v: Vec<usize> = (0..1000).collect();
        let out = parallel_map(4, &v, |x| x * 2);
        assert_eq!(out, v.iter().map(|x| x * 2).collect::<Vec<_>>());
    }
}
