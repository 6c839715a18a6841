#!/usr/bin/python3
"""From the three official downloads to a checked image: converts the SiT-XL/2 checkpoint, the FlowTurbo refiner
checkpoint and the SD-VAE (ft-EMA) decoder with convert.py, checks that each became the model it should be, and
runs a one-image smoke test with the paper's figure settings (FlowTurbo H1P5R3, guidance 4, class 207, seed 0)
through build/flowturbo, printing every step and command.

  weights_tool/official.py SiT-XL-2-256x256.pt SiT-XL-2-Refiner.pt diffusion_pytorch_model.safetensors [-o DIR]

Where the files come from (README.md, "Weights"):
  SiT-XL-2-256x256.pt                  linked from github.com/willisma/SiT (download.py)
  the refiner checkpoint               linked from github.com/shiml20/FlowTurbo (README)
  diffusion_pytorch_model.safetensors  huggingface.co/stabilityai/sd-vae-ft-ema

Needs PyTorch and NumPy for /usr/bin/python3: `make deps-python` (Debian python3-torch python3-numpy) or
`pip install -r weights_tool/requirements.txt`. Exit status: 0 done, 1 a step failed, 2 bad arguments.
"""
import argparse
import hashlib
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import convert  # noqa: E402
import safetensors_io as st  # noqa: E402

# (role, output name, convert.py options): the precision README.md recommends
MODELS = [
    ("predictor", "sit-xl-2.safetensors", ["--dtype", "bf16"]),
    ("refiner", "refiner.safetensors", ["--dtype", "bf16"]),
    ("vae", "sd-vae-ema.safetensors", []),
]


def say(text):
    print(text, flush=True)


def run(cmd, fn=None):
    """Echoes a command and runs it, or calls fn(cmd[2:]) in this process (convert.py, without a second PyTorch
    start-up); its output streams through. Exits 1 if it fails. Returns the seconds it took."""
    say("$ " + " ".join(shlex.quote(c) for c in cmd))
    t0 = time.time()
    rc = fn(cmd[2:]) if fn else subprocess.run(cmd).returncode
    sys.stdout.flush()
    if rc != 0:
        say(f"official.py: the command above failed (exit {rc})")
        sys.exit(1)
    return time.time() - t0


def shown(path):
    """path relative to the current directory when it is below it, else absolute (for the printed commands)."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else os.path.abspath(path)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("sit", help="SiT-XL-2-256x256.pt (the SiT-XL/2 checkpoint)")
    ap.add_argument("refiner", help="the FlowTurbo refiner checkpoint (.pt)")
    ap.add_argument("vae", help="sd-vae-ft-ema's diffusion_pytorch_model.safetensors")
    ap.add_argument("-o", "--out-dir", default="weights", help="where the engine files and the image go (default "
                    "./weights)")
    ap.add_argument("--class", dest="cls", default="207", help="class of the smoke-test image (default 207, golden "
                    "retriever, as in the paper's figure)")
    ap.add_argument("--seed", default="0", help="seed of the smoke-test image (default 0)")
    ap.add_argument("--cli", default=os.path.join(REPO, "build", "flowturbo"), help="the flowturbo CLI (default "
                    "build/flowturbo of this repository)")
    ap.add_argument("--skip-existing", action="store_true", help="do not convert again what DIR already holds")
    a = ap.parse_args(argv)
    for path in (a.sit, a.refiner, a.vae):
        if not os.path.isfile(path):
            ap.error(f"{path}: no such file")
    if not os.access(a.cli, os.X_OK):
        ap.error(f"{a.cli}: the flowturbo CLI is not built (run `make` in {REPO}) or not executable")
    os.makedirs(a.out_dir, exist_ok=True)

    outputs = []
    for step, ((role, name, options), src) in enumerate(zip(MODELS, (a.sit, a.refiner, a.vae)), 1):
        out = os.path.join(a.out_dir, name)
        say(f"\n[{step}/4] {role}: {src} ({os.path.getsize(src) / 1e6:.1f} MB, sha256 {sha256(src)})")
        if a.skip_existing and os.path.isfile(out):
            say(f"{out} exists: kept (--skip-existing)")
        else:
            seconds = run(["python3", shown(os.path.join(HERE, "convert.py")), "convert", src, "-o", out,
                           *options], convert.main)
            say(f"converted in {seconds:.1f} s")
        _, meta, _ = st.read_header(out)
        if meta.get("role") != role:
            say(f"official.py: {src} converted to a '{meta.get('role')}' model, but this argument is the {role}: "
                "give the files in the order SiT checkpoint, refiner checkpoint, VAE")
            return 1
        say(f"{out}: {role}, " + ", ".join(f"{k} {meta[k]}" for k in ("arch", "input_size", "hidden_size", "depth",
                                                                     "num_classes", "block_out_channels") if k in meta))
        outputs.append(out)

    image = os.path.join(a.out_dir, f"smoke_class{a.cls}_seed{a.seed}.png")
    say(f"\n[4/4] smoke test: one image with the paper's figure settings (H1P5R3, cfg 4) -> {image}")
    seconds = run([a.cli, "generate", "-m", outputs[0], "--refiner", outputs[1], "--vae", outputs[2],
                   "--class", a.cls, "-s", a.seed, "--sampler", "H1P5R3", "--cfg-scale", "4", "-n", "1", "-o", image])
    say(f"\ndone in {seconds:.1f} s: look at {image}. The engine files are in {a.out_dir}/:")
    for out in outputs:
        say(f"  {out}")
    say(f"e.g. {shown(a.cli)} generate -m {outputs[0]} --refiner {outputs[1]} --vae {outputs[2]} "
        "--class 207,360,387 --grid -o grid.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
