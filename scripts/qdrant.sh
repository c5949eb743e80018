#!/usr/bin/env bash
# A real Qdrant server for the tests: start | stop | status.
#
# The binary comes from $QDRANT_BIN, else the shared copy beside the
# repository (../shared/qdrant/qdrant, as CI lays it out), else
# /work/shared/qdrant/qdrant, else `qdrant` on the PATH. With none of them,
# `start` prints "skipped: no qdrant binary" and exits 0, so the Qdrant suite
# reports itself skipped. The server listens on 127.0.0.1 only (HTTP
# $QDRANT_PORT, default 6333; gRPC the next port) with its storage in a new
# folder under .cache/, removed by `stop`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
PIDFILE="$CACHE/qdrant.pid"
DIRFILE="$CACHE/qdrant.dir"
PORT="${QDRANT_PORT:-6333}"
GRPC_PORT="$((PORT + 1))"
START_TIMEOUT="${QDRANT_START_TIMEOUT:-60}"

die() { echo "qdrant.sh: $*" >&2; exit 1; }

find_bin() {
    local c
    if [ -n "${QDRANT_BIN:-}" ]; then
        echo "$QDRANT_BIN"
        return 0
    fi
    for c in "$ROOT/../shared/qdrant/qdrant" /work/shared/qdrant/qdrant; do
        if [ -x "$c" ]; then
            echo "$(cd "$(dirname "$c")" && pwd)/$(basename "$c")"
            return 0
        fi
    done
    command -v qdrant 2>/dev/null || return 1
}

ready() { curl -sf --max-time 2 "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; }

our_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid bin
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    bin="$(cat "$PIDFILE.bin" 2>/dev/null || true)"
    # The pid must still be the binary we started, not a reused number.
    [ -n "$bin" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$(readlink -f "$bin")" ] || return 1
    echo "$pid"
}

cmd_start() {
    local bin pid dir
    if pid="$(our_pid)"; then
        if ready; then echo "qdrant already running (pid $pid) on 127.0.0.1:$PORT"; return 0; fi
        die "qdrant (pid $pid) is running but not ready; run $0 stop"
    fi
    if [ -n "${QDRANT_BIN:-}" ] && [ ! -x "$QDRANT_BIN" ]; then
        die "QDRANT_BIN=$QDRANT_BIN is not an executable file"
    fi
    if ! bin="$(find_bin)"; then
        echo "qdrant.sh: skipped: no qdrant binary (set QDRANT_BIN, or put one at ../shared/qdrant/qdrant or on the PATH)"
        return 0
    fi
    ready && die "something already answers on 127.0.0.1:$PORT; stop it first"
    mkdir -p "$CACHE"
    dir="$(mktemp -d "$CACHE/qdrant.XXXXXX")"
    echo "$dir" >"$DIRFILE"
    (
        cd "$dir"
        export QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="$PORT" \
            QDRANT__SERVICE__GRPC_PORT="$GRPC_PORT" \
            QDRANT__STORAGE__STORAGE_PATH="$dir/storage" \
            QDRANT__STORAGE__SNAPSHOTS_PATH="$dir/snapshots" \
            QDRANT__TELEMETRY_DISABLED=true RUN_MODE=production
        exec setsid "$bin" --disable-telemetry >"$dir/qdrant.log" 2>&1 </dev/null
    ) &
    pid=$!
    echo "$pid" >"$PIDFILE"
    echo "$bin" >"$PIDFILE.bin"
    local waited=0
    until ready; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE" "$PIDFILE.bin"
            tail -n 30 "$dir/qdrant.log" >&2 || true
            die "qdrant exited during start-up (log: $dir/qdrant.log)"
        fi
        if [ "$waited" -ge "$((START_TIMEOUT * 10))" ]; then
            cmd_stop >&2 || true
            die "qdrant not ready after ${START_TIMEOUT}s"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "qdrant started (pid $pid, $bin) on 127.0.0.1:$PORT, storage in $dir"
}

cmd_stop() {
    local pid dir
    if pid="$(our_pid)"; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        echo "qdrant stopped (pid $pid)"
    else
        echo "qdrant not running (no live pid in $PIDFILE)"
    fi
    dir="$(cat "$DIRFILE" 2>/dev/null || true)"
    # Only ever a folder this script made under .cache/.
    case "$dir" in
        "$CACHE"/qdrant.*) rm -rf "$dir" ;;
    esac
    rm -f "$PIDFILE" "$PIDFILE.bin" "$DIRFILE"
}

cmd_status() {
    local pid
    if pid="$(our_pid)"; then
        if ready; then echo "running (pid $pid), ready"; else echo "running (pid $pid), not ready yet"; fi
        return 0
    fi
    echo "stopped"
    return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
