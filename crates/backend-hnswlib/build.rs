//! Finds hnswlib 0.8.0's headers and compiles the C++ shim against them.
//!
//! Search order: `$HNSWLIB_INCLUDE_DIR`, `<workspace>/third_party/hnswlib-0.8.0`
//! (what `scripts/setup-hnswlib.sh` fills), then the system include paths.
//! Headers older than 0.7 (no filters, no slot reuse) are refused.

use std::env;
use std::path::{Path, PathBuf};

const SETUP_HINT: &str = "run `scripts/setup-hnswlib.sh` from the repository root \
    (it fetches the hnswlib 0.8.0 source distribution from PyPI and checks its sha256), \
    or point HNSWLIB_INCLUDE_DIR at a directory holding hnswlib/hnswlib.h of version 0.7 or newer";

fn main() {
    println!("cargo:rerun-if-env-changed=HNSWLIB_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=VECSEARCH_NATIVE_CPU");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-changed=src/shim.cc");
    println!("cargo:rerun-if-changed=src/ffi.rs");

    let include = match find_headers() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("error: vecsearch-hnswlib: {why}");
            std::process::exit(1);
        }
    };
    println!(
        "cargo:rerun-if-changed={}",
        include.join("hnswlib/hnswalg.h").display()
    );

    // Portable by default: a library's binary must run on any CPU of its
    // target. `-march=native` (hnswlib's AVX kernels, for this machine's
    // CPU only) is an explicit opt-in, for benchmarks and local builds.
    let native_cpu = env::var("VECSEARCH_NATIVE_CPU").is_ok_and(|v| v == "1");
    let flags: &[&str] = if native_cpu {
        &["-O3", "-march=native", "-std=c++17"]
    } else {
        &["-O3", "-std=c++17"]
    };

    let mut build = cxx_build::bridge("src/ffi.rs");
    build
        .file("src/shim.cc")
        // -isystem: hnswlib's own warnings are not ours to fix; ours still show.
        .flag("-isystem")
        .flag(include.display().to_string())
        .include("src")
        .cpp(true)
        // GCC 12's own AVX-512 headers trip -Wuninitialized (`__Y = __Y`, a
        // known false positive) when hnswlib's AVX-512 kernels are built.
        .flag_if_supported("-Wno-uninitialized");
    for f in flags {
        build.flag(f);
    }
    build.compile("vecsearch_hnswlib_shim");

    println!(
        "cargo:rustc-env=VECSEARCH_HNSWLIB_CFLAGS={}",
        flags.join(" ")
    );
    println!(
        "cargo:rustc-env=VECSEARCH_HNSWLIB_INCLUDE={}",
        include.display()
    );
}

fn find_headers() -> Result<PathBuf, String> {
    // An explicit choice is used or refused, never silently passed over.
    if let Some(dir) = env::var_os("HNSWLIB_INCLUDE_DIR") {
        let dir = PathBuf::from(dir);
        return match check(&dir) {
            Some(true) => Ok(dir),
            Some(false) => Err(too_old(&dir)),
            None => Err(format!(
                "HNSWLIB_INCLUDE_DIR={} holds no hnswlib/hnswlib.h and hnswlib/hnswalg.h; {SETUP_HINT}",
                dir.display()
            )),
        };
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    if let Some(root) = manifest.parent().and_then(Path::parent) {
        candidates.push(root.join("third_party/hnswlib-0.8.0"));
    }
    candidates.push(PathBuf::from("/usr/local/include"));
    candidates.push(PathBuf::from("/usr/include"));
    let mut old = None;
    for dir in candidates {
        match check(&dir) {
            Some(true) => return Ok(dir),
            Some(false) => old = old.or(Some(dir)),
            None => {}
        }
    }
    match old {
        Some(dir) => Err(too_old(&dir)),
        None => Err(format!("hnswlib headers not found; {SETUP_HINT}")),
    }
}

/// `None`: no headers in `dir`; `Some(false)`: older than 0.7; `Some(true)`: usable.
fn check(dir: &Path) -> Option<bool> {
    let alg = std::fs::read_to_string(dir.join("hnswlib/hnswalg.h")).ok()?;
    let lib = std::fs::read_to_string(dir.join("hnswlib/hnswlib.h")).ok()?;
    Some(lib.contains("BaseFilterFunctor") && alg.contains("replace_deleted"))
}

fn too_old(dir: &Path) -> String {
    format!(
        "the hnswlib headers in {} are older than 0.7 (no BaseFilterFunctor / replace_deleted; \
         Debian's libhnswlib-dev is 0.6.2); {SETUP_HINT}",
        dir.display()
    )
}
