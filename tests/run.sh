#!/bin/sh
# run.sh - run every test given (a binary, a Lua script run with
# `$EXE run`, or a shell script), then print one closing line
# "N passed, N failed" summed over all of them. Exits 1 on any failure.
# Each binary prints its own per-test lines and its seed.
#
# JOBS=N runs N tests at a time (default 1); outputs are still printed
# whole and in the order given, each followed by its wall time. The tests
# must not share files: each makes its own temporary folder.
if [ "$1" = "--one" ]; then # --one TEST OUT: run one test, its output in OUT, its status in OUT.rc
    t=$2
    start=$(date +%s)
    case "$t" in
    *.lua) "${EXE:-./iclplay}" run "$t" > "$3" 2>&1 ;;
    *.sh) EXE="${EXE:-./iclplay}" sh "$t" > "$3" 2>&1 ;;
    *) "$t" > "$3" 2>&1 ;;
    esac
    echo "$? $(( $(date +%s) - start ))" > "$3.rc"
    exit 0
fi

jobs=${JOBS:-1}
out=$(mktemp -d "${TMPDIR:-/tmp}/iclplay-run.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT
# A test that ends iclplay with SIGTERM must not leave a recovery checkpoint
# in the user's home (the next `make run` would offer it): one folder here.
ICLPLAY_RECOVERY=${ICLPLAY_RECOVERY:-$out/recovery}
export ICLPLAY_RECOVERY
i=0
for t in "$@"; do
    i=$((i + 1))
    printf '%s\t%s\n' "$i" "$t"
done > "$out/list"
# xargs runs the list JOBS at a time; each writes $out/<index>
cut -f1,2 "$out/list" | tr '\t' ' ' |
    xargs -P "$jobs" -n 2 sh -c 'sh "$0" --one "$2" "'"$out"'/$1"' "$0"

passed=0; failed=0; broken=""
while IFS="$(printf '\t')" read -r i t; do
    cat "$out/$i" 2>/dev/null
    set -- $(cat "$out/$i.rc" 2>/dev/null || echo "127 0")
    rc=$1
    echo "# $t: ${2}s"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/$i" 2>/dev/null | tail -1)
    f=0
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
        passed=$((passed + p)); failed=$((failed + f))
    fi
    if [ "$rc" -ne 0 ] && { [ -z "$line" ] || [ "$f" = 0 ]; }; then
        failed=$((failed + 1)); broken="$broken $t(exit $rc)"
    fi
done < "$out/list"
[ -n "$broken" ] && echo "# crashed or failed without a count:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
