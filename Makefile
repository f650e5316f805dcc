# iclplay - an interactive terminal playground for in-context learning.
#
#   make            build ./iclplay (C11, -O2, strict warnings, OpenMP)
#   make run        install what is missing, build, and start the playground
#   make test       build and run every test (C unit tests, gradient checks, Lua, TUI in tmux),
#                   then the whole suite again on the AddressSanitizer + UBSan build, then
#                   a valgrind memcheck of a short headless training session, then the
#                   kernels' tests on that portable build (the paths without AVX-512)
#   make test-release  only the first of those (quick, while working)
#   make bench      training-step speed per architecture, next to the sgemm ceiling
#   make bench-torch  the same steps in PyTorch, side by side (scripts/bench_torch.sh)
#   make debug      -O0 -g build in build/debug (./iclplay-debug)
#   make asan       AddressSanitizer + UBSan build in build/asan, and its tests
#   make valgrind   memcheck of a short training session (a portable -O1 -g build)
#   make MODE=valgrind kernel-tests   the kernels' tests (tests/core) on that build
#   make fuzz       libFuzzer targets, FUZZ_TIME seconds each (mk/fuzz.mk)
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

# -O3 and no fast-math: the gradient checks and bit-exact resume rely on IEEE
# semantics, which -O3 keeps (no reassociation, no FMA contraction under
# -std=c11); it vectorises the loops that carry no `omp simd` (GCC 12's -O2
# only takes the very cheapest): small Transformer step 1.18x, Mamba 1.08x.
# -fno-math-errno: no math function's errno is ever read here, and without
# it sqrtf must stay a scalar call (it may set errno), which kept Adam's loop
# scalar (src/nn/optim.c); it changes no value (sqrt is exactly rounded).
# -fopenmp: non-GEMM kernels split over batch and channels; GEMMs are left to
# OpenBLAS's own threads (never called inside a parallel region).
OPT_release := -O3 -DNDEBUG
OPT_debug   := -O0 -g3
OPT_asan    := -O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT_valgrind := -O1 -g
OPT     := $(OPT_$(MODE))
# valgrind 3.19 does not know AVX-512: its build is portable.
ifeq ($(MODE),valgrind)
NATIVE  :=
endif
# Where the target has AVX-512, GCC 12 still makes `omp simd` loops 256 bits
# wide (its tuning for these cores) unless asked for 512: on an AVX-512 Xeon
# that made GELU 1.15x and the small/medium Mamba and Transformer steps
# 1.03-1.09x (results differ from a 256-bit build in the last bits of
# vectorised sums, not between thread counts). Asked only when the target
# has AVX-512, so a portable build is unchanged.
VECWIDTH := $(if $(findstring __AVX512F__,$(shell $(CC) $(NATIVE) -dM -E -x c /dev/null 2>/dev/null)),-mprefer-vector-width=512)

# -Wno-psabi: without AVX-512 (the portable and valgrind builds) GCC notes
# that core/vec16.h's 64-byte vectors are passed by another ABI; they never
# leave a translation unit (static inline), so no two ABIs ever meet.
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wwrite-strings -Wvla -Wformat=2 -Wno-format-nonliteral -Wno-psabi \
           -Werror=implicit-function-declaration -Werror=return-type

# pkg-config is evaluated lazily (recursive '='), after the deps step ran.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  = -std=c11 -D_DEFAULT_SOURCE -fno-math-errno -fno-trapping-math -fopenmp -Isrc -I$(BLAS_INC) $(OPT) $(NATIVE) $(VECWIDTH) $(WARN) $(PKG_CFLAGS) -MMD -MP $(EXTRA_CFLAGS)
LDLIBS  = $(BLAS_LIBS) $(PKG_LIBS) -fopenmp -lm
SAN_asan := -fsanitize=address,undefined,float-cast-overflow
LDFLAGS = $(SAN_$(MODE))

LIB_SRC  := $(sort $(wildcard src/core/*.c src/nn/*.c src/tasks/*.c src/train/*.c src/lua/*.c src/tui/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/main.o
TEST_SRC := $(sort $(wildcard tests/*/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# The kernels' own tests (tests/core), run again on the portable build by
# `make test`: the kernels keep paths for targets without AVX-512 (8-lane
# blocks where GCC lowers 16-lane vectors through the stack), which the
# native build of an AVX-512 machine never takes. Not test_fastmath: its
# functions are scalar (a vector twin exists only for AVX-512), and its
# sweeps take 100 s at the portable build's -O1.
KERNEL_TEST_BIN := $(filter-out %/test_fastmath,$(filter $(BUILD)/tests/core/%,$(TEST_BIN)))
LUA_TESTS := $(sort $(wildcard tests/lua/test_*.lua tests/*/test_*.sh))
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
DEPS_OK  := build/.deps-ok

EXE_release := iclplay
EXE_debug   := iclplay-debug
EXE_asan    := iclplay-asan
EXE_valgrind := build/valgrind/iclplay
EXE := $(EXE_$(MODE))

.PHONY: all run test test-release test-suite bench bench-torch debug asan valgrind kernel-tests clean deps test-bins
all: $(EXE)

# The dependency step: a stamp that is rebuilt only when a header is missing.
$(DEPS_OK): scripts/install-deps.sh
	@scripts/install-deps.sh
	@mkdir -p build && touch $@
deps: $(DEPS_OK)

# Objects also depend on the flags they were compiled with: $(BUILD)/.cflags
# is rewritten only when the command line changes (another OPT, NATIVE=,
# EXTRA_CFLAGS, or a Makefile edit of them), so a build made before such a
# change is compiled again instead of mixing old and new objects.
CFLAGS_FILE := $(BUILD)/.cflags
$(CFLAGS_FILE): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@
FORCE:
.PHONY: FORCE

$(BUILD)/%.o: %.c $(CFLAGS_FILE) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libicl.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(EXE): $(MAIN_OBJ) $(BUILD)/libicl.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libicl.a tests/testlib.h $(CFLAGS_FILE) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@echo "  CCLD    $@"
	@$(CC) $(CFLAGS) -Itests $(LDFLAGS) -o $@ $< $(BUILD)/libicl.a $(LDLIBS)

test-bins: $(TEST_BIN) $(EXE)

# test-suite runs every test binary, Lua script and shell test of this
# MODE with tests/run.sh, which prints one closing line "N passed, N
# failed" and exits non-zero on any failure. OpenMP threads wait passively
# (see src/main.c, which does the same for iclplay itself): spinning waits
# make two threads slower than one on a machine with anything else running.
# Sanitizer reports go to files (log_path) as well as failing the process,
# because a report inside the TUI under tmux has no exit status to fail:
# any file there fails the suite.
# JOBS tests run at a time (tests/run.sh); the slow ones (tmux, Table 1's
# pipeline) mostly wait, so two share the two cores well.
JOBS ?= 2
SAN_LOG := $(CURDIR)/build/asan/reports
test-suite: test-bins
ifeq ($(MODE),asan)
	@rm -rf $(SAN_LOG) && mkdir -p $(SAN_LOG)
	@ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:log_path=$(SAN_LOG)/asan:log_exe_name=1 \
	 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(SAN_LOG)/ubsan \
	 OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} BUILD=$(BUILD) EXE=./$(EXE) JOBS=$(JOBS) ICLPLAY_TEST_SANITIZED=1 \
	 tests/run.sh $(TEST_BIN) $(LUA_TESTS); rc=$$?; \
	 if ls $(SAN_LOG)/* >/dev/null 2>&1; then echo "# sanitizer reports:"; cat $(SAN_LOG)/*; exit 1; fi; exit $$rc
else
	@OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} BUILD=$(BUILD) EXE=./$(EXE) JOBS=$(JOBS) tests/run.sh $(TEST_BIN) $(LUA_TESTS)
endif

test-release: test-suite

test: test-suite
	@echo "# the same suite on the AddressSanitizer + UBSan build (build/asan)"
	@$(MAKE) --no-print-directory MODE=asan test-suite
	@echo "# valgrind memcheck of a short training session"
	@$(MAKE) --no-print-directory MODE=valgrind valgrind-run
	@echo "# the kernels' tests on the portable build (no AVX-512: the other code paths)"
	@$(MAKE) --no-print-directory MODE=valgrind kernel-tests

# A short headless session under memcheck: errors or definite leaks fail it.
valgrind-run: $(EXE)
	@command -v valgrind >/dev/null || { echo "valgrind is missing (scripts/install-deps.sh installs it)"; exit 1; }
	@OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE ICLPLAY_NO_REEXEC=1 ICLPLAY_LUA=$(CURDIR)/lua valgrind --quiet --error-exitcode=1 \
	    --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	    ./$(EXE) run tests/valgrind/session.lua && echo "valgrind: no errors, no definite leaks"
valgrind:
	$(MAKE) MODE=valgrind valgrind-run
kernel-tests: $(KERNEL_TEST_BIN)
	@OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} BUILD=$(BUILD) JOBS=$(JOBS) tests/run.sh $(KERNEL_TEST_BIN)

bench: $(BENCH_BIN)
	@for b in $(BENCH_BIN); do OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $$b || exit 1; done

# iclplay against PyTorch on this CPU, side by side (issue 6): installs
# Debian's python3-torch and libjemalloc2 when missing; never part of make test.
bench-torch: $(BUILD)/tests/bench/bench_step
	@BENCH_STEP=$(BUILD)/tests/bench/bench_step sh scripts/bench_torch.sh

run: $(EXE)
	./$(EXE)

debug:
	$(MAKE) MODE=debug
asan:
	$(MAKE) MODE=asan test-suite

clean:
	rm -rf build iclplay iclplay-debug iclplay-asan

-include mk/fuzz.mk

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
# test and bench binaries rebuild when a header they include changes
-include $(TEST_BIN:=.d) $(BENCH_BIN:=.d)
