#!/bin/sh
# install-deps.sh - install the Debian packages iclplay needs, if any is missing.
#
# Checks each by a file it provides; installs only what is missing (after
# apt-get update). Safe to run many times. Called by the Makefile when its
# stamp build/.deps-ok is absent.
set -eu

missing=""
need() { # need PACKAGE FILE-OR-COMMAND
    case "$2" in
    /*) [ -e "$2" ] || missing="$missing $1" ;;
    *) command -v "$2" >/dev/null 2>&1 || missing="$missing $1" ;;
    esac
}
need gcc gcc
need make make
need pkg-config pkg-config
need libopenblas-openmp-dev /usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h
need libopenblas-openmp-dev /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so
need liblua5.4-dev /usr/include/lua5.4/lua.h
need libncurses-dev /usr/include/ncursesw/ncurses.h
need libreadline-dev /usr/include/readline/readline.h
need tmux tmux
need procps pgrep      # the tmux tests check that no program outlives its terminal
need valgrind valgrind  # make test: memcheck of a short session
# (make fuzz also needs clang-14 and libclang-rt-14-dev; mk/fuzz.mk says so when they are missing)

if [ -z "$missing" ]; then
    exit 0
fi
echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-deps: need root (or sudo) to install:$missing" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done" >&2
