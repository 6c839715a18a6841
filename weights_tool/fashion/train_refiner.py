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

Cached pairs (issue 12, --data DIR --val DIR): the teacher pairs come from refiner_data.py chunks instead of being
drawn per step (the teacher's forwards are made once per variant); each step takes --batch pairs of an epoch-wise
seeded permutation of the pool, so a resumed run trains on exactly the same batches. The student, optimiser, EMA
and checkpointing are the same; the validation (every --val-every steps and the final raw / EMA / zero choice) uses
the held-out --val pairs, never t10k. The refiner kind (released or guided) is the data's and is recorded in
refiner_final.pt for export.py.
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


def save_choice(args, cfg, model, tr, val, where, kind="released"):
    """Writes the better of the raw and EMA weights (by validation loss) to refiner_final.pt."""
    choice = "ema" if val["ema"] <= val["raw"] else "raw"
    print(f"validation loss ({where}): {val}; exporting {choice}", flush=True)
    sd = tr.ema.shadow if choice == "ema" else model.state_dict()
    atomic_save(dict(weights=sd, which=choice, val=val, config=cfg, step=tr.step, args=vars(args), kind=kind),
                os.path.join(args.out, "refiner_final.pt"))
    with open(os.path.join(args.out, "refiner_val.json"), "w") as f:
        json.dump(dict(val=val, choice=choice, step=tr.step, where=where, kind=kind), f, indent=1)
    print("done", flush=True)


def student_config(tcfg):
    cfg = dict(tcfg)
    cfg["depth"] = 1
    cfg["in_channels_scale"] = 2
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher", default=None, help="predictor_ema.pt from train_predictor.py (not with --data)")
    ap.add_argument("--data", default=None, help="refiner_data.py chunks to train on (instead of a teacher)")
    ap.add_argument("--val", default=None, help="refiner_data.py chunks of the held-out split (with --data)")
    ap.add_argument("--val-every", type=int, default=100)
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
    if args.data:
        return main_cached(args)
    if not args.teacher:
        raise SystemExit("--teacher (or --data) is required")
    ckpt_path = os.path.join(args.out, "refiner_last.pt")

    tk = torch.load(args.teacher, map_location="cpu")
    tcfg = tk["config"]
    teacher = build_model(tcfg)
    teacher.load_state_dict(tk["ema"])
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    cfg = student_config(tcfg)
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
    save_choice(args, cfg, model, tr, val, f"t10k, {args.val_batches}x{args.batch}")


def load_pairs(d):
    """refiner_data.py chunks of directory d, concatenated, and its spec."""
    spec = json.load(open(os.path.join(d, "spec.json")))
    n = spec["n"] // spec["chunk"]
    chunks = [torch.load(os.path.join(d, f"chunk_{c:05d}.pt")) for c in range(n)]
    pairs = {k: torch.cat([c[k] for c in chunks]) for k in ("xp", "v", "tp", "y", "tgt")}
    return pairs, spec


@torch.no_grad()
def pair_losses(models, pairs, micro=256):
    """Mean squared error of v + r(cat(x', v), t' | y) against the target for each model (None = zero refiner)."""
    sums = [0.0] * len(models)
    n = pairs["xp"].shape[0]
    for a in range(0, n, micro):
        sl = slice(a, a + micro)
        v, tgt = pairs["v"][sl], pairs["tgt"][sl]
        for i, m in enumerate(models):
            pred = v if m is None else v + m(torch.cat([pairs["xp"][sl], v], 1), pairs["tp"][sl], pairs["y"][sl])
            sums[i] += ((pred - tgt) ** 2).mean(dim=(1, 2, 3)).sum().item()
    return [s / n for s in sums]


def main_cached(args):
    pairs, spec = load_pairs(args.data)
    val_pairs, val_spec = load_pairs(args.val)
    keys = ("kind", "t_of", "t_range", "dt_range", "cfg_range", "label_drop", "teacher")
    if any(spec[k] != val_spec[k] for k in keys) or val_spec["split"] != "holdout" or spec["split"] != "train":
        raise SystemExit(f"--val {args.val} must hold the held-out split's pairs of the same kind as --data")
    kind = spec["kind"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from refiner_data import load_teacher
    _, tcfg = load_teacher(spec["teacher"])
    cfg = student_config(tcfg)
    torch.manual_seed(args.seed + 1)
    model = build_model(cfg)
    tr = Trainer(model, cfg, args, os.path.join(args.out, "refiner_last.pt"))
    n = pairs["xp"].shape[0]
    print(f"refiner ({kind}) config {json.dumps(cfg)} on {n} cached pairs {args.data} ({spec}); args {vars(args)}",
          flush=True)
    log = CsvLog(os.path.join(args.out, "refiner_loss.csv"),
                 ["step", "loss", "base_loss", "val_loss", "val_base_loss", "lr", "grad_norm", "sec_per_step", "wall"],
                 resume_step=tr.step)
    tr.start()
    while tr.step < args.steps:
        tr.begin_step()
        idx = data.batch_indices(args.seed + 1, tr.step, args.batch, n)
        xp, v, tp, y, tgt = (pairs[k][idx] for k in ("xp", "v", "tp", "y", "tgt"))
        base = ((v - tgt) ** 2).mean().item()

        def micro_loss(sl):
            pred = v[sl] + model(torch.cat([xp[sl], v[sl]], 1), tp[sl], y[sl])
            return ((pred - tgt[sl]) ** 2).mean(dim=(1, 2, 3)).sum() / args.batch
        total, gn, dt_s = tr.optimize(micro_loss)
        step = tr.step
        val = ["", ""]
        if step % args.val_every == 0 or step == args.steps:
            model.eval()
            vl, vb = pair_losses([model, None], val_pairs)
            model.train()
            val = [f"{vl:.6f}", f"{vb:.6f}"]
            print(f"step {step}: validation loss {vl:.5f} (zero refiner {vb:.5f})", flush=True)
        log.write(step=step, loss=f"{total:.6f}", base_loss=f"{base:.6f}", val_loss=val[0], val_base_loss=val[1],
                  lr=f"{tr.lr:.3g}", grad_norm=f"{gn:.4f}", sec_per_step=f"{dt_s:.3f}", wall=f"{tr.wall():.1f}")
        if step % 10 == 0 or step == 1:
            print(f"step {step}/{args.steps} loss {total:.5f} (zero-refiner {base:.5f}) gn {gn:.3f} "
                  f"{dt_s:.2f}s/step", flush=True)
        tr.checkpoint_if_due()
    ev_ema = build_model(cfg)
    ev_ema.load_state_dict(tr.ema.shadow)
    model.eval()
    raw, ema, zero = pair_losses([model, ev_ema.eval(), None], val_pairs)
    save_choice(args, cfg, model, tr, dict(zero=zero, raw=raw, ema=ema),
                f"held-out train split, {val_pairs['xp'].shape[0]} pairs", kind)


if __name__ == "__main__":
    main()
