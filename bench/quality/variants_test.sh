#!/bin/bash
# Issue 12: the t10k rows (200 samples per sampler, noise seed k, label k % 10; guidance 4, 3 and 1) of the variants
# that validation did not ship, beside the shipped pair's rows of refiner_study_test.sh:
#   ft   the continued predictor (weights_tool/fashion/TRAINING.md section 9) with the shipped refiner, its zero
#        ablation, euler:8 and heun:4 -> build/quality/test_ft (PSNR against its own RK4 solutions: 64 steps at
#        guidance 4 and 1, 128 at 3, as for the shipped predictor)
#   gu   the guided refiner trained with uniform t (TRAINING.md section 8) on the shipped predictor -> build/quality/test_gu
# Resumable (finished samples / references in build/quality are kept).
# Usage: bench/quality/variants_test.sh [FT_SIT] [GU_REFINER]
#   NAME=uni bench/quality/variants_test.sh runs/pred_uni/fashion_sit_uni.safetensors ""   (-> build/quality/test_uni;
#   an empty GU_REFINER skips the gu rows)
set -e
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
FT=${1:-weights_tool/fashion/runs/pred_t1/fashion_sit_t1.safetensors}
GU=${2-weights_tool/fashion/runs/study/guided_uni/fashion_refiner.safetensors}
NAME=${NAME:-ft}
Q="/usr/bin/python3 bench/quality/quality.py"
W=build/quality
steps() { [ "$1" = 3 ] && echo 128 || echo 64; }
for c in 4 3 1; do
  K=$(steps $c)
  $Q reference --split test --sit "$FT" --cfgs $c --rk4-steps $K --n-ref 20 -n 200
  $Q generate --split test --sit "$FT" --cfgs $c -n 200 --samplers euler:8,heun:4,H2P4R2,H2P4R2+zero --convergence ""
  $Q report --split test --sit "$FT" --cfgs $c --rk4-steps $K --n-ref 20 -n 200 \
      --samplers euler:8,heun:4,H2P4R2,H2P4R2+zero --convergence "" --results $W/test_$NAME
  [ -n "$GU" ] || continue
  $Q generate --split test --cfgs $c -n 200 --refiners "gu=$GU" --samplers H2P4R2+gu --convergence ""
  $Q report --split test --cfgs $c --rk4-steps $K --n-ref 20 -n 200 --refiners "gu=$GU" \
      --samplers H2P4R2,H2P4R2+gu,H2P4R2+zero --convergence "" --results $W/test_gu
done
echo "[$(date -u +%T)] done"
