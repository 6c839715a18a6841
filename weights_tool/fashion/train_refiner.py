"""Train the FlowTurbo one-block velocity refiner on Fashion-MNIST (algorithm.md §6.1, exact objective).

Per step: t ~ U[0,1) per sample, x0 ~ N(0,I), x_t = t x1 + (1-t) x0; dt ~ U[0, 0.12) one scalar per batch;
v = v_theta(x_t, t | y) with the true labels (frozen EMA predictor, eval); drop ~ Bernoulli(0.1) per sample ->
y_drop = null (num_classes) for both student and target; x' = x_t + dt v;
prediction = v + r_phi(cat(x', v), t + dt | y_drop); target = v_theta(x', t + dt | y_drop) (no clamp: t + dt may
exceed 1); loss = mean over (C,H,W) of the squared error, then the batch mean.

Refiner = same SiT class with depth 1, in_channels_scale 2 (patch embed takes x then v), its own embedders,
DiT init (adaLN and final layer zero, so r_phi = 0 at init). AdamW constant lr after warm-up, wd 0, grad clip.
We keep both raw and EMA weights; at the end both are scored on a fixed seeded validation set of the same objective
and the better one is written to refiner_final.pt (the choice is logged).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from common import CsvLog, Trainer, atomic_save, build_model, setup_threads  # noqa: E402


def draw(seed, step, batch, n, x_all, y_all, dt_max, label_drop, stream=1):
    idx = data.batch_indices(seed + 1, step, batch, n)
    x1 = x_all[idx]
    y = y_all[idx].clone()
    g = data.step_generator(seed, step, stream=stream)
    t = torch.rand(batch, generator=g)
    x0 = torch.randn(x1.shape, generator=g)
    dt = torch.rand(1, generator=g).item() * dt_max
    drop = torch.rand(batch, generator=g) < label_drop
    y_drop = y.clone()
    y_drop[drop] = data.NUM_CLASSES
    xt = t.view(-1, 1, 1, 1) * x1 + (1 - t.view(-1, 1, 1, 1)) * x0
    return xt, t, y, y_drop, dt


@torch.no_grad()
def teacher_pair(teacher, xt, t, y, y_drop, dt, micro):
    vs, xps, tgts = [], [], []
    for s in range(0, xt.shape[0], micro):
        sl = slice(s, s + micro)
        v = teacher(xt[sl], t[sl], y[sl])
        xp = xt[sl] + dt * v
        tgt = teacher(xp, t[sl] + dt, y_drop[sl])
        vs.append(v)
        xps.append(xp)
        tgts.append(tgt)
    return torch.cat(vs), torch.cat(xps), torch.cat(tgts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher", required=True, help="predictor_ema.pt from train_predictor.py")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--micro", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--dt-max", type=float, default=0.12)
    ap.add_argument("--label-drop", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--val-batches", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    setup_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "refiner_last.pt")

    tk = torch.load(args.teacher, map_location="cpu")
    tcfg = tk["config"]
    teacher = build_model(tcfg)
    teacher.load_state_dict(tk["ema"])
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    cfg = dict(tcfg)
    cfg["depth"] = 1
    cfg["in_channels_scale"] = 2
    torch.manual_seed(args.seed + 1)
    model = build_model(cfg)
    tr = Trainer(model, cfg, args, ckpt_path)
    print(f"refiner config {json.dumps(cfg)} params {sum(p.numel() for p in model.parameters())} "
          f"teacher step {tk['step']} args {vars(args)}", flush=True)

    x_all, y_all = data.load("train")
    n = x_all.shape[0]
    log = CsvLog(os.path.join(args.out, "refiner_loss.csv"),
                 ["step", "loss", "dt", "base_loss", "lr", "grad_norm", "sec_per_step", "wall"], resume_step=tr.step)
    tr.start()
    while tr.step < args.steps:
        tr.begin_step()
        xt, t, y, y_drop, dt = draw(args.seed, tr.step, args.batch, n, x_all, y_all, args.dt_max, args.label_drop)
        v, xp, tgt = teacher_pair(teacher, xt, t, y, y_drop, dt, args.micro)
        base = ((v - tgt) ** 2).mean().item()  # loss of the zero refiner (v carried over), for reference

        def micro_loss(sl):
            pred = v[sl] + model(torch.cat([xp[sl], v[sl]], 1), t[sl] + dt, y_drop[sl])
            return ((pred - tgt[sl]) ** 2).mean(dim=(1, 2, 3)).sum() / args.batch
        total, gn, dt_s = tr.optimize(micro_loss)
        step = tr.step
        log.write(step=step, loss=f"{total:.6f}", dt=f"{dt:.4f}", base_loss=f"{base:.6f}", lr=f"{tr.lr:.3g}",
                  grad_norm=f"{gn:.4f}", sec_per_step=f"{dt_s:.3f}", wall=f"{tr.wall():.1f}")
        if step % 10 == 0 or step == 1:
            print(f"step {step}/{args.steps} loss {total:.5f} (zero-refiner {base:.5f}, dt {dt:.3f}) gn {gn:.3f} "
                  f"{dt_s:.2f}s/step", flush=True)
        tr.checkpoint_if_due()

    # validation: same objective on the test split, fixed seed, raw vs EMA vs zero refiner
    x_te, y_te = data.load("t10k")
    ev_raw = build_model(cfg)
    ev_raw.load_state_dict(model.state_dict())
    ev_ema = build_model(cfg)
    ev_ema.load_state_dict(tr.ema.shadow)
    sums = {"zero": 0.0, "raw": 0.0, "ema": 0.0}
    with torch.no_grad():
        for vb in range(args.val_batches):
            xt, t, y, y_drop, dt = draw(args.seed + 999, vb, args.batch, x_te.shape[0], x_te, y_te, args.dt_max,
                                        args.label_drop, stream=2)
            v, xp, tgt = teacher_pair(teacher, xt, t, y, y_drop, dt, args.micro)
            sums["zero"] += ((v - tgt) ** 2).mean().item()
            for name, m in (("raw", ev_raw), ("ema", ev_ema)):
                m.eval()
                pred = v + m(torch.cat([xp, v], 1), t + dt, y_drop)
                sums[name] += ((pred - tgt) ** 2).mean().item()
    val = {k: s / args.val_batches for k, s in sums.items()}
    choice = "ema" if val["ema"] <= val["raw"] else "raw"
    print(f"validation loss (t10k, {args.val_batches}x{args.batch}): {val}; exporting {choice}", flush=True)
    sd = tr.ema.shadow if choice == "ema" else model.state_dict()
    atomic_save(dict(weights=sd, which=choice, val=val, config=cfg, step=tr.step, args=vars(args)),
                os.path.join(args.out, "refiner_final.pt"))
    with open(os.path.join(args.out, "refiner_val.json"), "w") as f:
        json.dump(dict(val=val, choice=choice, step=tr.step), f, indent=1)
    print("done", flush=True)


if __name__ == "__main__":
    main()
