#!/bin/bash
# Issue 12: the verdict's rows at n = 2000 on t10k (noise seed k, label k % 10; the tables of refiner_study_test.sh
# have 200 per sampler, where FD differences of ~2 are noise): the shipped pair's H2P4R2, its zero ablation and
# euler:8 (equal cost), guidance 4, 3 and 1; PSNR on the same first 20 images as there -> build/quality/test_n2000.
# Resumable (finished samples / references in build/quality are kept). JOBS: engine processes side by side; CFGS: the
# guidance scales (default 4 3 1); SIT: another predictor (default the shipped one) -> RESULTS (default test_n2000).
set -e
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
Q="/usr/bin/python3 bench/quality/quality.py"
S=euler:8,H2P4R2,H2P4R2+zero
SIT=${SIT:-host/models/fashion_sit.safetensors}
for c in ${CFGS:-4 3 1}; do
  K=64; [ $c = 3 ] && K=128
  $Q generate --split test --sit "$SIT" --cfgs $c -n 2000 -j ${JOBS:-1} --samplers $S --convergence ""
  $Q report --split test --sit "$SIT" --cfgs $c --rk4-steps $K --n-ref 20 -n 2000 --samplers $S --convergence "" \
      --results build/quality/${RESULTS:-test_n2000}
done
echo "[$(date -u +%T)] done"
