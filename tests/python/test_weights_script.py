"""weights_tool/official.py on tiny stand-ins of the three official downloads, each in the official layout (a SiT
train.py checkpoint with "ema", a FlowTurbo refiner checkpoint with "model", a diffusers AutoencoderKL
safetensors; built by tests/convert_check.py's official-layout modules): it converts all three, checks their
roles, makes the smoke-test image, and refuses the files in the wrong order."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
from conftest import REPO, one_cpu

torch = pytest.importorskip("torch", reason="PyTorch is not installed (make deps-python: python3-torch)")
sys.path.insert(0, str(REPO / "tests"))
import convert_check as cc  # noqa: E402


def official_downloads(tmp: Path) -> tuple[Path, Path, Path]:
    model = cc.SiT(input_size=8, patch=2, C=4, D=64, depth=2, ncls=5)
    sit = tmp / "SiT-XL-2-256x256.pt"
    torch.save(cc.training_ckpt(model, model, argparse.Namespace(model="SiT-XL/2")), sit)
    refiner = tmp / "SiT-XL-2-Refiner.pt"
    torch.save({"model": cc.SiT(input_size=8, patch=2, C=4, D=64, depth=1, ncls=5, cin_scale=2).state_dict()},
               refiner)
    dec, pqc = cc.make_vae([16, 32], 1, 8, 3)
    tensors = OrderedDict(("decoder." + k, v) for k, v in dec.state_dict().items())
    tensors["post_quant_conv.weight"], tensors["post_quant_conv.bias"] = pqc.weight, pqc.bias
    vae = tmp / "diffusion_pytorch_model.safetensors"
    cc.st.save(str(vae), tensors, {"format": "pt"})
    (tmp / "config.json").write_text(json.dumps({  # downloaded with it: the groups are not in the tensors
        "_class_name": "AutoencoderKL", "block_out_channels": [16, 32], "latent_channels": 4, "layers_per_block": 1,
        "norm_num_groups": 8, "out_channels": 3}))
    return sit, refiner, vae


def test_official_script_converts_checks_and_smoke_tests(build: Path, tmp_path: Path) -> None:
    sit, refiner, vae = official_downloads(tmp_path)
    script = REPO / "weights_tool" / "official.py"
    out = tmp_path / "weights"
    env = {**os.environ, "FLOWTURBO_BACKEND": "cpu"}
    cmd = [*one_cpu(), sys.executable, str(script), str(sit), str(refiner), str(vae), "-o", str(out), "--class", "3",
           "--cli", str(build / "flowturbo")]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    for name in ("sit-xl-2.safetensors", "refiner.safetensors", "sd-vae-ema.safetensors", "smoke_class3_seed0.png"):
        assert (out / name).is_file(), name
    for step in ("[1/4] predictor", "[2/4] refiner", "[3/4] vae", "[4/4] smoke test", "--sampler H1P5R3",
                 "--cfg-scale 4", "sha256"):
        assert step in p.stdout, step
    from PIL import Image

    with Image.open(out / "smoke_class3_seed0.png") as img:
        assert img.size == (16, 16) and "Sampler: H1P5R3, CFG scale: 4, Seed: 0" in img.text["parameters"]
    swapped = [sys.executable, str(script), str(refiner), str(sit), str(vae), "-o", str(tmp_path / "w2"),
               "--cli", str(build / "flowturbo")]
    p = subprocess.run(swapped, capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "in the order SiT checkpoint, refiner checkpoint, VAE" in p.stdout
