#!/usr/bin/env bash
# tests/cuda_emu/suite.sh — the CUDA test suite (tests/test_cuda.c) on the CPU
# emulator (kernels/emu), every test in its own process:
#   1. all tests under the round-robin thread schedule,
#   2. all tests under the run-ahead schedule (warp 0 runs as far as it can
#      before the others start: a missing barrier reads other data),
#   3. the GEMM and sampler tests with cuBLASLt refusing an f32 bias with a
#      16-bit output (the documented rule), then refusing every fused epilogue,
#      so the fallback epilogue kernel runs too; the VAE's convolutions with
#      cuDNN refusing the fused conv + bias + residual call.
# Every run also checks, whatever the schedule: shared- and device-memory races,
# uninitialised reads, bounds, divergence, deadlocks, launch limits.
# Last line: "tests: N passed, N failed, N skipped" over all passes.
#
#   bash tests/cuda_emu/suite.sh            (make test-cuda-emu builds first)
#   EMU_SCHEDULES="rr ahead reverse random" bash tests/cuda_emu/suite.sh
set -u
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/emu/test_cuda}
SCHEDULES=${EMU_SCHEDULES:-rr ahead}
[ -x "$BIN" ] || { echo "suite.sh: $BIN is missing: run make test-cuda-emu (or make CUDA_EMU=1 $BIN)"; exit 2; }

# The CPU reference side must not spin while the emulator's workers run.
export OMP_WAIT_POLICY=passive

passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_pass() { # title env... -- filter
    local title=$1
    shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    local t0=$SECONDS
    echo "=== $title"
    env "${envs[@]}" "$BIN" --isolate "$@" | tee "$log"
    local line
    line=$(tail -n 1 "$log")
    if [[ $line =~ ^tests:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped ]]; then
        passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2])) skipped=$((skipped + BASH_REMATCH[3]))
    else
        echo "suite.sh: the run did not finish (no summary line)"
        failed=$((failed + 1))
    fi
    echo "=== $title: $((SECONDS - t0)) s"
}

for s in $SCHEDULES; do
    run_pass "schedule $s" FT_EMU_SCHEDULE="$s" -- cuda_
done
run_pass "cuBLASLt: documented bias types only" FT_EMU_CUBLASLT_STRICT_BIAS=1 -- cuda_op_linear
run_pass "cuBLASLt: no fused epilogues" FT_EMU_CUBLASLT_NO_EPILOGUES=1 -- cuda_op_linear
run_pass "cuBLASLt: no fused epilogues, whole sampler" FT_EMU_CUBLASLT_NO_EPILOGUES=1 -- cuda_sampler_heun_euler
run_pass "cuDNN: conv, bias and residual unfused" FT_EMU_CUDNN_NO_FUSED=1 -- cuda_op_fm_conv
run_pass "cuDNN: unfused, whole decoder" FT_EMU_CUDNN_NO_FUSED=1 -- cuda_vae_decode

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
