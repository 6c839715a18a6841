#!/bin/bash
# Issue 12, item 3 (predictor half): the shipped predictor against one continued with more weight near the data end
# (weights_tool/fashion/TRAINING.md section 9). Per predictor NAME=FILE given as arguments:
#   1. velocity_t1.py: the guided velocity's rate of change and one-step Euler / Heun local errors per t bin along a
#      fine RK4 solution (100 validation images, guidance 4 and 1); its final states are the PSNR reference;
#   2. quality.py generate + report on the validation split (500 samples, guidance 4): euler:8, heun:4, H2P4R2 with
#      the shipped refiner and its zero ablation (untagged / +zero) -> build/quality/pred_t1/<NAME>/.
# Resumable (finished pieces in build/quality are kept). Then the tables:
#   bench/quality/velocity_t1.py table --sit shipped=...,ft=... --md ... --plot ...
# Usage: bench/quality/predictor_t1.sh shipped=host/models/fashion_sit.safetensors [ft=runs/.../x.safetensors]
# CFGS (default 4): the guidance scales of steps 1 and 2; CFGS_VEL (default 1): further scales of step 1 only (after
# step 2); SAMPLERS: the samplers of step 2; REFINER (default the shipped one): the refiner of H2P4R2 and its zero
# ablation, e.g. the refiner retrained against the continued predictor (TRAINING.md section 10):
#   REFINER=weights_tool/fashion/runs/study_t1/guided_seg/fashion_refiner.safetensors CFGS="4 3" \
#     bench/quality/predictor_t1.sh ft_r1=weights_tool/fashion/runs/pred_t1/fashion_sit_t1.safetensors
set -e
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=/usr/bin/python3
W=build/quality
SAMPLERS=${SAMPLERS:-euler:8,heun:4,H2P4R2,H2P4R2+zero}
REFINER=${REFINER:-host/models/fashion_refiner.safetensors}
for arg in "$@"; do
  name=${arg%%=*}; sit=${arg#*=}
  fp=$($PY -c "import sys; sys.path.insert(0, 'bench/quality'); import qlib; print(qlib.tensor_fingerprint('$sit'))")
  echo "[$(date -u +%T)] $name: $sit (fingerprint $fp)"
  for c in ${CFGS:-4}; do
    $PY bench/quality/velocity_t1.py run --sit "$name=$sit" --cfgs $c -n 100 --n-ref 100 \
        --ref-out "$W/rk4fine_cfg{cfg}_n{n}_{split}_{fp}.npy"
    $PY bench/quality/quality.py generate --split val --cfgs $c -n 500 --sit "$sit" --refiner "$REFINER" \
        --samplers "$SAMPLERS" --convergence ""
    $PY bench/quality/quality.py report --split val --cfgs $c -n 500 --n-ref 100 --sit "$sit" --refiner "$REFINER" \
        --samplers "$SAMPLERS" --convergence "" --rk4-file "$W/rk4fine_cfg${c}_n100_val_$fp.npy" \
        --results "$W/pred_t1/$name"
  done
done
for c in ${CFGS_VEL:-1}; do
  for arg in "$@"; do
    $PY bench/quality/velocity_t1.py run --sit "$arg" --cfgs "$c" -n 100 --n-ref 0
  done
done
echo "[$(date -u +%T)] done"
