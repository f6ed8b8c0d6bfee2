# CUDA plugin gemmaclf_cuda.so, included by the root Makefile before the PGXS part.
# Built when nvcc is found and USE_CUDA != 0; the core loads it at run time with dlopen, so
# nothing else links against CUDA. The CUDA runtime is linked statically (-cudart static):
# at run time the plugin needs only the driver (libcuda) and libcublas/libcublasLt, found
# through the toolkit's lib64 (rpath) or the dynamic loader's path.
#   make USE_CUDA=0           skip the plugin
#   make CUDA_ARCHS="80 90"   SASS targets (PTX of the first is embedded for newer GPUs)

USE_CUDA ?= 1
NVCC ?= $(shell command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_ARCHS ?= 80 90

# Forward-pass benchmark (any device; used by scripts/gpu-check.sh): make bench. Built by the
# root Makefile's $(BUILD)/bench/% rule.
BENCH_BIN := $(BUILD)/bench/bench_forward
.PHONY: bench
bench: $(BENCH_BIN)
-include $(BENCH_BIN).d

# The plugin's sources compiled with g++ against test/cuda_emu, a CPU stand-in for the CUDA
# runtime and cuBLAS (a test tool: scripts/cuda-emu-check.sh). Needs no CUDA toolkit.
CUDA_EMU_PLUGIN := $(BUILD)/cuda-emu/gemmaclf_cuda.so
.PHONY: cuda-emu
cuda-emu: $(CUDA_EMU_PLUGIN)
$(CUDA_EMU_PLUGIN): $(wildcard src/cuda/*.cu src/cuda/*.h test/cuda_emu/*) src/core/model/cuda_plugin.h src/core/model/gemma3.h src/core/model/model.h src/core/common/error.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O3 -march=native -g -U_FORTIFY_SOURCE -fPIC -shared -fvisibility=hidden -DGCU_EMULATE \
	  -Wall -Wextra -Werror -Wno-unknown-pragmas \
	  -Itest/cuda_emu -Isrc/core -Isrc/cuda -x c++ $(sort $(wildcard src/cuda/*.cu)) \
	  test/cuda_emu/emu.cpp -o $@ -Wl,-z,defs
# test_cuda_emu runs it (skipped under ASan, which cannot follow the emulator's stack switches)
ifneq ($(SANITIZE),1)
unittest: $(CUDA_EMU_PLUGIN)
endif

ifneq ($(USE_CUDA),0)
ifneq ($(strip $(NVCC)),)

CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_LIBDIR ?= $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib $(CUDA_HOME)/targets/x86_64-linux/lib))
CUDA_PLUGIN := $(BUILD)/gemmaclf_cuda.so
CUDA_SRCS := $(sort $(wildcard src/cuda/*.cu))
CUDA_OBJS := $(CUDA_SRCS:src/cuda/%.cu=$(BUILD)/cuda/%.o)
CUDA_GENCODE := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(firstword $(CUDA_ARCHS)),code=compute_$(firstword $(CUDA_ARCHS))
# Host code: the same strictness as the core. Device code: nvcc warnings are errors too.
CUDA_HOST_FLAGS := -fPIC,-fvisibility=hidden,-Wall,-Wextra,-Werror
NVCC_FLAGS ?= -O3 -std=c++17 -lineinfo
NVCC_ALL_FLAGS := $(NVCC_FLAGS) $(CUDA_GENCODE) -Werror all-warnings \
                  -Xcompiler $(CUDA_HOST_FLAGS) -Isrc/core -Isrc/cuda

.PHONY: cuda
cuda: $(CUDA_PLUGIN)
# test_device loads the real plugin from $(BUILD)/
unittest: $(CUDA_PLUGIN)

$(BUILD)/cuda/%.o: src/cuda/%.cu src/cuda/gc_cuda.h src/core/model/cuda_plugin.h src/core/model/gemma3.h src/core/model/model.h src/core/common/error.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_ALL_FLAGS) -c $< -o $@

# Only gc_cuda_plugin_api is exported (everything else is hidden); -z defs catches a missing
# symbol at build time rather than at dlopen.
$(CUDA_PLUGIN): $(CUDA_OBJS)
	@mkdir -p $(dir $@)
	$(NVCC) -shared $(CUDA_GENCODE) -cudart static -o $@ $^ \
	  -L$(CUDA_LIBDIR) -lcublas -Xlinker -rpath,$(CUDA_LIBDIR) -Xlinker -z,defs \
	  -lpthread -ldl -lrt

# Installed beside the PostgreSQL module, where the loader looks first. pgxs.mk's install
# rule has its own recipe, so this adds a prerequisite to it.
ifneq ($(shell $(or $(PG_CONFIG),pg_config) --pgxs 2>/dev/null),)
.PHONY: install-cuda-plugin uninstall-cuda-plugin
install: install-cuda-plugin
install-cuda-plugin: $(CUDA_PLUGIN) installdirs
	$(INSTALL_SHLIB) $(CUDA_PLUGIN) '$(DESTDIR)$(pkglibdir)/gemmaclf_cuda.so'
uninstall: uninstall-cuda-plugin
uninstall-cuda-plugin:
	rm -f '$(DESTDIR)$(pkglibdir)/gemmaclf_cuda.so'
endif

endif
endif
