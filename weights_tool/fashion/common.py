"""Shared helpers for the Fashion-MNIST training scripts: threads, checkpoints, CSV logging, Euler sampling."""
import csv
import math
import os
import time

import torch

from model import EMA, SiT


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


class Trainer:
    """The optimisation loop the predictor and the refiner share: linear lr warm-up, a batch processed as micro-batches
    with accumulated gradients (same objective as one batch), grad-norm clip, AdamW (wd 0), EMA with the warmed-up
    decay min(decay, (1+s)/(10+s)), and a resumable checkpoint of model + EMA + optimiser + step. `args` needs lr,
    warmup, batch, micro, clip, ema, steps and ckpt_every."""

    def __init__(self, model, cfg, args, ckpt_path):
        self.model, self.cfg, self.args, self.ckpt_path = model, cfg, args, ckpt_path
        self.ema = EMA(model, args.ema)
        self.opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
        self.step, self.wall_before, self.lr = 0, 0.0, 0.0
        self.timer = self.t_step = None
        ck = load_checkpoint(ckpt_path)
        if ck is not None:
            assert ck["config"] == cfg, "checkpoint config differs from the command line"
            model.load_state_dict(ck["model"])
            self.ema.shadow = ck["ema"]
            self.opt.load_state_dict(ck["opt"])
            self.step = ck["step"]
            self.wall_before = ck.get("wall", 0.0)
            print(f"resumed from {ckpt_path} at step {self.step}", flush=True)

    def start(self):
        """Starts the wall clock (after data loading) and puts the model in training mode."""
        self.timer = Timer()
        self.model.train()

    def wall(self):
        return self.wall_before + self.timer.elapsed()

    def begin_step(self):
        self.t_step = self.timer.elapsed()
        self.lr = self.args.lr * min(1.0, (self.step + 1) / max(1, self.args.warmup))
        for group in self.opt.param_groups:
            group["lr"] = self.lr

    def optimize(self, micro_loss):
        """micro_loss(slice) -> that micro-batch's share of the batch-mean loss. Returns (loss, grad norm, seconds)."""
        a = self.args
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for s in range(0, a.batch, a.micro):
            loss = micro_loss(slice(s, s + a.micro))
            loss.backward()
            total += loss.item()
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), a.clip).item()
        self.opt.step()
        self.step += 1
        self.ema.decay = min(a.ema, (1 + self.step) / (10 + self.step))
        self.ema.update(self.model)
        secs = self.timer.elapsed() - self.t_step
        if not math.isfinite(total):
            raise SystemExit(f"non-finite loss at step {self.step}")
        return total, gn, secs

    def checkpoint_if_due(self):
        if self.step % self.args.ckpt_every == 0 or self.step == self.args.steps:
            atomic_save(dict(model=self.model.state_dict(), ema=self.ema.shadow, opt=self.opt.state_dict(),
                             step=self.step, config=self.cfg, args=vars(self.args), wall=self.wall()), self.ckpt_path)
