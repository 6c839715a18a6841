"""Plot the loss curves of a run (predictor, refiner, classifier) into one PNG, then summarise the run
(summarize.py: <run>/summary.md; for runs/full also loss.png and the RESULTS block of TRAINING.md)."""
import argparse
import csv
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows or None


def smooth(y, k=50):
    k = max(1, min(k, len(y)))
    c = np.cumsum(np.insert(np.asarray(y, float), 0, 0.0))
    out = np.empty(len(y))
    for i in range(len(y)):
        lo = max(0, i - k + 1)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def plot_variants(runs, out):
    """Issue 12: one panel per refiner variant (runs/<study>/<v>, titled '<study>/<v>'; two columns): training loss
    and the zero refiner's on the same batches (moving averages), and the held-out validation losses every
    --val-every steps."""
    cols = min(len(runs), 2)
    rows = (len(runs) + cols - 1) // cols
    fig, ax = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.0 * rows), squeeze=False)
    for a in ax.flat[len(runs):]:
        a.set_visible(False)
    for a, run in zip(ax.flat, runs):
        r = read(os.path.join(run, "refiner_loss.csv"))
        if not r:
            continue
        s = [int(x["step"]) for x in r]
        a.plot(s, smooth([float(x["base_loss"]) for x in r]), lw=1.2, color="C0", label="zero refiner, train (avg 50)")
        a.plot(s, smooth([float(x["loss"]) for x in r]), lw=1.5, color="C1", label="refiner, train (avg 50)")
        v = [(int(x["step"]), float(x["val_loss"]), float(x["val_base_loss"])) for x in r if x.get("val_loss")]
        if v:
            a.plot([q[0] for q in v], [q[2] for q in v], "s--", ms=3, color="C0", label="zero refiner, held-out")
            a.plot([q[0] for q in v], [q[1] for q in v], "o-", ms=3, color="C3", label="refiner, held-out")
        a.set_yscale("log")
        a.set_title("/".join(os.path.normpath(run).split(os.sep)[-2:]), fontsize=10)
        a.set_xlabel("step (batch 128)")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    for r in range(rows):
        ax[r][0].set_ylabel("MSE against the teacher velocity")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


def plot_predictor(run, out):
    """Issue 12: a predictor run alone (e.g. a continuation of the shipped one): loss per step and its moving average,
    lr on a second axis."""
    p = read(os.path.join(run, "predictor_loss.csv"))
    fig, ax = plt.subplots(figsize=(7, 4))
    s = [int(x["step"]) for x in p]
    lo = [float(x["loss"]) for x in p]
    ax.plot(s, lo, alpha=0.25, lw=0.6, label="per step")
    ax.plot(s, smooth(lo), lw=1.5, label="moving avg (50)")
    ax.set_xlabel("step (batch 128)")
    ax.set_ylabel("flow-matching MSE (the run's t distribution)")
    ax.set_title(os.path.basename(os.path.normpath(run)), fontsize=10)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(s, [float(x["lr"]) for x in p], color="C3", lw=0.8, label="lr")
    ax2.set_ylabel("lr")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=None)
    ap.add_argument("--variants", default=None, help="comma-separated refiner variant runs: one panel each (issue 12)")
    ap.add_argument("--predictor", action="store_true", help="--run is a predictor run alone (issue 12): one panel")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.variants:
        return plot_variants(args.variants.split(","), args.out)
    if args.predictor:
        return plot_predictor(args.run, args.out)
    p = read(os.path.join(args.run, "predictor_loss.csv"))
    r = read(os.path.join(args.run, "refiner_loss.csv"))
    c = read(os.path.join(args.run, "classifier_loss.csv"))
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.5))
    if p:
        s = [int(x["step"]) for x in p]
        lo = [float(x["loss"]) for x in p]
        ax[0].plot(s, lo, alpha=0.25, lw=0.6, label="per step")
        ax[0].plot(s, smooth(lo), lw=1.5, label="moving avg (50)")
        ax[0].set_ylim(0, min(1.5, max(lo) * 1.05))
        ax[0].set_title("predictor: flow-matching MSE")
        ax[0].set_xlabel("step (batch 128)")
        ax[0].legend()
    if r:
        s = [int(x["step"]) for x in r]
        lo = [float(x["loss"]) for x in r]
        b = [float(x["base_loss"]) for x in r]
        ax[1].plot(s, smooth(b), lw=1.2, label="zero refiner (v carried over), avg 50")
        ax[1].plot(s, lo, alpha=0.25, lw=0.6, label="refiner per step")
        ax[1].plot(s, smooth(lo), lw=1.5, label="refiner avg 50")
        ax[1].set_yscale("log")
        ax[1].set_title("refiner: FlowTurbo objective (MSE)")
        ax[1].set_xlabel("step (batch 128)")
        ax[1].legend()
    if c:
        s = [int(x["step"]) for x in c]
        ax[2].plot(s, [float(x["loss"]) for x in c], label="train CE (avg 50 steps)")
        te = [(int(x["step"]), float(x["test_acc"])) for x in c if x["test_acc"]]
        ax2 = ax[2].twinx()
        if te:
            ax2.plot([a for a, _ in te], [b for _, b in te], "o-", color="C3", label="test acc")
            ax2.set_ylabel("test accuracy")
        ax[2].set_title("classifier")
        ax[2].set_xlabel("step (batch 128)")
        ax[2].legend(loc="center right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    # run summary (summary.md in the run; for the full run also the RESULTS block of TRAINING.md)
    import summarize
    full = os.path.abspath(args.run) == os.path.join(summarize.HERE, "runs", "full")
    if full and os.path.abspath(args.out) != os.path.join(summarize.HERE, "loss.png"):
        import shutil
        shutil.copyfile(args.out, os.path.join(summarize.HERE, "loss.png"))
    print(summarize.summarize(args.run, training_md=os.path.join(summarize.HERE, "TRAINING.md") if full else None,
                              plot=os.path.join(summarize.HERE, "loss.png") if full else None))


if __name__ == "__main__":
    main()
