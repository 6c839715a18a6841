#!/usr/bin/env bash
# bench/gpu_check.sh — the ONE prepared GPU check of the CUDA backend.
#
# Run from the repository root on a machine with a GPU, nvcc and PyTorch, no
# network needed, in well under 6 minutes:
#     bash bench/gpu_check.sh            (or: make gpu-check)
# Stages (each with its own timeout inside a global deadline; a failing stage
# does not stop the next):
#   0. GPU facts (nvidia-smi), commit
#   1. build with CUDA on (make -j16). Missing system libraries are worked
#      around: no libpng/zlib -> only the library, build/test_cuda and
#      build/flowturbo-bench are built; no OpenBLAS -> a small OpenMP sgemm
#      shim stands in for the CPU reference backend.
#   2. the CUDA tests (build/test_cuda, every op and sampler against the CPU
#      backend), each in its own process (--isolate: a sticky fault fails only
#      its own test), CUDA_MODULE_LOADING=EAGER, verbose: measured errors are
#      logged
#   2b. compute-sanitizer memcheck, racecheck and initcheck over a few short
#      tests, when the tool exists and works on this machine
#   3. build/flowturbo-bench (GEMM rates, network calls, whole samples)
#   4. bench/torch_baseline.py (the same models and sampler in PyTorch)
#   5. a short summary table, printed last
# Everything is written to $OUT (default $TMPDIR/gpu_check_out), eight files:
# nvidia-smi.txt build.log test_cuda.log (+ the sanitizer runs) bench.json
# bench.log torch.json torch.log summary.txt.
#
# Knobs (environment): GPU_CHECK_DEADLINE (seconds, default 345),
# BENCH_BATCHES (1,8,64), BENCH_SAMPLERS (heun:8,H1P5R3,H2P4R2,H8P9R5),
# BENCH_REPS (3), TORCH_BATCHES (1,8), TORCH_SAMPLERS (H1P5R3,heun:8),
# TORCH_COMPILE_BATCHES (8), JOBS (16), GPU_CHECK_BUILD (build),
# SANITIZE_TESTS ("cuda_op_attention_hd72 cuda_op_layernorm_modulate"),
# GPU_CHECK_FORCE_SHIM=1 (use the sgemm shim even when OpenBLAS exists: tests the fallback).
set -uo pipefail

T_START=$(date +%s)
DEADLINE=${GPU_CHECK_DEADLINE:-345}
OUT=${OUT:-${TMPDIR:-/tmp}/gpu_check_out}
JOBS=${JOBS:-16}
BATCHES=${BENCH_BATCHES:-1,8,64}
SAMPLERS=${BENCH_SAMPLERS:-heun:8,H1P5R3,H2P4R2,H8P9R5}
REPS=${BENCH_REPS:-3}
TC_BATCHES=${TORCH_COMPILE_BATCHES:-8}
T_BATCHES=${TORCH_BATCHES:-1,8}
T_SAMPLERS=${TORCH_SAMPLERS:-H1P5R3,heun:8}
WEIGHTS=${TMPDIR:-/tmp}/flowturbo-bench
B=${GPU_CHECK_BUILD:-build}       # build folder (make BUILD=...)
mkdir -p "$OUT" "$WEIGHTS"
STATUS="${TMPDIR:-/tmp}/gpu_check_status.$$"
: >"$STATUS"

elapsed() { echo $(($(date +%s) - T_START)); }
# seconds a stage may use: min(wanted, what is left before the deadline minus reserve)
budget() {
  local want=$1 reserve=${2:-15} left
  left=$((DEADLINE - $(elapsed) - reserve))
  [ "$left" -lt "$want" ] && want=$left
  [ "$want" -lt 5 ] && want=5
  echo "$want"
}
stage() { echo; echo "=== [$(elapsed)s] $*"; }
record() { echo "$1: $2" | tee -a "$STATUS"; }

# ---- 0. facts -----------------------------------------------------------------
stage "0. GPU and commit"
COMMIT=${FT_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
if git rev-parse HEAD >/dev/null 2>&1 && [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then
  COMMIT="$COMMIT+dirty"
fi
export FT_COMMIT=$COMMIT
echo "commit $COMMIT"
HAVE_GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1; then
  HAVE_GPU=1
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu \
    --format=csv >>"$OUT/nvidia-smi.txt" 2>&1
  tail -2 "$OUT/nvidia-smi.txt"
else
  echo "no GPU (nvidia-smi absent or failing): the CUDA tests will SKIP and the benchmarks are skipped"
fi
command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -2

# ---- 1. build -----------------------------------------------------------------
stage "1. build (make -j$JOBS, CUDA on)"
have_header() { echo "#include <$1>" | ${CC:-gcc} -E -x c - >/dev/null 2>&1; }
have_lib() { echo 'int main(void){return 0;}' | ${CC:-gcc} -x c - -l"$1" -o /dev/null >/dev/null 2>&1; }
MAKEVARS=("BUILD=$B")
TARGETS=(all "$B/test_cuda" "$B/flowturbo-bench")
CUDA_HOME_=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")
LIBS_BASE="-lm -lpthread -fopenmp -L$CUDA_HOME_/lib64 -L$CUDA_HOME_/targets/x86_64-linux/lib -lcublasLt -lcudart -lstdc++ -ldl -lrt"
# cuDNN (the VAE's convolutions): in CUDA_HOME, or only as pip's nvidia-cudnn-cu13 (the device image), whose lib/
# has no unversioned libcudnn.so: link through a symlink folder, and put the library on LD_LIBRARY_PATH
if [ ! -f "$CUDA_HOME_/include/cudnn.h" ]; then
  CUDNN_DIR=$(python3 -c "import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))" 2>/dev/null || true)
  if [ -n "$CUDNN_DIR" ] && [ -f "$CUDNN_DIR/include/cudnn.h" ]; then
    mkdir -p "$B/cudnn_link"
    ln -sf "$(ls "$CUDNN_DIR"/lib/libcudnn.so* | head -1)" "$B/cudnn_link/libcudnn.so"
    MAKEVARS+=("CUDNN_INC=$CUDNN_DIR/include" "CUDNN_LIB=$PWD/$B/cudnn_link")
    LIBS_BASE="-L$PWD/$B/cudnn_link -lcudnn $LIBS_BASE"
    export LD_LIBRARY_PATH="$CUDNN_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    record "cudnn" "pip's nvidia-cudnn ($CUDNN_DIR)"
  else
    record "cudnn" "not found: the VAE runs on the im2col path (the fm tests SKIP)"
    MAKEVARS+=("CUDNN=0")
  fi
else
  LIBS_BASE="-lcudnn $LIBS_BASE"
  record "cudnn" "$CUDA_HOME_/include"
fi
SHIM=""
if [ "${GPU_CHECK_FORCE_SHIM:-0}" = 1 ] || ! have_header cblas.h || ! have_lib openblas; then
  SHIM="$PWD/$B/blas_shim"
  mkdir -p "$SHIM"
  echo "OpenBLAS not found: building an OpenMP sgemm shim for the CPU reference in $SHIM"
  cat >"$SHIM/cblas.h" <<'EOF'
/* cblas.h shim (bench/gpu_check.sh): the subset the CPU backend uses. */
#ifndef CBLAS_SHIM_H
#define CBLAS_SHIM_H
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K,
                 float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void openblas_set_num_threads(int n);
#endif
EOF
  cat >"$SHIM/cblas_shim.c" <<'EOF'
/* Row-major C = alpha op(A) op(B) + beta C, blocked 4 rows x 256 columns, OpenMP over row blocks. */
#include <stdlib.h>
#include <string.h>
#include "cblas.h"
void openblas_set_num_threads(int n) { (void)n; }
static void rm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc) {
  const float *Bn = B;
  int ldbn = ldb;
  float *tmp = NULL;
  if (tb) {
    tmp = malloc((size_t)K * N * sizeof(float) + 4);
    if (!tmp) return;
    for (int j = 0; j < N; j++)
      for (int k = 0; k < K; k++) tmp[(size_t)k * N + j] = B[(size_t)j * ldb + k];
    Bn = tmp, ldbn = N;
  }
#pragma omp parallel for schedule(dynamic, 4)
  for (int i0 = 0; i0 < M; i0 += 4) {
    float acc[4][256];
    int ni = M - i0 < 4 ? M - i0 : 4;
    for (int j0 = 0; j0 < N; j0 += 256) {
      int nj = N - j0 < 256 ? N - j0 : 256;
      memset(acc, 0, sizeof acc);
      for (int k = 0; k < K; k++) {
        const float *b = Bn + (size_t)k * ldbn + j0;
        for (int r = 0; r < ni; r++) {
          float a = ta ? A[(size_t)k * lda + i0 + r] : A[(size_t)(i0 + r) * lda + k];
          float *ac = acc[r];
          for (int j = 0; j < nj; j++) ac[j] += a * b[j];
        }
      }
      for (int r = 0; r < ni; r++)
        for (int j = 0; j < nj; j++) {
          float *c = &C[(size_t)(i0 + r) * ldc + j0 + j];
          *c = alpha * acc[r][j] + (beta != 0.0f ? beta * *c : 0.0f);
        }
    }
  }
  free(tmp);
}
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K,
                 float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (order == CblasRowMajor) rm(ta != CblasNoTrans, tb != CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else rm(tb != CblasNoTrans, ta != CblasNoTrans, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc);
}
EOF
  (cd "$SHIM" && ${CC:-gcc} -O3 -march=native -fopenmp -c cblas_shim.c -o cblas_shim.o && ar rcs libopenblas.a cblas_shim.o) \
    || echo "shim build failed"
  MAKEVARS+=("CFLAGS=-O2 -I$SHIM")
  record "blas" "OpenBLAS missing: CPU reference uses the sgemm shim"
  LIBS_OB="-L$SHIM -lopenblas"
else
  LIBS_OB="-lopenblas"
fi
if ! have_header png.h || ! have_lib png || ! have_lib z; then
  echo "libpng/zlib development files not found: building the library, $B/test_cuda and $B/flowturbo-bench only"
  TARGETS=("$B/libflowturbo.a" "$B/test_cuda" "$B/flowturbo-bench")
  MAKEVARS+=("LDLIBS=$LIBS_OB $LIBS_BASE")
  record "png" "libpng/zlib missing: CLI and full test_runner not built"
elif [ -n "$SHIM" ]; then
  MAKEVARS+=("LDLIBS=$LIBS_OB -lpng -lz $LIBS_BASE")
fi
BUILD_T=$(budget 170 120)
if timeout "$BUILD_T" make -j"$JOBS" CUDA=1 ${MAKEVARS[@]+"${MAKEVARS[@]}"} "${TARGETS[@]}" >"$OUT/build.log" 2>&1; then
  record "build" "ok ($(elapsed)s)"
else
  record "build" "FAILED (rc $?, see build.log)"
  grep -E "error|Error" "$OUT/build.log" | head -20
  # the benchmark and tests may still have been built
fi
grep -c "warning" "$OUT/build.log" | xargs -I{} echo "compiler warnings in build.log: {}"
make -s info CUDA=1 2>/dev/null | head -1

# ---- 2. CUDA tests ------------------------------------------------------------
stage "2. CUDA tests ($B/test_cuda, every op and sampler vs the CPU backend)"
if [ -x $B/test_cuda ]; then
  TEST_T=$(budget 110 100)
  FT_TEST_VERBOSE=1 FT_GEMM_DEBUG=1 CUDA_MODULE_LOADING=EAGER OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)} \
    timeout "$TEST_T" $B/test_cuda --isolate cuda_ 2>&1 | tee "$OUT/test_cuda.log" | grep -E "^(PASS|FAIL|SKIP)|tests:"
  rc=${PIPESTATUS[0]}
  SUMMARY_LINE=$(grep "^tests:" "$OUT/test_cuda.log" | tail -1 | sed "s/^tests: //")
  FAILED=$(grep "^FAIL" "$OUT/test_cuda.log" | awk '{print $2}' | tr '\n' ' ')
  [ "$rc" = 124 ] && SUMMARY_LINE="TIMED OUT after ${TEST_T}s; $(grep -c '^PASS' "$OUT/test_cuda.log") passed so far"
  record "tests" "${SUMMARY_LINE:-no summary (rc $rc)}${FAILED:+; failed: $FAILED}"
else
  record "tests" "not built"
fi

# ---- 2b. compute-sanitizer ---------------------------------------------------
stage "2b. compute-sanitizer (memcheck, racecheck, initcheck) over: ${SANITIZE_TESTS:-cuda_op_attention_hd72 cuda_op_layernorm_modulate}"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ "$HAVE_GPU" = 1 ] && [ -n "$SAN" ] && [ -x $B/test_cuda ]; then
  SAN_RES=""
  for tool in memcheck racecheck initcheck; do
    for t in ${SANITIZE_TESTS:-cuda_op_attention_hd72 cuda_op_layernorm_modulate}; do
      SAN_T=$(budget 25 150)
      timeout "$SAN_T" "$SAN" --tool "$tool" --error-exitcode 99 $B/test_cuda "$t" >>"$OUT/test_cuda.log" 2>&1
      rc=$?
      case $rc in 0) r=clean ;; 99) r=ERRORS ;; 124) r=timeout ;; *) r="rc $rc" ;; esac
      SAN_RES="$SAN_RES $tool/$t: $r;"
    done
  done
  record "sanitizer" "$SAN_RES"
  grep -E "^========= (Invalid|Race|Uninitialized|Error|ERROR SUMMARY)" "$OUT/test_cuda.log" | sort | uniq -c | head -15
else
  record "sanitizer" "skipped (no GPU, no compute-sanitizer, or test_cuda not built)"
fi

# ---- 3. flowturbo-bench -------------------------------------------------------
stage "3. flowturbo-bench (batches $BATCHES, samplers $SAMPLERS, $REPS reps)"
if [ "$HAVE_GPU" = 1 ] && [ -x $B/flowturbo-bench ]; then
  BENCH_T=$(budget 120 75)
  timeout "$BENCH_T" $B/flowturbo-bench --batches "$BATCHES" --samplers "$SAMPLERS" --reps "$REPS" --warmup 1 \
    --weights-dir "$WEIGHTS" --budget $((BENCH_T - 20)) --commit "$COMMIT" \
    --json "$OUT/bench.json" >"$OUT/bench.log" 2>&1
  rc=$?
  grep -v "^  " "$OUT/bench.log" | tail -3
  record "bench" "rc $rc ($(elapsed)s)"
else
  record "bench" "skipped (no GPU or not built)"
fi

# ---- 4. PyTorch baseline ------------------------------------------------------
stage "4. PyTorch baseline (eager bf16 autocast at batches $T_BATCHES; torch.compile at batch $TC_BATCHES)"
if [ "$HAVE_GPU" = 1 ] && python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  TORCH_T=$(budget 150 12)
  PYTHONUNBUFFERED=1 timeout "$TORCH_T" python3 bench/torch_baseline.py --batches "$T_BATCHES" --samplers "$T_SAMPLERS" \
    --compile-batches "$TC_BATCHES" --reps "$REPS" --weights-dir "$WEIGHTS" --budget $((TORCH_T - 25)) \
    --json "$OUT/torch.json" >"$OUT/torch.log" 2>&1
  rc=$?
  tail -3 "$OUT/torch.log"
  record "torch" "rc $rc ($(elapsed)s)"
else
  record "torch" "skipped (no GPU or no PyTorch with CUDA)"
fi

# ---- 5. summary ---------------------------------------------------------------
stage "5. summary"
python3 - "$OUT" "$STATUS" <<'EOF' 2>&1 | tee "$OUT/summary.txt"
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except Exception:
        return None
b, t = load("bench.json"), load("torch.json")
print(open(sys.argv[2]).read().strip())
try:  # failing tests with their notes
    lines, cur = open(os.path.join(out, "test_cuda.log")).read().splitlines(), None
    fails = []
    for ln in lines:
        if ln.startswith(("PASS", "SKIP", "FAIL", "tests:")):
            cur = ln if ln.startswith("FAIL") else None
            if cur: fails.append(ln)
        elif cur and ln.startswith("    "):
            fails.append(ln)
    if fails:
        print("failing CUDA tests (full notes in test_cuda.log):")
        print("\n".join(fails[:60]))
except OSError:
    pass
if not b:
    print("no bench.json: nothing to tabulate"); sys.exit(0)
d = b.get("device", {})
print(f"GPU {d.get('name')} cc {d.get('cc')} {d.get('sms')} SMs, max SM clock {d.get('max_sm_clock_mhz')} MHz; "
      f"commit {b.get('commit')}; peak device memory {b.get('peak_device_mib')} MiB")
g = b.get("gemm", [])
rate = {}
for r in g:
    rate.setdefault(r["M"], []).append(r)
for M, rs in sorted(rate.items()):
    print(f"cuBLASLt M={M}: " + ", ".join(f"{r['what']} {r['tflops']:.0f}" for r in rs) + " TFLOP/s")
def gemm_rate(M):  # FLOP-weighted rate of the four block GEMMs at M
    rs = [r for r in g if r["M"] == M and r["what"] in ("qkv", "proj", "fc1+gelu", "fc2")]
    if len(rs) < 4: return None
    fl = sum(2.0 * r["M"] * r["N"] * r["K"] for r in rs)
    return fl / sum(r["ms"] * 1e-3 for r in rs) / 1e12
tn = {(r["impl"], r["model"], r["batch"]): r for r in (t or {}).get("network", [])}
ms = lambda r: f"{r['ms']:.3f}" if r else "-"
print("\n| network call (2B rows) | batch | flowturbo ms | TFLOP/s | % of cuBLASLt | torch eager ms | torch.compile ms |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in b.get("network", []):
    gr = gemm_rate(2 * r["batch"] * 256) if r["model"] == "predictor" else None
    pct = f"{100 * r['tflops'] / gr:.0f}%" if gr else "-"
    te, tc = tn.get(("torch-eager", r["model"], r["batch"])), tn.get(("torch-compile", r["model"], r["batch"]))
    print(f"| {r['model']} | {r['batch']} | {r['ms']:.3f} | {r['tflops']:.0f} | {pct} | {ms(te)} | {ms(tc)} |")
ts = {(r["impl"], r["sampler"], r["batch"], r["decode"]): r for r in (t or {}).get("samples", [])}
fs = {(r["sampler"], r["batch"], r["graphs"], r["decode"]): r for r in b.get("samples", [])}
print("\n| sampler | batch | output | ft graph ms/img | ft eager ms/img | torch eager ms/img | torch.compile ms/img | speedup vs torch eager | speedup vs torch.compile |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
keys = sorted({(s, bb, dec) for (s, bb, gr, dec) in fs}, key=lambda k: (k[1], k[0], k[2]))
for s, bb, dec in keys:
    fg, fe = fs.get((s, bb, True, dec)), fs.get((s, bb, False, dec))
    te, tc = ts.get(("torch-eager", s, bb, dec)), ts.get(("torch-compile", s, bb, dec))
    f = lambda r: f"{r['ms_per_img']:.3f}" if r else "-"
    best = fg or fe
    ratio = lambda r: f"{r['ms_per_img'] / best['ms_per_img']:.2f}x" if (r and best) else "-"
    print(f"| {s} | {bb} | {'+VAE' if dec else 'latents'} | {f(fg)} | {f(fe)} | {f(te)} | {f(tc)} | {ratio(te)} | {ratio(tc)} |")
def get(s, bb, dec):
    r = fs.get((s, bb, True, dec)); return r["ms_per_img"] if r else None
print("\ntargets (H100): H1P5R3 batch 8 <= 6 ms/img:", get("H1P5R3", 8, True), "(+VAE)", get("H1P5R3", 8, False),
      "(latents); batch 1 <= 10 ms:", get("H1P5R3", 1, True), "(+VAE)", get("H1P5R3", 1, False), "(latents)")
EOF
rm -f "$STATUS"
echo "(total $(elapsed)s; logs and JSON in $OUT)"
