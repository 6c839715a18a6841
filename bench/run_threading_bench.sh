#!/usr/bin/env bash
# bench/run_threading_bench.sh [BASE] — CPU threading next to other work: wall time of
#   flowturbo generate -n 16 --class 0,1,...  (embedded model, H1P5R3, cfg 4; one run = 2 batches of 8)
# at -t 1 and -t 2, alone and next to a competing load (2 busy-looping processes, one per core of a 2-core
# machine), for this build and for BASE (default 4168add, before the single-pool threading) built from git in a
# temporary directory. Median of 3 runs per cell, the configurations interleaved run by run (so a background load
# that drifts affects them alike); prints a Markdown table. Configurations:
#   base               BASE as users ran it: OpenMP default wait policy + OpenBLAS's own thread pool
#   base, passive      BASE with OMP_WAIT_POLICY=passive in the environment
#   this, spin         this build with GOMP_SPINCOUNT=300000 (libgomp's default spinning; no re-exec)
#   this               this build as shipped: one pool, released after every call, passive waiting (re-exec)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-4168add}
reps=${REPS:-3}
tmp=$(mktemp -d)
loadpids=()
cleanup() { for p in "${loadpids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
git archive "$base" | tar -x -C "$tmp"
make -C "$tmp" -s CUDA=0 -j2 build/flowturbo >/dev/null
[ -x build/flowturbo ] || { echo "build this tree first (make)" >&2; exit 1; }
this=$PWD/build/flowturbo basebin=$tmp/build/flowturbo
classes=0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5

run1() { # wall seconds of one run: BIN T ENV...
    local bin=$1 t=$2; shift 2
    local t0 t1
    t0=$(date +%s.%N)
    env "$@" "$bin" generate -t "$t" -n 16 --class "$classes" --grid -o "$tmp/out.png" >/dev/null 2>&1
    t1=$(date +%s.%N)
    awk "BEGIN { print $t1 - $t0 }"
}

load_on() { for _ in 1 2; do (while :; do :; done) & loadpids+=($!); done; sleep 0.5; }
load_off() { for p in "${loadpids[@]}"; do kill "$p" 2>/dev/null; done; loadpids=(); sleep 0.5; }

configs=("base" "base, passive" "this, spin" "this")
setup() { # sets bin and envs for a configuration
    case "$1" in
    "base") bin=$basebin; envs=(FT_BENCH=1) ;;
    "base, passive") bin=$basebin; envs=(OMP_WAIT_POLICY=passive) ;;
    "this, spin") bin=$this; envs=(GOMP_SPINCOUNT=300000) ;;
    "this") bin=$this; envs=(FT_BENCH=1) ;;
    esac
}

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo "CPU: $cpu, $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); base $base vs $(git rev-parse --short HEAD); median of $reps, configurations interleaved"
declare -A times
for load in alone load; do
    [ "$load" = load ] && load_on
    for _ in $(seq "$reps"); do
        for cfg in "${configs[@]}"; do
            setup "$cfg"
            for t in 1 2; do times["$cfg|$t|$load"]+="$(run1 "$bin" "$t" "${envs[@]}") "; done
        done
    done
    [ "$load" = load ] && load_off
done
median() { printf '%s\n' $1 | sort -n | sed -n "$(( (reps + 1) / 2 ))p"; }
echo
echo "| configuration | -t 1 alone | -t 2 alone | -t 1 + load | -t 2 + load |"
echo "|---|---|---|---|---|"
for cfg in "${configs[@]}"; do
    printf '| %s | %.2f s | %.2f s | %.2f s | %.2f s |\n' "$cfg" "$(median "${times[$cfg|1|alone]}")" \
        "$(median "${times[$cfg|2|alone]}")" "$(median "${times[$cfg|1|load]}")" "$(median "${times[$cfg|2|load]}")"
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
