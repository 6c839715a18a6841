"""Held-out flow-matching loss of exported predictors per t bin (issue 12, item 3: a predictor continued with more
weight near the data end, t = 1, against the shipped one).

The objective of train_predictor.py (x_t = t x1 + (1 - t) x0, target x1 - x0, MSE, true labels, no label drop) on
--n t10k images (never trained on; class-balanced, seed 0), the same images, noise and times for every predictor:
in each bin (1/16 wide on [0, 7/8], 1/64 on [7/8, 1], as bench/quality/velocity_t1.py) every image gets one t drawn
uniformly in the bin. Prints a table and writes --json: per-bin loss, the uniform-t loss (bins weighted by width)
and the loss under --weights-logit-normal (the continued run's t distribution).

  /usr/bin/python3 predictor_val.py --sit shipped=../../host/models/fashion_sit.safetensors,ft=runs/pred_t1/x.safetensors
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from refiner_data import load_teacher  # noqa: E402


def bins():
    return np.concatenate([np.arange(15) / 16, 7 / 8 + np.arange(1, 9) / 64])


def mixture_mass(edges, m, s, u):
    """Mass of each bin under t = sigmoid(m + s n) with prob. 1 - u, U[0, 1) with prob. u."""
    def cdf(t):
        if t <= 0:
            return 0.0
        if t >= 1:
            return 1.0
        return 0.5 * (1 + math.erf((math.log(t / (1 - t)) - m) / (s * math.sqrt(2))))
    return np.array([(1 - u) * (cdf(b) - cdf(a)) + u * (b - a) for a, b in zip(edges, edges[1:])])


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sit", required=True, help="NAME=FILE[,NAME=FILE...]")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--micro", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weights-logit-normal", default="1,1.5,0.3", help="m,s,u of the continued run")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x_all, y_all = data.load("t10k")
    g = torch.Generator().manual_seed(0)
    idx = torch.cat([torch.nonzero(y_all == c)[:, 0][torch.randperm(int((y_all == c).sum()), generator=g)[:a.n // 10]]
                     for c in range(10)])
    x1, y = x_all[idx], y_all[idx]
    edges = bins()
    nb = len(edges) - 1
    x0 = torch.randn((nb,) + tuple(x1.shape), generator=g)
    u = torch.rand(nb, len(idx), generator=g)
    m, s, uf = (float(v) for v in a.weights_logit_normal.split(","))
    w_ln = mixture_mass(edges, m, s, uf)
    width = np.diff(edges)
    res = dict(n=len(idx), edges=edges.tolist(), weights_logit_normal=a.weights_logit_normal, models={})
    for item in a.sit.split(","):
        name, path = item.split("=", 1)
        model, _ = load_teacher(path)
        per_bin = []
        for b in range(nb):
            t = (edges[b] + u[b] * (edges[b + 1] - edges[b])).float()
            tot = 0.0
            for k in range(0, len(idx), a.micro):
                sl = slice(k, k + a.micro)
                tt = t[sl].view(-1, 1, 1, 1)
                xt = tt * x1[sl] + (1 - tt) * x0[b, sl]
                tot += ((model(xt, t[sl], y[sl]) - (x1[sl] - x0[b, sl])) ** 2).mean(dim=(1, 2, 3)).sum().item()
            per_bin.append(tot / len(idx))
            print(f"{name} t {edges[b]:.4f}-{edges[b + 1]:.4f}: {per_bin[-1]:.5f}", flush=True)
        pb = np.array(per_bin)
        res["models"][name] = dict(file=path, per_bin=per_bin, uniform=float((pb * width).sum()),
                                   logit_normal=float((pb * w_ln).sum()),
                                   last_eighth=float((pb[14:] * width[14:]).sum() / width[14:].sum()))
        r = res["models"][name]
        print(f"{name}: uniform-t loss {r['uniform']:.5f}, under the continued run's t distribution "
              f"{r['logit_normal']:.5f}, t in [7/8, 1] {r['last_eighth']:.5f}", flush=True)
    if a.json:
        json.dump(res, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
