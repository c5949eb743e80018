//! How long the payload store takes to resolve range filters to their
//! admitted ids: uniform integer fields over `n` points, each filter
//! resolved 2,000 times, the mean in microseconds. What a change to the
//! range index or to the bitmaps is measured with.
//!
//! `cargo run -p vecsearch-cli --release --example range_probe -- [n]`

use std::time::Instant;

use vecsearch::backend::store::PayloadStore;
use vecsearch::backend::synthetic::Rng;
use vecsearch::{Filter, Payload, Schema};

fn main() -> Result<(), String> {
    let n: usize = match std::env::args().nth(1) {
        None => 200_000,
        Some(s) => s.parse().map_err(|e| format!("n {s:?}: {e}"))?,
    };
    let schema = Schema::new().integer("u1").integer("u2").keyword("k10");
    let mut store = PayloadStore::new(schema);
    let mut rng = Rng::new(7);
    for id in 0..n as u64 {
        let p = Payload::new()
            .with("u1", rng.below(1_000_000) as i64)
            .with("u2", rng.below(1_000_000) as i64)
            .with("k10", format!("b{}", rng.below(10)));
        store.put(id, Some(p));
    }
    let filters = [
        ("u1 < 51317 (5%)", Filter::range("u1").lt(51317)),
        ("u1 < 316228 (32%)", Filter::range("u1").lt(316228)),
        (
            "u1 in [400000, 500000] (10%)",
            Filter::between("u1", 400_000, 500_000),
        ),
        (
            "u1 < 51317 or u2 < 51317 (10%)",
            Filter::range("u1")
                .lt(51317)
                .or(Filter::range("u2").lt(51317)),
        ),
        (
            "u1 < 316228 and u2 < 316228 (10%)",
            Filter::range("u1")
                .lt(316228)
                .and(Filter::range("u2").lt(316228)),
        ),
        ("k10 == b0 (10%, one bitmap)", Filter::eq("k10", "b0")),
    ];
    // The first ranges after a write build the prefix bitmaps.
    for _ in 0..50 {
        for (_, f) in &filters {
            store.eval(f);
        }
    }
    println!("{n} points: microseconds to resolve each filter (mean of 2,000)");
    for (name, f) in &filters {
        let t = Instant::now();
        let mut admitted = 0;
        for _ in 0..2000 {
            admitted = store.eval(f).len();
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / 2000.0;
        println!("{us:8.1}  {name}: {admitted} ids");
    }
    Ok(())
}
