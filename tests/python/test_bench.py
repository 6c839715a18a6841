"""build/flowturbo-bench: --help lists every flag the parser accepts, bad flags are refused, and on the CPU backend
every row names the backend, there are no graph rows and no TFLOP/s for the VAE (not counted), and the commit of
the build is recorded."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import REPO, one_cpu


def bench(build: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*one_cpu(), str(build / "flowturbo-bench"), *args], capture_output=True, text=True)


def test_help_lists_every_flag_the_parser_accepts(build: Path) -> None:
    source = (REPO / "bench" / "flowturbo_bench.c").read_text()
    parsed = set(re.findall(r'ARG\("(--[a-z-]+)"\)', source)) | set(re.findall(r'strcmp\(a, "(--[a-z-]+)"\)', source))
    p = bench(build, "--help")
    assert p.returncode == 0
    listed = set(re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", p.stdout, flags=re.M))
    assert parsed and listed == parsed, f"only in --help: {listed - parsed}, only in the parser: {parsed - listed}"
    for bad in (["--bogus"], ["--reps", "x"], ["--backend", "tpu"], ["--batches"]):
        p = bench(build, *bad)
        assert p.returncode == 2 and "Usage: flowturbo-bench" in p.stderr and bad[0] in p.stderr, bad


def test_cpu_rows_name_the_backend_without_graphs_or_vae_tflops(build: Path, tmp_path: Path) -> None:
    p = bench(build, "--preset", "tiny", "--backend", "cpu", "--batches", "1", "--samplers", "heun:1", "--reps", "1",
              "--warmup", "0", "--weights-dir", str(tmp_path), "--json", str(tmp_path / "b.json"))
    assert p.returncode == 0, p.stderr
    result = json.loads((tmp_path / "b.json").read_text())
    commit = (build / "commit.txt").read_text().strip()
    assert result["commit"] == commit and commit != "", result["commit"]
    assert result["backend"] == "cpu" and result["graphs"] is False and result["config"]["dtype"] == "f32"
    assert result["samples"] and not any(s["graphs"] for s in result["samples"])
    vae = [r for r in result["network"] if r["model"] == "vae"]
    assert vae and all("tflops" not in r for r in vae)
    assert all(r["tflops"] > 0 for r in result["network"] if r["model"] != "vae")
    md = p.stdout
    assert f"commit {commit}, cpu backend" in md and "graph" not in md.replace("graphs", "")
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| GEMM |")
            and "---" not in ln and " backend |" not in ln]
    assert rows and all(ln.split("|")[2].strip() == "cpu" for ln in rows), rows
