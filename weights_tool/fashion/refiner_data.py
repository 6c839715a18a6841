"""Teacher pairs for refiner training, computed once and stored in chunks (issue 12: several refiner variants are
trained on this 2-core machine; the frozen teacher's forwards are ~90 % of a refiner training step, so each variant's
pairs are made once and the trainings then cost only the 1-block student).

One pair: the student's input (x', v, t', y_student) and its target, exactly the quantities of algorithm.md 6.1:
  x_t = t x1 + (1 - t) x0,  v = V(x_t, t),  x' = x_t + dt v,  t' = t + dt,  target = V(x', t'),
  the student predicts v + r(cat(x', v), t' | y_student).
Kinds (the refiner_kind the export records, engine/plan.c runs them):
  released  V = the conditional teacher v_theta(. | y) for v; label drop (0.1) -> y_drop (null) for the target and
            the student (the released recipe, algorithm.md 6.1 steps 4-7)
  guided    V = the classifier-free-guided teacher u + s (c - u) with s ~ U[cfg-min, cfg-max] per pair (rows
            [cond; uncond], the samplers' combine), the same s for v and the target; student label = the true y
            (no drop: a guided refiner runs once per step on the guided velocity of the conditional rows)
Times: --t-of start draws t ~ U[t-min, t-max) and dt ~ U[dt-min, dt-max) (the released recipe: t in [0, 1),
dt in [0, 0.12)); --t-of end draws dt first and then t' = t + dt ~ U[t-min, t-max) (the refiner's query time,
i.e. where a sampler's R blocks evaluate it). dt is drawn per pair (the released code draws one per batch).

Data: Fashion-MNIST train without the held-out validation split (data.holdout_indices), or with --split holdout only
that split (validation pairs). Every chunk is seeded by (seed, chunk), so an interrupted run resumes where it
stopped (finished chunk files are kept and skipped) and yields the same pairs; --part I/N lets N processes share
one run (process I makes the chunks c with c % N == I; the pairs are the same as one process's).

  refiner_data.py --out runs/r_seg/data --kind released --t-of end --t-range 0.6,1 --dt-range 0.0833,0.1667
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import data  # noqa: E402
import safetensors_io as st  # noqa: E402
from common import atomic_save, build_model, setup_threads  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
TEACHER = os.path.join(REPO, "host/models/fashion_sit.safetensors")


def load_teacher(path):
    """The exported predictor (engine safetensors, F16 weights as float32) as a frozen model.SiT: the weights the
    engine samples with (the training run's F32 EMA checkpoint is not kept in the repository)."""
    w, meta = st.load(path)
    cfg = dict(input_size=int(meta["input_size"]), patch_size=int(meta["patch_size"]),
               in_channels=int(meta["in_channels"]), hidden_size=int(meta["hidden_size"]), depth=int(meta["depth"]),
               num_heads=int(meta["num_heads"]), mlp_ratio=float(meta["mlp_ratio"]),
               num_classes=int(meta["num_classes"]), in_channels_scale=1)
    m = build_model(cfg)
    m.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in w.items()})
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m, cfg


def parse_range(s):
    lo, hi = (float(v) for v in s.split(","))
    if not lo <= hi:
        raise SystemExit(f"bad range {s}")
    return lo, hi


@torch.no_grad()
def velocity(teacher, x, t, y, s, micro):
    """V(x, t): conditional (s is None) or guided u + s (c - u) with rows [cond; uncond] per micro-batch."""
    out = []
    for a in range(0, x.shape[0], micro):
        xs, ts, ys = x[a:a + micro], t[a:a + micro], y[a:a + micro]
        if s is None:
            out.append(teacher(xs, ts, ys))
            continue
        n = xs.shape[0]
        raw = teacher(torch.cat([xs, xs]), torch.cat([ts, ts]), torch.cat([ys, torch.full_like(ys, data.NUM_CLASSES)]))
        c, u = raw[:n], raw[n:]
        out.append(u + s[a:a + micro].view(-1, 1, 1, 1) * (c - u))
    return torch.cat(out)


def make_chunk(a, teacher, x_all, y_all, pool, chunk):
    g = data.step_generator(a.seed, chunk, stream=5)
    n = a.chunk
    idx = pool[torch.randint(len(pool), (n,), generator=g)]
    x1, y = x_all[idx], y_all[idx].clone()
    x0 = torch.randn(x1.shape, generator=g)
    (tlo, thi), (dlo, dhi) = a.t_range, a.dt_range
    u_t = torch.rand(n, generator=g)
    dt = dlo + (dhi - dlo) * torch.rand(n, generator=g)
    if a.t_of == "start":
        t = tlo + (thi - tlo) * u_t
    else:
        t = tlo + (thi - tlo) * u_t - dt
    s = a.cfg_range[0] + (a.cfg_range[1] - a.cfg_range[0]) * torch.rand(n, generator=g) if a.kind == "guided" else None
    drop = torch.rand(n, generator=g) < a.label_drop
    tv = t.view(-1, 1, 1, 1)
    xt = tv * x1 + (1 - tv) * x0
    v = velocity(teacher, xt, t, y, s, a.micro)
    xp = xt + dt.view(-1, 1, 1, 1) * v
    if a.kind == "released":
        y_student = y.clone()
        y_student[drop] = data.NUM_CLASSES
    else:
        y_student = y
    tgt = velocity(teacher, xp, t + dt, y_student, s, a.micro)
    rec = dict(xp=xp, v=v, tp=t + dt, y=y_student, tgt=tgt, dt=dt)
    if s is not None:
        rec["cfg"] = s
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher", default=TEACHER)
    ap.add_argument("--kind", choices=["released", "guided"], required=True)
    ap.add_argument("--split", choices=["train", "holdout"], default="train",
                    help="train: Fashion-MNIST train minus the held-out split; holdout: only the held-out split")
    ap.add_argument("--n", type=int, default=32768, help="pairs (a multiple of --chunk)")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--t-of", choices=["start", "end"], default="start")
    ap.add_argument("--t-range", type=parse_range, default=(0.0, 1.0))
    ap.add_argument("--dt-range", type=parse_range, default=(0.0, 0.12))
    ap.add_argument("--cfg-range", type=parse_range, default=(2.5, 4.5))
    ap.add_argument("--label-drop", type=float, default=0.1)
    ap.add_argument("--micro", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--part", default="0/1", help="I/N: make only chunks c with c %% N == I (N processes share a run)")
    a = ap.parse_args()
    part, parts = (int(v) for v in a.part.split("/"))
    if not 0 <= part < parts:
        raise SystemExit(f"bad --part {a.part}")
    setup_threads(a.threads)
    torch.set_grad_enabled(False)
    os.makedirs(a.out, exist_ok=True)
    spec = {k: v for k, v in vars(a).items() if k not in ("out", "threads", "micro", "part")}
    spec_path = os.path.join(a.out, "spec.json")
    if os.path.exists(spec_path) and json.load(open(spec_path)) != json.loads(json.dumps(spec)):
        raise SystemExit(f"{spec_path} was written with other options: {json.load(open(spec_path))}")
    tmp = f"{spec_path}.{os.getpid()}.tmp"  # written whole, then renamed: the --part processes never read half a file
    json.dump(spec, open(tmp, "w"), indent=1)
    os.replace(tmp, spec_path)
    teacher, _ = load_teacher(a.teacher)
    x_all, y_all = data.load("train")
    hold = data.holdout_indices(y_all)
    if a.split == "holdout":
        pool = hold
    else:
        mask = torch.ones(len(y_all), dtype=torch.bool)
        mask[hold] = False
        pool = torch.nonzero(mask).flatten()
    chunks = a.n // a.chunk
    print(f"{a.kind} pairs: {chunks} chunks of {a.chunk} from {len(pool)} {a.split} images -> {a.out}", flush=True)
    for c in range(chunks):
        path = os.path.join(a.out, f"chunk_{c:05d}.pt")
        if c % parts != part or os.path.exists(path):
            continue
        t0 = time.time()
        atomic_save(make_chunk(a, teacher, x_all, y_all, pool, c), path)
        print(f"[{time.strftime('%H:%M:%S')}] chunk {c + 1}/{chunks}: {time.time() - t0:.1f} s", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
