#!/usr/bin/env bash
# Runs every libFuzzer target (build/fuzz/fuzz_*, from `make fuzz-build`) for SECONDS seconds each, from a seed
# corpus made of the test fixtures (and files the CLI writes from them), JOBS targets at a time. Fails when any
# target reports a finding (crash, sanitizer report, leak, timeout, out-of-memory); the input that triggered it is
# kept as build/fuzz/findings/<target>-*. Prints one line per target: executions, coverage (cov / ft), corpus.
#   bash tests/fuzz/run.sh [SECONDS] [JOBS]
#   FUZZ_RUNS=1000000 bash tests/fuzz/run.sh 0 1    # the long run: a million executions per target, no time limit
set -uo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
JOBS=${2:-2}
RUNS=${FUZZ_RUNS:-0}
D=build/fuzz
CLI=build/flowturbo
mkdir -p "$D/findings" "$D/logs"

# ---- seed corpora (build/fuzz/seeds/<target>; the growing corpus is build/fuzz/corpus/<target>) ----
S=$D/seeds
rm -rf "$S" && mkdir -p "$S"/{safetensors,json,npy,npz,png,sampler,cli,spool_config}
for f in tests/data/*.safetensors; do cp "$f" "$S/safetensors/"; done
# tiny models of each role (a few KB: thousands of loads a second), when NumPy is there for the converter
P=/usr/bin/python3 C=weights_tool/convert.py TINY=(--input-size 4 --patch 2 --hidden 8 --depth 1 --heads 2
    --in-channels 1 --num-classes 2 --guided-channels 1)
if $P -c 'import numpy' 2>/dev/null; then
    $P $C random --kind sit "${TINY[@]}" --dtype f16 -o "$S/safetensors/tiny_sit.st" >/dev/null
    $P $C random --kind refiner "${TINY[@]}" --dtype bf16 -o "$S/safetensors/tiny_refiner.st" >/dev/null
    $P $C random --kind vae --block-out-channels 8,8 --layers-per-block 1 --groups 4 --latent-channels 1 \
        --out-channels 1 -o "$S/safetensors/tiny_vae.st" >/dev/null
fi
for f in tests/data/*.safetensors tests/data/conformance/*.safetensors; do # headers alone for the JSON reader
    n=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
    { printf '\003'; dd if="$f" bs=1 skip=8 count="$n" status=none; } > "$S/json/$(basename "$f" .safetensors).json"
done
cp tests/data/conformance/*.npy "$S/npy/"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
M=tests/data/sit_b.safetensors
$CLI generate -m $M --sampler heun:1 -n 2 -o "$T/rgb.png" --latents-out "$S/npy/latents.npy" >/dev/null 2>&1
$CLI generate -m $M --sampler heun:1 -n 2 --grid -o "$T/grid.png" >/dev/null 2>&1
$CLI generate --sampler heun:1 -n 1 -o "$T/gray.png" >/dev/null 2>&1 # the embedded model: grey
cp "$T"/*.png "$S/png/" 2>/dev/null
$CLI sample-fid -m $M --sampler heun:1 --num 3 --batch 2 --out "$S/npz/fid.npz" --labels-out "$S/npy/labels.npy" \
    >/dev/null 2>&1
rm -rf "$S/npz/fid.npz.spool"
for s in H1P5R3 heun:8 euler:50 H8P9R5 h2p1 R1 H0P3 heun:0 euler:99999999999; do printf '%s' "$s" > "$S/sampler/$s"; done
i=0
for a in 'generate\0-n\0005\0--cfg-scale=1.5\0--class\0001,2,3\0-o\0out_%%03d.png' '-s\000-1\0--grid\0--\0-x' \
         '--num=2147483647\0--seed\0009223372036854775807\0--class=random\0-oimg.png' '-n\0-h'; do
    printf -- "$a" > "$S/cli/args$i"; i=$((i + 1))
done
printf 'format: flowturbo-fid 1\nmodel: 0123\nseed: 7\n# note\0format: flowturbo-fid 1\nmodel: 0124\nbatch: 8\n' \
    > "$S/spool_config/diff"
for t in safetensors json npy npz png sampler cli spool_config; do
    [ -n "$(ls -A "$S/$t")" ] || { echo "fuzz: no seeds for $t (is $CLI built?)"; exit 1; }
done

# ---- runs ----
run_one() {
    local t=$1 extra=()
    [ "$t" = safetensors ] && extra=(-max_len=65536) # bigger fixtures are cut: their headers still count
    mkdir -p "$D/corpus/$t"
    "$D/fuzz_$t" -max_total_time="$SECS" -runs="$((RUNS > 0 ? RUNS : -1))" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -close_fd_mask=3 \
        -print_final_stats=1 -artifact_prefix="$D/findings/$t-" "${extra[@]}" "$D/corpus/$t" "$S/$t" \
        > "$D/logs/$t.log" 2>&1
    echo $? > "$D/logs/$t.rc"
}
TARGETS=(safetensors json npy npz png sampler cli spool_config)
for t in "${TARGETS[@]}"; do
    [ -x "$D/fuzz_$t" ] || { echo "fuzz: $D/fuzz_$t is missing (make fuzz-build)"; exit 1; }
    run_one "$t" &
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 0.2; done
done
wait
fail=0
printf '%-13s %10s %9s %8s %8s  %s\n' target execs exec/s cov ft result
for t in "${TARGETS[@]}"; do
    log=$D/logs/$t.log rc=$(cat "$D/logs/$t.rc")
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*')
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*')
    if [ "$rc" = 0 ]; then res="ok (no findings)"; else
        res="FINDING (rc $rc): $(grep -m1 -E 'ERROR|SUMMARY|timeout|out-of-memory' "$log")"; fail=1; fi
    printf '%-13s %10s %9s %8s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "$res"
done
[ $fail = 0 ] || { echo "fuzz: findings above; logs in $D/logs, inputs in $D/findings"; exit 1; }
