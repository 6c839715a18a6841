#!/usr/bin/env bash
# CPU benchmark: the engine (build/cpu_bench) against PyTorch on the same randomly initialised SiT-S/2
# (hidden 384, depth 12, 6 heads, 4x32x32 latents, 1000 classes) + a 1-block S/2 refiner, through
# bench/cpu_torch.py (tests/reference/reference.py): Debian's torch 1.13 where present and PyTorch 2.x eager and
# torch.compile from a venv bench/torch_venv.sh creates. Per thread count and batch, every round runs each side
# once (engine, then each torch side), so load changes hit all of them; each side reports the median of REPEAT
# runs after a warm-up and the table gives the median over rounds. Batch 1 times the predictor and refiner
# forwards (guidance: 2 rows) and an H1P5R3 sample; other batches time the predictor forward (2B rows).
# The header names the CPU, the engine's SIMD path and BLAS, each torch side's BLAS (and inductor's ISA), the
# practical SGEMM rate (numpy + the system BLAS, one thread) and the load average.
#   bash bench/run_cpu_bench.sh [THREADS] [REPEAT]      THREADS: a list, default "1 2"; REPEAT default 3
#   env: ROUNDS (default 3), BATCHES (default "1 8"), FT_TORCH2=0 (no venv), FT_TORCH2_VENV
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-1 2}
R=${2:-3}
ROUNDS=${ROUNDS:-3}
BATCHES=${BATCHES:-1 8}
PY=/usr/bin/python3
D=build/bench
mkdir -p "$D"
[ -f "$D/sit_s2.safetensors" ] || $PY weights_tool/convert.py random --kind sit --preset S/2 --seed 1 -o "$D/sit_s2.safetensors" >/dev/null
[ -f "$D/refiner_s2.safetensors" ] || $PY weights_tool/convert.py random --kind refiner --preset S/2 --seed 2 -o "$D/refiner_s2.safetensors" >/dev/null
source bench/torch_venv.sh
SIDES=("engine|build/cpu_bench|" "${TORCH_SIDES[@]}")
RUNS=$D/runs
rm -rf "$RUNS" && mkdir -p "$RUNS"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
SGEMM=$(OPENBLAS_NUM_THREADS=1 $PY -c '
import numpy as np, time, statistics
a = np.random.rand(2048, 2048).astype(np.float32); b = a.copy(); a @ b
ts = []
for _ in range(5):
    t0 = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t0)
print("%.1f" % (2 * 2048 ** 3 / statistics.median(ts) / 1e9))')
for T in $THREADS; do
    for B in $BATCHES; do
        ARGS=(-m "$D/sit_s2.safetensors" -t "$T" -b "$B" --repeat "$R" --warmup 1)
        [ "$B" = 1 ] && ARGS+=(-r "$D/refiner_s2.safetensors" --sampler H1P5R3)
        for ((k = 1; k <= ROUNDS; k++)); do
            for i in "${!SIDES[@]}"; do
                IFS='|' read -r name cmd extra <<<"${SIDES[$i]}"
                out=$RUNS/t${T}_b${B}_s${i}_r${k}.jsonl
                echo "threads $T batch $B round $k: $name" >&2
                if [ "$name" = engine ]; then
                    OMP_NUM_THREADS=$T "$cmd" "${ARGS[@]}" >"$out"
                else
                    # shellcheck disable=SC2086 # extra is one optional flag
                    OMP_NUM_THREADS=$T torch_side_run "$cmd" bench/cpu_torch.py "${ARGS[@]}" $extra >"$out"
                fi
            done
        done
    done
done
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
$PY - "$RUNS" "$LOAD" "$SGEMM" "${SIDES[@]}" <<'PYEOF'
import glob, json, os, re, statistics, sys
runs, load, sgemm, sides = sys.argv[1], sys.argv[2], float(sys.argv[3]), [s.split("|")[0] for s in sys.argv[4:]]
res, info = {}, {}  # res[(T, B, work)][side] = [ms per round]; info[side] = first description line
for p in sorted(glob.glob(os.path.join(runs, "*.jsonl"))):
    T, B, s, k = map(int, re.match(r"t(\d+)_b(\d+)_s(\d+)_r(\d+)", os.path.basename(p)).groups())
    for line in open(p):
        e = json.loads(line)
        if e["what"] in ("cpu", "torch"):
            info.setdefault(s, e)
            continue
        work = e["what"] + (" " + e["sampler"] if "sampler" in e else "")
        res.setdefault((T, B, work), {}).setdefault(s, []).append(e["ms"])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
e = info.get(0, {})
print(f"CPU: {cpu}, {os.cpu_count()} vCPUs; load average after: {load}")
print(f"engine SIMD: {e.get('simd', '?')} ({e.get('features', '?')}); linear layers: {e.get('linear', '?')}; "
      f"BLAS: {e.get('blas', '?')}")
for s in range(1, len(sides)):
    t = info.get(s, {})
    isa = f", inductor ISA {t['isa']}, {t['graphs']} compiled graphs" if "isa" in t else ""
    print(f"{sides[s]}: BLAS {t.get('blas', '?')}{isa}")
print(f"practical SGEMM (numpy, system BLAS, 1 thread, 2048^3): {sgemm} GFLOP/s")
cols = [s for s in range(len(sides))]
comp = next((s for s in cols if sides[s].endswith("compile")), None)
print()
print("| work | threads | rows | " + " | ".join(f"{sides[s]} ms" for s in cols) +
      (" | compile / engine |" if comp else " |"))
print("|---|---|---|" + "---|" * (len(cols) + (1 if comp else 0)))
# SiT-S/2 forward FLOPs per row: 12 blocks x 256 tokens x (12 * 384^2 linear + 2 * 256 * 384 attention) MACs
notes = []
flop_row = 2 * 12 * 256 * (12 * 384 * 384 + 2 * 256 * 384)
for (T, B, work), by in sorted(res.items()):
    med = {s: statistics.median(v) for s, v in by.items()}
    rows = 2 * B
    cells = " | ".join(f"{med[s]:.1f}" if s in med else "-" for s in cols)
    ratio = f" | {med[comp] / med[0]:.2f}x |" if comp and comp in med and 0 in med else " |"
    print(f"| {work} | {T} | {rows if 'forward' in work else B} | {cells}{ratio}")
    if work == "predictor_forward" and 0 in med:
        gf = flop_row * rows / med[0] / 1e6
        notes.append(f"engine S/2 forward, {T} threads, {rows} rows: {gf:.1f} GFLOP/s = "
                     f"{100 * gf / sgemm / T:.0f}% of {T} x the practical SGEMM rate")
print()
print("\n".join(notes))
print()
print("per-round ms (side: rounds):")
for (T, B, work), by in sorted(res.items()):
    print(f"  {work}, {T} threads, batch {B}: " +
          "; ".join(f"{sides[s]} " + ", ".join(f"{x:.0f}" for x in v) for s, v in sorted(by.items())))
PYEOF
