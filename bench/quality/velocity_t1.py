#!/usr/bin/python3
"""How the guided velocity behaves near t = 1 (the data end), per predictor (issue 12, item 3).

Along a fine RK4 solution of the guided ODE (qlib.rk4_step, the forward and CFG combine of the quality harness's
"RK4 solution"; state float64) from the noises and labels of a split (val: seeds 1 000 000 + k, label k % 10), with
steps of 1/32 on [0, 7/8] and 1/128 on the last eighth, per t bin (1/16 wide on [0, 7/8], 1/64 on [7/8, 1]):

  rate       RMS over pixels and images of v(t + h) - v(t), divided by h, between consecutive steps of the solution
             (v = the guided velocity at the solution's state), i.e. |dv/dt| along the trajectory;
  rel rate   rate / RMS |v| in the bin;
  euler err  RMS of one Euler step over the whole bin from the exact state at its start against the exact state at its
             end, and err / H^2 (H = bin width), the local error constant, comparable across bin widths;
  heun err   the same for one Heun step (one more evaluation per bin), and err / H^3.

The final states of the first --n-ref images are written (--ref-out) as a high-accuracy solution for PSNR.
Results are cached per (predictor fingerprint, guidance, n, split) in --work; `table` / `plot` read them.

  velocity_t1.py run   --sit shipped=host/models/fashion_sit.safetensors --cfgs 4,1 -n 100 -t 1
  velocity_t1.py table --sit shipped=...,ft=... --cfgs 4,1 -n 100 --md out.md --plot out.png
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qlib  # noqa: E402

SEED_BASE = {"test": 0, "val": 1_000_000}


def grid():
    """Solution points (t_i) and bin edges: steps 1/32 up to 7/8, then 1/128; bins 1/16, then 1/64."""
    pts = np.concatenate([np.arange(28) / 32, 7 / 8 + np.arange(17) / 128])
    edges = np.concatenate([np.arange(15) / 16, 7 / 8 + np.arange(1, 9) / 64])
    return pts, edges


def result_path(a, fp, cfg):
    return os.path.join(a.work, f"velocity_t1_{fp}_cfg{cfg:g}_n{a.n}_{a.split}.json")


def run_one(a, name, path, cfg):
    import torch
    torch.set_grad_enabled(False)
    fp = qlib.tensor_fingerprint(path)
    out = result_path(a, fp, cfg)
    if os.path.exists(out):
        print(f"{name} cfg {cfg:g}: exists {out}", flush=True)
        return
    pw, pcfg = qlib.load_sit(path)
    v = qlib.guided_velocity(pw, pcfg, cfg)
    pts, edges = grid()
    nb = len(edges) - 1
    edge_idx = [int(np.argmin(np.abs(pts - e))) for e in edges]
    assert np.allclose(pts[edge_idx], edges)
    noise = qlib.engine_noise(SEED_BASE[a.split], a.n)
    labels = qlib.labels_for(a.n)
    acc = {k: np.zeros(nb) for k in ("dv2", "v2", "pairs", "euler2", "heun2")}
    finals = []
    t0 = time.time()
    for s in range(0, a.n, a.bs):
        x = torch.from_numpy(noise[s:s + a.bs].astype(np.float64))
        y = torch.from_numpy(labels[s:s + a.bs]).long()
        per_px = x[0].numel()
        xs, vs = [x], []
        for i in range(len(pts) - 1):
            x, k1, _ = qlib.rk4_step(v, x, float(pts[i]), float(pts[i + 1] - pts[i]), y)
            xs.append(x)
            vs.append(k1)
        vs.append(v(x, 1.0, y))  # the velocity at the end of the solution
        B = x.shape[0]
        for b in range(nb):
            i0, i1 = edge_idx[b], edge_idx[b + 1]
            for i in range(i0, i1):
                h = pts[i + 1] - pts[i]
                acc["dv2"][b] += ((vs[i + 1] - vs[i]) / h).pow(2).sum().item()
                acc["v2"][b] += vs[i].pow(2).sum().item()
                acc["pairs"][b] += B * per_px
            H = edges[b + 1] - edges[b]
            xa, va, xb = xs[i0], vs[i0], xs[i1]
            xe = xa + H * va
            acc["euler2"][b] += (xe - xb).pow(2).sum().item()
            xh = xa + 0.5 * H * (va + v(xe, float(edges[b + 1]), y))
            acc["heun2"][b] += (xh - xb).pow(2).sum().item()
        if s < a.n_ref:
            finals.append(x[:max(0, a.n_ref - s)].float().numpy())
        print(f"{name} cfg {cfg:g}: {min(s + a.bs, a.n)}/{a.n} images, {time.time() - t0:.0f} s", flush=True)
    n_px = a.n * per_px
    rows = []
    for b in range(nb):
        H = edges[b + 1] - edges[b]
        rate = np.sqrt(acc["dv2"][b] / acc["pairs"][b])
        vrms = np.sqrt(acc["v2"][b] / acc["pairs"][b])
        e, hn = np.sqrt(acc["euler2"][b] / n_px), np.sqrt(acc["heun2"][b] / n_px)
        rows.append(dict(t0=float(edges[b]), t1=float(edges[b + 1]), rate=float(rate), v_rms=float(vrms),
                         rel_rate=float(rate / vrms), euler_err=float(e), euler_c=float(e / H ** 2),
                         heun_err=float(hn), heun_c=float(hn / H ** 3)))
    res = dict(name=name, sit=path, fingerprint=fp, sit_source=qlib.st_metadata(path).get("source"), cfg=cfg, n=a.n,
               split=a.split, seed_base=SEED_BASE[a.split], steps="RK4, h = 1/32 on [0, 7/8], 1/128 on [7/8, 1]",
               seconds=time.time() - t0, threads=a.threads, rows=rows)
    os.makedirs(a.work, exist_ok=True)
    json.dump(res, open(out, "w"), indent=1)
    if finals and a.ref_out:
        ref = a.ref_out.format(fp=fp, cfg=f"{cfg:g}", n=a.n_ref, split=a.split)
        qlib.save_npy_f32(ref, np.concatenate(finals))
        print(f"{name} cfg {cfg:g}: final states of the first {a.n_ref} images -> {ref}", flush=True)
    print(f"{name} cfg {cfg:g}: {res['seconds']:.0f} s -> {out}", flush=True)


def load_all(a):
    res = {}
    for name, path in a.sit:
        for cfg in a.cfgs:
            p = result_path(a, qlib.tensor_fingerprint(path), cfg)
            if os.path.exists(p):
                res[(name, cfg)] = json.load(open(p))
    return res


def table(a):
    res = load_all(a)
    names = [n for n, _ in a.sit]
    out = []
    for cfg in a.cfgs:
        have = [n for n in names if (n, cfg) in res]
        if not have:
            continue
        r0 = res[(have[0], cfg)]
        out.append(f"Guidance {cfg:g}, {r0['n']} {r0['split']} images ({r0['steps']}): per bin, RMS |dv/dt| along the "
                   "solution (rate), the same relative to RMS |v|, and one Euler step over the bin from the exact state "
                   "(RMS error, and error / H²)." + (" Columns: " + ", ".join(have) + "." if len(have) > 1 else ""))
        out.append("")
        head = "| t bin | " + " | ".join(f"rate {n}" for n in have) + " | " + \
               " | ".join(f"rel rate {n}" for n in have) + " | " + " | ".join(f"Euler err {n}" for n in have) + \
               " | " + " | ".join(f"Euler err/H² {n}" for n in have) + " |"
        out.append(head)
        out.append("|---|" + "---:|" * (4 * len(have)))
        for b, row in enumerate(r0["rows"]):
            cells = [f"{row['t0']:.4g}–{row['t1']:.4g}"]
            for key, f in (("rate", ".2f"), ("rel_rate", ".3f"), ("euler_err", ".2e"), ("euler_c", ".2f")):
                cells += [format(res[(n, cfg)]["rows"][b][key], f) for n in have]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    text = "\n".join(out)
    if a.md:
        open(a.md, "w").write(text)
    print(text)
    if a.plot:
        plot(a, res, names)


def plot(a, res, names):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cfgs = [c for c in a.cfgs if any((n, c) in res for n in names)]
    fig, ax = plt.subplots(len(cfgs), 2, figsize=(12, 3.8 * len(cfgs)), squeeze=False)
    for row, cfg in zip(ax, cfgs):
        for i, n in enumerate(names):
            if (n, cfg) not in res:
                continue
            rr = res[(n, cfg)]["rows"]
            t = [r["t0"] for r in rr] + [rr[-1]["t1"]]
            for a_, key, lab in ((row[0], "rate", "RMS |dv/dt| along the RK4 solution"),
                                 (row[1], "euler_c", "one Euler step over the bin: RMS error / H²")):
                y = [r[key] for r in rr]
                a_.step(t, y + [y[-1]], where="post", color=f"C{i}", label=n)
                a_.set_yscale("log")
                a_.set_xlabel("t (0 = noise, 1 = data)")
                a_.set_ylabel(lab, fontsize=8)
                a_.set_title(f"guidance {cfg:g}, {res[(n, cfg)]['n']} {res[(n, cfg)]['split']} images", fontsize=9)
                a_.grid(alpha=0.3, which="both")
                a_.axvline(7 / 8, color="k", lw=0.5, ls=":")
        row[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.plot, dpi=100)
    print(f"plot -> {a.plot}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "table"])
    ap.add_argument("--sit", required=True, help="NAME=FILE[,NAME=FILE...] predictors")
    ap.add_argument("--cfgs", default="4,1")
    ap.add_argument("-n", "--n", type=int, default=100)
    ap.add_argument("--n-ref", type=int, default=100, help="run: images whose final states go to --ref-out")
    ap.add_argument("--ref-out", default="", help="run: path pattern with {fp} {cfg} {n} {split}")
    ap.add_argument("--split", choices=sorted(SEED_BASE), default="val")
    ap.add_argument("--bs", type=int, default=50)
    ap.add_argument("-t", "--threads", type=int, default=1)
    ap.add_argument("--work", default=os.path.join(qlib.REPO, "build/quality"))
    ap.add_argument("--md", default="")
    ap.add_argument("--plot", default="")
    a = ap.parse_args()
    a.sit = [tuple(s.split("=", 1)) for s in a.sit.split(",") if s]
    a.cfgs = [float(c) for c in a.cfgs.split(",")]
    import torch
    torch.set_num_threads(a.threads)
    if a.command == "run":
        for name, path in a.sit:
            for cfg in a.cfgs:
                run_one(a, name, path, cfg)
    else:
        table(a)


if __name__ == "__main__":
    main()
