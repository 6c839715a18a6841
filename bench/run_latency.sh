#!/usr/bin/env bash
# bench/run_latency.sh — time to first frame and steady frame rate on this machine's CPU with the embedded model
# (H1P5R3, cfg 4, batch 1), at 1 and 2 threads, median of REPS (3) runs:
#   - the live demo: `flowturbo serve` + one stream client (bench/serve_latency.py);
#   - the render-loop example (host/examples/render_loop.c, unpaced: --fps 0, 40 frames).
# Needs `make examples` (build/examples/render_loop). Prints one line per run and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-3}
py=${PYTHON:-/usr/bin/python3}
[ -x build/examples/render_loop ] || { echo "run make examples first" >&2; exit 1; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for t in 1 2; do
    for r in $(seq "$reps"); do
        echo "serve t=$t run $r: $($py bench/serve_latency.py "$t" 40)"
    done
    for r in $(seq "$reps"); do
        echo "render_loop t=$t run $r: $(build/examples/render_loop --fps 0 --frames 40 --threads "$t" -o /dev/null 2>&1)"
    done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
