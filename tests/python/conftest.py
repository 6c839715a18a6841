"""Shared paths of the repository-level Python tests: the checkout and its build directory (FT_BUILD, default
build/)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("FT_BUILD") or "build")
BUILD = BUILD if BUILD.is_absolute() else REPO / BUILD


def one_cpu() -> list[str]:
    """A command prefix pinning a child to one CPU (the library sizes its thread pool by the CPUs it may use): the
    runs below stay quick on a busy machine, and use the thread count of the in-process runs they are compared
    with."""
    return ["taskset", "-c", str(min(os.sched_getaffinity(0)))] if shutil.which("taskset") else []


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """build/flowturbo ARGS (stdout and stderr captured)."""
    p = subprocess.run([str(BUILD / "flowturbo"), *args], capture_output=True, text=True)
    if check:
        assert p.returncode == 0, f"flowturbo {' '.join(args)} exited {p.returncode}:\n{p.stderr}"
    return p


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def build() -> Path:
    for name in ("flowturbo", "flowturbo-bench", "libflowturbo.a", "flowturbo.pc"):
        if not (BUILD / name).exists():
            pytest.fail(f"{BUILD / name} is missing: run `make` first")
    return BUILD
