#!/usr/bin/env bash
# Issue 12: the refiner variants of the study (TRAINING.md section 8). Teacher pairs first (refiner_data.py, the
# frozen predictor's forwards, cached in chunks), then each variant's training on its pairs and its export. Every
# stage is resumable: rerun this script (finished chunks / trainings are skipped, a running one resumes from its
# checkpoint). Run it in the background, e.g. nohup ./refiner_study.sh > runs/study/study.log 2>&1 &
#   VARIANTS="released_seg guided_seg" STEPS=1000 ./refiner_study.sh
# Against another predictor (the teacher of the pairs), in another study folder, pairs made by 2 processes:
#   TEACHER=runs/pred_t1/fashion_sit_t1.safetensors STUDY=runs/study_t1 VARIANTS=guided_seg PARTS=2 ./refiner_study.sh
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=/usr/bin/python3
STEPS=${STEPS:-1000}
STUDY=${STUDY:-runs/study}
PARTS=${PARTS:-1}
TEACHER_ARG=()
if [ -n "${TEACHER:-}" ]; then TEACHER_ARG=(--teacher "$TEACHER"); fi

# the pairs of one variant, made by PARTS processes side by side (each chunk once; the same pairs as one process)
pairs() {
  local pids=() i
  for ((i = 0; i < PARTS; i++)); do
    $PY refiner_data.py "${TEACHER_ARG[@]}" "$@" --part $i/$PARTS &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
}
# where the R blocks of the table's samplers run: query time t' = t + dt in [0.6, 1], dt = their step (1/12 .. 1/6)
SEG=(--t-of end --t-range 0.6,1 --dt-range 0.05,0.17)
# the released recipe's times: t ~ U[0, 1), dt ~ U[0, 0.12)
UNI=(--t-of start --t-range 0,1 --dt-range 0,0.12)
for v in ${VARIANTS:-guided_seg released_seg guided_uni}; do
  R=$STUDY/$v
  case $v in
    guided_seg) K=(--kind guided "${SEG[@]}") ;;
    released_seg) K=(--kind released "${SEG[@]}") ;;
    guided_uni) K=(--kind guided "${UNI[@]}") ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  echo "[$(date -Is)] pairs $v"
  pairs --out $R/data "${K[@]}" --n 32768
  pairs --out $R/val "${K[@]}" --n 2048 --split holdout --seed 1
  if [ ! -f $R/refiner_final.pt ]; then
    echo "[$(date -Is)] train $v"
    $PY train_refiner.py --out $R --data $R/data --val $R/val --steps $STEPS --threads 1 --seed 0
  fi
  $PY export.py --run $R --refiner-only --refiner $R/fashion_refiner.safetensors --threads 1
  echo "[$(date -Is)] $v done"
done
