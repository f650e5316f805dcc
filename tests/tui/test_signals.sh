#!/bin/sh
# test_signals.sh - signals and odd terminals: the program ends cleanly,
# restores the terminal, and keeps unsaved training in a recovery
# checkpoint that the next start offers (issue 7).
#
#   EXE=./iclplay sh tests/tui/test_signals.sh
#
# Checked, each in a real terminal (tmux) unless said otherwise:
# - SIGTERM to the TUI with a trained, unsaved model: exit status 143, the
#   terminal modes restored, a recovery checkpoint and its index written;
#   the next start shows the offer, icl.recover() gives back the same
#   weights (sum of a weight tensor, printed with %.9g, identical), and the
#   recovery files are gone afterwards;
# - SIGHUP (the terminal closes) to the TUI while tr:run{} trains: exit
#   status 129 and a recovery checkpoint;
# - SIGTERM to the plain REPL at its prompt: 143, recovery written;
# - SIGTERM to a headless `iclplay run` during training: 143, recovery;
#   a model that was saved (not dirty) is not written; icl.recover("list")
#   keeps it, "discard" deletes it and names what it deleted;
# - a storm of 60 resizes (SIGWINCH) while F5 trains: the TUI still draws its
#   panels and still answers at the prompt; after a resize, cells changed
#   behind curses' back are painted over once the size has settled;
# - TERM=dumb gives the plain REPL (no escape codes) that still evaluates;
# - stdout not a terminal (a pipe): lines from stdin are run, results printed.
# Prints one line per test and "N passed, N failed"; exits 1 on failure.
. tests/testlib.sh
test_begin signals
if ! have_tmux; then test_end; exit 0; fi
REC="$tmp/recovery"

# start CMD: a fresh session running CMD in $tmp; afterwards the pane shows
# "exited rc=N" and stty's settings are in $tmp/stty. launch.sh records its
# pid and execs the program (same pid; iclplay's own re-exec keeps it too),
# so the signal goes to iclplay itself.
start() {
    rm -f "$tmp/stty" "$tmp/pid"
    printf '%s\n' "echo \$\$ > '$tmp/pid'" "exec env HOME='$tmp' ICLPLAY_RECOVERY='$REC' LANG=C.UTF-8 \"\$@\"" \
        > "$tmp/launch.sh"
    tmux_start sig "cd '$tmp' && sh launch.sh $1; echo \"exited rc=\$?\"; stty -a > '$tmp/stty'; sleep 60"
    n=50
    while [ $n -gt 0 ] && [ ! -s "$tmp/pid" ]; do sleep 0.1; n=$((n - 1)); done
}
pid() { cat "$tmp/pid"; }
stty_sane() {
    n=50
    while [ $n -gt 0 ] && [ ! -s "$tmp/stty" ]; do sleep 0.1; n=$((n - 1)); done
    grep -qE '(^| )icanon( |$)' "$tmp/stty" && grep -qE '(^| )echo( |$)' "$tmp/stty" && grep -qE '(^| )isig( |$)' "$tmp/stty"
}

# ---- SIGTERM to the TUI --------------------------------------------------------------------------------

rm -rf "$REC"
start "'$EXE'"
if wait_for "│ prompt" 30; then
    type_line 'tr:step(3); print(string.format("SUM=%.9g", m:param("read_out.weight"):sum()))'
    if wait_re "SUM=[-0-9]" 30; then
        sum1=$(screen_last 'SUM=[-0-9][-0-9.e+]*' | sed 's/SUM=//')
        kill -TERM "$(pid)"
        if wait_for "exited rc=143" 20; then ok "SIGTERM ends the TUI with status 143"
        else bad "SIGTERM ends the TUI with status 143" "$(screen)"; fi
        if stty_sane; then ok "after SIGTERM the terminal modes are restored"
        else bad "after SIGTERM the terminal modes are restored" "$(cat "$tmp/stty" 2>/dev/null)"; fi
        if [ -s "$REC/model-1.safetensors" ] && grep -q "SIGTERM" "$REC/index.tsv" 2>/dev/null &&
            ! ls "$REC" | grep -q tmp; then ok "SIGTERM writes a recovery checkpoint of the unsaved model"
        else bad "SIGTERM writes a recovery checkpoint of the unsaved model" "$(ls -la "$REC" 2>&1)"; fi
        start "'$EXE'"
        if wait_for "recovered: 1 model" 30 && wait_for "│ prompt" 10; then
            ok "the next start offers the recovered model"
            type_line 'r = icl.recover(); print(string.format("REC=%d %.9g", #r, r[1]:param("read_out.weight"):sum()))'
            if wait_re "REC=1 [-0-9]" 20; then
                sum2=$(screen_last 'REC=1 [-0-9][-0-9.e+]*' | sed 's/^REC=1 //')
                if [ "$sum1" = "$sum2" ]; then ok "icl.recover() gives back the same weights ($sum1)"
                else bad "icl.recover() gives back the same weights ($sum1 vs $sum2)"; fi
                if [ ! -e "$REC/index.tsv" ] && [ ! -e "$REC/model-1.safetensors" ]; then
                    ok "icl.recover() removes the recovery files"
                else bad "icl.recover() removes the recovery files" "$(ls -la "$REC")"; fi
            else bad "icl.recover() gives back the same weights" "$(screen)"; fi
        else bad "the next start offers the recovered model" "$(screen)"; fi
    else bad "SIGTERM: training before the signal" "$(screen)"; fi
else bad "SIGTERM: the TUI starts" "$(screen)"; fi

# ---- SIGHUP to the TUI while a command trains --------------------------------------------------------------

rm -rf "$REC"
start "'$EXE'"
if wait_for "│ prompt" 30; then
    type_line 'tr:run{ max_steps = 1000000 }'
    wait_for "running: tr:run" 20
    sleep 1
    kill -HUP "$(pid)"
    if wait_for "exited rc=129" 20 && [ -s "$REC/model-1.safetensors" ] && grep -q SIGHUP "$REC/index.tsv"; then
        ok "SIGHUP during tr:run{} stops the run, writes the recovery checkpoint, exits 129"
    else bad "SIGHUP during tr:run{} stops the run, writes the recovery checkpoint, exits 129" "$(screen; ls -la "$REC" 2>&1)"; fi
    if stty_sane; then ok "after SIGHUP the terminal modes are restored"
    else bad "after SIGHUP the terminal modes are restored"; fi
else bad "SIGHUP: the TUI starts" "$(screen)"; fi

# ---- SIGTERM to the plain REPL at its prompt -------------------------------------------------------------

rm -rf "$REC"
start "'$EXE' --plain"
if wait_re "^>" 30; then
    sleep 0.5 # Readline is set up just after the prompt shows
    type_line 'm = icl.model{ arch = "mamba", n_dims = 3, d_model = 16, n_layer = 2 }; t = icl.task{ "linear_regression", n_dims = 3, n_points = 8 }; tr = icl.trainer{ model = m, task = t }; tr:step(2); print("trained")'
    if wait_for "trained" 30; then
        kill -TERM "$(pid)"
        if wait_for "exited rc=143" 20 && [ -s "$REC/model-1.safetensors" ]; then
            ok "SIGTERM at the plain REPL's prompt: recovery written, status 143"
        else bad "SIGTERM at the plain REPL's prompt: recovery written, status 143" "$(screen)"; fi
        if stty_sane; then ok "after SIGTERM the plain REPL restored the terminal"
        else bad "after SIGTERM the plain REPL restored the terminal"; fi
    else bad "plain REPL: training before the signal" "$(screen)"; fi
else bad "plain REPL starts" "$(screen)"; fi

# ---- SIGTERM to a headless run (no terminal needed) -------------------------------------------------------

rm -rf "$REC"
cat > "$tmp/run.lua" <<'EOF'
local saved = icl.model{ arch = "transformer", n_dims = 3, d_model = 16, n_layer = 2 }
local m = icl.model{ arch = "mamba", n_dims = 3, d_model = 16, n_layer = 2 }
local t = icl.task{ "linear_regression", n_dims = 3, n_points = 8 }
local tr0 = icl.trainer{ model = saved, task = t }
tr0:step(1)
saved:save(os.getenv("TMPDIR_TEST") .. "/saved.safetensors")
local tr = icl.trainer{ model = m, task = t }
io.stdout:write("training\n"); io.stdout:flush()
tr:run{ max_steps = 100000000 }
EOF
(cd "$tmp" && TMPDIR_TEST="$tmp" ICLPLAY_RECOVERY="$REC" exec "$EXE" run run.lua > "$tmp/run.out" 2> "$tmp/run.err") &
rpid=$!
n=300
while [ $n -gt 0 ] && ! grep -q training "$tmp/run.out" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
sleep 0.5
kill -TERM $rpid
wait $rpid
rc=$?
if [ $rc -eq 143 ] && [ -s "$REC/model-1.safetensors" ] && [ ! -e "$REC/model-2.safetensors" ] &&
    grep -q "mamba" "$REC/index.tsv" && ! grep -q transformer "$REC/index.tsv" && grep -q "ended by SIGTERM" "$tmp/run.err"; then
    ok "SIGTERM to iclplay run: status 143, only the unsaved model is recovered, stderr says so"
else bad "SIGTERM to iclplay run: status 143, only the unsaved model is recovered, stderr says so" "rc=$rc
$(cat "$tmp/run.err"; cat "$REC/index.tsv" 2>&1)"; fi

# icl.recover("list") describes the recovered model and keeps it;
# icl.recover("discard") deletes it and says what it deleted.
cat > "$tmp/discard.lua" <<'EOF'
local l = icl.recover("list")
print("LIST", #l, l[1])
local d = icl.recover("discard")
print("DISCARD", #d, d[1])
print("AFTER", #icl.recover("list"))
EOF
(cd "$tmp" && ICLPLAY_RECOVERY="$REC" "$EXE" run discard.lua > "$tmp/discard.out" 2>&1)
if grep -qE "^LIST	1	.*model-1\.safetensors: .*mamba" "$tmp/discard.out" &&
    grep -qE "^DISCARD	1	.*model-1\.safetensors: .*mamba" "$tmp/discard.out" &&
    grep -q "^AFTER	0" "$tmp/discard.out" && [ ! -e "$REC/model-1.safetensors" ] && [ ! -e "$REC/index.tsv" ]; then
    ok "icl.recover(\"list\") keeps the files; \"discard\" deletes them and names what it deleted"
else bad "icl.recover(\"list\") keeps the files; \"discard\" deletes them and names what it deleted" "$(cat "$tmp/discard.out"; ls -la "$REC" 2>&1)"; fi

# ---- a Lua finalizer that never returns: the second SIGTERM ends it ----------------------------------------
# Lua runs __gc with its hooks off, so the first signal cannot stop it at an
# instruction; the second must end the process (default action) at once.

cat > "$tmp/gc.lua" <<'EOF'
setmetatable({}, { __gc = function() io.stdout:write("in gc\n"); io.stdout:flush(); while true do end end })
collectgarbage()
EOF
(cd "$tmp" && ICLPLAY_RECOVERY="$REC" exec "$EXE" run gc.lua > "$tmp/gc.out" 2>&1) &
gpid=$!
n=300
while [ $n -gt 0 ] && ! grep -q "in gc" "$tmp/gc.out" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
kill -TERM $gpid 2>/dev/null
sleep 1
alive1=0; kill -0 $gpid 2>/dev/null && alive1=1
kill -TERM $gpid 2>/dev/null
n=50
while [ $n -gt 0 ] && kill -0 $gpid 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
if kill -0 $gpid 2>/dev/null; then
    kill -KILL $gpid 2>/dev/null
    bad "a second SIGTERM ends a Lua finalizer that never returns" "still running 5 s after the second SIGTERM"
else
    wait $gpid
    grc=$?
    if [ $alive1 -eq 1 ] && [ $grc -eq 143 ]; then ok "a second SIGTERM ends a Lua finalizer that never returns (status 143)"
    else bad "a second SIGTERM ends a Lua finalizer that never returns (status 143)" "alive after first: $alive1, rc=$grc
$(cat "$tmp/gc.out")"; fi
fi

# ---- a SIGWINCH storm -------------------------------------------------------------------------------------

start "'$EXE'"
if wait_for "│ prompt" 30; then
    $T send-keys -t sig F5
    i=0
    while [ $i -lt 30 ]; do
        $T resize-window -t sig -x $((70 + i % 40)) -y $((18 + i % 16)) 2>/dev/null
        $T resize-window -t sig -x 100 -y 32 2>/dev/null
        i=$((i + 1))
    done
    $T send-keys -t sig F5
    sleep 0.5
    type_line 'print("after the storm", 6 * 7)'
    if wait_re "^after the storm +42" 20 && wait_for "ICL error" 5 && wait_for "│ prompt" 5; then
        ok "60 resizes while training: the panels and the prompt still work"
    else bad "60 resizes while training: the panels and the prompt still work" "$(screen)"; fi
else bad "SIGWINCH: the TUI starts" "$(screen)"; fi

# After a resize the whole screen is painted once more when the resizes have
# settled (src/tui/screen.c, SCREEN_SETTLE_SEC 0.4 s): text that reached the
# terminal behind curses' back after the resize's own repaint (here written
# straight to the pane's tty, as a terminal that applied the repaint at a
# size it then left would leave stale cells) is painted over. Curses alone
# never would: those cells did not change in its copy. The resize is a
# SIGWINCH at the same size (tmux may delay a real one by 250 ms); a try
# counts only if the text went out within 0.3 s of the signal, before the
# settled repaint is due.
start "'$EXE'"
if wait_for "│ prompt" 30; then
    tty=$($T display-message -p -t sig '#{pane_tty}')
    seen=0 try=0
    while [ $seen -eq 0 ] && [ $try -lt 5 ]; do
        try=$((try + 1))
        t0=$(date +%s%N)
        kill -WINCH "$(pid)"
        sleep 0.15 # the resize's own repaint (the idle loop polls every 40 ms) has gone out
        printf '\033[32;1HSTALE-CELLS-%d' $try > "$tty"
        t1=$(date +%s%N)
        if [ $(( (t1 - t0) / 1000000 )) -lt 300 ] && screen | grep -q "STALE-CELLS-$try"; then seen=1
        else wait_gone "STALE-CELLS" 3; fi
    done
    if [ $seen -eq 0 ]; then bad "a settled resize repaints: no try wrote its text in time (5 tries)" "$(screen)"
    elif wait_gone "STALE-CELLS" 3 && wait_for "│ prompt" 2; then
        ok "a settled resize paints the whole screen once more (stale cells painted over)"
    else bad "a settled resize paints the whole screen once more (stale cells painted over)" "$(screen)"; fi
else bad "settled resize: the TUI starts" "$(screen)"; fi

# ---- TERM=dumb and a stdout that is not a terminal ---------------------------------------------------------

start "env TERM=dumb '$EXE'"
if wait_re "^>" 30; then
    sleep 0.5
    type_line 'print("dumb", 6 * 7)'
    if wait_re "^dumb +42" 10 && ! screen | grep -qF "│"; then ok "TERM=dumb: the plain REPL, no panels, it evaluates"
    else bad "TERM=dumb: the plain REPL, no panels, it evaluates" "$(screen)"; fi
else bad "TERM=dumb: a prompt" "$(screen)"; fi

out=$(printf 'print("piped", 6 * 7)\nx = 5\n= x + 1\n' | "$EXE" 2>&1 | cat)
if printf '%s\n' "$out" | grep -q "piped	42" && printf '%s\n' "$out" | grep -qx "6" &&
    ! printf '%s\n' "$out" | grep -q "$(printf '\033')"; then ok "stdin and stdout not terminals: lines run, results printed, no escape codes"
else bad "stdin and stdout not terminals: lines run, results printed, no escape codes" "$out"; fi

test_end
