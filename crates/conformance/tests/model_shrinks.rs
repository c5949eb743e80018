//! The random-ops case catches a subtly wrong backend and shrinks the
//! failing sequence to a few lines of Rust: a test of the test.

use std::path::Path;
use vecsearch_conformance::{cases, Harness};
use vecsearch_core::async_trait;
use vecsearch_core::{
    Capabilities, FlatIndex, IndexSpec, Neighbor, Result, SearchParams, VectorIndex,
};

/// The flat index with one flaw.
struct Broken(FlatIndex, Flaw);

#[derive(Clone, Copy)]
enum Flaw {
    /// One id comes back 1.0 too far.
    OffByOne,
    /// Ties at the k-th distance go to the highest ids (every distance
    /// right, every answer sorted): what hnswlib's exact scan did (issue 21).
    TiesToHighestId,
}

const BAD_ID: u64 = 135; // one of the ids the generator uses

#[async_trait]
impl VectorIndex for Broken {
    fn backend(&self) -> &str {
        "broken"
    }
    fn spec(&self) -> &IndexSpec {
        self.0.spec()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn add(&self, id: u64, v: &[f32]) -> Result<()> {
        self.0.add(id, v).await
    }
    async fn add_batch(&self, ids: &[u64], vs: &[Vec<f32>]) -> Result<()> {
        self.0.add_batch(ids, vs).await
    }
    async fn delete(&self, id: u64) -> Result<bool> {
        self.0.delete(id).await
    }
    async fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        self.0.get(id).await
    }
    async fn len(&self) -> Result<usize> {
        self.0.len().await
    }
    async fn search(&self, q: &[f32], k: usize, p: &SearchParams) -> Result<Vec<Neighbor>> {
        let mut hits = match self.1 {
            Flaw::OffByOne => {
                let mut hits = self.0.search(q, k, p).await?;
                for h in &mut hits {
                    if h.id == BAD_ID {
                        h.distance += 1.0;
                    }
                }
                hits
            }
            Flaw::TiesToHighestId => {
                let all = self.0.len().await?.max(1);
                let mut hits = self.0.search(q, all, p).await?;
                hits.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(b.id.cmp(&a.id)));
                hits.truncate(k);
                hits
            }
        };
        vecsearch_core::sort_neighbors(&mut hits);
        Ok(hits)
    }
    async fn search_batch(
        &self,
        qs: &[Vec<f32>],
        k: usize,
        p: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let mut out = Vec::new();
        for q in qs {
            out.push(self.search(q, k, p).await?);
        }
        Ok(out)
    }
    async fn save(&self, path: &Path) -> Result<()> {
        self.0.save(path).await
    }
}

#[test]
fn a_wrong_distance_is_caught_and_shrunk_to_a_short_repro() {
    std::env::set_var("VECSEARCH_MODEL_SEEDS", "2");
    std::env::set_var("VECSEARCH_MODEL_OPS", "400");
    let h = Harness::new("off-by-one", |spec| async move {
        Ok(Box::new(Broken(FlatIndex::new(spec)?, Flaw::OffByOne)) as Box<dyn VectorIndex>)
    });
    let verdict = vecsearch_core::exec::block_on(cases::model_random_ops(&h));
    let Err(cases::Why::Fail(msg)) = verdict else {
        panic!("the broken backend passed: {verdict:?}");
    };
    assert!(msg.contains("shortest failing sequence"), "{msg}");
    let code_lines = msg.lines().filter(|l| l.starts_with("index.")).count();
    assert!(
        (1..=4).contains(&code_lines),
        "not shrunk to a few lines ({code_lines}):\n{msg}"
    );
    assert!(
        msg.contains(&format!("index.add({BAD_ID}")) || msg.contains(&format!("{BAD_ID}]")),
        "{msg}"
    );
    println!("{msg}");
}

/// Issue 21: "small is exact" holds ties to the contract too. A backend
/// whose every distance is right but which gives a tie at the k-th distance
/// to the higher id (hnswlib's exact scan did) is caught.
#[test]
fn a_tie_given_to_the_higher_id_is_caught() {
    std::env::set_var("VECSEARCH_MODEL_SEEDS", "2");
    std::env::set_var("VECSEARCH_MODEL_OPS", "400");
    let h = Harness::new("ties-to-highest-id", |spec| async move {
        Ok(Box::new(Broken(FlatIndex::new(spec)?, Flaw::TiesToHighestId)) as Box<dyn VectorIndex>)
    });
    let verdict = vecsearch_core::exec::block_on(cases::model_random_ops(&h));
    let Err(cases::Why::Fail(msg)) = verdict else {
        panic!("the broken backend passed: {verdict:?}");
    };
    assert!(msg.contains("ties go to the lowest id"), "{msg}");
    assert!(msg.contains("shortest failing sequence"), "{msg}");
    println!("{msg}");
}
