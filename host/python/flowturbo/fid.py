"""sample-fid: the library has no FID-sampling call (the resumable spool, the shards and the streamed .npz live in
the CLI), so this runs the bundled ``flowturbo sample-fid`` and raises FlowturboError with its message on failure."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional, Union

from .errors import FlowturboError

PathLike = Union[str, "os.PathLike[str]"]


def cli_path() -> Path:
    """The flowturbo CLI: FLOWTURBO_CLI, else the copy bundled at install, else build/flowturbo of this checkout,
    else `flowturbo` on the PATH."""
    env = os.environ.get("FLOWTURBO_CLI")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for path in (here / "bin" / "flowturbo", here.parents[2] / "build" / "flowturbo"):
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which("flowturbo")
    if found:
        return Path(found)
    raise FileNotFoundError("the flowturbo CLI was not found: build it with `make`, reinstall the package, or set "
                            "FLOWTURBO_CLI")


def sample_fid(
    model: PathLike,
    out: PathLike,
    *,
    refiner: Optional[PathLike] = None,
    vae: Optional[PathLike] = None,
    num: Optional[int] = None,
    batch_size: Optional[int] = None,
    cfg_scale: Optional[float] = None,
    sampler: Optional[str] = None,
    seed: Optional[int] = None,
    shard: Optional[tuple[int, int]] = None,
    labels_out: Optional[PathLike] = None,
    spool: Optional[PathLike] = None,
    backend: Optional[str] = None,
    threads: Optional[int] = None,
    quiet: bool = False,
) -> Path:
    """Samples images for FID into an ADM-evaluator .npz (``arr_0`` uint8 [n, H, W, 3], ``labels`` int64 [n]) with
    ``flowturbo sample-fid`` and returns its path. Resumable: run the same call again after an interruption.

    None leaves a setting at the CLI's default (50000 images, batch 8, cfg 1.5, H8P9R5, seed 0, shard 0/1); see
    ``flowturbo sample-fid --help`` and host/README.md. The CLI's progress goes to stderr unless quiet. A Ctrl-C
    (KeyboardInterrupt) interrupts the CLI cleanly (its spool keeps the finished batches) and is re-raised.
    """
    args = [str(cli_path()), "sample-fid", "-m", os.fspath(model), "--out", os.fspath(out)]
    options = {
        "--refiner": refiner, "--vae": vae, "--num": num, "--batch": batch_size, "--cfg-scale": cfg_scale,
        "--sampler": sampler, "--seed": seed, "--labels-out": labels_out, "--spool": spool, "--backend": backend,
        "--threads": threads, "--shard": f"{shard[0]}/{shard[1]}" if shard is not None else None,
    }
    for flag, value in options.items():
        if value is not None:
            args += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    lines = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if not quiet:
                sys.stderr.write(line)
        proc.wait()
    except BaseException:
        proc.send_signal(signal.SIGINT)  # the CLI cancels, keeps its spool and exits 130
        proc.wait()
        raise
    if proc.returncode != 0:
        errors = [ln.strip() for ln in lines if ln.startswith("flowturbo sample-fid")]
        message = "\n".join(errors) if errors else "".join(lines[-5:]).strip()
        raise FlowturboError(message or f"flowturbo sample-fid exited {proc.returncode}", returncode=proc.returncode)
    return Path(out)
