# testlib.sh - what the shell tests share (sourced: `. tests/testlib.sh`;
# tests run from the repository root). The shell twin of tests/testlib.h.
#
#   test_begin NAME        $EXE made absolute, a private $tmp (removed on
#                          exit, with every tmux server started here)
#   ok NAME / bad NAME [DETAILS]   one result line; DETAILS (or, for a tmux
#                          test, the screen) is printed indented under a failure
#   check NAME CMD...      ok when CMD succeeds, else bad with its output
#   test_end               "N passed, N failed"; exit status 1 on any failure
#
# tmux (a fresh private server per tmux_start: reusing a socket right after
# kill-server races):
#   tmux_start SESSION CMD    run CMD in a 100x32 pane; $T is the tmux command
#   screen                    the pane's text
#   wait_for TEXT [SEC]       poll (0.1 s) until the screen shows TEXT (fixed string)
#   wait_re REGEX [SEC]       ... matches REGEX (extended)
#   wait_gone TEXT [SEC]      ... no longer shows TEXT
#   keys KEY...               tmux send-keys (key names)
#   type_line TEXT            literal text, then Enter
# Note: capture-pane drops trailing blanks: a prompt "> " reads as ">".

test_begin() {
    EXE=${EXE:-./iclplay}
    case "$EXE" in /*) ;; *) EXE="$PWD/$EXE" ;; esac
    passed=0
    failed=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/iclplay-test-$1.XXXXXX") || exit 1
    tl_servers=""
    T=""
    SESSION=""
    trap 'test_cleanup' EXIT
    trap 'exit 1' INT TERM HUP
}

# tl_tree PID: PID and all its descendants.
tl_tree() {
    echo "$1"
    for tl_c in $(pgrep -P "$1" 2>/dev/null); do tl_tree "$tl_c"; done
}

# tl_stop_server TMUX-COMMAND: kills the tmux server; every process that ran
# in its panes must be gone within 10 s (a program whose terminal vanishes
# gets SIGHUP and must end). Survivors are killed; in a release build that is
# a failure, in a sanitizer build a note (LeakSanitizer's exit-time check can
# hang in a process whose terminal is gone: it waits forever for a thread
# to stop; seen as an orphaned iclplay-asan spinning after `make test`).
tl_stop_server() {
    tl_pids=""
    for tl_p in $($1 list-panes -a -F '#{pane_pid}' 2>/dev/null); do tl_pids="$tl_pids $(tl_tree "$tl_p")"; done
    $1 kill-server >/dev/null 2>&1
    [ -z "$tl_pids" ] && return 0
    tl_i=100
    while [ $tl_i -gt 0 ]; do
        tl_alive=""
        for tl_p in $tl_pids; do kill -0 "$tl_p" 2>/dev/null && tl_alive="$tl_alive $tl_p"; done
        [ -z "$tl_alive" ] && return 0
        sleep 0.1
        tl_i=$((tl_i - 1))
    done
    tl_what=$(ps -o pid=,args= -p "$(echo $tl_alive | tr ' ' ',')" 2>/dev/null | head -3)
    kill -KILL $tl_alive 2>/dev/null
    if [ -n "$ICLPLAY_TEST_SANITIZED" ]; then
        echo "note    still running 10 s after its terminal closed, killed (sanitizer build): $tl_what"
    else
        bad "every program ends when its terminal closes" "still running 10 s after the tmux server was killed:
$tl_what"
    fi
}

test_cleanup() {
    for s in $tl_servers; do tmux -L "$s" -f /dev/null kill-server >/dev/null 2>&1; done
    sockdir="${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)"
    for s in $tl_servers; do rm -f "$sockdir/$s"; done
    rm -rf "$tmp"
}

ok() { passed=$((passed + 1)); echo "ok      $1"; }

bad() {
    failed=$((failed + 1))
    echo "not ok  $1"
    if [ -n "$2" ]; then
        printf '%s\n' "$2" | sed 's/^/  | /'
    elif [ -n "$SESSION" ]; then
        echo "  --- the screen was:"
        screen | sed 's/^/  | /'
    fi
    return 0
}

check() { # check NAME COMMAND...: ok when the command succeeds
    tl_name=$1
    shift
    if "$@" >"$tmp/check.out" 2>&1; then ok "$tl_name"; else bad "$tl_name" "$(head -20 "$tmp/check.out")"; fi
}

test_end() {
    [ -n "$T" ] && tl_stop_server "$T"
    T=""
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

have_tmux() {
    command -v tmux >/dev/null 2>&1 && return 0
    echo "skip    tmux is not installed (scripts/install-deps.sh installs it)"
    return 1
}

tmux_start() { # tmux_start SESSION CMD
    [ -n "$T" ] && tl_stop_server "$T"
    tl_n=$(( ${tl_n:-0} + 1 ))
    tl_sock="iclplay-test-$$-$tl_n"
    tl_servers="$tl_servers $tl_sock"
    T="tmux -L $tl_sock -f /dev/null"
    SESSION=$1
    $T new-session -d -s "$SESSION" -x 100 -y 32 "$2"
}

# The pane's text; a capture that fails (a busy server) is tried once more.
screen() { $T capture-pane -p -t "$SESSION" 2>/dev/null || { sleep 0.1; $T capture-pane -p -t "$SESSION" 2>/dev/null; }; }

# screen_last ERE [SECONDS]: the last match of ERE on the screen, waiting up
# to SECONDS (5) for one: a value read right after wait_re saw it can miss
# one capture (a repaint, a busy tmux), which made a test read "".
screen_last() {
    tl_i=$(( ${2:-5} * 10 ))
    while [ $tl_i -gt 0 ]; do
        tl_m=$(screen | grep -oE -- "$1" | tail -1)
        [ -n "$tl_m" ] && { printf '%s\n' "$tl_m"; return 0; }
        sleep 0.1
        tl_i=$((tl_i - 1))
    done
    return 1
}

wait_for() {
    tl_i=$(( ${2:-10} * 10 ))
    while [ $tl_i -gt 0 ]; do
        screen | grep -qF -- "$1" && return 0
        sleep 0.1
        tl_i=$((tl_i - 1))
    done
    return 1
}

wait_re() {
    tl_i=$(( ${2:-10} * 10 ))
    while [ $tl_i -gt 0 ]; do
        screen | grep -qE -- "$1" && return 0
        sleep 0.1
        tl_i=$((tl_i - 1))
    done
    return 1
}

wait_gone() {
    tl_i=$(( ${2:-10} * 10 ))
    while [ $tl_i -gt 0 ]; do
        screen | grep -qF -- "$1" || return 0
        sleep 0.1
        tl_i=$((tl_i - 1))
    done
    return 1
}

keys() { $T send-keys -t "$SESSION" "$@"; }
type_line() { $T send-keys -t "$SESSION" -l "$1"; $T send-keys -t "$SESSION" Enter; }
