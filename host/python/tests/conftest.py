"""Fixtures of the package's tests: the repository (for test models and the C header) and a CPU engine with the
embedded Fashion-MNIST models."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import flowturbo

REPO = Path(os.environ.get("FT_REPO") or Path(__file__).resolve().parents[3])


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def sit_b() -> Path:
    """A tiny pixel-space RGB SiT with random weights (12x12, 3 classes, no class names)."""
    return REPO / "tests" / "data" / "sit_b.safetensors"


@pytest.fixture(scope="session")
def fashion() -> Iterator[flowturbo.Engine]:
    """CPU engine with the embedded Fashion-MNIST SiT + refiner (shared: tests must not replace its models)."""
    with flowturbo.Engine(backend="cpu", threads=1) as engine:
        engine.load_default()
        yield engine
