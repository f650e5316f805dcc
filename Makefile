# iclplay - an interactive terminal playground for in-context learning.
#
#   make            build ./iclplay (C11, -O2, strict warnings, OpenMP)
#   make run        install what is missing, build, and start the playground
#   make test       build and run every test (C unit tests, gradient checks, ...)
#   make bench      training-step speed per architecture, next to the sgemm ceiling
#   make debug      -O0 -g build in build/debug (./iclplay-debug)
#   make asan       AddressSanitizer + UBSan build in build/asan, and its tests
#   make clean
#
# Every build needs OpenBLAS, Lua 5.4, ncursesw and GNU Readline. When one of
# their headers is missing, scripts/install-deps.sh installs the Debian
# packages first (it runs apt-get update; you must be root or have sudo).

PKGS    := lua5.4 ncursesw readline

# OpenBLAS's OpenMP build, linked by path: our kernels and OpenBLAS then share
# one OpenMP thread pool. With the default pthread build, OpenBLAS's threads
# yield-spin while our OpenMP threads spin too, and on two cores a training
# step ran 2-6x slower with 2 threads than with 1 (perf: most time in
# sched_yield). Same OpenBLAS version, only its threading back end differs.
BLAS_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp
BLAS_LIBS := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas

# Vector instructions of this machine for our kernels (AVX2/AVX-512 make the
# selective scan's polynomial exp 8-16 lanes wide). `make NATIVE=` builds a
# portable binary instead.
NATIVE  ?= -march=native
MODE    ?= release
BUILD   := build/$(MODE)

# -O2 and no fast-math: the gradient checks and bit-exact resume rely on IEEE
# semantics. -fopenmp: non-GEMM kernels split over batch and channels; GEMMs
# are left to OpenBLAS's own threads (never called inside a parallel region).
OPT_release := -O2 -DNDEBUG
OPT_debug   := -O0 -g3
OPT_asan    := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := $(OPT_$(MODE))

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wwrite-strings -Wvla -Wformat=2 -Wno-format-nonliteral \
           -Werror=implicit-function-declaration -Werror=return-type

# pkg-config is evaluated lazily (recursive '='), after the deps step ran.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  = -std=c11 -D_DEFAULT_SOURCE -fopenmp -Isrc -I$(BLAS_INC) $(OPT) $(NATIVE) $(WARN) $(PKG_CFLAGS) -MMD -MP $(EXTRA_CFLAGS)
LDLIBS  = $(BLAS_LIBS) $(PKG_LIBS) -fopenmp -lm
SAN_asan := -fsanitize=address,undefined
LDFLAGS = $(SAN_$(MODE))

LIB_SRC  := $(sort $(wildcard src/core/*.c src/nn/*.c src/tasks/*.c src/train/*.c src/lua/*.c src/tui/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/main.o
TEST_SRC := $(sort $(wildcard tests/*/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LUA_TESTS := $(sort $(wildcard tests/lua/test_*.lua tests/*/test_*.sh))
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
DEPS_OK  := build/.deps-ok

EXE_release := iclplay
EXE_debug   := iclplay-debug
EXE_asan    := iclplay-asan
EXE := $(EXE_$(MODE))

.PHONY: all run test bench debug asan clean deps test-bins
all: $(EXE)

# The dependency step: a stamp that is rebuilt only when a header is missing.
$(DEPS_OK): scripts/install-deps.sh
	@scripts/install-deps.sh
	@mkdir -p build && touch $@
deps: $(DEPS_OK)

$(BUILD)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libicl.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(EXE): $(MAIN_OBJ) $(BUILD)/libicl.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libicl.a tests/testlib.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	@$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(BUILD)/libicl.a $(LDLIBS)

test-bins: $(TEST_BIN) $(EXE)

# Runs every test binary (and later the Lua and TUI suites) and prints one
# closing line "N passed, N failed"; exits non-zero on any failure.
# OpenMP threads wait passively (see src/main.c, which does the same for
# iclplay itself): spinning waits make two threads slower than one on a
# machine with anything else running.
test: test-bins
	@OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} BUILD=$(BUILD) EXE=./$(EXE) tests/run.sh $(TEST_BIN) $(LUA_TESTS)

bench: $(BENCH_BIN)
	@for b in $(BENCH_BIN); do OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $$b || exit 1; done

run: $(EXE)
	./$(EXE)

debug:
	$(MAKE) MODE=debug
asan:
	$(MAKE) MODE=asan test

clean:
	rm -rf build iclplay iclplay-debug iclplay-asan

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
