# flowturbo — build, test and install.
#
#   make            build/libflowturbo.a, build/libflowturbo.so, build/include/flowturbo.h, build/flowturbo,
#                   build/flowturbo-bench
#   make deps       install missing Debian packages (apt-get as root; prints the command otherwise)
#   make deps-python  the same for the Python side (converter, Python package, its tests)
#   make test-python  the Python package's tests and tests/python (docs, bench, weights script; pytest)
#   make test       build and run the test runner (last line: tests: N passed, N failed, N skipped)
#   make test-asan  the same suite under -fsanitize=address,undefined
#   make test-serve `flowturbo serve`: API test and headless-Chromium browser test
#   make examples   build host/examples/ through pkg-config (static and shared) and run them
#   make goldens    regenerate tests/data fixtures with the PyTorch reference (needs python3-torch)
#   make bench      CPU benchmark against the PyTorch reference (bench/RESULTS.md)
#   make install PREFIX=/usr/local
#
# CUDA: compiled in when nvcc is found (CUDA=0 to disable); every .cu is built
# for sm_80 and sm_90a even on machines without a GPU.
#   make test-cuda  only the CUDA tests (build/test_cuda; they SKIP without a GPU)
#   make test-cuda-emu  the CUDA tests on the CPU emulator (kernels/emu; build/emu)
#   make test-cuda-emu-mutations  deliberate kernel bugs the emulated suite must catch
#   make gpu-bench  build/flowturbo-bench (GPU benchmark, bench/GPU_NOTES.md)
#   make gpu-check  bash bench/gpu_check.sh: build, CUDA tests, benchmarks, PyTorch baseline
#
# MPI (mpirun -np N flowturbo sample-fid): compiled in when Open MPI is found
# (pkg-config ompi-c, else mpicc); MPI=0 leaves it out, MPI=1 requires it
# (and `make deps MPI=1` installs libopenmpi-dev and openmpi-bin).
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
ifeq ($(CUDA_EMU),1)
BUILD   ?= build/emu
override CUDA := 0
endif
BUILD   ?= build
CUDA    ?= $(shell command -v $(NVCC) >/dev/null 2>&1 && echo 1 || echo 0)

DEB_PKGS := gcc g++ make libopenblas-dev libopenblas0-pthread libpng-dev zlib1g-dev pkg-config \
            libmicrohttpd-dev libturbojpeg0-dev libjpeg62-turbo-dev libwebp-dev libexif-dev
# weights_tool/convert.py (PyTorch, NumPy), the Python package (NumPy, Pillow) and its tests (pytest, mypy, a venv)
PY_DEB_PKGS := python3 python3-numpy python3-torch python3-pil python3-pytest python3-mypy python3-venv python3-pip \
               python3-setuptools python3-wheel

WARN     := -Wall -Wextra
CFLAGS   ?= -O2
BASE_CFLAGS := -std=c11 $(WARN) -fopenmp -fPIC -D_DEFAULT_SOURCE -MMD -MP
LDLIBS   := -lopenblas -lpng -lz -lm -lpthread -fopenmp
# the CLI's: HTTP and JPEG frames of `serve` (libmicrohttpd, TurboJPEG), the image formats besides PNG (JPEG
# through libjpeg-turbo, WebP + mux for metadata chunks, EXIF); the library needs none of them
CLI_LDLIBS := -lmicrohttpd -lturbojpeg -ljpeg -lwebpmux -lwebp -lexif

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
  # cuDNN (the VAE's NHWC convolutions): found in CUDA_HOME, or at CUDNN_INC /
  # CUDNN_LIB (pip's nvidia-cudnn-cu13 on the GPU machine: bench/gpu_check.sh);
  # CUDNN=0 builds without it (the VAE then runs on the f32 im2col path).
  CUDNN_INC ?= $(CUDA_HOME)/include
  CUDNN ?= $(shell test -f $(CUDNN_INC)/cudnn.h && echo 1 || echo 0)
  ifeq ($(CUDNN),1)
    NVCCFLAGS += -DFT_WITH_CUDNN -I$(CUDNN_INC)
    CUDNN_LIBS := $(if $(CUDNN_LIB),-L$(CUDNN_LIB)) -lcudnn
  endif
  CUDA_LIBS := -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/targets/x86_64-linux/lib $(CUDNN_LIBS) -lcublasLt -lcudart \
               -lstdc++ -ldl -lrt
  LDLIBS += $(CUDA_LIBS)
  CUDA_OBJ := $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
endif
endif

# ---- CUDA emulation (kernels/emu, kernels/emu/README.md) ----
# make CUDA_EMU=1 builds under build/emu with the CUDA backend compiled for the
# CPU: every kernels/cuda/*.cu as host C++ (g++, -include kernels/emu/cuda_emu.h)
# against the real CUDA headers, instrumented (-fsanitize=thread, whose hooks the
# emulator implements: no TSan runtime), and linked with the emulated cudart /
# cuBLASLt of kernels/emu instead of the NVIDIA libraries. nvcc is not needed;
# the CUDA headers are (CUDA_HOME, default /usr/local/cuda).
ifeq ($(CUDA_EMU),1)
  CUDA_HOME ?= $(or $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null)),/usr/local/cuda)
  EMU_CXX ?= g++
  EMU_CXXFLAGS := -std=c++17 -O2 -g -fPIC -Wall -Wextra -fno-strict-aliasing -ffp-contract=off \
                  -I$(CUDA_HOME)/include -DFT_WITH_CUDA -MMD -MP
  EMU_KERNEL_FLAGS := -x c++ -include kernels/emu/cuda_emu.h -Wno-unknown-pragmas -fsanitize=thread \
                      --param=tsan-instrument-func-entry-exit=0
  EMU_SRC := $(wildcard kernels/emu/*.cpp)
  ifneq ($(wildcard $(CUDA_HOME)/include/cudnn.h),)
    EMU_CXXFLAGS += -DFT_WITH_CUDNN    # cuDNN emulated too (kernels/emu/cudnn.cpp)
  endif
  BASE_CFLAGS += -DFT_WITH_CUDA
  CUDA_INC := -I$(CUDA_HOME)/include
  CUDA_LIBS := -lstdc++ -ldl
  LDLIBS += $(CUDA_LIBS) -rdynamic
  CUDA_OBJ := $(CU_SRC:%.cu=$(BUILD)/obj/%.o) $(EMU_SRC:%.cpp=$(BUILD)/obj/%.o)
endif

# ---- MPI section (host/fid_mpi.c only; the library never uses MPI) ----
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null || command -v mpicc >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(MPI),1)
  MPI_CFLAGS := $(or $(shell pkg-config --cflags ompi-c 2>/dev/null),$(shell mpicc --showme:compile 2>/dev/null))
  MPI_LIBS := $(or $(shell pkg-config --libs ompi-c 2>/dev/null),$(shell mpicc --showme:link 2>/dev/null))
  ifeq ($(origin MPI),command line)
    DEB_PKGS += libopenmpi-dev openmpi-bin
  endif
  ifeq ($(MPI_LIBS),)
    ifneq ($(MAKECMDGOALS),deps)
      $(error MPI=1 but Open MPI was not found (pkg-config ompi-c, mpicc): make deps MPI=1 installs it; or make MPI=0)
    endif
  endif
endif

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(CUDA_OBJ)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all deps deps-python test test-asan test-python test-serve examples goldens bench bench-vae bench-blas gpu-bench gpu-check test-cuda \
        test-cuda-emu test-cuda-emu-mutations print-build-flags clean install uninstall info \
        fuzz fuzz-build fuzz-targets test-reliability

all: $(BUILD)/libflowturbo.a $(BUILD)/libflowturbo.so $(BUILD)/include/flowturbo.h $(BUILD)/flowturbo \
     $(BUILD)/flowturbo-bench $(BUILD)/flowturbo.pc

info:
	@echo "CUDA backend: $(if $(CUDA_OBJ),✓ ($(words $(CU_SRC)) .cu files, sm_80 + sm_90a),✗)"
	@echo "cuDNN (VAE convolutions on NHWC bf16): $(if $(filter 1,$(CUDNN)),✓ ($(CUDNN_INC)),✗)"
	@echo "MPI (sample-fid under mpirun): $(if $(filter 1,$(MPI)),✓ ($(MPI_LIBS)),✗)"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c $< -o $@

ifeq ($(CUDA_EMU),1)
$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_KERNEL_FLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(EMU_CXX) $(EMU_CXXFLAGS) -c $< -o $@
else
$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -DFT_WITH_CUDA -MMD -MP -MF $(@:.o=.d) -c $< -o $@
endif

# GPU benchmark (runs on the CPU backend too, slowly): build/flowturbo-bench. It records the commit it was built
# from: build/commit.txt changes (and the benchmark is recompiled) only when the commit does.
GIT_COMMIT := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
$(BUILD)/commit.txt: FORCE
	@mkdir -p $(dir $@)
	@[ "$$(cat $@ 2>/dev/null)" = "$(GIT_COMMIT)" ] || echo "$(GIT_COMMIT)" > $@

$(BUILD)/obj/bench/flowturbo_bench.o: bench/flowturbo_bench.c $(BUILD)/commit.txt
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CUDA_INC) $(CFLAGS) -DFT_BUILD_COMMIT='"$(GIT_COMMIT)"' -c $< -o $@

# Section 4 (the FID pipeline) runs sample-fid's own lanes, spool and npz writer.
BENCH_HOST_OBJ := $(addprefix $(BUILD)/obj/host/,fid_lanes.o fid_spool.o fid_npz.o npz.o npy.o file_util.o errmsg.o)
$(BUILD)/flowturbo-bench: $(BUILD)/obj/bench/flowturbo_bench.o $(BENCH_HOST_OBJ) $(BUILD)/libflowturbo.a
	$(CC) $^ $(LDLIBS) -o $@

gpu-bench: $(BUILD)/flowturbo-bench

# The CUDA tests alone (no host/ objects: needs neither libpng nor zlib).
# (tests/cuda_emu/mutate.py links its mutants from TEST_CUDA_OBJ too: print-build-flags)
TEST_CUDA_OBJ := $(addprefix $(BUILD)/obj/,tests/runner.o tests/util.o tests/test_cuda.o tests/test_cuda_output.o \
                   tests/fid_lanes_check.o host/fid_lanes.o host/errmsg.o)
$(BUILD)/test_cuda: $(TEST_CUDA_OBJ) $(BUILD)/libflowturbo.a
	$(CC) $^ $(LDLIBS) -o $@

# The device-memory frames of ft_submit use the CUDA runtime API directly (caller streams, cudaMallocPitch).
$(BUILD)/obj/tests/test_cuda_output.o: tests/test_cuda_output.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CUDA_INC) $(CFLAGS) -c $< -o $@

test-cuda: $(BUILD)/test_cuda
	$(BUILD)/test_cuda --isolate cuda_

# The CUDA suite on the CPU emulator (kernels/emu), each test in its own
# process, under two thread schedules (tests/cuda_emu/suite.sh), and the
# mutation check: deliberate bugs the emulated suite must catch.
test-cuda-emu:
	$(MAKE) CUDA_EMU=1 build/emu/test_cuda
	bash tests/cuda_emu/suite.sh

test-cuda-emu-mutations:
	$(MAKE) CUDA_EMU=1 build/emu/test_cuda
	python3 tests/cuda_emu/mutate.py

# The compile and link commands of this configuration (tests/cuda_emu/mutate.sh).
print-build-flags:
	@echo 'CC=$(CC)'
	@echo 'CFLAGS=$(BASE_CFLAGS) $(CFLAGS)'
	@echo 'EMU_CXX=$(EMU_CXX)'
	@echo 'EMU_CXXFLAGS=$(EMU_CXXFLAGS)'
	@echo 'EMU_KERNEL_FLAGS=$(EMU_KERNEL_FLAGS)'
	@echo 'LDLIBS=$(LDLIBS)'
	@echo 'TEST_CUDA_OBJ=$(TEST_CUDA_OBJ)'
	@echo 'LIB_OBJ=$(LIB_OBJ)'

$(BUILD)/libflowturbo.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# What the library itself links against (flowturbo.pc Libs.private, the shared library's dependencies): no libpng,
# zlib, HTTP or JPEG (those are the CLI's).
LIB_LIBS := -lopenblas -lgomp -lpthread -lm $(CUDA_LIBS)

# The shared library (the Python package and the examples load it): every object is -fPIC; it exports only the
# public ft_* API (engine/libflowturbo.map).
$(BUILD)/libflowturbo.so: $(LIB_OBJ) engine/libflowturbo.map
	$(CC) -shared -Wl,-soname,libflowturbo.so.0 -Wl,--version-script=engine/libflowturbo.map -Wl,--no-undefined \
	    $(LIB_OBJ) $(LIB_LIBS) -o $@

$(BUILD)/include/flowturbo.h: engine/flowturbo.h
	@mkdir -p $(dir $@)
	cp $< $@

$(BUILD)/flowturbo: $(CLI_OBJ) $(BUILD)/libflowturbo.a
	$(CC) $(CLI_OBJ) $(BUILD)/libflowturbo.a $(LDLIBS) $(CLI_LDLIBS) $(MPI_LIBS) -o $@

# fid_mpi.o is rebuilt when MPI changes (the stamp names the setting)
$(BUILD)/obj/host/fid_mpi.o: BASE_CFLAGS += $(if $(filter 1,$(MPI)),-DFT_WITH_MPI $(MPI_CFLAGS))
$(BUILD)/obj/host/fid_mpi.o: $(BUILD)/mpi-$(MPI).stamp
$(BUILD)/mpi-$(MPI).stamp:
	@mkdir -p $(BUILD) && rm -f $(BUILD)/mpi-*.stamp && touch $@

# The library embeds the default (Fashion-MNIST) models with .incbin (ft_load_embedded).
$(BUILD)/obj/engine/embedded_model.o: host/models/fashion_sit.safetensors host/models/fashion_refiner.safetensors

# `serve` embeds its page with .incbin.
$(BUILD)/obj/host/serve_http.o: host/serve_page.html

# Tests link the host helpers too (everything in host/ but the CLI's main).
HOST_LIB_OBJ := $(filter-out $(BUILD)/obj/host/main.o,$(CLI_OBJ))

$(BUILD)/test_runner: $(TEST_OBJ) $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a $(BUILD)/flowturbo
	$(CC) $(TEST_OBJ) $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a $(LDLIBS) $(CLI_LDLIBS) $(MPI_LIBS) -o $@

test: $(BUILD)/test_runner
	$(BUILD)/test_runner --isolate

# `flowturbo serve`: the API test (every endpoint, bad and oversize requests, concurrent clients, disconnects,
# memory) and the browser test (headless Chromium; screenshots in build/test-artefacts).
test-serve: $(BUILD)/flowturbo
	FT_CLI=$(BUILD)/flowturbo $(PYTHON) tests/serve/api_test.py
	FT_CLI=$(BUILD)/flowturbo FT_ARTEFACTS=$(BUILD)/test-artefacts $(PYTHON) tests/serve/browser_test.py; \
	  rc=$$?; if [ $$rc = 77 ]; then echo "browser test: SKIP (chromium / selenium missing)"; else exit $$rc; fi

# Sanitizer build in its own tree; OpenBLAS/OpenMP internals are not instrumented.
test-asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	        LDLIBS_EXTRA=1 CUDA=0 MPI=0 build/asan/test_runner
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build/asan/test_runner --isolate

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
	$(MAKE) BUILD=build/fuzz CC=$(FUZZ_CC) CFLAGS="$(FUZZ_CFLAGS)" CUDA=0 MPI=0 fuzz-targets

fuzz-targets: $(FUZZ_BIN)

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a
	$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(CFLAGS) $< $(HOST_LIB_OBJ) $(BUILD)/libflowturbo.a $(LDLIBS) \
	    $(CLI_LDLIBS) -fsanitize=fuzzer,address,undefined -o $@

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

# packed (own micro-kernels) vs plain (OpenBLAS) linear layers in one process (kernels/cpu/linear_packed.c)
$(BUILD)/packed_ab: $(BUILD)/obj/bench/packed_ab.o $(BUILD)/libflowturbo.a
	$(CC) $^ $(LDLIBS) -o $@

# one-thread SGEMM of each BLAS candidate at the CPU engine's tile shapes (issue 15 item 2)
bench-blas:
	bash bench/blas_candidates.sh

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
	  "$(PREFIX)" "$(LIB_LIBS)" > $@.tmp && { cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@; }

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 engine/flowturbo.h $(DESTDIR)$(PREFIX)/include/flowturbo.h
	install -m 644 $(BUILD)/libflowturbo.a $(DESTDIR)$(PREFIX)/lib/libflowturbo.a
	install -m 755 $(BUILD)/libflowturbo.so $(DESTDIR)$(PREFIX)/lib/libflowturbo.so.0
	ln -sf libflowturbo.so.0 $(DESTDIR)$(PREFIX)/lib/libflowturbo.so
	install -m 755 $(BUILD)/flowturbo $(DESTDIR)$(PREFIX)/bin/flowturbo
	install -m 644 $(BUILD)/flowturbo.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/flowturbo.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/flowturbo.h $(DESTDIR)$(PREFIX)/lib/libflowturbo.a \
	      $(DESTDIR)$(PREFIX)/lib/libflowturbo.so.0 $(DESTDIR)$(PREFIX)/lib/libflowturbo.so \
	      $(DESTDIR)$(PREFIX)/bin/flowturbo $(DESTDIR)$(PREFIX)/lib/pkgconfig/flowturbo.pc

# host/examples: installed into build/stage, built through pkg-config (static and shared), run; CUDA variant built
# when CUDA is (run only with a GPU).
examples: all
	rm -rf $(BUILD)/stage
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(BUILD))/stage PREFIX=/usr/local >/dev/null
	bash host/examples/run_examples.sh $(BUILD)/stage "$(if $(CUDA_OBJ),1,0)" "$(CUDA_HOME)"

clean:
	rm -rf build

FORCE:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
