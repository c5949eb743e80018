//! Files cross between real hnswlib and this backend in both directions: a
//! file written by hnswlib's own `saveIndex` imports and answers as hnswlib
//! answers, and an exported file loads in hnswlib and answers as we do.
//! The hnswlib side is `tests/interop/hnswlib_tool.cc`, compiled here
//! against the same headers the backend was built with.

use std::path::{Path, PathBuf};
use std::process::Command;

use vecsearch_core::distance::prepare;
use vecsearch_core::synthetic::clustered;
use vecsearch_core::{exec::block_on, IndexSpec, Metric, SearchParams, VectorIndex};
use vecsearch_hnswlib::HnswlibIndex;

const K: usize = 10;
const EF: usize = 100;

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vs-hnswlib-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn compile_tool(dir: &Path) -> PathBuf {
    let exe = dir.join("hnswlib_tool");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/hnswlib_tool.cc");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(cxx)
        .args([
            "-O2",
            "-std=c++17",
            "-isystem",
            env!("VECSEARCH_HNSWLIB_INCLUDE"),
        ])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("a C++ compiler (c++ or $CXX) runs");
    assert!(
        out.status.success(),
        "compiling the hnswlib tool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn write_vectors(path: &Path, rows: &[Vec<f32>]) {
    let mut b = (rows.len() as u64).to_le_bytes().to_vec();
    for (i, r) in rows.iter().enumerate() {
        b.extend_from_slice(&(i as u64).to_le_bytes());
        r.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
    }
    std::fs::write(path, b).unwrap();
}

fn write_queries(path: &Path, rows: &[Vec<f32>]) {
    let mut b = (rows.len() as u64).to_le_bytes().to_vec();
    for r in rows {
        r.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
    }
    std::fs::write(path, b).unwrap();
}

fn run(tool: &Path, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "hnswlib_tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn hnswlib_answers(
    tool: &Path,
    index: &Path,
    space: &str,
    dim: usize,
    queries: &Path,
) -> Vec<Vec<u64>> {
    run(
        tool,
        &[
            "query",
            index.to_str().unwrap(),
            space,
            &dim.to_string(),
            queries.to_str().unwrap(),
            &K.to_string(),
            &EF.to_string(),
        ],
    )
    .lines()
    .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
    .collect()
}

fn our_answers(index: &HnswlibIndex, queries: &[Vec<f32>]) -> Vec<Vec<u64>> {
    let params = SearchParams::default().with_ef(EF);
    queries
        .iter()
        .map(|q| {
            block_on(index.search(q, K, &params))
                .unwrap()
                .iter()
                .map(|n| n.id)
                .collect()
        })
        .collect()
}

/// hnswlib and we may order equal distances differently: compare as sets.
fn same_sets(a: &[Vec<u64>], b: &[Vec<u64>]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let (mut x, mut y) = (x.clone(), y.clone());
        x.sort_unstable();
        y.sort_unstable();
        assert_eq!(x, y, "query {i}");
    }
}

#[test]
fn files_cross_both_ways() {
    let dir = scratch();
    let tool = compile_tool(&dir);
    let (n, dim) = (1500, 24);
    for (metric, space) in [
        (Metric::L2, "l2"),
        (Metric::Cosine, "ip"),
        (Metric::InnerProduct, "ip"),
    ] {
        // For cosine, hnswlib holds normalised vectors in its inner-product
        // space (what its Python binding's "cosine" space does).
        let rows: Vec<Vec<f32>> = clustered(n, dim, 12, 7, metric)
            .to_rows()
            .iter()
            .map(|r| prepare(metric, r))
            .collect();
        let queries = clustered(50, dim, 12, 8, metric).to_rows();
        let vectors = dir.join("vectors.bin");
        let qpath = dir.join("queries.bin");
        write_vectors(&vectors, &rows);
        write_queries(&qpath, &queries);

        // hnswlib -> us.
        let theirs = dir.join(format!("theirs-{space}.hnsw"));
        run(
            &tool,
            &[
                "build",
                vectors.to_str().unwrap(),
                space,
                &dim.to_string(),
                "16",
                "100",
                theirs.to_str().unwrap(),
            ],
        );
        let spec = IndexSpec::new(dim, metric);
        let imported = block_on(vecsearch_hnswlib::HnswlibEngine::import_hnswlib_file(
            &theirs,
            spec.clone(),
        ))
        .unwrap();
        assert_eq!(
            block_on(imported.len()).unwrap(),
            n - n.div_ceil(10),
            "{metric}"
        );
        assert_eq!(
            block_on(imported.get(0)).unwrap(),
            None,
            "a label hnswlib deleted stays deleted"
        );
        let expect = hnswlib_answers(&tool, &theirs, space, dim, &qpath);
        same_sets(&our_answers(&imported, &queries), &expect);

        // us -> hnswlib: our own build, with deletions and an upsert.
        let ours = HnswlibIndex::new(spec.with_ef_construction(100)).unwrap();
        let ids: Vec<u64> = (0..n as u64).collect();
        block_on(ours.add_batch(&ids, &rows)).unwrap();
        for id in (0..n as u64).step_by(7) {
            assert!(block_on(ours.delete(id)).unwrap());
        }
        block_on(ours.add(1, &rows[2])).unwrap();
        let exported = dir.join(format!("ours-{space}.hnsw"));
        block_on(ours.engine().export_hnswlib_file(&exported)).unwrap();
        same_sets(
            &hnswlib_answers(&tool, &exported, space, dim, &qpath),
            &our_answers(&ours, &queries),
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
