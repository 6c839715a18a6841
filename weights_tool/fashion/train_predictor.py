"""Train the class-conditional SiT velocity predictor on Fashion-MNIST (SiT flow-matching objective).

Objective (algorithm.md §1, SiT Linear path): t ~ U[0,1) per sample, x0 ~ N(0, I), x_t = t x1 + (1 - t) x0,
target x1 - x0, plain MSE (mean over C,H,W then batch). Label dropout 0.1 to the null class (= num_classes).
AdamW (wd 0), constant lr after a linear warm-up, grad-norm clip, EMA of the weights (decay warmed up as
min(decay, (1+s)/(10+s))). A batch is processed as `accum` micro-batches (faster on 2 CPU cores: the activations
stay in cache); the loss is the mean over the whole batch, so this is the same objective as one big batch.

Seeded and resumable: every random draw of step s comes from a generator seeded with (seed, s), and the data order is
an epoch-wise seeded permutation, so a resumed run draws the same batches/noise as an uninterrupted one.
Checkpoints: <out>/predictor_last.pt (atomic, every --ckpt-every steps), loss CSV: <out>/predictor_loss.csv.

Issue 12 (is the stiffness near t = 1 the predictor's fault?): --init FILE starts from an exported predictor
(engine safetensors, e.g. host/models/fashion_sit.safetensors) instead of a fresh init, i.e. continues its training
with a fresh optimiser; --t-logit-normal m,s draws t = sigmoid(m + s n), n ~ N(0, 1) (m > 0 puts more weight near
the data end), mixed with U[0, 1) for a fraction --t-uniform-frac of the samples.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from common import CsvLog, Trainer, atomic_save, build_model, euler_sample, setup_threads  # noqa: E402


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
    ap.add_argument("--init", default=None, help="start from this exported predictor (engine safetensors)")
    ap.add_argument("--t-logit-normal", default=None, help="m,s: t = sigmoid(m + s n) instead of U[0, 1)")
    ap.add_argument("--t-uniform-frac", type=float, default=0.0, help="with --t-logit-normal: this fraction U[0, 1)")
    args = ap.parse_args()
    setup_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "predictor_last.pt")

    cfg = dict(input_size=data.RES, patch_size=args.patch, in_channels=1, hidden_size=args.hidden, depth=args.depth,
               num_heads=args.heads, mlp_ratio=args.mlp_ratio, num_classes=data.NUM_CLASSES, in_channels_scale=1)
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    if args.init:
        from refiner_data import load_teacher
        init, icfg = load_teacher(args.init)
        assert icfg == cfg, f"--init {args.init} has config {icfg}, not {cfg}"
        model.load_state_dict(init.state_dict())
    tr = Trainer(model, cfg, args, ckpt_path)  # a checkpoint, when present, replaces the init
    n_params = sum(p.numel() for p in model.parameters())
    print(f"config {json.dumps(cfg)} params {n_params} args {vars(args)}", flush=True)

    x_all, y_all = data.load("train")
    n = x_all.shape[0]
    log = CsvLog(os.path.join(args.out, "predictor_loss.csv"),
                 ["step", "loss", "lr", "grad_norm", "sec_per_step", "wall"], resume_step=tr.step)
    tr.start()
    while tr.step < args.steps:
        tr.begin_step()
        idx = data.batch_indices(args.seed, tr.step, args.batch, n)
        x1 = x_all[idx]
        y = y_all[idx].clone()
        g = data.step_generator(args.seed, tr.step)
        t = torch.rand(args.batch, generator=g)
        x0 = torch.randn(x1.shape, generator=g)
        drop = torch.rand(args.batch, generator=g) < args.label_drop
        if args.t_logit_normal:
            m, sd = (float(v) for v in args.t_logit_normal.split(","))
            ln = torch.sigmoid(m + sd * torch.randn(args.batch, generator=g))
            t = torch.where(torch.rand(args.batch, generator=g) < args.t_uniform_frac, t, ln)
        y[drop] = data.NUM_CLASSES
        xt = t.view(-1, 1, 1, 1) * x1 + (1 - t.view(-1, 1, 1, 1)) * x0
        target = x1 - x0
        total, gn, dt = tr.optimize(
            lambda sl: ((model(xt[sl], t[sl], y[sl]) - target[sl]) ** 2).mean(dim=(1, 2, 3)).sum() / args.batch)
        step = tr.step
        log.write(step=step, loss=f"{total:.6f}", lr=f"{tr.lr:.3g}", grad_norm=f"{gn:.4f}", sec_per_step=f"{dt:.3f}",
                  wall=f"{tr.wall():.1f}")
        if step % 10 == 0 or step == 1:
            print(f"step {step}/{args.steps} loss {total:.5f} gn {gn:.3f} lr {tr.lr:.2e} {dt:.2f}s/step", flush=True)
        tr.checkpoint_if_due()
        if step % args.sample_every == 0 or step == args.steps:
            ev = build_model(cfg)
            ev.load_state_dict(tr.ema.shadow)
            y_s = torch.arange(data.NUM_CLASSES).repeat_interleave(10)
            xs = euler_sample(ev, y_s, steps=50, cfg_scale=1.0, seed=1)
            data.save_grid_png(os.path.join(args.out, f"predictor_samples_{step:06d}.png"), xs, nrow=10)
            model.train()
    # final EMA weights for export / refiner teacher
    atomic_save(dict(ema=tr.ema.shadow, config=cfg, step=tr.step, args=vars(args)),
                os.path.join(args.out, "predictor_ema.pt"))
    print("done", flush=True)


if __name__ == "__main__":
    main()
