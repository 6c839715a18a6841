#!/usr/bin/env bash
# Fashion-MNIST pipeline: classifier -> predictor -> refiner -> export. Resumable: rerun the same command and every
# stage continues from its last checkpoint (finished stages are skipped).
#
# Full run (what TRAINING.md documents), launched in the background:
#   cd weights_tool/fashion && nohup setsid nice -n 10 ./run_all.sh > runs/full/run_all.log 2>&1 &
# Smoke run (a few dozen steps per stage, exports into runs/smoke/export instead of host/ and bench/):
#   SMOKE=1 RUN=runs/smoke ./run_all.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-/usr/bin/python3}
RUN=${RUN:-runs/full}
SEED=${SEED:-0}
PRED_STEPS=${PRED_STEPS:-3600}
REF_STEPS=${REF_STEPS:-1000}
CLS_EPOCHS=${CLS_EPOCHS:-8}
CLS_MAX_STEPS=${CLS_MAX_STEPS:-0}
CKPT_EVERY=${CKPT_EVERY:-100}
SAMPLE_EVERY=${SAMPLE_EVERY:-1000}
EXPORT_ARGS=()
if [ "${SMOKE:-0}" = 1 ]; then
  PRED_STEPS=${PRED_STEPS_SMOKE:-30}; REF_STEPS=${REF_STEPS_SMOKE:-20}; CLS_EPOCHS=1; CLS_MAX_STEPS=40
  CKPT_EVERY=10; SAMPLE_EVERY=100000
  EXPORT_ARGS=(--sit "$RUN/export/fashion_sit.safetensors" --refiner "$RUN/export/fashion_refiner.safetensors"
               --classifier "$RUN/export/fashion_classifier.safetensors" --report "$RUN/export/export_report.json")
  mkdir -p "$RUN/export"
fi
# One compute thread: measured as fast as 2 threads at micro-batch 32 on this 2-core VM when it is idle, and ~10x
# faster when another process holds one core (a 2-thread OpenMP pool waits on its descheduled thread at every op).
# OpenBLAS gets 1 thread too (its own pthread pool spin-waits against torch's).
THREADS=${THREADS:-1}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$THREADS
mkdir -p "$RUN"
echo "[$(date -Is)] run_all start RUN=$RUN SEED=$SEED PRED_STEPS=$PRED_STEPS REF_STEPS=$REF_STEPS CLS_EPOCHS=$CLS_EPOCHS pid=$$"

if [ ! -f "$RUN/classifier_final.pt" ]; then
  echo "[$(date -Is)] classifier"
  $PY train_classifier.py --out "$RUN" --epochs "$CLS_EPOCHS" --max-steps-per-epoch "$CLS_MAX_STEPS" --seed "$SEED" --threads "$THREADS"
fi
if [ ! -f "$RUN/predictor_ema.pt" ]; then
  echo "[$(date -Is)] predictor"
  $PY train_predictor.py --out "$RUN" --steps "$PRED_STEPS" --seed "$SEED" --ckpt-every "$CKPT_EVERY" --threads "$THREADS" \
      --sample-every "$SAMPLE_EVERY"
fi
if [ ! -f "$RUN/refiner_final.pt" ]; then
  echo "[$(date -Is)] refiner"
  $PY train_refiner.py --out "$RUN" --teacher "$RUN/predictor_ema.pt" --steps "$REF_STEPS" --seed "$SEED" \
      --ckpt-every "$CKPT_EVERY" --threads "$THREADS"
fi
echo "[$(date -Is)] export"
$PY export.py --run "$RUN" --threads "$THREADS" "${EXPORT_ARGS[@]}"
$PY plot_loss.py --run "$RUN" --out "$RUN/loss.png"
[ "${SMOKE:-0}" = 1 ] || cp "$RUN/loss.png" loss.png
echo "[$(date -Is)] run_all done"
