#!/bin/sh
# test_tui.sh - the real TUI driven in a real terminal: tmux runs ./iclplay
# in a 100x32 pane, send-keys types, capture-pane reads the screen.
#
#   EXE=./iclplay sh tests/tui/test_tui.sh
#
# What is checked: the default experiment loads (panels, welcome text);
# a Lua expression typed at the prompt prints its value; F5 trains (the
# status line's step count grows, the loss panel gains its training curve)
# and F5 pauses (the count stops); a blocking tr:run{} keeps the status
# line live (the tick hook) and Ctrl-C stops it with a message; Esc gives
# the keys to the panels, Tab reaches the attention panel, ] and } change
# its head and layer (the title says so); F1 opens the help overlay and Esc
# closes it; 80x24 works, 60x20 says "terminal too small", 100x32 comes
# back; icl.theme switches; Ctrl-D asks about the unsaved model, y quits,
# and the terminal is restored (the shell's line is back, stty is sane);
# with a non-UTF-8 locale the screen is pure ASCII.
#
# Every wait polls the screen (0.1 s) with a timeout instead of sleeping;
# the tmux server is private (-L) and killed on every path. Prints one line
# per test and "N passed, N failed"; exits 1 on failure. Skips (0 passed,
# 0 failed) when tmux is missing.
. tests/testlib.sh
test_begin tui
if ! have_tmux; then test_end; exit 0; fi

# The step count of the status line (the last row that starts with "step").
step_now() { screen | grep -E '^step [0-9]+' | tail -1 | sed -E 's/^step ([0-9]+).*/\1/'; }
# wait_step_above N [SECONDS]: the status line's step exceeds N.
wait_step_above() {
    n=$(( ${2:-20} * 10 ))
    while [ $n -gt 0 ]; do
        s=$(step_now)
        [ -n "$s" ] && [ "$s" -gt "$1" ] && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}
# start LOCALE [ENV...]: a fresh tmux server and session running the TUI;
# after it exits, the pane records the exit status and stty's view of the
# terminal.
start() {
    loc=$1
    shift
    tmux_start tui "cd '$tmp' && env HOME='$tmp' LANG=$loc LC_ALL=$loc $* '$EXE'; echo \"iclplay exited rc=\$?\"; stty -a > '$tmp/stty'; sleep 60"
}

# ---- start, the prompt -------------------------------------------------------------------------

start C.UTF-8
if wait_for "Welcome! This MambaFormer" 30 && wait_for "Press F5 to train" 1 && wait_for "ICL error" 1 &&
    wait_for "attention" 1 && wait_for "│ prompt" 1; then
    ok "the TUI starts with the default experiment and the prompt has the keys"
else bad "the TUI starts with the default experiment and the prompt has the keys"; fi

type_line '6 * 7, "x" .. "y"'
if wait_for "42      xy" 10; then ok "a Lua expression prints its value in the output"
else bad "a Lua expression prints its value in the output"; fi

type_line 'print(icl.theme("mono"), icl.theme("default"))'
if wait_for "mono    default" 10; then ok "icl.theme switches themes"; else bad "icl.theme switches themes"; fi

# ---- F5 trains, F5 pauses --------------------------------------------------------------------------

before=$(screen | head -10 | cut -c1-50)
s0=$(step_now)
keys F5
if wait_for "running │" 10 && wait_step_above $((${s0:-0} + 2)) 30; then
    ok "F5 trains: the status line's step count grows ($s0 -> $(step_now))"
else bad "F5 trains: the status line's step count grows"; fi
after=$(screen | head -10 | cut -c1-50)
if [ "$before" != "$after" ] && screen | grep -qE 'step [0-9]+ +train [0-9]'; then
    ok "the loss panel changes and reads out the training loss"
else bad "the loss panel changes and reads out the training loss"; fi

keys F5
if wait_for "paused │" 10; then
    s1=$(step_now); sleep 1.5; s2=$(step_now)
    if [ "$s1" = "$s2" ]; then ok "F5 pauses (step stays at $s2)"; else bad "F5 pauses (step $s1 -> $s2)"; fi
else bad "F5 pauses"; fi

# ---- a blocking command keeps the panels live; Ctrl-C stops it -------------------------------------

s0=$(step_now)
type_line 'tr:run{ max_steps = 100000 }'
if wait_for "running: tr:run" 10 && wait_step_above $((${s0:-0} + 1)) 30 && wait_for "running │" 5; then
    ok "during tr:run{} the status line stays live"
else bad "during tr:run{} the status line stays live"; fi
keys C-c
if wait_for "interrupted at step" 20 && wait_for "│ prompt" 5; then ok "Ctrl-C stops the run and returns to the prompt"
else bad "Ctrl-C stops the run and returns to the prompt"; fi

# ---- one long step: frames keep coming while it runs (core/tick.h) -----------------------------------
# A medium Mamba (d_model 128, 8 layers, 40 examples) takes 0.5-2 s per step
# at batch 64. Between its blocks the TUI draws frozen frames, so over a
# two-step run there are several frames per step and the longest gap between
# two frames is well under one step (under a fifth of the run); without the
# tick there would be about one frame per step and a gap of a whole step.
# Both criteria hold at any machine speed. Then, at batch 256 (steps of
# seconds), typing during F5 training shows at the prompt while the status
# line still shows the same step, and Enter runs the line after the step.

# Under a sanitizer (make test's second pass) every step is 3-10x slower:
# a smaller model there keeps the same step times and the same checks.
if [ -n "$ICLPLAY_TEST_SANITIZED" ]; then size="d_model = 64, n_layer = 4"; big=64
else size="d_model = 128, n_layer = 8"; big=256; fi
type_line 'mm = icl.model{ arch = "mamba", n_dims = 10, '"$size"' }; mt = icl.task{ "linear_regression", n_dims = 10, n_points = 40 }; mtr = icl.trainer{ model = mm, task = mt }; mtr:step(1)'
wait_for "│ prompt" 120
# The report is printed as "long" .. " step:" so that the typed line never
# shows "long step:" itself: while it was typed, readline's one-line view
# could show it, and the check then read the screen before the run ended.
type_line 'icl.tui.stats(true); r = mtr:run{ max_steps = 3 }; s = icl.tui.stats(); print(string.format("long" .. " step: %d frames in %.2f s, max gap %.3f s", s.frames, r.time_s, s.max_gap))'
if wait_for "long step:" 300; then
    line=$(screen | grep -F "long step:" | tail -1)
    if echo "$line" | awk '{ f = $3; t = $6; g = $10; exit !(t > 0 && f >= 3 * 2 && g < 0.2 * t) }'; then
        ok "frames keep coming during long steps ($line)"
    else bad "frames keep coming during long steps ($line)"; fi
else bad "frames keep coming during long steps (no report)"; fi
wait_for "│ prompt" 10
type_line 'mtr2 = icl.trainer{ model = mm, task = mt, batch = '"$big"' }; icl.show(mtr2)'
wait_for "│ prompt" 10
keys F5
wait_for "running │" 10
wait_step_above 0 600 >/dev/null
attempt=0; shown=0
while [ $attempt -lt 3 ] && [ $shown -eq 0 ]; do
    attempt=$((attempt + 1))
    sa=$(step_now)
    $T send-keys -t "$SESSION" -l 'print("typed during " .. "the step")'
    if wait_for '> print("typed during " .. "the step")' 5; then
        sb=$(step_now)
        if [ "$sa" = "$sb" ]; then shown=1; else keys C-u; fi
    else keys C-u; fi
done
if [ $shown -eq 1 ]; then ok "typing during F5 training shows at the prompt within the same long step (step $sa)"
else bad "typing during F5 training shows at the prompt within the same long step"; fi
keys Enter
if wait_for "typed during the step" 600; then ok "the line typed during the step ran after it"
else bad "the line typed during the step ran after it"; fi
keys F5
wait_for "paused │" 600
type_line 'icl.show(tr)'
wait_for "│ prompt" 10

# ---- panels: focus, head and layer -------------------------------------------------------------------

keys Escape
if wait_for "│ panels: loss" 5; then
    keys Tab; wait_for "│ panels: icl" 5
    keys Tab
    if wait_for "│ panels: attention" 5 && wait_for "layer 1/2  head 1/4" 1; then
        keys ']'
        if wait_for "layer 1/2  head 2/4" 10; then
            keys '}'
            if wait_for "layer 2/2  head 2/4" 10; then ok "Esc, Tab, ] and } change the attention panel's head and layer"
            else bad "} changes the layer"; fi
        else bad "] changes the head"; fi
    else bad "Tab reaches the attention panel"; fi
else bad "Esc gives the keys to the panels"; fi
keys Escape
wait_for "│ prompt" 5 || bad "Esc gives the keys back to the prompt"

# ---- help -------------------------------------------------------------------------------------------------

keys F1
if wait_for "iclplay keys" 10 && wait_for "Tab Shift-Tab" 1; then
    keys Escape
    if wait_gone "iclplay keys" 10; then ok "F1 opens the help overlay and Esc closes it"
    else bad "Esc closes the help overlay"; fi
else bad "F1 opens the help overlay"; fi

# ---- resizing ----------------------------------------------------------------------------------------------

$T resize-window -t tui -x 80 -y 24
if wait_for "│ prompt" 10 && ! screen | grep -qF "too small" && [ "$(screen | grep -c '')" -le 24 ] &&
    wait_for "ICL error" 1; then ok "80x24 shows the panels, the prompt and the status line"
else bad "80x24 shows the panels, the prompt and the status line"; fi
$T resize-window -t tui -x 60 -y 20
if wait_for "terminal too small (need 80x24)" 10; then ok "60x20 says the terminal is too small"
else bad "60x20 says the terminal is too small"; fi
$T resize-window -t tui -x 100 -y 32
if wait_for "ICL error" 10 && wait_for "│ prompt" 1 && wait_gone "too small" 2; then ok "back at 100x32 the panels return"
else bad "back at 100x32 the panels return"; fi

# ---- quitting --------------------------------------------------------------------------------------------------

keys C-d
if wait_for "quit anyway? (y/n)" 10; then
    keys y
    if wait_for "iclplay exited rc=0" 10 && ! screen | grep -qF "ICL error"; then
        ok "Ctrl-D asks about the unsaved model; y quits and the screen is given back"
    else bad "y quits and the screen is given back"; fi
else bad "Ctrl-D asks about the unsaved model"; fi
n=50
while [ $n -gt 0 ] && [ ! -s "$tmp/stty" ]; do sleep 0.1; n=$((n - 1)); done
if grep -qE '(^| )icanon( |$)' "$tmp/stty" && grep -qE '(^| )echo( |$)' "$tmp/stty" &&
    grep -qE '(^| )icrnl( |$)' "$tmp/stty" && grep -qE '(^| )isig( |$)' "$tmp/stty"; then
    ok "the terminal modes are restored (icanon echo icrnl isig)"
else
    bad "the terminal modes are restored" "$(cat "$tmp/stty")"
fi

# ---- ASCII fallback ------------------------------------------------------------------------------------------
# (a small model: this only looks at the drawing)

echo 'm, t, tr = icl.build(icl.presets.linear{ arch = "mambaformer", model = { d_model = 16 } }); tr:step(2)' \
    > "$tmp/small.lua"
start C "ICLPLAY_START='$tmp/small.lua'"
if wait_for "ICL error" 30 && wait_for "| prompt" 5; then
    if screen | LC_ALL=C grep -q '[^[:print:][:space:]]'; then bad "a non-UTF-8 locale draws ASCII only"
    else ok "a non-UTF-8 locale draws ASCII only"; fi
else bad "the TUI starts in the C locale"; fi
keys C-d
wait_for "quit anyway? (y/n)" 5 && keys y
wait_for "iclplay exited" 5 || bad "the C-locale TUI quits"

test_end
