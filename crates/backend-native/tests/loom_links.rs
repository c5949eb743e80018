//! Model checking of the neighbour-list seqlock (`src/links.rs`, compiled
//! here against loom's atomics): in every interleaving of a writer and a
//! reader that loom explores, the reader gets one whole list, never a mix of
//! two, and its loop ends.

mod sync {
    pub(crate) use loom::hint::spin_loop;
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, Ordering};
    pub(crate) use loom::thread::yield_now;
}

#[allow(dead_code)]
#[path = "../src/links.rs"]
mod links;

use loom::sync::atomic::AtomicU32;
use loom::sync::Arc;

/// Every list the writer stores holds its own length in every entry, so a
/// torn read (old count with new entries, or half of each) breaks that.
fn whole(out: &[u32]) -> bool {
    out.iter().all(|&x| x as usize == out.len())
}

#[test]
fn a_reader_never_sees_a_torn_list() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let list: Arc<Vec<AtomicU32>> = Arc::new(links::empty(3).collect());
        // A list already full before the writer starts, so a torn read
        // (count of one list, slots of the next) is within the bound.
        links::write(&list, &[2, 2]);
        let writer = {
            let list = Arc::clone(&list);
            loom::thread::spawn(move || {
                links::write(&list, &[2, 2]);
                links::write(&list, &[3, 3, 3]);
                links::write(&list, &[1]);
            })
        };
        let mut out = Vec::new();
        links::read(&list, &mut out);
        assert!(whole(&out), "torn read: {out:?}");
        links::read(&list, &mut out);
        assert!(whole(&out), "torn read: {out:?}");
        writer.join().unwrap();
        links::read(&list, &mut out);
        assert_eq!(out, [1]);
    });
}
