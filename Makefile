# gemmaclf build.
#   make               core library objects, bin/gemmaclf, the PostgreSQL module (when pg_config
#                      is found) and the CUDA plugin (when nvcc is found; USE_CUDA=0 skips it)
#   make unittest      C unit tests (build/test/*), against ../shared reference data
#   make SANITIZE=1 unittest   the same under AddressSanitizer + UBSan (into build-asan/)
#   make install / installcheck   PGXS install and pg_regress (sql/ + expected/)
#
# The core (src/core) is C11 without PostgreSQL headers and is compiled once with our own
# strict flags; the PostgreSQL layer (src/pg) is compiled by PGXS with the server's flags.

CORE_SRCS := $(sort $(wildcard src/core/*/*.c))
CLI_SRCS  := $(sort $(wildcard src/cli/*.c))
PG_SRCS   := $(sort $(wildcard src/pg/*.c))
TEST_SRCS := $(sort $(wildcard test/test_*.c))

ifeq ($(SANITIZE),1)
BUILD ?= build-asan
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SAN_FLAGS :=
endif

# -march=native: our own kernels (attention, norms) vectorise for the build machine;
# OpenBLAS dispatches at run time anyway. Packagers set ARCH_FLAGS= for portable builds.
ARCH_FLAGS ?= -march=native
OPT_FLAGS ?= -O3
# oneDNN (Debian libdnnl-dev, no pkg-config file) runs the bf16 / int8 linear layers; Debian
# builds it on OpenMP (libgomp), whose omp_set_num_threads sets its thread count. Without its
# header (or with USE_DNNL=0) the build still works and those precisions fall back to f32.
USE_DNNL ?= $(if $(wildcard /usr/include/oneapi/dnnl/dnnl.h),1,0)
ifeq ($(USE_DNNL),1)
DNNL_LIBS  := -ldnnl -lgomp
# its passes over the activations run on the same OpenMP threads as oneDNN's products
$(BUILD)/core/model/lowp_matmul.o: GC_CFLAGS += -fopenmp
else
DNNL_DEFS  := -DGC_NO_DNNL
endif
DEP_CFLAGS := $(shell pkg-config --cflags openblas libcjson libcrypto) $(DNNL_DEFS)
DEP_LIBS   := $(shell pkg-config --libs openblas libcjson libcrypto) $(DNNL_LIBS) -lm -ldl -lpthread
GC_CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT_FLAGS) $(ARCH_FLAGS) -fPIC -fvisibility=hidden \
             -Wall -Wextra -Werror $(SAN_FLAGS) -Isrc/core $(DEP_CFLAGS)
GC_LDFLAGS := $(SAN_FLAGS)

CORE_OBJS := $(CORE_SRCS:src/core/%.c=$(BUILD)/core/%.o)
CLI_OBJS  := $(CLI_SRCS:src/cli/%.c=$(BUILD)/cli/%.o)
TEST_BINS := $(TEST_SRCS:test/%.c=$(BUILD)/test/%)
CORE_LIB  := $(BUILD)/libgemmaclf_core.a
ifeq ($(BUILD),build)
GC_BIN    := bin/gemmaclf
else
GC_BIN    := $(BUILD)/bin/gemmaclf
endif

.PHONY: core cli unittest
core: $(CORE_LIB)
cli: $(GC_BIN)

$(BUILD)/core/%.o: src/core/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GC_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/cli/%.o: src/cli/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GC_CFLAGS) -Isrc/cli -MMD -MP -c $< -o $@

$(CORE_LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(GC_BIN): $(CLI_OBJS) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GC_LDFLAGS) -o $@ $(CLI_OBJS) $(CORE_LIB) $(DEP_LIBS)

$(BUILD)/test/%: test/%.c test/gc_test.h $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GC_CFLAGS) -Itest -MMD -MP -o $@ $< $(CORE_LIB) $(GC_LDFLAGS) $(DEP_LIBS)

# Unit tests run from the repository root; they find the reference data through
# GC_SHARED (default ../shared) and the CLI through GC_BIN.
unittest: $(TEST_BINS) $(GC_BIN)
	@fail=0; for t in $(TEST_BINS); do \
	  echo "== $$t"; GC_BIN=$(GC_BIN) $$t || fail=1; \
	done; exit $$fail

-include $(CORE_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_BINS:=.d)

# CUDA plugin (optional, loaded at run time with dlopen).
-include src/cuda/cuda.mk

# ---------------------------------------------------------------------------------------------
# PostgreSQL extension (PGXS). Skipped where pg_config is absent (e.g. a GPU check machine).
PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(PGXS),)
ifneq ($(SANITIZE),1)
MODULE_big = gemmaclf
OBJS = $(PG_SRCS:.c=.o) $(CORE_OBJS)
EXTENSION = gemmaclf
DATA = $(wildcard sql/gemmaclf--*.sql)
REGRESS = $(filter-out gemmaclf--%,$(basename $(notdir $(wildcard sql/*.sql))))
PG_CPPFLAGS += -Isrc/core $(DEP_CFLAGS)
SHLIB_LINK += $(DEP_LIBS)
EXTRA_CLEAN = build build-asan bin
-include src/pg/pg.mk
all: $(GC_BIN) $(CUDA_PLUGIN)
include $(PGXS)
# The server's CFLAGS are those of the compiler that built it: drop the options this compiler
# rejects (the PostgreSQL 18 wheel's -Wmissing-variable-declarations is gcc 14's, unknown to gcc 12).
GC_CC_UNKNOWN := $(shell LC_ALL=C $(CC) $(CFLAGS) -fsyntax-only -x c /dev/null 2>&1 | \
                   sed -n "s/.*unrecognized command-line option '\([^']*\)'.*/\1/p")
override CFLAGS := $(filter-out $(GC_CC_UNKNOWN),$(CFLAGS))
endif
endif

ifeq ($(PGXS)$(SANITIZE),)
all: $(GC_BIN) $(CUDA_PLUGIN)
clean:
	rm -rf build build-asan bin
endif
ifeq ($(SANITIZE),1)
.DEFAULT_GOAL := unittest
endif

# Benchmarks (bench/*.c), linked like the tests: make build/bench/bench_prefill
$(BUILD)/bench/%: bench/%.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(GC_CFLAGS) -MMD -MP -o $@ $< $(CORE_LIB) $(GC_LDFLAGS) $(DEP_LIBS)
