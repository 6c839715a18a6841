#!/usr/bin/env bash
# CPU benchmark: the engine (build/cpu_bench) and the PyTorch reference (bench/cpu_torch.py) on the same
# randomly initialised SiT-S/2 (hidden 384, depth 12, 6 heads, 4x32x32 latents, 1000 classes) + a
# 1-block S/2 refiner, same thread count, median of repeats after warm-up. Prints a markdown table.
#   bash bench/run_cpu_bench.sh [THREADS] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}
R=${2:-5}
PY=/usr/bin/python3
D=build/bench
mkdir -p "$D"
[ -f "$D/sit_s2.safetensors" ] || $PY weights_tool/convert.py random --kind sit --preset S/2 --seed 1 -o "$D/sit_s2.safetensors" >/dev/null
[ -f "$D/refiner_s2.safetensors" ] || $PY weights_tool/convert.py random --kind refiner --preset S/2 --seed 2 -o "$D/refiner_s2.safetensors" >/dev/null
ARGS=(-m "$D/sit_s2.safetensors" -r "$D/refiner_s2.safetensors" -t "$T" -b 1 --repeat "$R" --warmup 1 --sampler H1P5R3)
build/cpu_bench "${ARGS[@]}" > "$D/engine.jsonl"
OMP_NUM_THREADS=$T $PY bench/cpu_torch.py "${ARGS[@]}" > "$D/torch.jsonl"
$PY - "$D/engine.jsonl" "$D/torch.jsonl" "$T" <<'PYEOF'
import json, sys, platform
eng = [json.loads(l) for l in open(sys.argv[1])]
info = next((e for e in eng if e["what"] == "cpu"), {})
eng = [e for e in eng if e["what"] != "cpu"]
ref = [json.loads(l) for l in open(sys.argv[2])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"CPU: {cpu}, {sys.argv[3]} threads; SiT-S/2 + S/2 refiner, batch 1, cfg 4 (2 rows per call); median ms")
print(f"SIMD: {info.get('simd', '?')} ({info.get('features', '?')}); BLAS: {info.get('blas', '?')}")
print("| work | engine ms | PyTorch ms | PyTorch / engine |")
print("|---|---|---|---|")
for e, r in zip(eng, ref):
    name = e["what"] + (f" {e['sampler']}" if "sampler" in e else "")
    print(f"| {name} | {e['ms']:.1f} | {r['ms']:.1f} | {r['ms'] / e['ms']:.2f}x |")
PYEOF
