#!/usr/bin/env bash
# bench/run_fid_launch_bench.sh — sample-fid throughput with 1, 2 and 3 processes on this machine's CPU
# (the Fashion-MNIST model of host/models, the FlowTurbo sampler H8P9R5, guidance 1.5). Prints a markdown table.
#
#   bash bench/run_fid_launch_bench.sh [-n images] [-b batch] [-r repeats] [-s sampler] [-a]
#
# Rows: 1 process x 1 thread (-a adds 1 process x all cores), then 2 and 3 processes x 1 thread each, started
# by mpirun (its default binding: one core per rank) when this build has MPI and mpirun is installed, and as
# torchrun-style background processes (RANK / WORLD_SIZE, not bound). Each row: one warm-up run, then the median over the repeats of the whole command's
# wall time (model loading, sampling, the merge: what a user waits for), as images per second. Every
# multi-process archive is compared byte for byte with the one-process, one-thread one. The load average is printed
# before and after (the machine may be shared).
set -euo pipefail
cd "$(dirname "$0")/.."

N=48
BATCH=8
REPEATS=3
SAMPLER=H8P9R5
CONFIGS=("1 1 none" "2 1 mpirun" "2 1 env" "3 1 mpirun" "3 1 env")
while getopts "n:b:r:s:a" opt; do
    case $opt in
    n) N=$OPTARG ;;
    b) BATCH=$OPTARG ;;
    r) REPEATS=$OPTARG ;;
    s) SAMPLER=$OPTARG ;;
    a) CONFIGS=("1 1 none" "1 $(nproc) none" "2 1 mpirun" "2 1 env" "3 1 mpirun" "3 1 env") ;;
    *) sed -n 2,12p "$0"; exit 2 ;;
    esac
done

BIN=${FT_CLI:-build/flowturbo}
[ -x "$BIN" ] || make -s "$BIN" >&2
DIR=${FT_BENCH_DIR:-/tmp/flowturbo-bench}/fid_launch
rm -rf "$DIR"
mkdir -p "$DIR"
ARGS=(sample-fid -m host/models/fashion_sit.safetensors --refiner host/models/fashion_refiner.safetensors
      --backend cpu --sampler "$SAMPLER" --cfg-scale 1.5 --num "$N" --batch "$BATCH" --seed 0)
HAVE_MPI=0
if "$BIN" sample-fid --help | grep -q 'MPI: built in' && command -v mpirun >/dev/null; then HAVE_MPI=1; fi

# run PROCESSES THREADS LAUNCHER OUT: one whole run, prints its wall seconds
run() {
    local procs=$1 threads=$2 launcher=$3 out=$4 t0 t1
    rm -rf "$out" "$out.spool"
    t0=$(date +%s.%N)
    if [ "$procs" = 1 ]; then
        "$BIN" "${ARGS[@]}" -t "$threads" --out "$out" 2>"$DIR/log.txt"
    elif [ "$launcher" = mpirun ]; then
        mpirun --allow-run-as-root --oversubscribe -np "$procs" "$BIN" "${ARGS[@]}" -t "$threads" --out "$out" \
            2>"$DIR/log.txt"
    else
        local pids=() r
        for ((r = 0; r < procs; r++)); do
            RANK=$r WORLD_SIZE=$procs LOCAL_RANK=$r "$BIN" "${ARGS[@]}" -t "$threads" --out "$out" 2>"$DIR/log_$r.txt" &
            pids+=($!)
        done
        for r in "${pids[@]}"; do wait "$r"; done
    fi
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo "| processes x threads | launcher | wall s (median of $REPEATS) | img/s | vs 1x1 | archive |"
echo "|---|---|---|---|---|---|"
BASE=""
for config in "${CONFIGS[@]}"; do
    set -- $config
    if [ "$3" = mpirun ] && [ $HAVE_MPI = 0 ]; then
        echo "  $1 x $2 $3: skipped ($BIN without MPI, or no mpirun)" >&2
        continue
    fi
    out=$DIR/p$1_t$2_$3.npz
    run "$1" "$2" "$3" "$out" >/dev/null # warm-up
    times=()
    for ((i = 0; i < REPEATS; i++)); do times+=("$(run "$1" "$2" "$3" "$out")"); done
    echo "  $1 x $2 $3: ${times[*]} s" >&2
    med=$(printf '%s\n' "${times[@]}" | median)
    ips=$(awk -v n="$N" -v t="$med" 'BEGIN {print n / t}')
    [ -n "$BASE" ] || BASE=$ips
    same="reference"
    if [ "$1" != 1 ]; then # against the one-process run with the same threads per process
        if cmp -s "$DIR/p1_t1_none.npz" "$out"; then same="identical"; else same="DIFFERS"; fi
    elif [ "$2" != 1 ]; then
        same="-"
    fi
    printf '| %s x %s | %s | %.2f | %.2f | %.2fx | %s |\n' "$1" "$2" "$3" "$med" "$ips" \
        "$(awk -v a="$ips" -v b="$BASE" 'BEGIN {print a / b}')" "$same"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "machine: $CPU, $(nproc) CPUs; $N images, batch $BATCH, $SAMPLER, Fashion-MNIST 32x32 model" >&2
