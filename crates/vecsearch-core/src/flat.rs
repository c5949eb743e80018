//! The flat index: exact search by scanning every vector, on all cores.
//!
//! A real backend for sets small enough to scan (up to some 10^5 vectors),
//! and the oracle the conformance suite and the benchmark measure others by.
//!
//! It is also the worked example of a backend: [`FlatEngine`] implements the
//! narrow [`Engine`] trait (plus [`Create`] and [`Open`]) and receives only
//! checked, prepared work; [`FlatIndex`] is the front door [`Index`] over it,
//! which does every check of the contract.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::distance::{distance_fn_for, DistanceFn};
use crate::engine::{Create, Engine, Index, Open};
use crate::persist::{self, Header, Reader, Writer};
use crate::{exec, Capabilities, Error, IdFilter, IdMap, IndexSpec, Neighbor, Result, TopK};

const MAGIC: &[u8; 8] = b"VSFLAT01";
const VERSION: u32 = 1;
/// Below this many scanned components a single search stays on one thread:
/// starting threads would cost more than the scan.
const PARALLEL_SCAN_MIN: usize = 1 << 21;

/// The flat index: exact search, every check of the contract done by [`Index`].
pub type FlatIndex = Index<FlatEngine>;

/// Exact nearest-neighbour search over vectors held in one contiguous buffer.
pub struct FlatEngine {
    spec: IndexSpec,
    inner: Arc<Inner>,
}

struct Inner {
    spec: IndexSpec,
    dist: DistanceFn,
    data: RwLock<Data>,
}

/// Slots are dense: a delete moves the last vector into the hole, so memory
/// follows the live count.
#[derive(Default)]
struct Data {
    ids: Vec<u64>,
    vectors: Vec<f32>,
    slot_of: IdMap<usize>,
}

impl Create for FlatEngine {
    /// An empty index for `spec`. Every metric is served.
    fn create(spec: IndexSpec) -> Result<Self> {
        // The capacity is a hint from the caller: reserve at most what
        // 2^20 vectors need up front, never an overflowing product.
        let reserve = spec.capacity.min(1 << 20);
        let data = Data {
            ids: Vec::with_capacity(reserve),
            vectors: Vec::with_capacity(reserve * spec.dim),
            slot_of: IdMap::default(),
        };
        Ok(Self::from_data(spec, data))
    }
}

#[async_trait]
impl Open for FlatEngine {
    /// Opens an index saved by [`Engine::save`]. `spec` supplies the
    /// run-time settings (threads); dim and metric come from the file and
    /// must match `spec`'s.
    async fn open(path: &Path, spec: IndexSpec) -> Result<(Self, Option<Vec<u8>>)> {
        let path = path.to_path_buf();
        exec::offload(move || {
            Self::open_blocking(&path, spec).map_err(|e| persist::in_file(&path, e))
        })
        .await
    }
}

impl FlatEngine {
    fn from_data(spec: IndexSpec, data: Data) -> Self {
        let inner = Inner {
            dist: distance_fn_for(spec.metric, spec.dim),
            spec: spec.clone(),
            data: RwLock::new(data),
        };
        FlatEngine {
            spec,
            inner: Arc::new(inner),
        }
    }

    fn open_blocking(path: &Path, spec: IndexSpec) -> Result<(Self, Option<Vec<u8>>)> {
        spec.validate()?;
        let (header, body, section) = persist::read_checked_with(path, MAGIC, VERSION)?;
        persist::check_matches(&header, &spec)?;
        let mut r = Reader::new(&body);
        let dim = header.dim;
        let n = r.count("vector count", (body.len() / (8 + 4 * dim)) as u64)?;
        if n as u64 != header.count {
            return Err(Error::corrupt("vector count disagrees with the header"));
        }
        let ids = r.u64s(n)?;
        let vectors = r.f32s(n * dim)?;
        r.finish()?;
        if vectors.iter().any(|x| !x.is_finite()) {
            return Err(Error::corrupt("a stored vector has a non-finite component"));
        }
        let mut slot_of = IdMap::default();
        slot_of.reserve(n);
        for (slot, &id) in ids.iter().enumerate() {
            if slot_of.insert(id, slot).is_some() {
                return Err(Error::corrupt(format!("id {id} is stored twice")));
            }
        }
        let engine = Self::from_data(
            spec,
            Data {
                ids,
                vectors,
                slot_of,
            },
        );
        Ok((engine, section))
    }
}

impl Inner {
    fn read(&self) -> RwLockReadGuard<'_, Data> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Data> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `q` is prepared; `k >= 1`.
    fn search(&self, q: &[f32], k: usize, filter: Option<&IdFilter>) -> Vec<Neighbor> {
        let data = self.read();
        let k = k.min(data.ids.len());
        let dim = self.spec.dim;
        let row = |slot: usize| &data.vectors[slot * dim..(slot + 1) * dim];
        let mut top = TopK::new(k);
        match filter {
            // A small allow-list: visit only its ids.
            Some(f) if f.len() * 4 < data.ids.len() => {
                for id in f.ids() {
                    if let Some(&slot) = data.slot_of.get(&id) {
                        top.push(id, (self.dist)(q, row(slot)));
                    }
                }
            }
            filter => {
                let n = data.ids.len();
                let threads = if n * dim >= PARALLEL_SCAN_MIN {
                    self.spec.effective_threads()
                } else {
                    1
                };
                let ranges: Vec<(usize, usize)> = (0..threads)
                    .map(|t| (n * t / threads, n * (t + 1) / threads))
                    .collect();
                let parts = exec::parallel_map(threads, &ranges, |&(lo, hi)| {
                    let mut part = TopK::new(k);
                    for slot in lo..hi {
                        let id = data.ids[slot];
                        if filter.is_none_or(|f| f.admits(id)) {
                            part.push(id, (self.dist)(q, row(slot)));
                        }
                    }
                    part
                });
                parts.into_iter().for_each(|p| top.merge(p));
            }
        }
        top.into_sorted()
    }

    fn upsert(&self, data: &mut Data, id: u64, v: &[f32]) {
        let dim = self.spec.dim;
        match data.slot_of.get(&id) {
            Some(&slot) => data.vectors[slot * dim..(slot + 1) * dim].copy_from_slice(v),
            None => {
                data.slot_of.insert(id, data.ids.len());
                data.ids.push(id);
                data.vectors.extend_from_slice(v);
            }
        }
    }

    fn save(&self, path: &Path, payloads: &[u8]) -> Result<()> {
        let data = self.read();
        let mut w = Writer::with_capacity(8 + data.ids.len() * 8 + data.vectors.len() * 4);
        w.u64(data.ids.len() as u64);
        w.u64s(&data.ids);
        w.f32s(&data.vectors);
        let header = Header {
            magic: *MAGIC,
            version: VERSION,
            metric: self.spec.metric,
            dim: self.spec.dim,
            count: data.ids.len() as u64,
        };
        drop(data);
        persist::write_atomic_with(path, &header, &w.buf, payloads)
    }
}

#[async_trait]
impl Engine for FlatEngine {
    fn backend(&self) -> &str {
        "flat"
    }

    fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::local_full()
    }

    async fn upsert(&self, ids: Vec<u64>, vectors: Vec<Vec<f32>>) -> Result<()> {
        // A copy into the buffer under the write lock: no worker thread.
        let mut data = self.inner.write();
        for (&id, v) in ids.iter().zip(&vectors) {
            self.inner.upsert(&mut data, id, v);
        }
        Ok(())
    }

    async fn remove(&self, id: u64) -> Result<bool> {
        let dim = self.spec.dim;
        let mut data = self.inner.write();
        let Some(slot) = data.slot_of.remove(&id) else {
            return Ok(false);
        };
        let last = data.ids.len() - 1;
        if slot != last {
            let moved = data.ids[last];
            data.ids[slot] = moved;
            data.vectors
                .copy_within(last * dim..(last + 1) * dim, slot * dim);
            data.slot_of.insert(moved, slot);
        }
        data.ids.truncate(last);
        data.vectors.truncate(last * dim);
        Ok(true)
    }

    async fn fetch(&self, id: u64) -> Result<Option<Vec<f32>>> {
        let dim = self.spec.dim;
        let data = self.inner.read();
        Ok(data
            .slot_of
            .get(&id)
            .map(|&s| data.vectors[s * dim..(s + 1) * dim].to_vec()))
    }

    async fn contains(&self, id: u64) -> Result<bool> {
        Ok(self.inner.read().slot_of.contains_key(&id))
    }

    async fn count(&self) -> Result<usize> {
        Ok(self.inner.read().ids.len())
    }

    async fn knn(
        &self,
        queries: Vec<Vec<f32>>,
        k: usize,
        _ef: usize,
        filter: Option<&IdFilter>,
    ) -> Result<Vec<Vec<Neighbor>>> {
        if let [q] = queries.as_slice() {
            // One query scans on the caller's thread (in parallel when large).
            return Ok(vec![self.inner.search(q, k, filter)]);
        }
        let inner = Arc::clone(&self.inner);
        let filter = filter.cloned();
        exec::offload(move || {
            let threads = inner.spec.effective_threads();
            Ok(exec::parallel_map(threads, &queries, |q| {
                inner.search(q, k, filter.as_ref())
            }))
        })
        .await
    }

    async fn knn_traced(
        &self,
        query: Vec<f32>,
        k: usize,
        _ef: usize,
        filter: Option<&IdFilter>,
    ) -> Result<(Vec<Neighbor>, crate::Trace)> {
        let hits = self.inner.search(&query, k, filter);
        let scored = match filter {
            Some(f) if f.is_resolved() => f.len(),
            _ => self.inner.read().ids.len(),
        };
        let trace = crate::Trace {
            plan: crate::Plan::ExactScan,
            scored: Some(scored),
        };
        Ok((hits, trace))
    }

    async fn ids(&self) -> Result<Vec<u64>> {
        Ok(self.inner.read().ids.clone())
    }

    async fn save(&self, path: &Path, payloads: &[u8]) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let path: PathBuf = path.to_path_buf();
        let payloads = payloads.to_vec();
        exec::offload(move || inner.save(&path, &payloads)).await
    }

    fn memory_bytes(&self) -> Option<usize> {
        let data = self.inner.read();
        Some(
            data.vectors.capacity() * 4
                + data.ids.capacity() * 8
                + data.slot_of.capacity() * (std::mem::size_of::<(u64, usize)>() + 1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{exec::block_on, Metric, SearchParams, VectorIndex};

    #[test]
    fn huge_hints_and_k_are_not_panics() {
        let spec = IndexSpec::new(4, Metric::L2)
            .with_capacity(usize::MAX)
            .with_threads(usize::MAX);
        let idx = FlatIndex::new(spec).unwrap();
        block_on(idx.add_batch(&[1, 2], &[vec![0.0; 4], vec![1.0; 4]])).unwrap();
        let got = block_on(idx.search(&[0.0; 4], usize::MAX, &SearchParams::default())).unwrap();
        assert_eq!(got.iter().map(|n| n.id).collect::<Vec<_>>(), [1, 2]);
        let batch =
            block_on(idx.search_batch(&[vec![1.0; 4]], usize::MAX, &SearchParams::default()));
        assert_eq!(batch.unwrap()[0].len(), 2);
    }

    /// `finish_indexing` builds the range prefixes a write left stale (the
    /// memory count grows by them), and answers do not change.
    #[test]
    fn finish_indexing_builds_the_range_prefixes() {
        use crate::{Filter, Payload, Schema};
        let spec = IndexSpec::new(2, Metric::L2).with_schema(Schema::new().integer("date"));
        let idx = FlatIndex::new(spec).unwrap();
        let n = 20_000u64;
        let ids: Vec<u64> = (0..n).collect();
        let rows: Vec<Vec<f32>> = ids.iter().map(|&i| vec![i as f32, 0.0]).collect();
        let payloads: Vec<Payload> = ids
            .iter()
            .map(|&i| Payload::new().with("date", ((i * 7919) % n) as i64))
            .collect();
        block_on(idx.add_batch_with_payloads(&ids, &rows, &payloads)).unwrap();
        let params = SearchParams {
            filter: Some(Filter::range("date").lt(6_000)),
            ..SearchParams::default()
        };
        let before = block_on(idx.search(&[10_000.0, 0.0], 10, &params)).unwrap();
        let lazy = idx.memory_bytes().unwrap();
        block_on(idx.finish_indexing()).unwrap();
        let built = idx.memory_bytes().unwrap();
        assert!(built > lazy, "no prefixes built: {lazy} -> {built} bytes");
        assert_eq!(
            block_on(idx.search(&[10_000.0, 0.0], 10, &params)).unwrap(),
            before
        );
    }
}
