//! `scripts/bench.sh`'s handling of its arguments (issue 21), checked by
//! sourcing the script, which then only defines its functions: nothing is
//! built or run.

use std::path::PathBuf;
use std::process::Command;

/// The command `scripts/bench.sh ARGS` would run, with `CARGO_TARGET_DIR`
/// set to `target_dir` (unset for `None`).
fn command_for(args: &[&str], target_dir: Option<&str>) -> Vec<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench.sh");
    // By its path: the PATH below has no bash.
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
        .unwrap_or("bash");
    let mut cmd = Command::new(bash);
    cmd.arg("-c")
        .arg(r#"source "$1" && shift && set_bench_argv "$@" && printf '%s\0' "${BENCH_ARGV[@]}""#)
        .arg("bash")
        .arg(&script)
        .args(args)
        // Were the script to run rather than be sourced, it would find no
        // cargo to build with and stop at once.
        .env("PATH", "/nonexistent");
    match target_dir {
        Some(d) => cmd.env("CARGO_TARGET_DIR", d),
        None => cmd.env_remove("CARGO_TARGET_DIR"),
    };
    let out = cmd.output().expect("bash runs");
    assert!(
        out.status.success(),
        "sourcing {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_terminator('\0')
        .map(str::to_string)
        .collect()
}

#[test]
fn default_backends_unless_the_caller_names_some() {
    assert_eq!(
        command_for(&[], None),
        [
            "target/release/vecsearch",
            "bench",
            "--backends",
            "flat,native,hnswlib"
        ]
    );
    assert_eq!(
        command_for(&["--n", "3000", "--json", "a b.json"], None)[2..],
        [
            "--backends",
            "flat,native,hnswlib",
            "--n",
            "3000",
            "--json",
            "a b.json"
        ]
    );
    // The caller's list replaces ours (clap would append it to ours).
    assert_eq!(
        command_for(&["--n", "3000", "--backends", "native,hnswlib"], None)[2..],
        ["--n", "3000", "--backends", "native,hnswlib"]
    );
    assert_eq!(
        command_for(&["--backends=native"], None)[2..],
        ["--backends=native"]
    );
}

/// Issue 21: the binary is run from where cargo built it, under
/// `CARGO_TARGET_DIR` when that is set (it ran `target/` whatever it said,
/// and failed with 127).
#[test]
fn the_binary_comes_from_cargo_target_dir() {
    assert_eq!(
        command_for(&["--n", "10"], Some("/elsewhere/build"))[0],
        "/elsewhere/build/release/vecsearch"
    );
    assert_eq!(
        command_for(&["--n", "10"], None)[0],
        "target/release/vecsearch"
    );
}
