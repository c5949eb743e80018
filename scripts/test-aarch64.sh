#!/usr/bin/env bash
# The SIMD kernels written for aarch64 (NEON), tested on this x86-64 machine:
# cross-compiled for aarch64-unknown-linux-gnu and run under qemu-user.
# Runs the lib tests of vecsearch-core (f32 kernels) and vecsearch-native
# (f16 / i8 kernels, and the engine on top of them).
#
# Needs: `rustup target add aarch64-unknown-linux-gnu`, an aarch64 linker and
# libc (Debian: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross) and qemu-user.
# Installs what is missing when it can (rustup; apt-get as root); when it
# cannot, it says so and exits 0 with the tests skipped, so a machine without
# them still runs the rest of the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
skip() { echo "aarch64: skipped ($*)"; exit 0; }

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    rustup target add "$TARGET" >/dev/null 2>&1 || skip "rustup cannot add $TARGET"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null 2>&1 ||
            skip "apt-get could not install qemu-user and the aarch64 cross compiler"
    else
        skip "no aarch64 cross compiler or qemu-aarch64, and no root apt-get to install them"
    fi
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
echo "aarch64: core and native lib tests under qemu (NEON kernels)"
cargo test --release --target "$TARGET" -p vecsearch-core -p vecsearch-native --lib
