#!/bin/sh
# bench_torch.sh - `make bench-torch` (issue 6): iclplay against PyTorch on
# the same CPU, side by side in one run.
#
#   1. Installs Debian's python3-torch (and libjemalloc2, for the tuned
#      PyTorch peer) when missing. `make test` never needs either.
#   2. Builds tests/bench/bench_step (iclplay's timer and dumper) if missing.
#   3. The check: for every architecture at `small`, iclplay dumps its
#      weights, one batch, the loss and every gradient (bench_step dump);
#      scripts/bench_torch.py check runs the same forward + backward in
#      PyTorch (float32 and float64) and prints the largest differences.
#   4. The benchmark (scripts/bench_torch.py drive): for each architecture,
#      configuration (small, medium; paper for transformer and mambaformer)
#      and thread count (1, 2), alternating in one run: iclplay, PyTorch as
#      users run it, PyTorch at its best; median step ms, ratios, peak RSS.
#      Every measurement runs in its own process.
#
# Environment:
#   BENCH_QUICK=1     small configuration only, few reps, one round (development)
#   BENCH_ROUNDS=n    alternating rounds (default 2; 1 in QUICK mode)
#   BENCH_ARCHS=a,b   only these architectures
#   BENCH_CONFIGS=a,b only these configurations (small, medium, paper), full reps
#   BENCH_USER_SCAN=loop_index   the user peer runs mamba-minimal's indexing
#                     loop verbatim (O(T^2) backward; very slow) instead of
#                     the plain loop with unbind
#   BENCH_SKIP_CHECK=1, BENCH_CHECK_ONLY=1
#   BENCH_STEP=path   the bench_step binary (make bench-torch passes it)
#   BENCH_PYTHON=path the Python that has Debian's torch (default /usr/bin/python3:
#                     a python3 earlier in PATH, e.g. pyenv's, does not see it)
# Exit status: non-zero if the check failed or a step could not run.
set -eu
cd "$(dirname "$0")/.."

PY=${BENCH_PYTHON:-/usr/bin/python3}
BENCH_STEP=${BENCH_STEP:-build/release/tests/bench/bench_step}
export BENCH_STEP

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "bench-torch: need root (or sudo) to run: $*" >&2; return 1
    fi
}

apt_install() {
    echo "bench-torch: installing $* (Debian packages)"
    as_root apt-get install -y "$@" || { as_root apt-get update && as_root apt-get install -y "$@"; }
}

if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    apt_install python3-torch
    "$PY" -c 'import torch' || { echo "bench-torch: $PY cannot import torch after installing python3-torch" >&2; exit 1; }
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libjemalloc\.so\.2'; then
    apt_install libjemalloc2 || echo "bench-torch: no jemalloc; the tuned peer uses tuned glibc malloc only" >&2
fi
if [ ! -x "$BENCH_STEP" ]; then
    make "$BENCH_STEP"
fi

status=0
if [ "${BENCH_SKIP_CHECK:-0}" != 1 ]; then
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_torch.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM
    echo "== check: iclplay and PyTorch compute the same loss and gradients (small, one batch) =="
    for a in transformer mamba s4mamba hybrid mambaformer; do
        "$BENCH_STEP" dump "$a" small "$tmp/$a.safetensors" >/dev/null || status=1
    done
    "$PY" scripts/bench_torch.py check "$tmp"/*.safetensors || status=1
    echo
fi
[ "${BENCH_CHECK_ONLY:-0}" = 1 ] && exit $status

echo "== benchmark =="
"$PY" scripts/bench_torch.py drive || status=1
exit $status
