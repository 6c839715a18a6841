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
              "--warmup", "0", "--fid-batches", "2", "--weights-dir", str(tmp_path), "--json", str(tmp_path / "b.json"))
    assert p.returncode == 0, p.stderr
    result = json.loads((tmp_path / "b.json").read_text())
    commit = (build / "commit.txt").read_text().strip()
    assert result["commit"] == commit and commit != "", result["commit"]
    assert result["backend"] == "cpu" and result["graphs"] is False and result["config"]["dtype"] == "f32"
    assert result["samples"] and not any(s["graphs"] for s in result["samples"])
    vae = [r for r in result["network"] if r["model"] == "vae"]
    assert vae and all("tflops" not in r for r in vae)
    assert all(r["tflops"] > 0 for r in result["network"] if r["model"] != "vae")
    # the FID pipeline on the CPU: sample-fid's in-order path, measured parts, peak RSS, no lanes or graphs
    fid = result["fid_pipeline"]
    assert fid and all(r["backend"] == "cpu" and r["lanes"] == 0 and r["img_per_s"] > 0 and r["img_per_s_npz"] > 0
                       and r["sample_ms_per_batch"] > 0 and r["decode_ms_per_batch"] > 0
                       and r["peak_rss_mib"] > 0 for r in fid), fid
    assert not list(tmp_path.glob("**/samples.npz")), "the temporary npz was not deleted"
    md = p.stdout
    assert f"commit {commit}, cpu backend" in md and "graph" not in md.replace("graphs", "")
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| GEMM |")
            and "---" not in ln and " backend |" not in ln]
    assert rows and all(ln.split("|")[2].strip() == "cpu" for ln in rows), rows


def test_torch_baseline_runs_the_fid_pipeline_on_the_cpu(tmp_path: Path) -> None:
    """bench/torch_baseline.py --device cpu --tiny: the PyTorch peer of the FID-pipeline rows, without a GPU."""
    import importlib.util
    import sys

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("numpy") is None:
        import pytest

        pytest.skip("PyTorch or NumPy is not installed")
    out = tmp_path / "torch.json"
    p = subprocess.run([*one_cpu(), sys.executable, str(REPO / "bench" / "torch_baseline.py"), "--device", "cpu",
                        "--tiny", "--only-fid", "--batches", "1", "--samplers", "heun:1", "--reps", "1",
                        "--warmup", "0", "--fid-batches", "1", "--weights-dir", str(tmp_path), "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    fid = json.loads(out.read_text())["fid_pipeline"]
    assert len(fid) == 1 and fid[0]["impl"] == "torch-eager" and fid[0]["backend"] == "cpu", fid
    assert fid[0]["img_per_s"] > 0 and fid[0]["img_per_s_npz"] > 0 and fid[0]["decode_ms_per_batch"] > 0
    assert "| FID pipeline: impl |" in p.stdout


def test_cpu_torch_names_the_torch_it_timed(tmp_path: Path) -> None:
    """bench/cpu_torch.py (the PyTorch side of `make bench`) ends with a line naming its torch, mode and BLAS, so
    every benchmark table can say what the engine was compared against."""
    import importlib.util
    import sys

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("numpy") is None:
        import pytest

        pytest.skip("PyTorch or NumPy is not installed")
    model = tmp_path / "sit.safetensors"
    subprocess.run([sys.executable, str(REPO / "weights_tool" / "convert.py"), "random", "--kind", "sit", "--hidden",
                    "32", "--depth", "1", "--heads", "2", "--patch", "2", "--input-size", "8", "--num-classes", "10",
                    "-o", str(model)], check=True, capture_output=True)
    p = subprocess.run([*one_cpu(), sys.executable, str(REPO / "bench" / "cpu_torch.py"), "-m", str(model), "-t", "1",
                        "--repeat", "1", "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert lines[0]["what"] == "predictor_forward" and lines[0]["ms"] > 0, lines
    import torch

    side = lines[-1]
    assert side["what"] == "torch" and side["version"] == torch.__version__ and side["mode"] == "eager", side
    assert side["blas"] and "CPU capability" in side["blas"] and "isa" not in side, side
