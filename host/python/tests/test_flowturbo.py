"""Tests of the flowturbo Python package: the ctypes layouts against the C header, results against the CLI (an
independent path through the same library: its own argument handling and file output), progress/cancel, errors,
sample_fid, and the type check."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import flowturbo
from flowturbo import _native

CPU = ["--backend", "cpu", "-t", "1"]


def run_cli(*args: str) -> str:
    p = subprocess.run([str(flowturbo.cli_path()), *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stderr


# ---- the binding itself ----


def test_struct_layouts_match_the_c_header(repo: Path, tmp_path: Path) -> None:
    """Every ctypes Structure has the size and field offsets of the C struct in engine/flowturbo.h."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to read the struct layouts")
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "flowturbo.h"', "int main(void) {"]
    for cname, struct in _native.STRUCTS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof({cname}));')
        for field, _ in struct._fields_:
            lines.append(f'printf("{cname}.{field} %zu\\n", offsetof({cname}, {field}));')
    lines.append("return 0; }")
    (tmp_path / "layout.c").write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", str(repo / "engine"), str(tmp_path / "layout.c"), "-o", str(exe)], check=True)
    c_side = dict(line.split() for line in subprocess.run([str(exe)], capture_output=True, text=True).stdout.split("\n")
                  if line)
    for cname, struct in _native.STRUCTS.items():
        assert int(c_side[cname]) == ctypes.sizeof(struct), cname
        for field, _ in struct._fields_:
            assert int(c_side[f"{cname}.{field}"]) == getattr(struct, field).offset, f"{cname}.{field}"


def test_status_enum_matches_the_c_header(repo: Path) -> None:
    """Status has exactly the ft_status values of engine/flowturbo.h, each with the library's own name."""
    import re

    header = (repo / "engine" / "flowturbo.h").read_text()
    body = header[header.index("typedef enum {\n    FT_OK"):header.index("} ft_status;")]
    c_side = {m.group(1): int(m.group(2)) for m in re.finditer(r"FT_(?:ERR_)?([A-Z_]+) = (\d+)", body)}
    assert c_side == {s.name: int(s) for s in flowturbo.Status}
    for s in flowturbo.Status:
        assert s.describe() != "unknown status", s


def test_installed_package_bundles_library_and_cli() -> None:
    """Under `make test-python` (FT_EXPECT_INSTALLED=1) the package is the pip-installed copy, with its own .so."""
    if not os.environ.get("FT_EXPECT_INSTALLED"):
        pytest.skip("not run from the installed package (make test-python sets FT_EXPECT_INSTALLED)")
    package = Path(flowturbo.__file__).resolve().parent
    assert flowturbo.library_path() == package / "libflowturbo.so"
    assert flowturbo.cli_path() == package / "bin" / "flowturbo"
    assert "site-packages" in str(package)
    assert flowturbo.version() == flowturbo.__version__


def test_sampler_info_canonical_and_near_misses() -> None:
    info = flowturbo.sampler_info("h1p5r3")
    assert (info.name, info.steps, info.predictor_calls, info.refiner_calls) == ("H1P5R3", 9, 7, 6)
    assert info.guided_refiner_calls == 3  # a guided refiner makes one call per R step
    assert flowturbo.sampler_info("H8").name == "heun:8"
    with pytest.raises(flowturbo.FlowturboError) as e:
        flowturbo.sampler_info("heun")
    assert e.value.status == flowturbo.Status.INVALID_ARGUMENT
    assert "did you mean 'heun:8'?" in e.value.message and "euler:N" in e.value.message


# ---- generate / decode against the CLI ----


def test_generate_matches_the_cli(fashion: flowturbo.Engine, tmp_path: Path) -> None:
    out = fashion.generate(["Trouser", "bag", 3], seed=5, sampler="H1P1R1", cfg_scale=4.0, latents=True)
    assert out.images is not None and out.latents is not None
    assert out.images.shape == (3, 32, 32, 3) and out.images.dtype == np.uint8
    assert out.latents.shape == (3, 1, 32, 32) and out.latents.dtype == np.float32
    assert out.labels == (1, 8, 3) and out.seeds == (5, 6, 7) and out.sampler == "H1P1R1" and out.gray
    run_cli("generate", *CPU, "--class", "Trouser,bag,3", "-s", "5", "--sampler", "H1P1R1", "--cfg-scale", "4",
            "-o", str(tmp_path / "img_%d.png"), "--latents-out", str(tmp_path / "z.npy"))
    assert np.array_equal(np.load(tmp_path / "z.npy"), out.latents)
    from PIL import Image

    for k, pil in enumerate(out.pil()):
        cli_png = np.asarray(Image.open(tmp_path / f"img_{k}.png"))
        assert pil.mode == "L" and np.array_equal(np.asarray(pil), cli_png)
        assert np.array_equal(out.images[k, :, :, 0], cli_png) and np.array_equal(out.images[k, :, :, 2], cli_png)


def test_noise_reproduces_the_seed_and_decode_the_images(fashion: flowturbo.Engine) -> None:
    seeded = fashion.generate([0, 9], seed=11, sampler="heun:2", latents=True)
    z0 = flowturbo.noise(2, 1, 32, 11)
    given = fashion.generate([0, 9], noise=z0, sampler="heun:2", latents=True)
    assert given.latents is not None and seeded.latents is not None and seeded.images is not None
    assert np.array_equal(given.latents, seeded.latents)
    assert np.array_equal(fashion.decode(seeded.latents), seeded.images)
    with pytest.raises(ValueError, match=r"noise must be float32 \[2, 1, 32, 32\]"):
        fashion.generate([0, 9], noise=z0[:1])


def test_per_image_seeds_and_class_weights(fashion: flowturbo.Engine) -> None:
    """seeds[k] gives image k the noise of seed=seeds[k]; one-hot class_weights condition like the label."""
    run = fashion.generate([4, 4], seed=30, sampler="heun:2", latents=True)  # seeds 30, 31
    both = fashion.generate([4, 4], seeds=[31, 30], sampler="heun:2", latents=True)
    assert both.seeds == (31, 30) and both.latents is not None and run.latents is not None
    z = np.concatenate([flowturbo.noise(1, 1, 32, 31), flowturbo.noise(1, 1, 32, 30)])
    given = fashion.generate([4, 4], noise=z, sampler="heun:2", latents=True)
    assert given.latents is not None and np.array_equal(both.latents, given.latents)
    # the same images at other batch positions: equal up to float rounding (a GEMM row's rounding may depend on it)
    assert np.abs(both.latents - run.latents[::-1]).max() < 1e-4
    both = fashion.generate([4, 7], seeds=[31, 30], sampler="heun:2", latents=True)
    assert both.latents is not None
    weights = np.zeros((2, len(fashion.class_names)), np.float32)
    weights[0, 4] = weights[1, 7] = 1.0
    blended = fashion.generate(None, class_weights=weights, seeds=[31, 30], sampler="heun:2", latents=True)
    assert blended.latents is not None and np.array_equal(blended.latents, both.latents)
    weights[1, 7], weights[1, 2] = 0.5, 0.5
    mixed = fashion.generate(None, class_weights=weights, seeds=[31, 30], sampler="heun:2", latents=True)
    assert mixed.latents is not None and not np.array_equal(mixed.latents[1], both.latents[1])
    with pytest.raises(ValueError, match="class_weights must be float32"):
        fashion.generate(None, class_weights=np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="one seed per image"):
        fashion.generate([1, 2], seeds=[1])


def test_rgb_model_pil_and_defaults(sit_b: Path) -> None:
    with flowturbo.Engine(backend="cpu") as engine:
        engine.load("predictor", sit_b)
        assert engine.class_names == [] and engine.model_info("refiner") is None
        info = engine.model_info(flowturbo.Role.PREDICTOR)
        assert info is not None and (info.num_classes, info.in_channels, info.input_size) == (3, 3, 12)
        out = engine.generate([2], sampler="H2P1")  # the library's default seed (42) and guidance
        assert out.seeds == (42,) and out.cfg_scale == 4.0 and not out.gray
        (pil,) = out.pil()
        assert pil.mode == "RGB" and pil.size == (12, 12)
        assert out.images is not None and np.array_equal(np.asarray(pil), out.images[0])


# ---- progress, cancel, errors ----


def test_progress_reports_and_cancel(fashion: flowturbo.Engine) -> None:
    seen: list[tuple[flowturbo.Phase, int, int]] = []
    full = fashion.generate([1, 2, 3], seed=1, sampler="euler:3", batch_size=2,
                            progress=lambda phase, step, total: seen.append((phase, step, total)) is not None)
    sampling = [(s, t) for p, s, t in seen if p == flowturbo.Phase.SAMPLING]
    assert sampling[:3] == [(1, 3), (2, 3), (3, 3)] and len(sampling) == 6  # two batches of 3 steps
    assert [(s, t) for p, s, t in seen if p == flowturbo.Phase.BATCH] == [(2, 3), (3, 3)]

    def stop_at_step_2(phase: flowturbo.Phase, step: int, total: int) -> bool:
        return phase == flowturbo.Phase.SAMPLING and step == 2

    with pytest.raises(flowturbo.CancelledError) as e:
        fashion.generate([1, 2, 3], seed=1, sampler="euler:3", batch_size=2, progress=stop_at_step_2)
    assert e.value.status == flowturbo.Status.CANCELLED
    again = fashion.generate([1, 2, 3], seed=1, sampler="euler:3", batch_size=2)  # still usable, same result
    assert full.images is not None and again.images is not None and np.array_equal(full.images, again.images)


@pytest.mark.parametrize("exc", [ZeroDivisionError, KeyboardInterrupt])
def test_callback_exceptions_cancel_and_propagate(fashion: flowturbo.Engine, exc: type[BaseException]) -> None:
    def boom(phase: flowturbo.Phase, step: int, total: int) -> None:
        raise exc()

    with pytest.raises(exc):
        fashion.generate([4], sampler="heun:3", progress=boom)
    assert fashion.generate([4], sampler="heun:1").images is not None


def test_errors_carry_the_library_message(fashion: flowturbo.Engine, tmp_path: Path) -> None:
    with flowturbo.Engine(backend="cpu") as engine:
        with pytest.raises(flowturbo.FlowturboError) as e:
            engine.load("predictor", tmp_path / "missing.safetensors")
        assert e.value.status == flowturbo.Status.IO and "missing.safetensors" in e.value.message
        (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
        with pytest.raises(flowturbo.FlowturboError) as e:
            engine.load("vae", tmp_path / "bad.safetensors")
        assert e.value.status == flowturbo.Status.FORMAT and "bad.safetensors" in e.value.message
        with pytest.raises(flowturbo.FlowturboError) as e:
            engine.generate([0])
        assert e.value.status == flowturbo.Status.NOT_LOADED
    with pytest.raises(ValueError, match="is closed"):
        engine.generate([0])
    with pytest.raises(ValueError, match="'Jacket' is not a class name.*9 Ankle boot"):
        fashion.generate(["Jacket"])
    with pytest.raises(flowturbo.FlowturboError, match=r"outside \[0, 10\)") as e:
        fashion.generate([10], sampler="heun:1")
    assert e.value.status == flowturbo.Status.INVALID_ARGUMENT
    with pytest.raises(flowturbo.FlowturboError, match="did you mean 'euler:50'"):
        fashion.generate([1], sampler="euler")
    with pytest.raises(ValueError, match="channels"):
        fashion.decode(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="backend must be"):
        flowturbo.Engine(backend="tpu")  # type: ignore[arg-type]


def test_log_messages_reach_the_callback() -> None:
    messages: list[tuple[flowturbo.LogLevel, str]] = []
    with flowturbo.Engine(backend="cpu", log=lambda level, text: messages.append((level, text))) as engine:
        engine.load_default(refiner=False)
    assert (flowturbo.LogLevel.INFO, "backend: cpu") in messages
    assert any(level == flowturbo.LogLevel.INFO and "embedded:fashion_sit" in text for level, text in messages)


# ---- sample-fid (through the CLI) ----


def test_sample_fid_matches_generate(sit_b: Path, tmp_path: Path) -> None:
    npz = flowturbo.sample_fid(sit_b, tmp_path / "fid.npz", num=5, batch_size=2, sampler="H2P1", seed=3,
                               cfg_scale=1.5, backend="cpu", labels_out=tmp_path / "labels.npy", quiet=True)
    with np.load(npz) as data:
        images, labels = data["arr_0"], data["labels"]
    assert images.shape == (5, 12, 12, 3) and images.dtype == np.uint8 and labels.shape == (5,)
    assert np.array_equal(np.load(tmp_path / "labels.npy"), labels)
    with flowturbo.Engine(backend="cpu") as engine:
        engine.load("predictor", sit_b)
        out = engine.generate(list(labels), seed=3, sampler="H2P1", cfg_scale=1.5, batch_size=2)
    assert out.images is not None and np.array_equal(out.images, images)
    with pytest.raises(flowturbo.FlowturboError, match="did you mean 'heun:8'") as e:
        flowturbo.sample_fid(sit_b, tmp_path / "bad.npz", num=2, sampler="heun", quiet=True)
    assert e.value.returncode == 2


# ---- typing ----


def test_mypy_strict() -> None:
    """The package type-checks under mypy --strict (it ships py.typed)."""
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed (Debian python3-mypy)")
    package = Path(flowturbo.__file__).resolve().parent
    config = package.parent / "pyproject.toml"
    args = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", "/dev/null",
            "--ignore-missing-imports", str(package)]
    if config.is_file():
        args[4:4] = ["--config-file", str(config)]
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
