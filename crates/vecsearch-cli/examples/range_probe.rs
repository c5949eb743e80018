//! How long the payload store takes to resolve range filters to their
//! admitted ids (as an engine's search asks, in the form the store makes): uniform integer fields over `n` points, each filter
//! resolved 2,000 times (or as often as asked), the mean in microseconds. What a change to the
//! range index or to the bitmaps is measured with.
//!
//! `cargo run -p vecsearch-cli --release --example range_probe -- [n [name [rounds]]]`

use std::time::Instant;

use vecsearch::backend::store::{PayloadStore, Resolved};
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
    let t = Instant::now();
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
        (
            "u1 < 31623 and u2 < 31623 (0.1%)",
            Filter::range("u1")
                .lt(31623)
                .and(Filter::range("u2").lt(31623)),
        ),
        (
            "u1 < 10000 and u2 < 10000 (0.01%)",
            Filter::range("u1")
                .lt(10000)
                .and(Filter::range("u2").lt(10000)),
        ),
        (
            "u1 < 707107 and u2 < 707107 (50%)",
            Filter::range("u1")
                .lt(707107)
                .and(Filter::range("u2").lt(707107)),
        ),
        ("k10 == b0 (10%, one bitmap)", Filter::eq("k10", "b0")),
    ];
    let filled = t.elapsed().as_secs_f64();
    let t = Instant::now();
    store.finish();
    println!(
        "store filled in {filled:.2} s, its two range fields' prefixes built in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    for _ in 0..50 {
        for (_, f) in &filters {
            store.resolve(f);
        }
    }
    // An optional second argument times only the filters whose name holds
    // it (for a profiler).
    let only = std::env::args().nth(2).unwrap_or_default();
    let rounds: usize = match std::env::args().nth(3) {
        None => 2000,
        Some(s) => s.parse().map_err(|e| format!("rounds {s:?}: {e}"))?,
    };
    println!("{n} points: microseconds to resolve each filter (mean and worst of {rounds})");
    for (name, f) in filters.iter().filter(|(name, _)| name.contains(&only)) {
        let t = Instant::now();
        let mut admitted = 0;
        let mut worst = 0.0f64;
        for _ in 0..rounds {
            let one = Instant::now();
            admitted = match store.resolve(f) {
                Resolved::Set(set) => set.len(),
                Resolved::Bits(bits) => bits.len(),
            };
            worst = worst.max(one.elapsed().as_secs_f64() * 1e6);
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        println!("{us:8.1}  (worst {worst:8.1})  {name}: {admitted} ids");
    }
    // The store's teardown is not what is profiled.
    std::mem::forget(store);
    Ok(())
}
