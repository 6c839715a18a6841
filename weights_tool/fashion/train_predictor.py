"""Train the class-conditional SiT velocity predictor on Fashion-MNIST (SiT flow-matching objective).

Objective (algorithm.md §1, SiT Linear path): t ~ U[0,1) per sample, x0 ~ N(0, I), x_t = t x1 + (1 - t) x0,
target x1 - x0, plain MSE (mean over C,H,W then batch). Label dropout 0.1 to the null class (= num_classes).
AdamW (wd 0), constant lr after a linear warm-up, grad-norm clip, EMA of the weights (decay warmed up as
min(decay, (1+s)/(10+s))). A batch is processed as `accum` micro-batches (faster on 2 CPU cores: the activations
stay in cache); the loss is the mean over the whole batch, so this is the same objective as one big batch.

Seeded and resumable: every random draw of step s comes from a generator seeded with (seed, s), and the data order is
an epoch-wise seeded permutation, so a resumed run draws the same batches/noise as an uninterrupted one.
Checkpoints: <out>/predictor_last.pt (atomic, every --ckpt-every steps), loss CSV: <out>/predictor_loss.csv.
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from common import CsvLog, Timer, atomic_save, build_model, euler_sample, load_checkpoint, setup_threads  # noqa
from model import EMA  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3600)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--micro", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--label-drop", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--sample-every", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--mlp-ratio", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    setup_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "predictor_last.pt")

    cfg = dict(input_size=data.RES, patch_size=args.patch, in_channels=1, hidden_size=args.hidden, depth=args.depth,
               num_heads=args.heads, mlp_ratio=args.mlp_ratio, num_classes=data.NUM_CLASSES, in_channels_scale=1)
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    ema = EMA(model, args.ema)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    step = 0
    wall_before = 0.0
    ck = load_checkpoint(ckpt_path)
    if ck is not None:
        assert ck["config"] == cfg, "checkpoint config differs from the command line"
        model.load_state_dict(ck["model"])
        ema.shadow = ck["ema"]
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        wall_before = ck.get("wall", 0.0)
        print(f"resumed from {ckpt_path} at step {step}", flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config {json.dumps(cfg)} params {n_params} args {vars(args)}", flush=True)

    x_all, y_all = data.load("train")
    n = x_all.shape[0]
    log = CsvLog(os.path.join(args.out, "predictor_loss.csv"),
                 ["step", "loss", "lr", "grad_norm", "sec_per_step", "wall"], resume_step=step)
    timer = Timer()
    model.train()
    while step < args.steps:
        t_step = timer.elapsed()
        lr = args.lr * min(1.0, (step + 1) / max(1, args.warmup))
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        idx = data.batch_indices(args.seed, step, args.batch, n)
        x1 = x_all[idx]
        y = y_all[idx].clone()
        g = data.step_generator(args.seed, step)
        t = torch.rand(args.batch, generator=g)
        x0 = torch.randn(x1.shape, generator=g)
        drop = torch.rand(args.batch, generator=g) < args.label_drop
        y[drop] = data.NUM_CLASSES
        xt = t.view(-1, 1, 1, 1) * x1 + (1 - t.view(-1, 1, 1, 1)) * x0
        target = x1 - x0
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for s in range(0, args.batch, args.micro):
            sl = slice(s, s + args.micro)
            out = model(xt[sl], t[sl], y[sl])
            loss = ((out - target[sl]) ** 2).mean(dim=(1, 2, 3)).sum() / args.batch
            loss.backward()
            total += loss.item()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).item()
        opt.step()
        step += 1
        ema.decay = min(args.ema, (1 + step) / (10 + step))
        ema.update(model)
        dt = timer.elapsed() - t_step
        if not math.isfinite(total):
            raise SystemExit(f"non-finite loss at step {step}")
        log.write(step=step, loss=f"{total:.6f}", lr=f"{lr:.3g}", grad_norm=f"{gn:.4f}", sec_per_step=f"{dt:.3f}",
                  wall=f"{wall_before + timer.elapsed():.1f}")
        if step % 10 == 0 or step == 1:
            print(f"step {step}/{args.steps} loss {total:.5f} gn {gn:.3f} lr {lr:.2e} {dt:.2f}s/step", flush=True)
        if step % args.ckpt_every == 0 or step == args.steps:
            atomic_save(dict(model=model.state_dict(), ema=ema.shadow, opt=opt.state_dict(), step=step, config=cfg,
                             args=vars(args), wall=wall_before + timer.elapsed()), ckpt_path)
        if step % args.sample_every == 0 or step == args.steps:
            ev = build_model(cfg)
            ev.load_state_dict(ema.shadow)
            y_s = torch.arange(data.NUM_CLASSES).repeat_interleave(10)
            xs = euler_sample(ev, y_s, steps=50, cfg_scale=1.0, seed=1)
            data.save_grid_png(os.path.join(args.out, f"predictor_samples_{step:06d}.png"), xs, nrow=10)
            model.train()
    # final EMA weights for export / refiner teacher
    atomic_save(dict(ema=ema.shadow, config=cfg, step=step, args=vars(args)), os.path.join(args.out, "predictor_ema.pt"))
    print("done", flush=True)


if __name__ == "__main__":
    main()
