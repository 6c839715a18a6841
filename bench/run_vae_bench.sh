#!/usr/bin/env bash
# bench/run_vae_bench.sh — VAE decode: flowturbo (C, CPU backend) vs a plain PyTorch decoder, same weights,
# same latents, same thread count. Prints a markdown table (median ms per 256x256 image).
#
#   bash bench/run_vae_bench.sh [-t threads] [-n images] [-w warmup] [-r repeats] [-k rounds] [-m vae.safetensors]
#
# Each round runs the C decoder (warm-up + repeats) then the PyTorch one; with several rounds the two alternate
# so that a change in machine load hits both. Medians are over all repeats of all rounds.
# Without -m a full-size SD-VAE decoder (block_out_channels 128,256,512,512, layers_per_block 2, 32 groups,
# 49.5M params) with seeded random weights is written once to $FT_BENCH_DIR (default /tmp/flowturbo-bench)
# by weights_tool/convert.py. The C binary is build/vae_bench (make build/vae_bench). Timings on a shared
# machine are noisy: the table also gives process CPU time per image (all threads), and the load average.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=$(nproc)
N=1
WARMUP=1
REPEATS=5
ROUNDS=1
MODEL=""
while getopts "t:n:w:r:k:m:" opt; do
    case $opt in
    t) THREADS=$OPTARG ;;
    n) N=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    r) REPEATS=$OPTARG ;;
    k) ROUNDS=$OPTARG ;;
    m) MODEL=$OPTARG ;;
    *) sed -n 2,12p "$0"; exit 2 ;;
    esac
done

PY=${PYTHON:-/usr/bin/python3}
DIR=${FT_BENCH_DIR:-/tmp/flowturbo-bench}
mkdir -p "$DIR"
if [ -z "$MODEL" ]; then
    MODEL=$DIR/vae_sd_random.safetensors
    if [ ! -f "$MODEL" ]; then
        "$PY" weights_tool/convert.py random --kind vae --vae-preset sd --seed 0 -o "$MODEL" >&2
    fi
fi
BIN=${VAE_BENCH:-build/vae_bench}
if [ ! -x "$BIN" ]; then
    make -s "$BIN" >&2 || {
        echo "run_vae_bench: cannot build $BIN" >&2
        exit 1
    }
fi

C_LOG=$DIR/vae_c.log
T_LOG=$DIR/vae_torch.log
: >"$C_LOG"
: >"$T_LOG"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((round = 1; round <= ROUNDS; round++)); do
    "$BIN" -m "$MODEL" -t "$THREADS" -n "$N" -w "$WARMUP" -r "$REPEATS" -o "$DIR/vae_c_out.f32" | tee -a "$C_LOG" >&2
    "$PY" bench/vae_torch.py -m "$MODEL" -t "$THREADS" -n "$N" -w "$WARMUP" -r "$REPEATS" \
        --compare "$DIR/vae_c_out.f32" | tee -a "$T_LOG" >&2
done
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# medians over every "  repeat i: X ms/img (cpu Y ms/img)" line; field 1: wall, 2: cpu
median() {
    sed -n 's/^  repeat [0-9]*: \([0-9.]*\) ms\/img (cpu \([0-9.]*\) ms\/img)/\1 \2/p' "$1" | cut -d' ' -f"$2" |
        sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
CW=$(median "$C_LOG" 1) CC=$(median "$C_LOG" 2) TW=$(median "$T_LOG" 1) TC=$(median "$T_LOG" 2)
ERR=$(sed -n 's/^compare: .*rel L2 \(.*\)/\1/p' "$T_LOG" | tail -1)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
TORCH=$("$PY" -c 'import torch; print(torch.__version__)')

echo
echo "VAE decode, 4x32x32 latent -> 3x256x256, SD-VAE size (49.5M params), batch $N, $THREADS threads,"
echo "$CPU_MODEL ($(nproc) cores), median of $ROUNDS x $REPEATS repeats (each run after $WARMUP warm-up);"
echo "load average after: $LOAD"
sed -n 's/^cpu simd: /SIMD: /p' "$C_LOG" | head -1
echo
echo "| decoder | ms/img (wall) | cpu ms/img (all threads) | wall vs torch |"
echo "|---|---|---|---|"
awk -v cw="$CW" -v cc="$CC" -v tw="$TW" -v tc="$TC" -v torch="$TORCH" 'BEGIN {
    printf "| flowturbo C (CPU backend) | %.0f | %.0f | %.2fx |\n", cw, cc, cw / tw
    printf "| PyTorch %s (F.conv2d, oneDNN) | %.0f | %.0f | 1.00x |\n", torch, tw, tc
}'
echo
echo "C output vs PyTorch: rel L2 $ERR"
