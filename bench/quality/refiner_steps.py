#!/usr/bin/python3
"""Which R step suits a guided refiner (issue 12)? Runs H<a>P<b>R<c> in PyTorch (tests/reference/reference.py's
forward and CFG combine; the H and P blocks exactly as released) with three R-step rules for a refiner trained on
(x' = x + dt v, v) -> V(x', t + dt) - v of the guided teacher, on the validation split (noise seeds 1 000 000 + k,
labels k % 10), and scores PSNR against the stored RK4 solutions (quality.py reference --split val) and FD / KID /
accuracy against the held-out train images:

  euler   d = w + r(x_i, w, t_i);  x_{i+1} = x_i + h d;  carry d            (what engine/plan.c runs for the kind)
  euler1  the same, but the first R step uses d = w (the carried predictor velocity is already at t_i)
  pseudo  x~ = x_i + h w;  e = w + r(x~, w, t_{i+1});  x_{i+1} = x_i + h/2 (w + e);  carry e
          (a pseudo-corrector step with the refiner standing in for the predictor)
  zero    d = w (r = 0; the ablation)

  refiner_steps.py --refiner runs/.../fashion_refiner.safetensors --samplers H2P4R2,H1P5R3 --cfg 4 -n 500
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
import qlib  # noqa: E402
import reference as R  # noqa: E402

RULES = ("euler", "euler1", "pseudo", "zero")


@torch.no_grad()
def run_hp(pw, pc, noise, labels, sampler, s):
    """The released H and P blocks: (state, carried velocity, grid, step sizes, index of the first R step)."""
    _, nh, npc, nr = R.parse_sampler(sampler)
    B = noise.shape[0]
    x = torch.as_tensor(noise)
    yy = torch.cat([torch.as_tensor(labels).long(), torch.full((B,), pc["num_classes"], dtype=torch.long)])

    def V(xs, tv):
        out = R.sit_forward(pw, pc, torch.cat([xs, xs]), torch.full((2 * B,), float(tv)), yy)
        return R._cfg_combine(out, B, pc["guided_channels"], s)[:B]

    t, hs = R.grid_for(nh + npc + nr, R.split_shift(sampler)[1])
    carry, i = None, 0
    for blk in range(nh + npc):
        d = carry if blk >= nh and carry is not None else V(x, t[i])
        e = V(x + hs[i] * d, t[i + 1])
        x = x + 0.5 * hs[i] * (d + e)
        carry = e
        i += 1
    return x, carry, t, hs, i, nr


@torch.no_grad()
def run_r(rw, rc, labels, hp, rule):
    """The R blocks of one rule from the state after the H and P blocks."""
    x, carry, t, hs, i, nr = hp
    y = torch.as_tensor(labels).long()
    B = x.shape[0]

    def Rf(xs, ws, tv):
        return R.sit_forward(rw, rc, xs, torch.full((B,), float(tv)), y, v=ws)

    for k in range(nr):
        w, h = carry, hs[i]
        if rule == "pseudo":
            e = w + Rf(x + h * w, w, t[i + 1])
            x = x + 0.5 * h * (w + e)
            carry = e
        else:
            d = w if rule == "zero" or (rule == "euler1" and k == 0) else w + Rf(x, w, t[i])
            x = x + h * d
            carry = d
        i += 1
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sit", default=qlib.SIT)
    ap.add_argument("--refiner", required=True)
    ap.add_argument("--classifier", default=qlib.CLASSIFIER)
    ap.add_argument("--samplers", default="H2P4R2,H1P5R3")
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--n-ref", type=int, default=100)
    ap.add_argument("--rk4", required=True, help="RK4 solutions of the first --n-ref validation images (.npy)")
    ap.add_argument("--work", default=os.path.join(qlib.REPO, "build/quality"))
    ap.add_argument("--out", required=True, help="JSON with every row")
    ap.add_argument("-b", "--batch", type=int, default=50)
    a = ap.parse_args()
    torch.set_num_threads(1)
    pw, pc = qlib.load_sit(a.sit)
    rw, rc = qlib.load_sit(a.refiner)
    noise, labels = qlib.engine_noise(1_000_000, a.n), qlib.labels_for(a.n)
    rk4 = np.load(a.rk4)[:a.n_ref]
    real = qlib.RealReference(qlib.Classifier(a.classifier), cache_dir=a.work, split="holdout")
    rows = []
    for sampler in a.samplers.split(","):
        t0 = time.time()
        hp = [run_hp(pw, pc, noise[k:k + a.batch], labels[k:k + a.batch], sampler, a.cfg) for k in range(0, a.n, a.batch)]
        print(f"{sampler}: H and P blocks of {a.n} images in {time.time() - t0:.0f} s", flush=True)
        for rule in a.rules.split(","):
            t0 = time.time()
            x = np.concatenate([run_r(rw, rc, labels[k:k + a.batch], hp[j], rule).numpy()
                                for j, k in enumerate(range(0, a.n, a.batch))])
            row = dict(sampler=sampler, rule=rule, cfg=a.cfg, refiner=a.refiner,
                       psnr=qlib.rmse_psnr(x[:a.n_ref], rk4)[1], **real.score(x, labels))
            rows.append(row)
            print(f"{sampler} {rule:7s} cfg {a.cfg:g}: PSNR {row['psnr']:.2f} FD {row['fd']:.2f} KID {row['kid']:.2f} "
                  f"acc {row['acc']:.3f} ({time.time() - t0:.0f} s)", flush=True)
            json.dump(rows, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
