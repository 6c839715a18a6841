#!/usr/bin/env bash
# bench/run_vae_bench.sh — VAE decode: flowturbo (C, CPU backend) vs a plain PyTorch decoder, same weights,
# same latents, same thread count. Prints a markdown table (median ms per 256x256 image). The PyTorch sides
# (bench/torch_venv.sh): Debian's torch 1.13 where present, PyTorch 2.x eager and torch.compile from a venv;
# PYTHON=... times that one python's torch instead.
#
#   bash bench/run_vae_bench.sh [-t threads] [-n images] [-w warmup] [-r repeats] [-k rounds] [-m vae.safetensors]
#
# Each round runs the C decoder (warm-up + repeats) then each PyTorch side; with several rounds they alternate
# so that a change in machine load hits all. Medians are over all repeats of all rounds.
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

PY=/usr/bin/python3
if [ -n "${PYTHON:-}" ]; then
    TORCH_SIDES=("torch|$PYTHON|")
    TORCH2_LIB=
else
    source bench/torch_venv.sh
fi
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
: >"$C_LOG"
for i in "${!TORCH_SIDES[@]}"; do : >"$DIR/vae_torch$i.log"; done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((round = 1; round <= ROUNDS; round++)); do
    OMP_NUM_THREADS=$THREADS "$BIN" -m "$MODEL" -t "$THREADS" -n "$N" -w "$WARMUP" -r "$REPEATS" \
        -o "$DIR/vae_c_out.f32" | tee -a "$C_LOG" >&2
    for i in "${!TORCH_SIDES[@]}"; do
        IFS='|' read -r name tpy extra <<<"${TORCH_SIDES[$i]}"
        echo "round $round: $name" >&2
        # shellcheck disable=SC2086 # extra is one optional flag
        OMP_NUM_THREADS=$THREADS torch_side_run "$tpy" bench/vae_torch.py -m "$MODEL" -t "$THREADS" -n "$N" \
            -w "$WARMUP" -r "$REPEATS" --compare "$DIR/vae_c_out.f32" $extra | tee -a "$DIR/vae_torch$i.log" >&2
    done
done
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# medians over every "  repeat i: X ms/img (cpu Y ms/img)" line; field 1: wall, 2: cpu
median() {
    sed -n 's/^  repeat [0-9]*: \([0-9.]*\) ms\/img (cpu \([0-9.]*\) ms\/img)/\1 \2/p' "$1" | cut -d' ' -f"$2" |
        sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
CW=$(median "$C_LOG" 1) CC=$(median "$C_LOG" 2)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)

echo
echo "VAE decode, 4x32x32 latent -> 3x256x256, SD-VAE size (49.5M params), batch $N, $THREADS threads,"
echo "$CPU_MODEL ($(nproc) cores), median of $ROUNDS x $REPEATS repeats (each run after $WARMUP warm-up);"
echo "load average after: $LOAD"
sed -n 's/^cpu simd: /SIMD: /p' "$C_LOG" | head -1
echo
for i in "${!TORCH_SIDES[@]}"; do
    echo "${TORCH_SIDES[$i]%%|*}: $(sed -n 's/^torch side: //p' "$DIR/vae_torch$i.log" | head -1)"
done
echo
echo "| decoder | ms/img (wall) | cpu ms/img (all threads) | its wall / engine wall |"
echo "|---|---|---|---|"
awk -v cw="$CW" -v cc="$CC" 'BEGIN { printf "| flowturbo C (CPU backend) | %.0f | %.0f | 1.00x |\n", cw, cc }'
for i in "${!TORCH_SIDES[@]}"; do
    awk -v cw="$CW" -v tw="$(median "$DIR/vae_torch$i.log" 1)" -v tc="$(median "$DIR/vae_torch$i.log" 2)" \
        -v name="${TORCH_SIDES[$i]%%|*}" 'BEGIN { printf "| PyTorch: %s | %.0f | %.0f | %.2fx |\n", name, tw, tc, tw / cw }'
done
echo
for i in "${!TORCH_SIDES[@]}"; do
    echo "C output vs ${TORCH_SIDES[$i]%%|*}: rel L2 $(sed -n 's/^compare: .*rel L2 \(.*\)/\1/p' "$DIR/vae_torch$i.log" | tail -1)"
done
