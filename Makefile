# flowturbo — build, test and install.
#
#   make            build/libflowturbo.a, build/include/flowturbo.h, build/flowturbo
#   make deps       install missing Debian packages (apt-get as root; prints the command otherwise)
#   make test       build and run the test runner (last line: tests: N passed, N failed, N skipped)
#   make test-asan  the same suite under -fsanitize=address,undefined
#   make goldens    regenerate tests/data fixtures with the PyTorch reference (needs python3-torch)
#   make bench      CPU benchmark against the PyTorch reference (bench/RESULTS.md)
#   make install PREFIX=/usr/local
#
# CUDA: compiled in when nvcc is found (CUDA=0 to disable); every .cu is built
# for sm_80 and sm_90a even on machines without a GPU.
#   make test-cuda  only the CUDA tests (build/test_cuda; they SKIP without a GPU)
#   make gpu-bench  build/flowturbo-bench (GPU benchmark, bench/GPU_NOTES.md)
#   make gpu-check  bash bench/gpu_check.sh: build, CUDA tests, benchmarks, PyTorch baseline
#
# Reliability (tests/README.md):
#   make fuzz       build the libFuzzer targets (clang) and run each for FUZZ_SECONDS (default 60)
#   make test-reliability  the fault scripts tests/reliability/*.sh

ifeq ($(origin CC),default)
CC      := gcc
endif
NVCC    ?= nvcc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
BUILD   ?= build
CUDA    ?= $(shell command -v $(NVCC) >/dev/null 2>&1 && echo 1 || echo 0)

DEB_PKGS := gcc make libopenblas-dev libopenblas0-pthread libpng-dev zlib1g-dev pkg-config

WARN     := -Wall -Wextra
CFLAGS   ?= -O2
BASE_CFLAGS := -std=c11 $(WARN) -fopenmp -D_DEFAULT_SOURCE -MMD -MP
LDLIBS   := -lopenblas -lpng -lz -lm -lpthread -fopenmp

LIB_SRC  := $(wildcard engine/*.c) $(wildcard kernels/*.c) $(wildcard kernels/cpu/*.c)
CLI_SRC  := $(wildcard host/*.c)
TEST_SRC := $(wildcard tests/*.c)
CU_SRC   := $(wildcard kernels/cuda/*.cu)
BENCH_SRC := bench/cpu_bench.c

# ---- CUDA section (kernels/cuda, bench/flowturbo_bench.c, bench/gpu_check.sh) ----
# Every .cu is compiled for sm_80 (Ampere/Ada run it too) and sm_90a (Hopper),
# plus compute_80 PTX so newer GPUs can JIT it. NVTX is header-only (nvtx3).
ifeq ($(CUDA),1)
ifneq ($(CU_SRC),)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC)))
  CUDA_ARCHS ?= -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90a,code=sm_90a \
                -gencode=arch=compute_80,code=compute_80
  NVCCFLAGS ?= -O3 -std=c++17 $(CUDA_ARCHS) -Xcompiler -fPIC,-Wall,-Wextra -lineinfo
  BASE_CFLAGS += -DFT_WITH_CUDA
  CUDA_INC := -I$(CUDA_HOME)/include
  LDLIBS += -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/targets/x86_64-linux/lib -lcublasLt -lcudart -lstdc++ -ldl -lrt
  CUDA_OBJ := $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
endif
endif

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(CUDA_OBJ)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all deps test test-asan goldens bench bench-vae gpu-bench gpu-check test-cuda clean install uninstall info \
        fuzz fuzz-build fuzz-targets test-reliability

all: $(BUILD)/libflowturbo.a $(BUILD)/include/flowturbo.h $(BUILD)/flowturbo

info:
	@echo "CUDA backend: $(if $(CUDA_OBJ),✓ ($(words $(CU_SRC)) .cu files, sm_80 + sm_90a),✗)"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -DFT_WITH_CUDA -MMD -MP -MF $(@:.o=.d) -c $< -o $@

# GPU benchmark (runs on the CPU backend too, slowly): build/flowturbo-bench
$(BUILD)/obj/bench/flowturbo_bench.o: bench/flowturbo_bench.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CUDA_INC) $(CFLAGS) -c $< -o $@

$(BUILD)/flowturbo-bench: $(BUILD)/obj/bench/flowturbo_bench.o $(BUILD)/libflowturbo.a
	$(CC) $^ $(LDLIBS) -o $@

gpu-bench: $(BUILD)/flowturbo-bench

# The CUDA tests alone (no host/ objects: needs neither libpng nor zlib).
$(BUILD)/test_cuda: $(BUILD)/obj/tests/runner.o $(BUILD)/obj/tests/util.o $(BUILD)/obj/tests/test_cuda.o \
                    $(BUILD)/libflowturbo.a
	$(CC) $^ $(LDLIBS) -o $@

test-cuda: $(BUILD)/test_cuda
	$(BUILD)/test_cuda cuda_

$(BUILD)/libflowturbo.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/include/flowturbo.h: engine/flowturbo.h
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/flowturbo: $(CLI_OBJ) $(BUILD)/libflowturbo.a
	$(CC) $(CLI_OBJ) $(BUILD)/libflowturbo.a $(LDLIBS) -o $@

# The CLI embeds the default (Fashion-MNIST) models with .incbin.
$(BUILD)/obj/host/default_model.o: host/models/fashion_sit.safetensors host/models/fashion_refiner.safetensors

# Tests link the host helpers too (everything in host/ but the CLI's main).
HOST_LIB_OBJ := $(filter-out $(BUILD)/obj/host/main.o,$(CLI_OBJ))

$(BUILD)/test_runner: $(TEST_OBJ) $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a $(BUILD)/flowturbo
	$(CC) $(TEST_OBJ) $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a $(LDLIBS) -o $@

test: $(BUILD)/test_runner
	$(BUILD)/test_runner

# Sanitizer build in its own tree; OpenBLAS/OpenMP internals are not instrumented.
test-asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	        LDLIBS_EXTRA=1 CUDA=0 build/asan/test_runner
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build/asan/test_runner

ifeq ($(LDLIBS_EXTRA),1)
LDLIBS += -fsanitize=address,undefined
endif

# ---- fuzzing: tests/fuzz/fuzz_<parser>.c, clang libFuzzer + ASan + UBSan, in its own tree (build/fuzz) ----
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS := -g -O1 -Wno-pass-failed -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined

fuzz-build:
	$(MAKE) BUILD=build/fuzz CC=$(FUZZ_CC) CFLAGS="$(FUZZ_CFLAGS)" CUDA=0 fuzz-targets

fuzz-targets: $(FUZZ_BIN)

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a
	$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(CFLAGS) $< $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a $(LDLIBS) \
	    -fsanitize=fuzzer,address,undefined -o $@

fuzz: fuzz-build $(BUILD)/flowturbo
	bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_JOBS)

# ---- fault tests: kill -9 + resume, full disk, thread counts, concurrent contexts (TSan), leaks ----
test-reliability: all
	bash tests/reliability/run_all.sh

# their C drivers, in any build tree (build/asan, build/tsan with CC=clang)
$(BUILD)/reliability_%: tests/reliability/%.c $(BUILD)/libflowturbo.a
	$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(CFLAGS) $< $(BUILD)/libflowturbo.a $(LDLIBS) -o $@

ifeq ($(LDLIBS_TSAN),1)
LDLIBS += -fsanitize=thread
endif

# The one-command GPU check (build, CUDA tests, benchmarks; logs in $$OUT).
gpu-check:
	bash bench/gpu_check.sh

goldens:
	$(PYTHON) tests/reference/make_goldens.py

$(BUILD)/cpu_bench: $(BENCH_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libflowturbo.a
	$(CC) $^ $(LDLIBS) -o $@

bench: $(BUILD)/cpu_bench $(BUILD)/flowturbo
	bash bench/run_cpu_bench.sh

$(BUILD)/vae_bench: $(BUILD)/obj/bench/vae_bench.o $(BUILD)/libflowturbo.a
	$(CC) $^ $(LDLIBS) -o $@

bench-vae: $(BUILD)/vae_bench
	bash bench/run_vae_bench.sh

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "deps: all present ($(DEB_PKGS))"; \
	elif [ "$$(id -u)" = 0 ]; then echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing$$missing; run: sudo apt-get install -y$$missing"; exit 1; fi

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 engine/flowturbo.h $(DESTDIR)$(PREFIX)/include/flowturbo.h
	install -m 644 $(BUILD)/libflowturbo.a $(DESTDIR)$(PREFIX)/lib/libflowturbo.a
	install -m 755 $(BUILD)/flowturbo $(DESTDIR)$(PREFIX)/bin/flowturbo
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: flowturbo\nDescription: FlowTurbo inference engine\nVersion: 0.1.0\nLibs: -L$${libdir} -lflowturbo\nLibs.private: %s\nCflags: -I$${includedir}\n' \
	  "$(PREFIX)" "$(LDLIBS)" > $(DESTDIR)$(PREFIX)/lib/pkgconfig/flowturbo.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/flowturbo.h $(DESTDIR)$(PREFIX)/lib/libflowturbo.a \
	      $(DESTDIR)$(PREFIX)/bin/flowturbo $(DESTDIR)$(PREFIX)/lib/pkgconfig/flowturbo.pc

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
