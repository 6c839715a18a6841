"""Shared helpers for the Fashion-MNIST training scripts: threads, checkpoints, CSV logging, Euler sampling."""
import csv
import os
import time

import torch

from model import SiT


def setup_threads(n=2):
    # run_all.sh sets OPENBLAS_NUM_THREADS=1 (OpenBLAS' own pthread pool spin-waits against torch's OpenMP pool) and
    # uses n = 1 by default: on this shared 2-core VM a 2-thread pool is no faster at micro-batch 32 when idle and
    # ~10x slower whenever another process holds one of the cores.
    torch.set_num_threads(n)


def atomic_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path):
    if os.path.exists(path):
        return torch.load(path, map_location="cpu")
    return None


class CsvLog:
    """Append-only CSV; on resume rows with step > resume_step are dropped so the file matches the checkpoint."""

    def __init__(self, path, fields, resume_step=0):
        self.path = path
        self.fields = fields
        rows = []
        if os.path.exists(path) and resume_step > 0:
            with open(path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k, "") for k in fields})

    def write(self, **row):
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow(row)


def build_model(cfg):
    return SiT(**cfg)


@torch.no_grad()
def euler_sample(model, y, steps=50, cfg_scale=1.0, seed=0, micro=64):
    """Plain Euler from t=0 (noise) to t=1 (data), standard CFG on all channels when cfg_scale != 1."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(y.shape[0], model.in_channels, model.input_size, model.input_size, generator=g)
    h = 1.0 / steps
    for i in range(steps):
        t = torch.full((y.shape[0],), i * h)
        outs = []
        for s in range(0, y.shape[0], micro):
            xs, ts, ys = x[s:s + micro], t[s:s + micro], y[s:s + micro]
            if cfg_scale == 1.0:
                outs.append(model(xs, ts, ys))
            else:
                outs.append(model.forward_with_cfg(xs, ts, ys, cfg_scale))
        x = x + h * torch.cat(outs, 0)
    return x


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def elapsed(self):
        return time.time() - self.t0
