#!/bin/sh
# fuzz.sh - run libFuzzer targets for a bounded time and keep what they find
# (called by `make fuzz`, see mk/fuzz.mk; not part of `make test`).
#
#   FUZZ_TIME=60 FUZZ_DIR=build/fuzz tests/fuzz/fuzz.sh checkpoint spec repl
#
# For each name: runs $FUZZ_DIR/fuzz_<name> for FUZZ_TIME seconds on its work
# corpus $FUZZ_DIR/corpus/<name> (new inputs go there and stay for the next
# run) plus the seeds in tests/fuzz/corpus/<name> (read only), with the
# dictionary tests/fuzz/<name>.dict when there is one. Every crash-*,
# timeout-*, oom-* or leak-* input is copied to tests/fuzz/crashes/<name>/,
# where the replay test (make test) runs it from then on. The log of each
# run is $FUZZ_DIR/<name>.log. Exits 1 if any target found something.
#
# Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 -workers=2" etc.
set -u

FUZZ_TIME=${FUZZ_TIME:-60}
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
FUZZ_FLAGS=${FUZZ_FLAGS:-}
# One thread for OpenBLAS and OpenMP; sanitizers stop at the first report.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

found=0
for name in "$@"; do
    bin="$FUZZ_DIR/fuzz_$name"
    seeds="tests/fuzz/corpus/$name"
    work="$FUZZ_DIR/corpus/$name"
    art="$FUZZ_DIR/artifacts/$name"
    keep="tests/fuzz/crashes/$name"
    log="$FUZZ_DIR/$name.log"
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is missing (make fuzz-build)" >&2
        exit 2
    fi
    mkdir -p "$work" "$art"
    # per-target limits: the longest input (checkpoints are files of a few
    # KB; sessions make huge lines with a directive, not with bytes) and
    # the time one input may take before it counts as a hang
    case "$name" in
    checkpoint) opts="-max_len=65536 -timeout=20" ;;
    repl) opts="-max_len=8192 -timeout=30" ;;
    *) opts="-max_len=4096 -timeout=20" ;;
    esac
    dict=""
    [ -f "tests/fuzz/$name.dict" ] && dict="-dict=tests/fuzz/$name.dict"
    echo "fuzz: $name for ${FUZZ_TIME}s (log $log)"
    # shellcheck disable=SC2086
    "$bin" $opts $dict -max_total_time="$FUZZ_TIME" -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$art/" $FUZZ_FLAGS "$work" "$seeds" >"$log" 2>&1
    rc=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' "$log" | sed 's/^/    /'
    new=0
    for f in "$art"/crash-* "$art"/timeout-* "$art"/oom-* "$art"/leak-*; do
        [ -f "$f" ] || continue
        mkdir -p "$keep"
        base=$(basename "$f")
        if [ ! -f "$keep/$base" ]; then
            cp "$f" "$keep/$base"
            echo "    kept $keep/$base"
            new=$((new + 1))
        fi
    done
    if [ "$rc" -ne 0 ] || [ "$new" -gt 0 ]; then
        found=1
        echo "fuzz: $name stopped with status $rc; the report:"
        grep -E -A40 '^==[0-9]+==ERROR|runtime error:|^fuzz [a-z]+:|ERROR: libFuzzer' "$log" | head -60 | sed 's/^/    /'
    fi
done
exit $found
