//! Damaged and crafted hnswlib files (bare, and inside a valid envelope)
//! are refused before hnswlib reads them: `Corrupt`, never a crash or an
//! allocation the file does not justify (hnswlib issue 673).

use std::path::{Path, PathBuf};

use vecsearch_core::persist::{write_atomic, Header};
use vecsearch_core::synthetic::{clustered, Rng};
use vecsearch_core::{exec::block_on, Error, IndexSpec, Metric, SearchParams, VectorIndex};
use vecsearch_hnswlib::HnswlibIndex;

const DIM: usize = 8;
// Header field offsets in hnswlib's saveIndex stream.
const COUNT: usize = 16;
const SIZE_PER_ELEMENT: usize = 24;
const LABEL_OFFSET: usize = 32;
const OFFSET_DATA: usize = 40;
const MAX_LEVEL: usize = 48;
const ENTRY_POINT: usize = 52;
const M: usize = 72;
const MULT: usize = 80;
const HEADER: usize = 96;
// Level-0 record: links (2M+1 u32) + vector + label.
const LINKS0: usize = (2 * 16 + 1) * 4;
const RECORD: usize = LINKS0 + DIM * 4 + 8;

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("vs-hnswlib-crafted-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec() -> IndexSpec {
    IndexSpec::new(DIM, Metric::L2)
}

/// A real hnswlib stream of 300 points (with upper levels and deletions).
fn good_stream(dir: &Scratch) -> Vec<u8> {
    let idx = HnswlibIndex::new(spec()).unwrap();
    let rows = clustered(300, DIM, 5, 3, Metric::L2).to_rows();
    let ids: Vec<u64> = (0..300).collect();
    block_on(idx.add_batch(&ids, &rows)).unwrap();
    for id in (0..300).step_by(9) {
        block_on(idx.delete(id)).unwrap();
    }
    let p = dir.path("good.hnsw");
    block_on(idx.engine().export_hnswlib_file(&p)).unwrap();
    std::fs::read(p).unwrap()
}

fn import(path: &Path, bytes: &[u8]) -> vecsearch_core::Result<HnswlibIndex> {
    std::fs::write(path, bytes).unwrap();
    block_on(vecsearch_hnswlib::HnswlibEngine::import_hnswlib_file(
        path,
        spec(),
    ))
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Offset of element `i`'s linkListSize field and its value.
fn link_list_sizes(b: &[u8]) -> Vec<(usize, u32)> {
    let n = get_u64(b, COUNT) as usize;
    let mut at = HEADER + n * RECORD;
    (0..n)
        .map(|_| {
            let size = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            let here = at;
            at += 4 + size as usize;
            (here, size)
        })
        .collect()
}

/// A change that makes a good stream crafted.
type Craft = Box<dyn Fn(&mut Vec<u8>)>;

fn assert_corrupt(r: vecsearch_core::Result<HnswlibIndex>, what: &str) {
    match r {
        Err(Error::Corrupt(_)) => {}
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok(_) => panic!("{what}: a crafted file was accepted"),
    }
}

#[test]
fn crafted_fields_are_corrupt() {
    let dir = Scratch::new("fields");
    let good = good_stream(&dir);
    let p = dir.path("x.hnsw");
    assert!(import(&p, &good).is_ok());

    let cases: Vec<(&str, Craft)> = vec![
        (
            "huge element count",
            Box::new(|b| put_u64(b, COUNT, u64::MAX / 2)),
        ),
        (
            "count just past the data",
            Box::new(|b| put_u64(b, COUNT, 301)),
        ),
        ("count above max_elements", Box::new(|b| put_u64(b, 8, 10))),
        (
            "size per element",
            Box::new(|b| put_u64(b, SIZE_PER_ELEMENT, RECORD as u64 + 8)),
        ),
        ("label offset", Box::new(|b| put_u64(b, LABEL_OFFSET, 4))),
        ("data offset", Box::new(|b| put_u64(b, OFFSET_DATA, 0))),
        ("offsetLevel0", Box::new(|b| put_u64(b, 0, 8))),
        ("M", Box::new(|b| put_u64(b, M, 20))),
        (
            "mult",
            Box::new(|b| put_u64(b, MULT, f64::INFINITY.to_bits())),
        ),
        (
            "negative max level",
            Box::new(|b| put_u32(b, MAX_LEVEL, -5i32 as u32)),
        ),
        (
            "max level above the entry point's",
            Box::new(|b| put_u32(b, MAX_LEVEL, 40)),
        ),
        (
            "entry point past the end",
            Box::new(|b| put_u32(b, ENTRY_POINT, 300)),
        ),
        (
            "level-0 link past the end",
            Box::new(|b| {
                put_u32(b, HEADER, 1); // count 1
                put_u32(b, HEADER + 4, 1_000_000);
            }),
        ),
        (
            "too many level-0 links",
            Box::new(|b| put_u32(b, HEADER, 33)),
        ),
        (
            "duplicate label",
            Box::new(|b| {
                let l0 = get_u64(b, HEADER + LINKS0 + DIM * 4);
                put_u64(b, HEADER + RECORD + LINKS0 + DIM * 4, l0);
            }),
        ),
        (
            "NaN component",
            Box::new(|b| put_u32(b, HEADER + LINKS0, f32::NAN.to_bits())),
        ),
        (
            "link list size not a multiple",
            Box::new(|b| {
                let (at, _) = link_list_sizes(b)[0];
                put_u32(b, at, 3);
            }),
        ),
        (
            "link list size past the end",
            Box::new(|b| {
                let (at, _) = *link_list_sizes(b).last().unwrap();
                put_u32(b, at, 68 * 1000);
            }),
        ),
        (
            "upper link to a level-0 element",
            Box::new(|b| {
                let sizes = link_list_sizes(b);
                let low = sizes.iter().position(|&(_, s)| s == 0).unwrap() as u32;
                let (at, _) = *sizes.iter().find(|&&(_, s)| s > 0).unwrap();
                put_u32(b, at + 4, 1); // one link on level 1 ...
                put_u32(b, at + 8, low); // ... to an element without level 1
            }),
        ),
        ("trailing bytes", Box::new(|b| b.extend_from_slice(&[0; 4]))),
    ];
    for (what, craft) in cases {
        let mut b = good.clone();
        craft(&mut b);
        assert_corrupt(import(&p, &b), what);
    }
    for cut in [
        0,
        8,
        HEADER - 1,
        HEADER,
        HEADER + RECORD / 2,
        good.len() / 2,
        good.len() - 1,
    ] {
        assert_corrupt(import(&p, &good[..cut]), &format!("truncated at {cut}"));
    }
}

#[test]
fn crafted_body_in_a_valid_envelope_is_corrupt() {
    let dir = Scratch::new("envelope");
    let mut body = good_stream(&dir);
    put_u64(&mut body, COUNT, 1 << 40);
    let p = dir.path("x.vs");
    let header = Header {
        magic: *b"VSHNSWLB",
        version: 1,
        metric: Metric::L2,
        dim: DIM,
        count: 1 << 40,
    };
    write_atomic(&p, &header, &body).unwrap();
    assert!(matches!(
        block_on(HnswlibIndex::open(&p, spec())),
        Err(Error::Corrupt(_))
    ));
}

/// Random damage anywhere: either refused, or (damage the checks cannot
/// see, such as a changed vector component) an index that works.
#[test]
fn random_damage_never_crashes() {
    let dir = Scratch::new("random");
    let good = good_stream(&dir);
    let p = dir.path("x.hnsw");
    let mut rng = Rng::new(11);
    let q = vec![0.5f32; DIM];
    let (mut refused, mut accepted) = (0, 0);
    let rounds = std::env::var("VS_DAMAGE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    for _ in 0..rounds {
        let mut b = good.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(b.len());
            b[at] = rng.next_u64() as u8;
        }
        match import(&p, &b) {
            Err(Error::Corrupt(_)) => refused += 1,
            Err(e) => panic!("expected Corrupt, got {e}"),
            Ok(idx) => {
                accepted += 1;
                let n = block_on(idx.search(&q, 10, &SearchParams::default().with_ef(50))).unwrap();
                assert!(n.len() <= 10);
                block_on(idx.add(7_777, &q)).unwrap();
                block_on(idx.delete(7_777)).unwrap();
            }
        }
    }
    assert!(
        refused > 0 && accepted > 0,
        "refused {refused}, accepted {accepted}"
    );
}
