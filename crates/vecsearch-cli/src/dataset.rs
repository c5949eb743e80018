//! Where benchmark data comes from: the built-in synthetic set, GloVe-50
//! from the Python package registry, 384-d sentence embeddings built once
//! from registry packages (`minilm-384`), or any `.fvecs`/`.bvecs`/`.npy` file.
//! Also the exact ground truth, computed on all cores and cached on disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use vecsearch::backend::synthetic::{clustered, Vectors};
use vecsearch::{Metric, SearchParams, VectorIndex};

/// The data of one benchmark run. Ids are row numbers of `base`, then of `extra`.
pub struct Data {
    /// A short description for the report.
    pub name: String,
    /// The vectors indexed first.
    pub base: Vectors,
    /// Held-out queries.
    pub queries: Vec<Vec<f32>>,
    /// Points added after the deletes of the churn phase.
    pub extra: Vectors,
}

/// What to load.
pub struct Source<'a> {
    pub dataset: &'a str,
    pub queries: Option<&'a Path>,
    pub n: usize,
    pub dim: usize,
    pub nq: usize,
    pub metric: Metric,
    pub seed: u64,
    pub extra: usize,
}

pub fn load(src: &Source) -> Result<Data, String> {
    match src.dataset {
        "synthetic" => {
            let clusters = (src.n / 1000).clamp(10, 200);
            let all = clustered(
                src.n + src.nq + src.extra,
                src.dim,
                clusters,
                src.seed,
                src.metric,
            );
            Ok(split(
                format!("synthetic {}x{} ({clusters} clusters)", src.n, src.dim),
                all,
                src,
            ))
        }
        "glove-50" => {
            let all = crate::npy::read(&cached(GLOVE)?)?;
            Ok(split(format!("glove-50 first {}", src.n), all, src))
        }
        "minilm-384" => {
            let all = crate::npy::read(&cached(MINILM)?)?;
            Ok(split(
                format!(
                    "minilm-384 (WordNet glosses, all-MiniLM-L6-v2) first {}",
                    src.n
                ),
                all,
                src,
            ))
        }
        path => {
            let p = Path::new(path);
            let all = read_any(p)?;
            match src.queries {
                Some(q) => {
                    let queries = read_any(q)?;
                    let mut data = split(path.to_string(), all, &Source { nq: 0, ..*src });
                    data.queries = queries.to_rows().into_iter().take(src.nq).collect();
                    Ok(data)
                }
                None => Ok(split(path.to_string(), all, src)),
            }
        }
    }
}

fn read_any(p: &Path) -> Result<Vectors, String> {
    match p.extension().and_then(|e| e.to_str()) {
        Some("npy") => crate::npy::read(p),
        Some("fvecs" | "bvecs") => crate::vecs::read_vectors(p),
        _ => Err(format!(
            "{}: expected a .npy, .fvecs or .bvecs file",
            p.display()
        )),
    }
}

// base = the first n rows, queries the next nq, extra the rest (up to `extra`).
fn split(name: String, all: Vectors, src: &Source) -> Data {
    let dim = all.dim;
    let total = all.len();
    let n = src.n.min(total.saturating_sub(src.nq));
    let nq = src.nq.min(total - n);
    let extra = src.extra.min(total - n - nq);
    let rows = |a: usize, b: usize| Vectors {
        dim,
        data: all.data[a * dim..b * dim].to_vec(),
    };
    Data {
        name,
        base: rows(0, n),
        queries: rows(n, n + nq).to_rows(),
        extra: rows(n + nq, n + nq + extra),
    }
}

/// The cache folder: `$VECSEARCH_CACHE`, else `~/.cache/vecsearch`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("VECSEARCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vecsearch")))
        .unwrap_or_else(|| std::env::temp_dir().join("vecsearch-cache"))
}

/// A data set built by a script of the repository on first use.
struct Cached {
    name: &'static str,
    file: &'static str,
    script: &'static str,
}

/// GloVe 6B 50d, fetched and checked by scripts/fetch-glove.sh.
const GLOVE: Cached = Cached {
    name: "GloVe-50",
    file: "glove-50/glove_6B_50d_emb.npy",
    script: "fetch-glove.sh",
};

/// 150,000 sentence embeddings of dim 384, built by scripts/fetch-minilm.sh
/// (about 6 minutes on 2 cores, once).
const MINILM: Cached = Cached {
    name: "minilm-384",
    file: "minilm-384/minilm_384.npy",
    script: "fetch-minilm.sh",
};

fn cached(c: Cached) -> Result<PathBuf, String> {
    let path = cache_dir().join(c.file);
    if path.exists() {
        return Ok(path);
    }
    let script = find_script(c.script).ok_or(format!(
        "{} is not cached yet and scripts/{} was not found: run it from the repository",
        c.name, c.script
    ))?;
    eprintln!("building {} with {}", c.name, script.display());
    let status = Command::new("bash")
        .arg(&script)
        .env("VECSEARCH_CACHE", cache_dir())
        .status()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !status.success() || !path.exists() {
        return Err(format!("{} failed; see its output above", script.display()));
    }
    Ok(path)
}

fn find_script(name: &str) -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    here.ancestors()
        .map(|d| d.join("scripts").join(name))
        .find(|p| p.exists())
}

/// Exact top-`k` row ids of every query against `base` (by the flat index on
/// all cores), cached under a hash of the data and parameters.
pub fn ground_truth(
    base: &Vectors,
    queries: &[Vec<f32>],
    metric: Metric,
    k: usize,
) -> Result<Vec<Vec<u64>>, String> {
    let mut h = crc32fast::Hasher::new();
    h.update(&(base.dim as u64).to_le_bytes());
    base.data.iter().for_each(|x| h.update(&x.to_le_bytes()));
    queries
        .iter()
        .flatten()
        .for_each(|x| h.update(&x.to_le_bytes()));
    h.update(metric.name().as_bytes());
    let key = format!(
        "{:08x}-{}-{}-{}-{k}",
        h.finalize(),
        base.len(),
        queries.len(),
        metric
    );
    let path = cache_dir().join(format!("gt-{key}.ivecs"));
    if let Ok(gt) = crate::vecs::read_ivecs(&path) {
        if gt.len() == queries.len() && gt.iter().all(|r| r.len() == k.min(base.len())) {
            return Ok(gt);
        }
    }
    let ids: Vec<u64> = (0..base.len() as u64).collect();
    let gt = exact(base, &ids, queries, metric, k)?;
    let _ = std::fs::create_dir_all(cache_dir());
    if let Err(e) = crate::vecs::write_ivecs(&path, &gt) {
        eprintln!("note: ground truth not cached: {e}");
    }
    Ok(gt)
}

/// Exact top-`k` ids of every query among `(ids, base)`, on all cores.
pub fn exact(
    base: &Vectors,
    ids: &[u64],
    queries: &[Vec<f32>],
    metric: Metric,
    k: usize,
) -> Result<Vec<Vec<u64>>, String> {
    let flat = vecsearch::FlatIndex::new(vecsearch::IndexSpec::new(base.dim, metric))
        .map_err(|e| e.to_string())?;
    let pb = crate::report::progress(queries.len() as u64, "ground truth");
    vecsearch::backend::exec::block_on(async {
        flat.add_batch(ids, &base.to_rows()).await?;
        let mut out = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(100) {
            let res = flat
                .search_batch(chunk, k, &SearchParams::default())
                .await?;
            out.extend(
                res.into_iter()
                    .map(|r| r.into_iter().map(|n| n.id).collect::<Vec<_>>()),
            );
            pb.inc(chunk.len() as u64);
        }
        pb.finish_and_clear();
        Ok::<_, vecsearch::Error>(out)
    })
    .map_err(|e| e.to_string())
}
