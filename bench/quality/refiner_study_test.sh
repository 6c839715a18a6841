#!/bin/bash
# Issue 12, the reported run: t10k split, 200 samples per sampler (noise seed k, label k % 10), guidance 4 (the
# shipped scale) with every sampler of the study, guidance 3 and 1 with fewer (the 2-core machine was shared).
# Untagged FlowTurbo samplers use host/models/fashion_refiner.safetensors (the guided_seg refiner shipped by issue
# 12), +old the refiner shipped before (OLD=its file: git show 5b899cf:host/models/fashion_refiner.safetensors),
# +rs the released-kind variant, +zero the shipped refiner with its final layer zeroed (r = 0, same cost).
# Resumable: finished samples / references in build/quality are kept. Results -> bench/quality/*_test_cfg*.{json,md}.
set -e
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
S=weights_tool/fashion/runs/study
OLD=${OLD:-build/quality/refiner_shipped_before_issue12.safetensors}
[ -f "$OLD" ] || git show 5b899cf:host/models/fashion_refiner.safetensors > "$OLD"
REF="rs=$S/released_seg/fashion_refiner.safetensors,old=$OLD"
Q="/usr/bin/python3 bench/quality/quality.py"
T4="euler:8,euler:12,heun:4,heun:8,heun:8/s3,H2P4R2+old,H2P4R2+rs,H2P4R2,H2P4R2+zero,H2P4R2/s1.5,H1P5R3+old,H1P5R3,H1P5R3+zero"
T3="euler:8,heun:4,heun:8,H2P4R2+old,H2P4R2,H2P4R2+zero,H1P5R3"
T1="euler:8,heun:4,H2P4R2+old,H2P4R2,H2P4R2+zero"
list() { case $1 in 4) echo $T4 ;; 3) echo $T3 ;; 1) echo $T1 ;; esac; }
# PSNR references: RK4 with 64 steps for the first 20 images (guidance 3: the stored 128-step solutions of the test)
for c in 4 1; do $Q reference --split test --cfgs $c --rk4-steps 64 --n-ref 20 -n 200; done
cp -n bench/quality/data/rk4_ref.npy build/quality/rk4_128_cfg3_n20_$(/usr/bin/python3 -c \
  "import sys; sys.path.insert(0, 'bench/quality'); import qlib; print(qlib.tensor_fingerprint(qlib.SIT))").npy
for c in 4 3 1; do $Q generate --split test --cfgs $c -n 200 -j 2 --refiners "$REF" --samplers $(list $c) --convergence ""; done
for c in 4 3 1; do $Q time --cfgs $c --refiners "$REF" --samplers $(list $c) --time-batch 16 --time-n 16 --reps 3; done
for c in 4 3 1; do
  K=64; [ $c = 3 ] && K=128
  $Q report --split test --cfgs $c --rk4-steps $K --n-ref 20 -n 200 --time-batch 16 --refiners "$REF" --samplers $(list $c) --convergence ""
done
$Q plot --cfgs 4,3,1 --plot-name quality_vs_cost_refiner_study.png
$Q grid --split test --cfg 4 -n 200 --refiners "$REF" --grid-samplers euler:8,heun:4,heun:8,heun:8/s3,H2P4R2+old,H2P4R2+rs,H2P4R2,H2P4R2+zero,H2P4R2/s1.5,H1P5R3
