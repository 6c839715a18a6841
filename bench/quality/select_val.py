#!/usr/bin/python3
"""Issue 12 selection on the validation split: scores engine samples of several `quality.py generate --split val`
runs (different -n) on their common first --n images (noise seeds 1 000 000 + k, labels k % 10): FD / KID /
accuracy against the 5000 held-out train images, PSNR of the first --n-ref against the stored RK4 solutions. Also
scores refiner_steps.py rows (the PyTorch R-step rules) when given. Only for choosing variants; the reported numbers
are the test split's (quality.py report).

  select_val.py --n 200 --rk4 build/quality/rk4_64_cfg4_n100_val_<fp>.npy \
      build/quality/samples_val_cfg4_n500_<fp>/*.npy build/quality/samples_val_cfg4_n200_<fp>/*.npy
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qlib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="sample files (.npy, first --n images used)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--n-ref", type=int, default=100)
    ap.add_argument("--rk4", required=True)
    ap.add_argument("--work", default=os.path.join(qlib.REPO, "build/quality"))
    ap.add_argument("--out", default=None, help="JSON with every row")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    real = qlib.RealReference(qlib.Classifier(qlib.CLASSIFIER), cache_dir=a.work, split="holdout")
    rk4 = np.load(a.rk4)[:a.n_ref]
    labels = qlib.labels_for(a.n)
    rows = []
    for f in a.files:
        x = np.load(f)
        if len(x) < a.n:
            print(f"skip {f}: {len(x)} < {a.n} images")
            continue
        x = x[:a.n]
        row = dict(file=os.path.relpath(f, qlib.REPO), psnr=qlib.rmse_psnr(x[:a.n_ref], rk4)[1],
                   **real.score(x, labels))
        rows.append(row)
        print(f"{os.path.basename(f):40s} PSNR {row['psnr']:6.2f} FD {row['fd']:7.2f} KID {row['kid']:6.2f} "
              f"acc {row['acc']:.3f}", flush=True)
    if a.out:
        json.dump(rows, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
