//! The engines a benchmark compares: every `VectorIndex` backend (opened by
//! URI), and hnsw_rs as a reference engine outside the contract.

use vecsearch::{IndexSpec, Metric, SearchParams, Storage, VectorIndex};

/// What the benchmark needs of an engine.
pub trait Engine {
    /// The row label.
    fn name(&self) -> &str;
    /// Whether `ef` changes anything (not for the exact flat index).
    fn uses_ef(&self) -> bool;
    /// Inserts a batch on the engine's threads.
    fn add(&self, ids: &[u64], rows: &[Vec<f32>]) -> Result<(), String>;
    /// The ids of the `k` nearest.
    fn search(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<u64>, String>;
    /// Distance evaluations one search made (what `explain` reports as
    /// scored rows); `None` where the engine does not count them.
    fn evals(&self, _q: &[f32], _k: usize, _ef: usize) -> Option<usize> {
        None
    }
    /// `search` for many queries on every core.
    fn search_batch(&self, qs: &[Vec<f32>], k: usize, ef: usize) -> Result<Vec<Vec<u64>>, String>;
    /// Deletes ids; `None` where the engine cannot delete.
    fn delete(&self, ids: &[u64]) -> Option<Result<(), String>>;
    /// Bytes the engine reports holding.
    fn memory_bytes(&self) -> Option<usize>;
    /// Waits until searches go through the engine's index; then how many
    /// vectors it holds and how many of them it still answers by exact scan
    /// (`None` where the engine cannot say).
    fn finish_indexing(&self) -> Result<Option<(usize, usize)>, String>;
}

/// A backend to build: a URI scheme of the facade, or the reference engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `vecsearch::open(uri)`, labelled `name`, storing vectors as `storage`.
    Index {
        name: String,
        uri: String,
        storage: Storage,
    },
    /// hnsw_rs 0.3 (feature `reference`).
    HnswRs,
}

impl Kind {
    /// The row label.
    pub fn name(&self) -> &str {
        match self {
            Kind::Index { name, .. } => name,
            Kind::HnswRs => "hnsw_rs",
        }
    }

    /// Parses a backend name (`flat`, `native`, `hnswlib`, `hnsw_rs`,
    /// `qdrant`, `milvus`; the last two read their server from
    /// `VECSEARCH_QDRANT_URL` / `VECSEARCH_MILVUS_URL`).
    pub fn parse(name: &str) -> Result<Kind, String> {
        let index = |uri: String| {
            Ok(Kind::Index {
                name: name.to_string(),
                uri,
                storage: Storage::F32,
            })
        };
        // Local engines are the local schemes of the one URI table.
        let local = vecsearch::backend::uri::scheme(name)
            .is_some_and(|s| s.kind == vecsearch::backend::uri::Kind::Local && s.name == name);
        match name {
            _ if local => index(format!("{name}:")),
            "hnsw_rs" if cfg!(feature = "reference") => Ok(Kind::HnswRs),
            "hnsw_rs" => Err("hnsw_rs needs the `reference` feature of vecsearch-cli".into()),
            "qdrant" | "milvus" => {
                let var = format!("VECSEARCH_{}_URL", name.to_uppercase());
                let base = std::env::var(&var).map_err(|_| format!("{name} needs {var}"))?;
                let collection = format!("vecsearch_bench_{}", std::process::id());
                // Qdrant answers segments under its thresholds (10,000 KB
                // of vectors by default) by exact scan: that is not the
                // graph this benchmark compares, so it gets the least.
                let options = if name == "qdrant" {
                    "?indexing_threshold_kb=10&full_scan_threshold_kb=10"
                } else {
                    ""
                };
                index(format!(
                    "{}/{collection}{options}",
                    base.trim_end_matches('/')
                ))
            }
            other => Err(format!("unknown backend {other:?}")),
        }
    }

    /// The same backend storing vectors as `storage` (labelled
    /// `name/storage`), if it serves that kind.
    pub fn with_storage(&self, storage: Storage) -> Option<Kind> {
        let Kind::Index { name, uri, .. } = self else {
            return None;
        };
        if storage == Storage::F32 {
            return Some(self.clone());
        }
        let spec = IndexSpec::new(4, Metric::L2).with_storage(storage);
        // A server is not asked (that would make a collection): Qdrant
        // serves every kind, Milvus 2.3 f32 only.
        let serves = if uri.contains("://") {
            uri.starts_with("qdrant")
        } else {
            vecsearch::backend::exec::block_on(vecsearch::open(uri, spec)).is_ok()
        };
        serves.then(|| Kind::Index {
            name: format!("{name}/{storage}"),
            uri: uri.clone(),
            storage,
        })
    }

    /// The backends compiled in, plus remote ones whose server is configured.
    pub fn defaults() -> Vec<Kind> {
        let mut names = vec!["flat"];
        if cfg!(feature = "native") {
            names.push("native");
        }
        if cfg!(feature = "hnswlib") {
            names.push("hnswlib");
        }
        if cfg!(feature = "reference") {
            names.push("hnsw_rs");
        }
        if cfg!(feature = "remote") {
            for r in ["qdrant", "milvus"] {
                if std::env::var_os(format!("VECSEARCH_{}_URL", r.to_uppercase())).is_some() {
                    names.push(r);
                }
            }
        }
        names
            .into_iter()
            .filter_map(|n| Kind::parse(n).ok())
            .collect()
    }
}

/// Opens an empty index of `kind` for `spec` (a new collection for a
/// server), with what drives its futures.
pub fn open_index(kind: &Kind, spec: &IndexSpec) -> Result<(Box<dyn VectorIndex>, Exec), String> {
    match create_index(kind, spec)? {
        (Some(idx), exec) => Ok((idx, exec)),
        (None, _) => Err(format!("{} is not a vecsearch backend", kind.name())),
    }
}

fn create_index(
    kind: &Kind,
    spec: &IndexSpec,
) -> Result<(Option<Box<dyn VectorIndex>>, Exec), String> {
    match kind {
        Kind::Index { uri, storage, .. } => {
            let spec = &spec.clone().with_storage(*storage);
            // Each remote build gets its own collection.
            static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let uri = &if uri.contains("://") {
                let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match uri.split_once('?') {
                    Some((path, options)) => format!("{path}_{n}?{options}"),
                    None => format!("{uri}_{n}"),
                }
            } else {
                uri.clone()
            };
            let exec = Exec::new(uri)?;
            let idx = exec
                .run(vecsearch::open(uri, spec.clone()))
                .map_err(|e| e.to_string())?;
            if uri.contains("://") {
                CREATED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(uri.clone());
            }
            Ok((Some(idx), exec))
        }
        Kind::HnswRs => Ok((None, Exec::Local)),
    }
}

/// Creates an empty engine of `kind` for `spec`.
pub fn create(kind: &Kind, spec: &IndexSpec, capacity: usize) -> Result<Box<dyn Engine>, String> {
    match create_index(kind, spec)? {
        (Some(idx), exec) => Ok(Box::new(IndexEngine {
            name: kind.name().to_string(),
            idx,
            exec,
        })),
        (None, _) => reference::create(spec, capacity),
    }
}

/// The server collections this run created, dropped when it ends.
static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Drops every server collection the bench created (a run leaves no
/// collection behind, so a server does not keep indexing or holding old
/// runs' data); a failure is reported, not fatal.
pub fn drop_created() {
    let uris = std::mem::take(&mut *CREATED.lock().unwrap_or_else(|e| e.into_inner()));
    #[cfg(feature = "remote")]
    for uri in uris {
        let dropped = Exec::new(&uri).and_then(|exec| {
            exec.run(vecsearch::remote::drop_collection(&uri))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = dropped {
            eprintln!("warning: could not drop the bench's collection {uri}: {e}");
        }
    }
    #[cfg(not(feature = "remote"))]
    drop(uris);
}

/// How futures are driven: our reactor-less `block_on` for local backends,
/// a Tokio runtime for remote ones.
pub enum Exec {
    Local,
    #[cfg(feature = "remote")]
    Tokio(tokio::runtime::Runtime),
}

impl Exec {
    fn new(uri: &str) -> Result<Exec, String> {
        if uri.contains("://") {
            #[cfg(feature = "remote")]
            return tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map(Exec::Tokio)
                .map_err(|e| e.to_string());
            #[cfg(not(feature = "remote"))]
            return Err("remote backends need the `remote` feature of vecsearch-cli".into());
        }
        Ok(Exec::Local)
    }

    /// Drives `f` to completion on this thread.
    pub fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        match self {
            Exec::Local => vecsearch::backend::exec::block_on(f),
            #[cfg(feature = "remote")]
            Exec::Tokio(rt) => rt.block_on(f),
        }
    }
}

struct IndexEngine {
    name: String,
    idx: Box<dyn VectorIndex>,
    exec: Exec,
}

fn ids_of(list: Vec<vecsearch::Neighbor>) -> Vec<u64> {
    list.into_iter().map(|n| n.id).collect()
}

impl Engine for IndexEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn uses_ef(&self) -> bool {
        self.idx.backend() != "flat"
    }

    fn add(&self, ids: &[u64], rows: &[Vec<f32>]) -> Result<(), String> {
        self.exec
            .run(async {
                self.idx.add_batch(ids, rows).await?;
                self.idx.sync().await
            })
            .map_err(|e| e.to_string())
    }

    fn search(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<u64>, String> {
        let p = SearchParams::default().with_ef(ef);
        self.exec
            .run(self.idx.search(q, k, &p))
            .map(ids_of)
            .map_err(|e| e.to_string())
    }

    fn evals(&self, q: &[f32], k: usize, ef: usize) -> Option<usize> {
        let p = SearchParams::default().with_ef(ef);
        let e = self.exec.run(self.idx.explain(q, k, &p)).ok()?;
        // A server's count is not a count of its distance evaluations.
        match e.plan {
            vecsearch::Plan::Server => None,
            _ => e.scored,
        }
    }

    fn search_batch(&self, qs: &[Vec<f32>], k: usize, ef: usize) -> Result<Vec<Vec<u64>>, String> {
        let p = SearchParams::default().with_ef(ef);
        let res = self
            .exec
            .run(self.idx.search_batch(qs, k, &p))
            .map_err(|e| e.to_string())?;
        Ok(res.into_iter().map(ids_of).collect())
    }

    fn delete(&self, ids: &[u64]) -> Option<Result<(), String>> {
        Some(
            self.exec
                .run(async {
                    for &id in ids {
                        self.idx.delete(id).await?;
                    }
                    self.idx.sync().await
                })
                .map_err(|e| e.to_string()),
        )
    }

    fn memory_bytes(&self) -> Option<usize> {
        self.idx.memory_bytes()
    }

    fn finish_indexing(&self) -> Result<Option<(usize, usize)>, String> {
        match self.exec.run(self.idx.finish_indexing()) {
            Ok(p) => Ok(Some((p.stored, p.unindexed))),
            Err(vecsearch::Error::Unsupported(why)) => {
                eprintln!("{}: {why}", self.name);
                Ok(None)
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Whether the reference engine serves `metric`.
pub fn reference_serves(metric: Metric) -> bool {
    matches!(metric, Metric::L2 | Metric::Cosine | Metric::InnerProduct)
}

#[cfg(feature = "reference")]
mod reference {
    use hnsw_rs::prelude::{DistCosine, DistDot, DistL2, Hnsw};
    use vecsearch::{IndexSpec, Metric};

    use super::Engine;

    /// hnsw_rs's own maximum number of layers.
    const MAX_LAYER: usize = 16;

    enum Inner {
        L2(Hnsw<'static, f32, DistL2>),
        Cos(Hnsw<'static, f32, DistCosine>),
        Dot(Hnsw<'static, f32, DistDot>),
    }

    pub struct HnswRs {
        inner: Inner,
        threads: usize,
    }

    pub fn create(spec: &IndexSpec, capacity: usize) -> Result<Box<dyn Engine>, String> {
        // hnsw_rs exits the process for m > 256; refuse before it can.
        if spec.m > 256 {
            return Err("hnsw_rs takes m up to 256".into());
        }
        let (m, n, ef) = (spec.m, capacity.max(1), spec.ef_construction);
        let inner = match spec.metric {
            Metric::L2 => Inner::L2(Hnsw::new(m, n, MAX_LAYER, ef, DistL2 {})),
            Metric::Cosine => Inner::Cos(Hnsw::new(m, n, MAX_LAYER, ef, DistCosine {})),
            Metric::InnerProduct => Inner::Dot(Hnsw::new(m, n, MAX_LAYER, ef, DistDot {})),
            Metric::Jaccard => {
                return Err("the hnsw_rs reference runs only l2, cosine and ip".into())
            }
        };
        Ok(Box::new(HnswRs {
            inner,
            threads: spec.effective_threads(),
        }))
    }

    macro_rules! each {
        ($self:expr, $h:ident => $body:expr) => {
            match &$self.inner {
                Inner::L2($h) => $body,
                Inner::Cos($h) => $body,
                Inner::Dot($h) => $body,
            }
        };
    }

    impl Engine for HnswRs {
        fn name(&self) -> &str {
            "hnsw_rs"
        }

        fn uses_ef(&self) -> bool {
            true
        }

        fn add(&self, ids: &[u64], rows: &[Vec<f32>]) -> Result<(), String> {
            let items: Vec<(&[f32], usize)> = rows
                .iter()
                .map(Vec::as_slice)
                .zip(ids.iter().map(|&i| i as usize))
                .collect();
            if self.threads <= 1 {
                each!(self, h => items.iter().for_each(|&it| h.insert_slice(it)));
            } else {
                each!(self, h => h.parallel_insert_slice(&items));
            }
            Ok(())
        }

        fn search(&self, q: &[f32], k: usize, ef: usize) -> Result<Vec<u64>, String> {
            let res = each!(self, h => h.search(q, k, ef.max(k)));
            Ok(res.into_iter().map(|n| n.d_id as u64).collect())
        }

        fn search_batch(
            &self,
            qs: &[Vec<f32>],
            k: usize,
            ef: usize,
        ) -> Result<Vec<Vec<u64>>, String> {
            let res = each!(self, h => h.parallel_search(qs, k, ef.max(k)));
            Ok(res
                .into_iter()
                .map(|r| r.into_iter().map(|n| n.d_id as u64).collect())
                .collect())
        }

        fn delete(&self, _: &[u64]) -> Option<Result<(), String>> {
            None
        }

        fn memory_bytes(&self) -> Option<usize> {
            None
        }

        // hnsw_rs links every point as it inserts it.
        fn finish_indexing(&self) -> Result<Option<(usize, usize)>, String> {
            Ok(Some((each!(self, h => h.get_nb_point()), 0)))
        }
    }
}

#[cfg(not(feature = "reference"))]
mod reference {
    use super::Engine;

    pub fn create(_: &vecsearch::IndexSpec, _: usize) -> Result<Box<dyn Engine>, String> {
        Err("hnsw_rs needs the `reference` feature of vecsearch-cli".into())
    }
}
