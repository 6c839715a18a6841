#!/usr/bin/env bash
# Issue 12: the refiner variants of the study (TRAINING.md section 8). Teacher pairs first (refiner_data.py, the
# frozen predictor's forwards, cached in chunks), then each variant's training on its pairs and its export. Every
# stage is resumable: rerun this script (finished chunks / trainings are skipped, a running one resumes from its
# checkpoint). Run it in the background, e.g. nohup ./refiner_study.sh > runs/study/study.log 2>&1 &
#   VARIANTS="released_seg guided_seg" STEPS=1000 ./refiner_study.sh
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=/usr/bin/python3
STEPS=${STEPS:-1000}
# where the R blocks of the table's samplers run: query time t' = t + dt in [0.6, 1], dt = their step (1/12 .. 1/6)
SEG=(--t-of end --t-range 0.6,1 --dt-range 0.05,0.17)
# the released recipe's times: t ~ U[0, 1), dt ~ U[0, 0.12)
UNI=(--t-of start --t-range 0,1 --dt-range 0,0.12)
for v in ${VARIANTS:-guided_seg released_seg guided_uni}; do
  R=runs/study/$v
  case $v in
    guided_seg) K=(--kind guided "${SEG[@]}") ;;
    released_seg) K=(--kind released "${SEG[@]}") ;;
    guided_uni) K=(--kind guided "${UNI[@]}") ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  echo "[$(date -Is)] pairs $v"
  $PY refiner_data.py --out $R/data "${K[@]}" --n 32768
  $PY refiner_data.py --out $R/val "${K[@]}" --n 2048 --split holdout --seed 1
  if [ ! -f $R/refiner_final.pt ]; then
    echo "[$(date -Is)] train $v"
    $PY train_refiner.py --out $R --data $R/data --val $R/val --steps $STEPS --threads 1 --seed 0
  fi
  $PY export.py --run $R --refiner-only --refiner $R/fashion_refiner.safetensors --threads 1
  echo "[$(date -Is)] $v done"
done
