//! The random-ops case catches a subtly wrong backend and shrinks the
//! failing sequence to a few lines of Rust: a test of the test.

use std::path::Path;
use vecsearch_conformance::{cases, Harness};
use vecsearch_core::async_trait;
use vecsearch_core::{
    Capabilities, FlatIndex, IndexSpec, Neighbor, Result, SearchParams, VectorIndex,
};

/// The flat index, except that one id comes back 1.0 too far.
struct OffByOne(FlatIndex);

const BAD_ID: u64 = 135; // one of the ids the generator uses

#[async_trait]
impl VectorIndex for OffByOne {
    fn backend(&self) -> &str {
        "off-by-one"
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
        let mut hits = self.0.search(q, k, p).await?;
        for h in &mut hits {
            if h.id == BAD_ID {
                h.distance += 1.0;
            }
        }
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
        Ok(Box::new(OffByOne(FlatIndex::new(spec)?)) as Box<dyn VectorIndex>)
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
