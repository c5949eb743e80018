//! Single-thread query speed of native's storage kinds on the same graph
//! data, alternated pass by pass, best wall time of several (the
//! machine is shared): what an A/B of a kernel or search-loop change needs.
//! Built indexes are saved beside the data and reused by later runs.
//!
//! `cargo run -p vecsearch-cli --release --example storage_ab -- <file.npy> [n] [efs] [repeat]`
//!
//! With `AB_PREFETCH=1`, every pass also alternates how native asks for
//! rows ahead (`tuning::set_prefetch`: the way before 2026-12-07, then
//! today's), each line's ratio then against the same kind the old way.
//! With `AB_ROW_SKEW=1`, each saved index is opened twice, its rows
//! starting 16 bytes past a cache line (as before 2026-12-08) and on one
//! (`tuning::set_row_skew`), and the two alternate the same way. With
//! `AB_AHEAD=8192,2048` (any list of byte counts), each pass alternates
//! how far ahead a walk asks for rows (`tuning::set_ahead`).
//!
//! The file is an `(rows, dim)` little-endian f32 `.npy` (the bench's
//! `minilm_384.npy`); the first `n` rows are indexed, the last 1,000 are the
//! queries, cosine, M 16, ef_construction 200. It reads the file and keeps
//! the exact neighbours with the `vecsearch` command's own `.npy` and
//! `.ivecs` code.

use std::path::{Path, PathBuf};
use std::time::Instant;

use vecsearch::backend::exec;
use vecsearch::backend::synthetic::recall;
use vecsearch::native::tuning::{set_ahead, set_prefetch, set_row_skew, Prefetch};
use vecsearch::native::NativeIndex;
use vecsearch::{
    Blocking, Error, FlatIndex, IndexSpec, Metric, Neighbor, Result, SearchParams, Storage,
    VectorIndex,
};

// The command's own readers and writers; this example uses part of each.
#[path = "../src/npy.rs"]
#[allow(dead_code)]
mod npy;
#[path = "../src/vecs.rs"]
#[allow(dead_code)]
mod vecs;

const NQ: usize = 1000;

/// The exact top 10 of every query, cached in `path` (`.ivecs`, ids
/// only: recall compares ids, so the distances read back are 0).
fn truth(
    path: &Path,
    spec: &IndexSpec,
    ids: &[u64],
    points: &[Vec<f32>],
    queries: &[Vec<f32>],
) -> Result<Vec<Vec<Neighbor>>> {
    let as_neighbors = |t: Vec<Vec<u64>>| -> Vec<Vec<Neighbor>> {
        t.into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|id| Neighbor { id, distance: 0.0 })
                    .collect()
            })
            .collect()
    };
    if let Ok(t) = vecs::read_ivecs(path) {
        if t.len() == queries.len() {
            return Ok(as_neighbors(t));
        }
    }
    let flat = Blocking::new(Box::new(FlatIndex::new(spec.clone())?));
    flat.add_batch(ids, points)?;
    let truth: Vec<Vec<u64>> = flat
        .search_batch(queries, 10, &SearchParams::default())?
        .into_iter()
        .map(|t| t.into_iter().map(|n| n.id).collect())
        .collect();
    if let Err(e) = vecs::write_ivecs(path, &truth) {
        eprintln!("note: exact neighbours not cached: {e}");
    }
    Ok(as_neighbors(truth))
}

/// What a pass alternates.
#[derive(Clone, Copy)]
enum Mode {
    /// Nothing: one setting.
    Default,
    /// How rows are asked for ahead.
    Prefetch(Prefetch),
    /// Where the rows start, in bytes past a cache line.
    RowSkew(u8),
    /// Bytes of rows a walk asks for ahead.
    Ahead(usize),
}

fn arg(i: usize) -> Option<String> {
    std::env::args().nth(i)
}

fn main() -> Result<()> {
    let file = PathBuf::from(arg(1).ok_or_else(|| {
        Error::InvalidArgument("usage: storage_ab <file.npy> [n] [efs] [repeat]".into())
    })?);
    let n: usize = arg(2).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let efs: Vec<usize> = arg(3)
        .unwrap_or_else(|| "24,32".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let repeat: usize = arg(4).and_then(|s| s.parse().ok()).unwrap_or(3);
    // Each pass runs every setting in turn, so the settings share the
    // machine's slow and fast spells.
    let modes: Vec<Mode> = if std::env::var("AB_PREFETCH").as_deref() == Ok("1") {
        vec![
            Mode::Prefetch(Prefetch::FromStartL1),
            Mode::Prefetch(Prefetch::Lines),
        ]
    } else if std::env::var("AB_ROW_SKEW").as_deref() == Ok("1") {
        vec![Mode::RowSkew(16), Mode::RowSkew(0)]
    } else if let Ok(list) = std::env::var("AB_AHEAD") {
        let bytes: Vec<usize> = list
            .split(',')
            .map(|b| b.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::InvalidArgument(format!("AB_AHEAD={list:?}: {e}")))?;
        bytes.into_iter().map(Mode::Ahead).collect()
    } else {
        vec![Mode::Default]
    };
    let all = npy::read(&file).map_err(Error::InvalidArgument)?;
    let dim = all.dim;
    let rows = all.to_rows();
    if rows.len() < n + NQ {
        return Err(Error::InvalidArgument(format!(
            "{} rows, fewer than n + {NQ}",
            rows.len()
        )));
    }
    let points = &rows[..n];
    let queries = &rows[rows.len() - NQ..];
    let ids: Vec<u64> = (0..n as u64).collect();
    let spec = IndexSpec::new(dim, Metric::Cosine).with_threads(0);

    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let stem = file
        .file_stem()
        .map_or("data".into(), |s| s.to_string_lossy().to_string());
    let truth = truth(
        &dir.join(format!("ab-{stem}-truth-{n}.ivecs")),
        &spec,
        &ids,
        points,
        queries,
    )?;
    let path = |kind: Storage| dir.join(format!("ab-{stem}-{kind}-{n}.vsn"));
    for kind in Storage::ALL {
        let spec = spec.clone().with_storage(kind);
        // A saved graph is opened once per mode below; one from an older
        // format fails there, naming the file to delete.
        if !path(kind).exists() {
            let t = Instant::now();
            let i = NativeIndex::new(spec.clone())?;
            exec::block_on(i.add_batch(&ids, points))?;
            exec::block_on(i.save(&path(kind)))?;
            eprintln!(
                "built {kind} in {:.1} s, saved to {}",
                t.elapsed().as_secs_f64(),
                path(kind).display()
            );
        }
    }
    // A row skew applies as rows are loaded, so each skew gets its own
    // set of opened indexes; the other settings apply at search time and
    // share the first set (each kind's from the same saved graph).
    let mut sets = Vec::new();
    for mode in &modes {
        match mode {
            Mode::RowSkew(b) => set_row_skew(*b),
            _ if !sets.is_empty() => continue,
            _ => {}
        }
        let mut idxs = Vec::new();
        for kind in Storage::ALL {
            let spec = spec.clone().with_storage(kind);
            let idx = exec::block_on(NativeIndex::open(&path(kind), spec)).map_err(|e| {
                Error::InvalidArgument(format!(
                    "{}: {e} (delete it to build it again)",
                    path(kind).display()
                ))
            })?;
            idxs.push((kind, Blocking::new(Box::new(idx))));
        }
        sets.push(idxs);
    }
    let kinds = Storage::ALL.len();

    println!("{n} x {dim}, {NQ} queries, best of {repeat} alternated passes, wall time");
    for &ef in &efs {
        let params = SearchParams::default().with_ef(ef);
        let mut best = vec![f64::INFINITY; kinds * modes.len()];
        let mut rec = vec![0.0; kinds * modes.len()];
        for _ in 0..repeat {
            for (mi, mode) in modes.iter().enumerate() {
                let Some(idxs) = sets.get(mi).or(sets.first()) else {
                    continue;
                };
                match mode {
                    Mode::Prefetch(p) => set_prefetch(*p),
                    Mode::Ahead(b) => set_ahead(*b),
                    _ => {}
                }
                for (i0, (_, idx)) in idxs.iter().enumerate() {
                    let i = mi * kinds + i0;
                    let mut got = Vec::with_capacity(NQ);
                    let t = Instant::now();
                    for q in queries {
                        got.push(idx.search(q, 10, &params)?);
                    }
                    best[i] = best[i].min(t.elapsed().as_secs_f64());
                    rec[i] = got
                        .iter()
                        .zip(&truth)
                        .map(|(g, t)| recall(g, t))
                        .sum::<f64>()
                        / NQ as f64;
                }
            }
        }
        for (mi, mode) in modes.iter().enumerate() {
            let line: Vec<String> = Storage::ALL
                .iter()
                .enumerate()
                .map(|(i0, kind)| {
                    let i = mi * kinds + i0;
                    // Against f32, or the same kind asked for the old way.
                    let base = if modes.len() > 1 { best[i0] } else { best[0] };
                    format!(
                        "{kind} {:>6.0} QPS ({:.2}x) r {:.3}",
                        NQ as f64 / best[i],
                        base / best[i],
                        rec[i]
                    )
                })
                .collect();
            let mode = match mode {
                Mode::Default => String::new(),
                Mode::Prefetch(p) => format!(" {:<12}", format!("{p:?}")),
                Mode::RowSkew(b) => format!(" {:<12}", format!("skew {b}")),
                Mode::Ahead(b) => format!(" {:<12}", format!("ahead {b}")),
            };
            println!("ef {ef:>3}{mode}: {}", line.join(" | "));
        }
    }
    Ok(())
}
