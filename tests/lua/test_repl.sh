#!/bin/sh
# test_repl.sh - the program's Lua modes driven from the outside: the plain
# REPL with piped stdin (expressions print, multi-line input, errors with a
# traceback followed by a working line, return forms, EOF), Ctrl-C (SIGINT)
# stopping a Lua loop and a training run, `run` with arguments and exit
# status, `-e`, --help and --version.
#
#   EXE=./iclplay sh tests/lua/test_repl.sh
#
# Prints one line per test and "N passed, N failed"; exits 1 on failure.
EXE=${EXE:-./iclplay}
case "$EXE" in /*) ;; *) EXE="$PWD/$EXE" ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/iclplay-test-repl.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
HOME="$tmp" # history goes to $tmp/.iclplay_history, never the user's
export HOME
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok      $1"; }
bad() {
    failed=$((failed + 1))
    echo "not ok  $1"
    echo "  --- output was:"
    sed 's/^/  | /' "$tmp/out"
}

# repl NAME INPUT: feeds INPUT to --plain; output (stdout + stderr) in $tmp/out,
# stdout alone in $tmp/stdout, status in $rc.
repl() {
    printf '%s' "$2" | "$EXE" --plain >"$tmp/stdout" 2>"$tmp/stderr"
    rc=$?
    cat "$tmp/stdout" "$tmp/stderr" >"$tmp/out"
}

# has FIXED-STRING [FILE]: the file contains the line fragment.
has() { grep -qF -- "$1" "${2:-$tmp/out}"; }
# line FIXED-LINE [FILE]: the file has exactly this line.
line() { grep -qxF -- "$1" "${2:-$tmp/stdout}"; }

# ---- the plain REPL -------------------------------------------------------

repl expr '1 + 1
"a" .. "b"
'
if [ $rc -eq 0 ] && line 2 && line ab; then ok "an expression prints its value"; else bad "an expression prints its value"; fi

repl eq '=3 * 3
return 4, "five"
print(6, "seven", nil)
return
'
if [ $rc -eq 0 ] && line 9 && line "$(printf '4\tfive')" && line "$(printf '6\tseven\tnil')"; then
    ok "=expr, return forms and print of several values"
else bad "=expr, return forms and print of several values"; fi

repl multi 'function tri(n)
  local s = 0
  for i = 1, n do
    s = s + i
  end
  return s
end
tri(10)
t = {
  1,
  2,
}
#t
'
if [ $rc -eq 0 ] && line 55 && line 2; then ok "multi-line function definition and table"; else bad "multi-line function definition and table"; fi

repl err 'x = 41
error("boom")
nosuch.field = 1
x = = 1
x + 1
'
if [ $rc -eq 0 ] && has "input:1: boom" "$tmp/stderr" && has "stack traceback:" "$tmp/stderr" &&
    has "attempt to index a nil value (global 'nosuch')" "$tmp/stderr" && has "unexpected symbol" "$tmp/stderr" &&
    line 42; then
    ok "errors print a message and traceback, the next line still works"
else bad "errors print a message and traceback, the next line still works"; fi

repl eof 'print("first")
for i = 1, 3 do
'
if [ $rc -eq 0 ] && line first && has "<eof>" "$tmp/stderr"; then
    ok "EOF ends cleanly with status 0 (an unfinished chunk is reported)"
else bad "EOF ends cleanly with status 0 (an unfinished chunk is reported)"; fi

repl empty ''
if [ $rc -eq 0 ] && [ ! -s "$tmp/out" ]; then ok "empty input: nothing printed, status 0"; else bad "empty input: nothing printed, status 0"; fi

repl local 'local y = 1
{ a = 1, b = { 2, 3 } }
'
if [ $rc -eq 0 ] && has "locals do not survive" "$tmp/stderr" && line "{ a = 1, b = { 2, 3 } }"; then
    ok "local warning, tables pretty-printed"
else bad "local warning, tables pretty-printed"; fi

repl help 'help()
help(icl.model)
help("tasks")
'
if [ $rc -eq 0 ] && has 'help("tasks")' && has "icl.model{" && has "linear_regression"; then
    ok "help() in the REPL"
else bad "help() in the REPL"; fi

# ---- Ctrl-C ---------------------------------------------------------------

# sigint LINE1 LINE2: sends LINE1 (which prints "ready" when it starts its
# work), waits for "ready", interrupts it, sends LINE2, closes the input.
sigint() {
    rm -f "$tmp/fifo"
    mkfifo "$tmp/fifo" || return 1
    "$EXE" --plain <"$tmp/fifo" >"$tmp/stdout" 2>"$tmp/stderr" &
    pid=$!
    exec 3>"$tmp/fifo"
    printf '%s\n' "$1" >&3
    i=0
    while ! grep -q ready "$tmp/stdout" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 0.3
    kill -INT $pid 2>/dev/null
    sleep 0.3 # let the signal land before more input does
    printf '%s\n' "$2" >&3
    exec 3>&-
    # a stuck process would hang the suite: give it 20 s
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 $pid 2>/dev/null; then kill -KILL $pid; fi
    wait $pid
    rc=$?
    cat "$tmp/stdout" "$tmp/stderr" >"$tmp/out"
}

sigint 'print("ready"); n = 0; while true do n = n + 1 end' 'print("alive", n > 0)'
if [ $rc -eq 0 ] && has "interrupted!" "$tmp/stderr" && line "$(printf 'alive\ttrue')"; then
    ok "Ctrl-C stops a Lua loop and the REPL goes on"
else bad "Ctrl-C stops a Lua loop and the REPL goes on"; fi

sigint 'm = icl.model{ arch = "mamba", d_model = 8, n_layer = 1, n_dims = 2 }; t = icl.task{ "linear_regression", n_dims = 2, n_points = 4 }; tr = icl.trainer{ model = m, task = t, batch = 4 }; print("ready"); tr:run{ max_steps = 100000000, progress = false }' 'k = tr.steps; tr:step(2); print("resumed", tr.steps == k + 2, k > 0)'
if [ $rc -eq 0 ] && has "interrupted at step" "$tmp/stderr" && line "$(printf 'resumed\ttrue\ttrue')"; then
    ok "Ctrl-C stops training at a step boundary; the trainer goes on"
else bad "Ctrl-C stops training at a step boundary; the trainer goes on"; fi

sigint 'print("ready")
for i = 1, 2 do' 'print("fresh")'
if [ $rc -eq 0 ] && line fresh && ! has "<eof>"; then
    ok "Ctrl-C at the prompt drops the unfinished chunk"
else bad "Ctrl-C at the prompt drops the unfinished chunk"; fi

# ---- run, -e, --help, --version --------------------------------------------

cat >"$tmp/script.lua" <<'EOF'
print("args", arg[0] ~= nil, arg[1], arg[2], select("#", ...), ...)
print("icl", type(icl), icl.version, type(help), type(icl.presets))
EOF
"$EXE" run "$tmp/script.lua" one two >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
cat "$tmp/stdout" "$tmp/stderr" >"$tmp/out"
if [ $rc -eq 0 ] && line "$(printf 'args\ttrue\tone\ttwo\t2\tone\ttwo')" && line "$(printf 'icl\ttable\t0.1.0\tfunction\ttable')"; then
    ok "run script.lua args: arg, ..., icl and init.lua loaded"
else bad "run script.lua args: arg, ..., icl and init.lua loaded"; fi

cat >"$tmp/fail.lua" <<'EOF'
local function inner() error("deliberate failure") end
print("before")
inner()
print("not reached")
EOF
"$EXE" run "$tmp/fail.lua" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
cat "$tmp/stdout" "$tmp/stderr" >"$tmp/out"
if [ $rc -eq 1 ] && line before && ! has "not reached" && has "deliberate failure" "$tmp/stderr" &&
    has "stack traceback:" "$tmp/stderr" && has "in local 'inner'" "$tmp/stderr"; then
    ok "run: an error exits 1 with the traceback on stderr"
else bad "run: an error exits 1 with the traceback on stderr"; fi

"$EXE" run "$tmp/missing.lua" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
cat "$tmp/stdout" "$tmp/stderr" >"$tmp/out"
if [ $rc -eq 1 ] && has "cannot open" "$tmp/stderr"; then ok "run: a missing script exits 1"; else bad "run: a missing script exits 1"; fi

"$EXE" -e 'x = 20' -e 'print(x + 1)' >"$tmp/stdout" 2>"$tmp/stderr"
rc1=$?
"$EXE" -e 'error("bad code")' >"$tmp/out2" 2>&1
rc2=$?
cat "$tmp/stdout" "$tmp/stderr" "$tmp/out2" >"$tmp/out"
if [ $rc1 -eq 0 ] && line 21 && [ $rc2 -eq 1 ] && has "bad code" "$tmp/out2"; then
    ok "-e runs code; an error exits 1"
else bad "-e runs code; an error exits 1"; fi

"$EXE" --help >"$tmp/stdout" 2>&1
rc1=$?
"$EXE" --version >"$tmp/out2" 2>&1
rc2=$?
"$EXE" --bogus >/dev/null 2>&1
rc3=$?
cat "$tmp/stdout" "$tmp/out2" >"$tmp/out"
if [ $rc1 -eq 0 ] && has "iclplay run script.lua" && [ $rc2 -eq 0 ] && has "iclplay 0.1.0" "$tmp/out2" && [ $rc3 -eq 2 ]; then
    ok "--help, --version, unknown mode"
else bad "--help, --version, unknown mode"; fi

# Started without OMP_WAIT_POLICY, iclplay sets it to PASSIVE and executes
# itself once more; the process must still be named after its file (top, ps
# and pkill read that), not "exe" as when /proc/self/exe itself was run.
env -u OMP_WAIT_POLICY -u ICLPLAY_NO_REEXEC "$EXE" -e \
    'print(io.open("/proc/self/comm"):read("l") .. " " .. tostring(os.getenv("OMP_WAIT_POLICY")))' \
    >"$tmp/stdout" 2>&1
cp "$tmp/stdout" "$tmp/out"
if line "$(basename "$EXE" | cut -c1-15) PASSIVE"; then
    ok "the re-executed process keeps its name and waits passively"
else bad "the re-executed process keeps its name and waits passively"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
