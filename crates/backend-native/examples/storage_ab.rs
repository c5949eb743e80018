//! Single-thread query speed of native's storage kinds on the same graph
//! data, alternated pass by pass, best wall time of several (the
//! machine is shared): what an A/B of a kernel or search-loop change needs.
//! Built indexes are saved beside the data and reused by later runs.
//!
//! `cargo run -p vecsearch-native --release --example storage_ab -- <file.npy> [n] [efs] [repeat]`
//!
//! The file is an `(rows, dim)` little-endian f32 `.npy` (the bench's
//! `minilm_384.npy`); the first `n` rows are indexed, the last 1,000 are the
//! queries, cosine, M 16, ef_construction 200.

use std::path::{Path, PathBuf};
use std::time::Instant;

use vecsearch_core::synthetic::recall;
use vecsearch_core::{
    exec, Blocking, Error, FlatIndex, IndexSpec, Metric, Neighbor, Result, SearchParams, Storage,
    VectorIndex,
};
use vecsearch_native::NativeIndex;

const NQ: usize = 1000;

/// Rows of a 2-d little-endian f32 `.npy` file.
fn read_npy(path: &Path) -> Result<(usize, Vec<f32>)> {
    let bad = |why: &str| Error::InvalidArgument(format!("{}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(&e.to_string()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not an .npy file"));
    }
    let (hlen, start) = if bytes[6] == 1 {
        (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10)
    } else {
        let b: [u8; 4] = bytes[8..12].try_into().map_err(|_| bad("short header"))?;
        (u32::from_le_bytes(b) as usize, 12)
    };
    let header = String::from_utf8_lossy(&bytes[start..start + hlen]).to_string();
    if !header.contains("<f4") {
        return Err(bad("not little-endian f32"));
    }
    let shape = header
        .split("shape")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let [_, dim] = dims[..] else {
        return Err(bad("not 2-d"));
    };
    let data = bytes[start + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((dim, data))
}

/// The exact top 10 of every query, cached in `path` (ids as u32).
fn truth(
    path: &Path,
    spec: &IndexSpec,
    ids: &[u64],
    points: &[Vec<f32>],
    queries: &[Vec<f32>],
) -> Result<Vec<Vec<Neighbor>>> {
    if let Ok(b) = std::fs::read(path) {
        if b.len() == queries.len() * 40 {
            return Ok(b
                .chunks_exact(40)
                .map(|q| {
                    q.chunks_exact(4)
                        .map(|c| Neighbor {
                            id: u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                            distance: 0.0,
                        })
                        .collect()
                })
                .collect());
        }
    }
    let flat = Blocking::new(Box::new(FlatIndex::new(spec.clone())?));
    flat.add_batch(ids, points)?;
    let truth = flat.search_batch(queries, 10, &SearchParams::default())?;
    let bytes: Vec<u8> = truth
        .iter()
        .flat_map(|t| t.iter().flat_map(|n| (n.id as u32).to_le_bytes()))
        .collect();
    if bytes.len() == queries.len() * 40 {
        let _ = std::fs::write(path, bytes);
    }
    Ok(truth)
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
    let (dim, data) = read_npy(&file)?;
    let rows: Vec<Vec<f32>> = data.chunks_exact(dim).map(<[f32]>::to_vec).collect();
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
        &dir.join(format!("ab-{stem}-truth-{n}.bin")),
        &spec,
        &ids,
        points,
        queries,
    )?;
    let mut idxs = Vec::new();
    for kind in Storage::ALL {
        let spec = spec.clone().with_storage(kind);
        let path = dir.join(format!("ab-{stem}-{kind}-{n}.vsn"));
        let idx = match exec::block_on(NativeIndex::open(&path, spec.clone())) {
            Ok(i) => i,
            Err(_) => {
                let t = Instant::now();
                let i = NativeIndex::new(spec.clone())?;
                exec::block_on(i.add_batch(&ids, points))?;
                exec::block_on(i.save(&path))?;
                eprintln!(
                    "built {kind} in {:.1} s, saved to {}",
                    t.elapsed().as_secs_f64(),
                    path.display()
                );
                i
            }
        };
        idxs.push((kind, Blocking::new(Box::new(idx))));
    }

    println!("{n} x {dim}, {NQ} queries, best of {repeat} alternated passes, wall time");
    for &ef in &efs {
        let params = SearchParams::default().with_ef(ef);
        let mut best = vec![f64::INFINITY; idxs.len()];
        let mut rec = vec![0.0; idxs.len()];
        for _ in 0..repeat {
            for (i, (_, idx)) in idxs.iter().enumerate() {
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
        let line: Vec<String> = idxs
            .iter()
            .enumerate()
            .map(|(i, (kind, _))| {
                format!(
                    "{kind} {:>6.0} QPS ({:.2}x) r {:.3}",
                    NQ as f64 / best[i],
                    best[0] / best[i],
                    rec[i]
                )
            })
            .collect();
        println!("ef {ef:>3}: {}", line.join(" | "));
    }
    Ok(())
}
