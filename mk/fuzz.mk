# mk/fuzz.mk - libFuzzer targets (issue 7), included by the Makefile.
#
#   make fuzz                 build every target and run each for FUZZ_TIME seconds
#   make fuzz FUZZ_TIME=600   longer
#   make fuzz FUZZ_NAMES=repl one target (checkpoint, spec, repl)
#   make fuzz-build           build only (build/fuzz/fuzz_<name>)
#
# Not part of `make test`: what `make test` runs is the replay of every kept
# input (tests/fuzz/test_fuzz_replay.c, built by the Makefile's test rule).
#
# The targets are tests/fuzz/fuzz_<name>.c built with clang and
# -fsanitize=fuzzer,address,undefined against the library sources compiled
# with -fsanitize=fuzzer-no-link,address,undefined into build/fuzz/ (coverage
# feedback in the library, sanitizers everywhere; UB aborts instead of
# printing and going on, so libFuzzer keeps the input). The library is built
# without -fopenmp: clang's OpenMP runtime (libomp) and the libgomp that
# OpenBLAS's OpenMP build loads must not share a process, and one thread is
# what a fuzzer wants anyway; -lgomp still provides omp_get_max_threads.
# tests/fuzz/fuzz.sh runs each target on a work copy of its seed corpus
# (build/fuzz/corpus/<name>, which keeps growing between runs) and copies
# every crash-*, timeout-*, oom-* and leak-* input into
# tests/fuzz/crashes/<name>/, where the replay test finds it.
#
# Needs clang 14 and its libFuzzer runtime (Debian: clang-14 libclang-rt-14-dev).

FUZZ_CC    ?= $(firstword $(shell command -v clang-14 clang 2>/dev/null) clang)
FUZZ_TIME  ?= 60
FUZZ_NAMES ?= checkpoint spec repl
FUZZ_DIR   := build/fuzz

# Known bugs the fuzzers would stop at again and again, stepped around while
# their fixes are pending (each input is kept under tests/fuzz/crashes/ and
# replayed, without these, by make test): functions UBSan leaves alone
# (tests/fuzz/known.ignorelist) and FUZZ_SKIP_* checks the targets skip.
# Empty it (`make fuzz FUZZ_KNOWN=`) once src/ is fixed.
FUZZ_KNOWN  ?= -fsanitize-ignorelist=tests/fuzz/known.ignorelist

# -O1 -g: fast enough to fuzz, stacks that point at the line.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  = -std=c11 -D_DEFAULT_SOURCE -Isrc -I$(BLAS_INC) -O1 -g $(NATIVE) $(WARN) -Wno-unknown-pragmas \
               -Wno-unused-variable $(PKG_CFLAGS) $(FUZZ_SAN) $(FUZZ_KNOWN)
FUZZ_LDLIBS  = $(BLAS_LIBS) $(PKG_LIBS) -lgomp -lm
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o)
FUZZ_BIN     := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_OK      := $(FUZZ_DIR)/.clang-ok
FUZZ_STAMP   := $(FUZZ_DIR)/.flags

.PHONY: fuzz fuzz-build fuzz-force

# Everything is rebuilt when the compiler or the flags change (FUZZ_KNOWN...).
$(FUZZ_STAMP): fuzz-force
	@mkdir -p $(FUZZ_DIR)
	@echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' | cmp -s - $@ || echo '$(FUZZ_CC) $(FUZZ_CFLAGS)' > $@

# A one-line program must link with -fsanitize=fuzzer, else say what to install.
$(FUZZ_OK):
	@mkdir -p $(FUZZ_DIR)
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
	    > $(FUZZ_DIR)/probe.c
	@$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $(FUZZ_DIR)/probe $(FUZZ_DIR)/probe.c 2>/dev/null || { \
	    echo "make fuzz: '$(FUZZ_CC)' cannot build libFuzzer targets; install clang-14 and libclang-rt-14-dev" \
	         "(apt-get install clang-14 libclang-rt-14-dev) or set FUZZ_CC" >&2; exit 1; }
	@rm -f $(FUZZ_DIR)/probe $(FUZZ_DIR)/probe.c
	@touch $@

$(FUZZ_DIR)/src/%.o: src/%.c tests/fuzz/known.ignorelist $(FUZZ_STAMP) | $(DEPS_OK) $(FUZZ_OK)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libicl.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_DIR)/libicl.a $(FUZZ_STAMP) | $(FUZZ_OK)
	@echo "  FUZZLD  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests -DFUZZ_LIBFUZZER -fsanitize=fuzzer -MMD -MP -MF $@.d -o $@ $< $(FUZZ_DIR)/libicl.a $(FUZZ_LDLIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@FUZZ_TIME=$(FUZZ_TIME) FUZZ_DIR=$(FUZZ_DIR) tests/fuzz/fuzz.sh $(FUZZ_NAMES)

# The replay test #includes the targets: rebuild it when they change (the
# Makefile's test rule knows only tests/fuzz/test_fuzz_replay.c itself).
$(BUILD)/tests/fuzz/test_fuzz_replay: $(wildcard tests/fuzz/fuzz_*.c) tests/fuzz/fuzz.h

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BIN:=.d)
