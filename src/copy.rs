//! Moving data between engines: every vector and payload of one index
//! streamed into another, in batches (the `pg_dump | psql` of vecsearch),
//! and a check that both hold the same.

use std::time::Instant;

use crate::{Error, Payload, Result, SearchParams, VectorIndex};

/// How [`copy`] runs.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Records per page read and per batch written (default 1,000).
    pub batch: usize,
    /// Copy into a destination that already holds vectors (ids present in
    /// both are replaced). Without it such a destination is refused.
    pub merge: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            batch: 1000,
            merge: false,
        }
    }
}

/// What [`copy`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopyReport {
    /// Vectors written.
    pub copied: usize,
    /// Of those, with a payload.
    pub with_payload: usize,
    /// Wall time.
    pub seconds: f64,
}

/// Copies every vector (and payload) of `src` into `dst`, page by page in
/// id order, calling `progress` with the running count after each batch.
/// Both must have the same dim and metric; `dst` must be empty unless
/// `merge`, and must have a schema taking `src`'s payloads if there are any.
/// Vectors go as `src` stores them (normalised for cosine; rounded for
/// f16). `dst` is synced before this returns.
pub async fn copy(
    src: &dyn VectorIndex,
    dst: &dyn VectorIndex,
    opts: &CopyOptions,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<CopyReport> {
    let start = Instant::now();
    let (s, d) = (src.spec(), dst.spec());
    if s.dim != d.dim || s.metric != d.metric {
        return Err(Error::InvalidArgument(format!(
            "the source holds {}-dimensional {} vectors, the destination {}-dimensional {}",
            s.dim, s.metric, d.dim, d.metric
        )));
    }
    if opts.batch == 0 {
        return Err(Error::InvalidArgument(
            "a copy batch holds at least 1 vector".into(),
        ));
    }
    let held = dst.len().await?;
    if held > 0 && !opts.merge {
        return Err(Error::InvalidArgument(format!(
            "the destination already holds {held} vectors: copy into an empty index, or merge \
             (ids in both are replaced)"
        )));
    }
    let takes_payloads = dst.capabilities().payloads && !d.schema.is_empty();
    let mut report = CopyReport {
        copied: 0,
        with_payload: 0,
        seconds: 0.0,
    };
    let mut after = None;
    loop {
        let page = src.scan(after, opts.batch).await?;
        if !page.records.is_empty() {
            let ids: Vec<u64> = page.records.iter().map(|r| r.id).collect();
            let vectors: Vec<Vec<f32>> = page.records.iter().map(|r| r.vector.clone()).collect();
            let with = page
                .records
                .iter()
                .filter(|r| !r.payload.is_empty())
                .count();
            if takes_payloads {
                let payloads: Vec<Payload> =
                    page.records.iter().map(|r| r.payload.clone()).collect();
                dst.add_batch_with_payloads(&ids, &vectors, &payloads)
                    .await?;
            } else if let Some(r) = page.records.iter().find(|r| !r.payload.is_empty()) {
                let fields: Vec<&str> = r.payload.iter().map(|(k, _)| k).collect();
                return Err(Error::InvalidArgument(format!(
                    "id {} has a payload ({}) but the destination takes none: create it with the \
                     source's schema ({} vectors copied so far)",
                    r.id,
                    fields.join(", "),
                    report.copied
                )));
            } else {
                dst.add_batch(&ids, &vectors).await?;
            }
            report.copied += ids.len();
            report.with_payload += with;
            progress(report.copied);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    dst.sync().await?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    /// Vectors in the source and the destination.
    pub counts: (usize, usize),
    /// Ids compared (a sample, spread over the id range).
    pub checked: usize,
    /// Of those, ids whose vector or payload differ, or that are missing in
    /// the destination.
    pub mismatched: usize,
    /// The first 20 of them.
    pub differing: Vec<u64>,
    /// Mean overlap of the top-10 ids of searches for sampled vectors (1.0:
    /// the same answers; graph engines may differ a little).
    pub search_overlap: f64,
}

impl VerifyReport {
    /// Whether counts, vectors and payloads agree.
    pub fn same_data(&self) -> bool {
        self.counts.0 == self.counts.1 && self.mismatched == 0
    }
}

/// Compares `dst` with `src`: the counts, the vector and payload of up to
/// `sample` ids (spread over the id range), and searches for those vectors.
pub async fn verify(
    src: &dyn VectorIndex,
    dst: &dyn VectorIndex,
    sample: usize,
) -> Result<VerifyReport> {
    let counts = (src.len().await?, dst.len().await?);
    let ids = src.ids().await?;
    let step = (ids.len() / sample.max(1)).max(1);
    let chosen: Vec<u64> = ids.iter().copied().step_by(step).take(sample).collect();
    let mut differing = Vec::new();
    let mut mismatched = 0;
    let mut overlap = 0.0;
    let tol = 1e-3_f32;
    for &id in &chosen {
        let (a, b) = (src.get(id).await?, dst.get(id).await?);
        let same_vector = match (&a, &b) {
            (Some(a), Some(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| (x - y).abs() <= tol * x.abs().max(1.0))
            }
            _ => false,
        };
        let pa = payload_or_empty(src, id).await?;
        let pb = payload_or_empty(dst, id).await?;
        if !same_vector || pa != pb {
            mismatched += 1;
            if differing.len() < 20 {
                differing.push(id);
            }
            continue;
        }
        if let Some(v) = a {
            let p = SearchParams::default();
            let x: Vec<u64> = src.search(&v, 10, &p).await?.iter().map(|n| n.id).collect();
            let y: Vec<u64> = dst.search(&v, 10, &p).await?.iter().map(|n| n.id).collect();
            let common = x.iter().filter(|id| y.contains(id)).count();
            overlap += common as f64 / x.len().max(1) as f64;
        }
    }
    let searched = (chosen.len() - mismatched).max(1);
    Ok(VerifyReport {
        counts,
        checked: chosen.len(),
        mismatched,
        differing,
        search_overlap: overlap / searched as f64,
    })
}

async fn payload_or_empty(idx: &dyn VectorIndex, id: u64) -> Result<Payload> {
    if !idx.capabilities().payloads || idx.spec().schema.is_empty() {
        return Ok(Payload::new());
    }
    Ok(idx.get_payload(id).await?.unwrap_or_default())
}
