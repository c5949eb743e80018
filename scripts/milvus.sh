#!/usr/bin/env bash
# A real Milvus 2.3.5 standalone server for the tests: install | start | stop | status.
#
# The server comes from PyPI's `milvus` wheel (the embedded server binary). We
# run the binary directly rather than the package's `milvus-server` wrapper:
# the wrapper moves to other ports when one looks taken, and a SIGTERM to it
# leaves the server running. Only one instance per machine (the server locks
# /run/milvus/standalone.pid).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
VENV="$CACHE/milvus-venv"
DATA="$CACHE/milvus-data"
PIDFILE="$CACHE/milvus.pid"
LOG="$CACHE/milvus.log"
VERSION="2.3.5"
WHEEL="milvus-2.3.5-py3-none-manylinux2014_x86_64.whl"
SHA256="69515a0630ce29fd10e101fa442afea8ca1387b93a456cd9bd41fdf3deb93d04"
START_TIMEOUT="${MILVUS_START_TIMEOUT:-120}"

die() { echo "milvus.sh: $*" >&2; exit 1; }

healthy() { [ "$(curl -s --max-time 2 http://127.0.0.1:9091/healthz 2>/dev/null || true)" = "OK" ]; }

our_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # The pid must still be our milvus binary, not a reused number.
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$DATA/bin/milvus" ] || return 1
    echo "$pid"
}

cmd_install() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import milvus,sys; sys.exit(milvus.__version__ != "'"$VERSION"'")' 2>/dev/null \
        && [ -f "$VENV/.wheel-verified" ]; then
        echo "milvus $VERSION already installed in $VENV"
        return 0
    fi
    mkdir -p "$CACHE/milvus-wheel"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    [ -f "$CACHE/milvus-wheel/$WHEEL" ] ||
        "$VENV/bin/pip" download -q --no-deps "milvus==$VERSION" -d "$CACHE/milvus-wheel"
    echo "$SHA256  $CACHE/milvus-wheel/$WHEEL" | sha256sum -c --quiet - ||
        { rm -f "$CACHE/milvus-wheel/$WHEEL"; die "wheel checksum mismatch: removed it, refusing to install"; }
    "$VENV/bin/pip" install -q --no-deps --force-reinstall "$CACHE/milvus-wheel/$WHEEL"
    touch "$VENV/.wheel-verified"
    echo "milvus $VERSION installed in $VENV"
}

# Unpacks the binary and libraries and writes configs/milvus.yaml under
# $DATA, as the wrapper does (its template engine: `{{ key(type): default }}`),
# with every service address pinned to 127.0.0.1.
prepare() {
    local pkg
    pkg="$("$VENV/bin/python" -c 'import milvus,os; print(os.path.dirname(milvus.__file__))')"
    mkdir -p "$DATA/bin" "$DATA/configs" "$DATA/logs" "$DATA/data" "$DATA/run"
    "$VENV/bin/python" - "$pkg" "$DATA" <<'PY'
import hashlib, lzma, os, re, shutil, sys
pkg, base = sys.argv[1], sys.argv[2]
src = os.path.join(pkg, "data", "bin")
for name in sorted(os.listdir(src)):
    if not name.endswith(".lzma"):
        continue
    packed = os.path.join(src, name)
    out = os.path.join(base, "bin", name[:-5])
    stamp = out + ".lzma.md5"
    with open(packed, "rb") as f:
        digest = hashlib.md5(f.read()).hexdigest()
    if os.path.isfile(out) and os.path.isfile(stamp) and open(stamp).read().strip() == digest:
        continue
    with lzma.open(packed) as f, open(out + ".tmp", "wb") as g:
        shutil.copyfileobj(f, g)
    os.chmod(out + ".tmp", 0o755)
    os.replace(out + ".tmp", out)
    with open(stamp, "w") as f:
        f.write(digest)
data = os.path.join(base, "data")
logs = os.path.join(base, "logs")
values = {
    "etcd_log_path": os.path.join(logs, "etcd.log"),
    "system_log_path": logs,
    "etcd_data_dir": os.path.join(data, "etcd.data"),
    "local_storage_dir": data,
    "rocksmq_data_dir": os.path.join(data, "rocksmq"),
}
def render(m):
    text = m.group(1).strip()
    key, _, default = text.partition(":")
    key = key.split("(")[0].strip()
    if key in values:
        return str(values[key])
    default = default.strip()
    if not default and key not in values:
        raise SystemExit(f"config template key {key} has no value")
    return default
with open(os.path.join(pkg, "data", "config.yaml.template")) as f:
    text = f.read()
text = re.sub(r"\{\{(.*?)\}\}", render, text)
# Advertise (and where the server honours it, bind) loopback only.
text = re.sub(r"(?m)^(\s+)ip:\s*(#.*)?$", r"\1ip: 127.0.0.1", text)
text = text.replace("address: localhost", "address: 127.0.0.1")
with open(os.path.join(base, "configs", "milvus.yaml"), "w") as f:
    f.write(text)
shutil.copy(os.path.join(pkg, "data", "glog.conf"), os.path.join(base, "configs", "glog.conf"))
PY
}

cmd_start() {
    [ -x "$VENV/bin/python" ] || die "not installed: run $0 install first"
    local pid
    if pid="$(our_pid)"; then
        if healthy; then echo "milvus already running (pid $pid)"; return 0; fi
        die "milvus (pid $pid) is running but not healthy; run $0 stop"
    fi
    healthy && die "another Milvus answers on 127.0.0.1:9091 (one instance per machine); stop it first"
    prepare
    rm -f "$DATA/run/standalone.pid" /run/milvus/standalone.pid 2>/dev/null || true
    (
        cd "$DATA"
        export DEPLOY_MODE=STANDALONE METRICS_PORT=9091 MILVUS_RUN_DIR="$DATA/run"
        export LD_LIBRARY_PATH="$DATA/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        exec setsid "$DATA/bin/milvus" run standalone >"$LOG" 2>&1 </dev/null
    ) &
    pid=$!
    echo "$pid" >"$PIDFILE"
    local waited=0
    until healthy; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            tail -n 30 "$LOG" >&2 || true
            die "milvus exited during start-up (log: $LOG)"
        fi
        if [ "$waited" -ge "$((START_TIMEOUT * 10))" ]; then
            cmd_stop >&2 || true
            die "milvus not healthy after ${START_TIMEOUT}s (log: $LOG)"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "milvus started (pid $pid) on 127.0.0.1:19530, health on 127.0.0.1:9091"
}

cmd_stop() {
    local pid
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
        echo "milvus stopped (pid $pid)"
    else
        echo "milvus not running (no live pid in $PIDFILE)"
    fi
    rm -f "$PIDFILE" "$DATA/run/standalone.pid" /run/milvus/standalone.pid 2>/dev/null || true
}

cmd_status() {
    local pid
    if pid="$(our_pid)"; then
        if healthy; then echo "running (pid $pid), healthy"; else echo "running (pid $pid), not healthy yet"; fi
        return 0
    fi
    echo "stopped"
    return 3
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
