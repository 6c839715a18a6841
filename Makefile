# flowturbo — build, test and install.
#
#   make            build/libflowturbo.a, build/libflowturbo.so, build/include/flowturbo.h, build/flowturbo,
#                   build/flowturbo-bench
#   make deps       install missing Debian packages (apt-get as root; prints the command otherwise)
#   make deps-python  the same for the Python side (converter, Python package, its tests)
#   make test-python  the Python package's tests and tests/python (docs, bench, weights script; pytest)
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

ifeq ($(origin CC),default)
CC      := gcc
endif
NVCC    ?= nvcc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
BUILD   ?= build
CUDA    ?= $(shell command -v $(NVCC) >/dev/null 2>&1 && echo 1 || echo 0)

DEB_PKGS := gcc make libopenblas-dev libopenblas0-pthread libpng-dev zlib1g-dev pkg-config \
            libjpeg62-turbo-dev libwebp-dev libexif-dev
# weights_tool/convert.py (PyTorch, NumPy), the Python package (NumPy, Pillow) and its tests (pytest, mypy, a venv)
PY_DEB_PKGS := python3 python3-numpy python3-torch python3-pil python3-pytest python3-mypy python3-venv python3-pip \
               python3-setuptools python3-wheel

WARN     := -Wall -Wextra
CFLAGS   ?= -O2
BASE_CFLAGS := -std=c11 $(WARN) -fopenmp -D_DEFAULT_SOURCE -MMD -MP
LDLIBS   := -lopenblas -lpng -lz -lm -lpthread -fopenmp
# the CLI's image formats besides PNG: JPEG (libjpeg-turbo), WebP (+ mux for metadata chunks), EXIF (libexif)
CLI_LDLIBS := -ljpeg -lwebpmux -lwebp -lexif

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

.PHONY: all deps deps-python test test-asan test-python goldens bench bench-vae gpu-bench gpu-check test-cuda clean \
        install uninstall info

all: $(BUILD)/libflowturbo.a $(BUILD)/libflowturbo.so $(BUILD)/include/flowturbo.h $(BUILD)/flowturbo \
     $(BUILD)/flowturbo-bench $(BUILD)/flowturbo.pc

info:
	@echo "CUDA backend: $(if $(CUDA_OBJ),✓ ($(words $(CU_SRC)) .cu files, sm_80 + sm_90a),✗)"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -DFT_WITH_CUDA -MMD -MP -MF $(@:.o=.d) -c $< -o $@

# GPU benchmark (runs on the CPU backend too, slowly): build/flowturbo-bench. It records the commit it was built
# from: build/commit.txt changes (and the benchmark is recompiled) only when the commit does.
GIT_COMMIT := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
$(BUILD)/commit.txt: FORCE
	@mkdir -p $(dir $@)
	@[ "$$(cat $@ 2>/dev/null)" = "$(GIT_COMMIT)" ] || echo "$(GIT_COMMIT)" > $@

$(BUILD)/obj/bench/flowturbo_bench.o: bench/flowturbo_bench.c $(BUILD)/commit.txt
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CUDA_INC) $(CFLAGS) -DFT_BUILD_COMMIT='"$(GIT_COMMIT)"' -c $< -o $@

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

# The shared library (the Python package loads it): the same sources compiled with -fPIC in their own tree,
# exporting only the public ft_* API (engine/libflowturbo.map). The .cu objects are -fPIC already.
LIB_PIC_OBJ := $(LIB_SRC:%.c=$(BUILD)/pic/%.o) $(CUDA_OBJ)
SO_LDLIBS := $(filter-out -lpng -lz,$(LDLIBS))

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -fPIC -c $< -o $@

$(BUILD)/libflowturbo.so: $(LIB_PIC_OBJ) engine/libflowturbo.map
	$(CC) -shared -Wl,-soname,libflowturbo.so -Wl,--version-script=engine/libflowturbo.map -Wl,--no-undefined \
	    $(LIB_PIC_OBJ) $(SO_LDLIBS) -o $@

$(BUILD)/include/flowturbo.h: engine/flowturbo.h
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/flowturbo: $(CLI_OBJ) $(BUILD)/libflowturbo.a
	$(CC) $(CLI_OBJ) $(BUILD)/libflowturbo.a $(LDLIBS) $(CLI_LDLIBS) -o $@

# The library embeds the default (Fashion-MNIST) models with .incbin (ft_default_model).
$(BUILD)/obj/engine/default_model.o $(BUILD)/pic/engine/default_model.o: host/models/fashion_sit.safetensors \
    host/models/fashion_refiner.safetensors

# Tests link the host helpers too (everything in host/ but the CLI's main).
HOST_LIB_OBJ := $(filter-out $(BUILD)/obj/host/main.o,$(CLI_OBJ))

$(BUILD)/test_runner: $(TEST_OBJ) $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a $(BUILD)/flowturbo
	$(CC) $(TEST_OBJ) $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a $(LDLIBS) $(CLI_LDLIBS) -o $@

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

deps-python:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(PY_DEB_PKGS)"

# The Python package (host/python) installed into a venv that sees Debian's NumPy/Pillow/pytest, then its tests and
# the repository-level Python tests (tests/python: docs, bench, weights script); FT_PYENV puts the venv elsewhere.
# -P: the source tree is not on sys.path, so the tests import the installed copy.
FT_PYENV ?= $(BUILD)/pyenv
test-python: all
	@[ -x $(FT_PYENV)/bin/python ] || $(PYTHON) -m venv --system-site-packages $(FT_PYENV)
	$(FT_PYENV)/bin/python -m pip install -q --root-user-action=ignore --no-build-isolation --no-deps \
	    --force-reinstall ./host/python
	FT_EXPECT_INSTALLED=1 FT_BUILD=$(BUILD) PYTHONPATH=tests/python $(FT_PYENV)/bin/python -P -m pytest -q -rs \
	    -p no:cacheprovider -p pytest_summary host/python/tests tests/python

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "deps: all present ($(DEB_PKGS))"; \
	elif [ "$$(id -u)" = 0 ]; then echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing$$missing; run: sudo apt-get install -y$$missing"; exit 1; fi

# pkg-config file for PREFIX (tests/docs checks README's link line against it)
$(BUILD)/flowturbo.pc: Makefile FORCE
	@mkdir -p $(dir $@)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: flowturbo\nDescription: FlowTurbo inference engine\nVersion: 0.1.0\nLibs: -L$${libdir} -lflowturbo\nLibs.private: %s\nCflags: -I$${includedir}\n' \
	  "$(PREFIX)" "$(LDLIBS)" > $@.tmp && { cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@; }

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 engine/flowturbo.h $(DESTDIR)$(PREFIX)/include/flowturbo.h
	install -m 644 $(BUILD)/libflowturbo.a $(DESTDIR)$(PREFIX)/lib/libflowturbo.a
	install -m 755 $(BUILD)/flowturbo $(DESTDIR)$(PREFIX)/bin/flowturbo
	install -m 644 $(BUILD)/flowturbo.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/flowturbo.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/flowturbo.h $(DESTDIR)$(PREFIX)/lib/libflowturbo.a \
	      $(DESTDIR)$(PREFIX)/bin/flowturbo $(DESTDIR)$(PREFIX)/lib/pkgconfig/flowturbo.pc

clean:
	rm -rf build

FORCE:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
