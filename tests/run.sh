#!/bin/sh
# run.sh - run every test given (a binary, a Lua script run with
# `$EXE run`, or a shell script), then print one closing line
# "N passed, N failed" summed over all of them. Exits 1 on any failure.
# Each binary prints its own per-test lines and its seed.
passed=0; failed=0; broken=""
for t in "$@"; do
    case "$t" in
    *.lua) out=$("${EXE:-./iclplay}" run "$t" 2>&1); rc=$? ;;
    *.sh) out=$(EXE="${EXE:-./iclplay}" sh "$t" 2>&1); rc=$? ;;
    *) out=$("$t" 2>&1); rc=$? ;;
    esac
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
        passed=$((passed + p)); failed=$((failed + f))
    fi
    if [ $rc -ne 0 ] && { [ -z "$line" ] || [ "${f:-0}" = 0 ]; }; then
        failed=$((failed + 1)); broken="$broken $t(exit $rc)"
    fi
done
[ -n "$broken" ] && echo "# crashed or failed without a count:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
