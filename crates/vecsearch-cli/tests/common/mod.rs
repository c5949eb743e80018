//! What the CLI's command tests share.

use std::process::Command;

/// Runs the `vecsearch` binary with `args`: whether it succeeded, and its
/// stdout and stderr together.
pub fn vecsearch(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vecsearch"))
        .args(args)
        .output()
        .expect("run vecsearch");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
