#!/usr/bin/env bash
# bench/blas_candidates.sh — which BLAS the CPU backend should call (issue 15 item 2), measured: the one-thread
# SGEMM rate of each candidate at the engine's own tile shapes (bench/blas_candidates.c), the candidates
# alternating round by round, median over rounds. Candidates: Debian's OpenBLAS pthread build (what the engine
# links), OpenBLAS's OpenMP build and BLIS (OpenMP build). The last two are unpacked from their Debian packages
# into build/blas/ (apt-get download + dpkg -x), so nothing on the system changes.
#   bash bench/blas_candidates.sh [ROUNDS]       (default 3; prints a Markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
D=build/blas
mkdir -p "$D/debs" "$D/root"
arch_dir=/usr/lib/$(gcc -print-multiarch)
for pkg in libopenblas0-openmp libblis4-openmp; do
    if ! ls "$D/debs/${pkg}"_*.deb >/dev/null 2>&1; then
        (cd "$D/debs" && apt-get download "$pkg" >/dev/null 2>&1) ||
            { echo "blas_candidates: cannot download $pkg (apt-get download); it is left out" >&2; continue; }
    fi
    dpkg -x "$D/debs/${pkg}"_*.deb "$D/root"
done
gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -o build/blas_candidates bench/blas_candidates.c -ldl
libs=()
for l in "$arch_dir/openblas-pthread/libopenblas.so.0" "$D/root$arch_dir/openblas-openmp/libopenblas.so.0" \
    "$D/root$arch_dir/blis-openmp/libblis.so.4"; do
    [ -f "$l" ] && libs+=("$l")
done
out=$D/runs
rm -rf "$out" && mkdir -p "$out"
for ((r = 1; r <= rounds; r++)); do
    for i in "${!libs[@]}"; do
        OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 BLIS_NUM_THREADS=1 build/blas_candidates "${libs[$i]}" \
            >"$out/r${r}_l${i}.jsonl"
    done
done
python3 - "$out" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PYEOF'
import glob, json, os, re, statistics, sys
out, load = sys.argv[1], sys.argv[2]
res, names, shapes = {}, {}, []
for p in sorted(glob.glob(os.path.join(out, "*.jsonl"))):
    lib = int(re.search(r"_l(\d+)", p).group(1))
    for line in open(p):
        e = json.loads(line)
        cfg = e["config"]
        names[lib] = ("BLIS 0.9 (OpenMP build)" if cfg == "BLIS" else
                      ("OpenBLAS " + cfg.split()[1] + (" (OpenMP build)" if "openmp" in e["lib"] else " (pthread build)")))
        key = (e["shape"], e["m"], e["n"], e["k"])
        if key not in shapes: shapes.append(key)
        res.setdefault(key, {}).setdefault(lib, []).append(e["gflops"])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
libs = sorted(names)
print(f"CPU: {cpu}; one thread; load average after: {load}; GFLOP/s, median of the rounds")
print()
print("| shape (m x n x k) | " + " | ".join(names[l] for l in libs) + " |")
print("|---|" + "---|" * len(libs))
for key in shapes:
    cells = " | ".join(f"{statistics.median(res[key][l]):.1f}" if l in res[key] else "-" for l in libs)
    print(f"| {key[0]} ({key[1]}x{key[2]}x{key[3]}) | {cells} |")
PYEOF
