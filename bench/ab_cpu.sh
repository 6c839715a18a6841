#!/usr/bin/env bash
# A/B timing of the CPU path: a baseline revision against the working tree, on this machine, both built the same
# way (CUDA=0). Per round and thread count, each build runs the SiT-S/2 predictor forward (build/cpu_bench: 2 rows
# = batch 1 with guidance, median of 5 after 1 warm-up) and `flowturbo generate` of 16 embedded-model images
# (wall time); the builds alternate so that other load on the machine hits both alike. Prints the median over
# the rounds per build, plus the user CPU time of generate (less sensitive to load than wall time).
# With AB_VAE=VAE.safetensors, each round also decodes one 256x256 image per build and thread count
# (build/vae_bench -p, 1 warm-up + 1 timed decode) and the table gains its wall ms and its GroupNorm ms.
#   bash bench/ab_cpu.sh [BASE_REV] [ROUNDS] [THREADS...]     (default: 4168add 5 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-4168add}
ROUNDS=${2:-5}
shift $(($# < 2 ? $# : 2))
if [ $# -gt 0 ]; then THREADS=("$@"); else THREADS=(1 2); fi
PY=/usr/bin/python3
D=build/ab
mkdir -p "$D"
[ -f build/bench/sit_s2.safetensors ] || { mkdir -p build/bench &&
    $PY weights_tool/convert.py random --kind sit --preset S/2 --seed 1 -o build/bench/sit_s2.safetensors >/dev/null; }
rm -rf "$D/base-src" && git clone -q . "$D/base-src" && git -C "$D/base-src" checkout -q "$BASE"
VAE=${AB_VAE:-}
make -s -C "$D/base-src" CUDA=0 build/cpu_bench build/flowturbo ${VAE:+build/vae_bench} >/dev/null
make -s BUILD="$D/new" CUDA=0 "$D/new/cpu_bench" "$D/new/flowturbo" ${VAE:+"$D/new/vae_bench"} >/dev/null
declare -A BIN=([base]="$D/base-src/build" [new]="$D/new")
out=$D/results.jsonl
: > "$out"
for ((r = 1; r <= ROUNDS; r++)); do
    for t in "${THREADS[@]}"; do
        for b in base new; do
            ms=$("${BIN[$b]}/cpu_bench" -m build/bench/sit_s2.safetensors -t "$t" -b 1 --repeat 5 --warmup 1 |
                 sed -n 's/.*"predictor_forward".*"ms":\([0-9.]*\).*/\1/p')
            /usr/bin/time -f '%e %U' -o "$D/time.txt" "${BIN[$b]}/flowturbo" generate --backend cpu -t "$t" -n 16 \
                --sampler H1P5R3 -o "$D/g_$b.png" --grid >/dev/null 2>&1
            read -r wall user < "$D/time.txt"
            vae=""
            if [ -n "$VAE" ]; then
                "${BIN[$b]}/vae_bench" -m "$VAE" -t "$t" -w 1 -r 1 -p > "$D/vae.txt"
                vae=",\"vae_ms\":$(sed -n 's/^  repeat 0: \([0-9.]*\) ms.*/\1/p' "$D/vae.txt")"
                vae+=",\"vae_group_norm_ms\":$(awk '$1 == "group_norm" {print $4}' "$D/vae.txt")"
            fi
            echo "{\"build\":\"$b\",\"threads\":$t,\"forward_ms\":$ms,\"generate_s\":$wall,\"generate_user_s\":$user$vae}" >> "$out"
        done
    done
done
$PY - "$out" "$BASE" "$ROUNDS" <<'PYEOF'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"CPU: {cpu}; baseline {sys.argv[2]} vs working tree, {sys.argv[3]} alternating rounds, medians")
print("| threads | S/2 forward ms base | new | new/base | generate s base | new | new/base | generate user s base | new |")
print("|---|---|---|---|---|---|---|---|---|")
for t in sorted({r["threads"] for r in rows}):
    m = {b: {k: st.median(r[k] for r in rows if r["build"] == b and r["threads"] == t)
             for k in ("forward_ms", "generate_s", "generate_user_s")} for b in ("base", "new")}
    print(f"| {t} | {m['base']['forward_ms']:.1f} | {m['new']['forward_ms']:.1f} | "
          f"{m['new']['forward_ms'] / m['base']['forward_ms']:.2f} | {m['base']['generate_s']:.2f} | "
          f"{m['new']['generate_s']:.2f} | {m['new']['generate_s'] / m['base']['generate_s']:.2f} | "
          f"{m['base']['generate_user_s']:.2f} | {m['new']['generate_user_s']:.2f} |")
vae = [r for r in rows if "vae_ms" in r]
if vae:
    print("\n| threads | VAE decode ms base | new | new/base | VAE GroupNorm ms base | new | new/base |")
    print("|---|---|---|---|---|---|---|")
    for t in sorted({r["threads"] for r in vae}):
        m = {b: {k: st.median(r[k] for r in vae if r["build"] == b and r["threads"] == t)
                 for k in ("vae_ms", "vae_group_norm_ms")} for b in ("base", "new")}
        print(f"| {t} | {m['base']['vae_ms']:.0f} | {m['new']['vae_ms']:.0f} | {m['new']['vae_ms'] / m['base']['vae_ms']:.2f} | "
              f"{m['base']['vae_group_norm_ms']:.0f} | {m['new']['vae_group_norm_ms']:.0f} | "
              f"{m['new']['vae_group_norm_ms'] / m['base']['vae_group_norm_ms']:.2f} |")
PYEOF
