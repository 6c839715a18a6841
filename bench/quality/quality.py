#!/usr/bin/python3
"""Fashion-MNIST quality vs cost of the engine's samplers (issue #5 parts 3-5). Run with /usr/bin/python3.

  quality.py all              everything below in order (reference, generate, time, report)
  quality.py cfg-sweep        FD / KID / accuracy of one sampler over guidance scales (the choice of --cfg)
  quality.py reference        high-accuracy solutions of the guided ODE: RK4 with --rk4-steps and half as many
  quality.py generate         engine samples (build/flowturbo generate) of every sampler, N images each
  quality.py time             ms/img of every sampler (build/quality/time_samplers, through ft_generate)
  quality.py report           metrics -> results.json, table.md, quality_vs_cost.png (in --results)

Samples: seed 0, image k uses engine noise seed k and label k % 10 (balanced classes). The first --n-ref images
(same seeds and labels) are also solved with RK4 in PyTorch (tests/reference/reference.py's SiT forward and CFG
combine) for the trajectory error. FD / KID / accuracy use the penultimate features / logits of the Fashion-MNIST
classifier (bench/models/fashion_classifier.safetensors) against all 10 000 t10k images; the real-vs-real line uses
a class-balanced train subset of the same size. Intermediate files go to --work (default build/quality, ignored by
git); the table, plot and JSON to --results (default bench/quality).
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qlib  # noqa: E402

REPO = qlib.REPO
CLI = os.path.join(REPO, "build/flowturbo")
TIMER = os.path.join(REPO, "build/quality/time_samplers")

EULER = ["euler:6", "euler:8", "euler:12", "euler:16", "euler:24"]
HEUN = ["heun:3", "heun:4", "heun:5", "heun:6", "heun:8", "heun:12"]
FLOWTURBO = ["H1P3R2", "H1P5R3", "H2P4R2", "H1P7R3", "H2P6R3", "H3P6R3", "H2P10R4", "H4P8R4"]
ABLATION = ["H1P8R0", "H2P9R0"]  # the grids of H1P5R3 / H2P6R3 with pseudo-corrector blocks instead of R blocks
SAMPLERS = EULER + HEUN + FLOWTURBO + ABLATION
CONVERGENCE = ["heun:32", "heun:64"]  # engine vs RK4 (first --n-ref images only)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fname(sampler):
    return sampler.replace(":", "")


def sampler_info(s):
    import reference as R
    kind, a, b, c = R.parse_sampler(s)
    if kind == "euler":
        return dict(family="euler", pred=a, ref=0, steps=a)
    fam = "heun" if b == 0 and c == 0 else ("flowturbo" if c > 0 else "ablation")
    return dict(family=fam, pred=2 * a + b + (1 if a == 0 and b > 0 else 0), ref=2 * c, steps=a + b + c)


def model_args(a):
    return ["-m", a.sit, "--refiner", a.refiner]


def fingerprints(a):
    return {"sit": qlib.tensor_fingerprint(a.sit), "refiner": qlib.tensor_fingerprint(a.refiner)}


# ---------------------------------------------------------------------------------------------------------------------

def engine_generate(a, sampler, n, out_path, cfg=None, threads=None):
    """build/flowturbo generate: n images, seed 0, labels k % 10; returns the CLI's sampling seconds."""
    cmd = [CLI, "generate"] + model_args(a) + [
        "--sampler", sampler, "--cfg-scale", str(a.cfg if cfg is None else cfg), "--class", ",".join(map(str, range(10))),
        "-n", str(n), "-s", "0", "-b", str(a.batch), "-t", str(threads or a.threads), "--backend", "cpu",
        "--latents-out", out_path]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    m = re.search(r"sampling completed, taking ([0-9.]+)s", p.stderr)
    return float(m.group(1)) if m else float("nan"), " ".join(cmd)


def cmd_reference(a):
    pw, pcfg = qlib.load_sit(a.sit)
    noise = qlib.engine_noise(0, a.n_ref)
    labels = qlib.labels_for(a.n_ref)
    os.makedirs(a.work, exist_ok=True)
    res = {}
    for steps in (a.rk4_steps, a.rk4_steps // 2):
        path = os.path.join(a.work, f"rk4_{steps}_cfg{a.cfg:g}_n{a.n_ref}_{fingerprints(a)['sit']}.npy")
        if os.path.exists(path):
            log(f"reference exists: {path}")
            continue
        t0 = time.time()
        x = qlib.rk4_solve(pw, pcfg, noise, labels, a.cfg, steps, log=log)
        qlib.save_npy_f32(path, x)
        res[steps] = time.time() - t0
        log(f"RK4 {steps} steps, {a.n_ref} images: {res[steps]:.0f} s -> {path}")
    if a.store_test_ref:
        store_test_ref(a)
    return res


def store_test_ref(a, k=20):
    """First k RK4 solutions -> bench/quality/data/rk4_ref.npy (+ .json): the PSNR reference of tests/test_quality.c
    (seed 0 + k, label k % 10, the same guidance scale)."""
    x = np.load(ref_path(a, a.rk4_steps))[:k]
    d = os.path.join(HERE, "data")
    os.makedirs(d, exist_ok=True)
    qlib.save_npy_f32(os.path.join(d, "rk4_ref.npy"), x)
    json.dump(dict(images=k, seed=0, labels="k % 10", cfg_scale=a.cfg, rk4_steps=a.rk4_steps,
                   sit_fingerprint=fingerprints(a)["sit"], sit_source=qlib.st_metadata(a.sit).get("source"),
                   made_by="bench/quality/quality.py reference --store-test-ref"),
              open(os.path.join(d, "rk4_ref.json"), "w"), indent=1)
    log(f"stored the first {k} RK4 solutions in {d}/rk4_ref.npy")


def ref_path(a, steps):
    return os.path.join(a.work, f"rk4_{steps}_cfg{a.cfg:g}_n{a.n_ref}_{fingerprints(a)['sit']}.npy")


def cmd_generate(a):
    d = os.path.join(a.work, f"samples_cfg{a.cfg:g}_n{a.n}_{fingerprints(a)['sit']}_{fingerprints(a)['refiner']}")
    os.makedirs(d, exist_ok=True)
    gen_log = os.path.join(d, "generate.json")
    done = json.load(open(gen_log)) if os.path.exists(gen_log) else {}
    jobs = [(s, a.n) for s in a.samplers] + [(s, a.n_ref) for s in a.convergence]
    for s, n in jobs:
        out = os.path.join(d, fname(s) + ".npy")
        if os.path.exists(out) and s in done and done[s]["n"] == n:
            continue
        secs, cmd = engine_generate(a, s, n, out)
        done[s] = dict(n=n, seconds=secs, ms_per_img=1e3 * secs / n, threads=a.threads, batch=a.batch, cmd=cmd)
        json.dump(done, open(gen_log, "w"), indent=1)
        log(f"{s}: {n} images in {secs:.1f} s ({1e3 * secs / n:.1f} ms/img, -t {a.threads} -b {a.batch})")
    return d


def build_timer():
    lib = os.path.join(REPO, "build/libflowturbo.a")
    src = os.path.join(HERE, "time_samplers.c")
    if os.path.exists(TIMER) and os.path.getmtime(TIMER) >= max(os.path.getmtime(lib), os.path.getmtime(src)):
        return
    os.makedirs(os.path.dirname(TIMER), exist_ok=True)
    libs = ["-lopenblas", "-lpng", "-lz", "-lm", "-lpthread"]
    info = subprocess.run(["make", "-s", "-C", REPO, "info"], capture_output=True, text=True).stdout
    if "✓" in info:
        cuda = os.environ.get("CUDA_HOME", "/usr/local/cuda")
        libs += [f"-L{cuda}/lib64", f"-L{cuda}/targets/x86_64-linux/lib", "-lcublasLt", "-lcublas", "-lcudart",
                 "-lstdc++", "-ldl", "-lrt"]
    cmd = ["gcc", "-std=c11", "-O2", "-fopenmp", "-D_DEFAULT_SOURCE", src, lib] + libs + ["-o", TIMER]
    subprocess.run(cmd, check=True)


def cmd_time(a):
    build_timer()
    cmd = [TIMER] + model_args(a) + ["--cfg-scale", str(a.cfg), "-t", str(a.threads), "-b", str(a.time_batch),
                                     "-n", str(a.time_n), "--reps", str(a.reps)] + a.samplers
    log("timing: " + " ".join(cmd))
    rows = []
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        r = json.loads(line)
        rows.append(r)
        log(f"{r['sampler']}: {r['ms_per_img_median']:.1f} ms/img (min {r['ms_per_img_min']:.1f})")
    if p.wait() != 0:
        raise SystemExit("time_samplers failed")
    os.makedirs(a.work, exist_ok=True)
    out = os.path.join(a.work, f"timing_cfg{a.cfg:g}_t{a.threads}_b{a.time_batch}.json")
    json.dump(dict(cmd=" ".join(cmd), rows=rows, cpu=cpu_model(), threads=a.threads), open(out, "w"), indent=1)
    return out


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return platform.processor()


# ---------------------------------------------------------------------------------------------------------------------

def cmd_report(a):
    import torch
    torch.set_num_threads(a.threads)
    fp = fingerprints(a)
    d = os.path.join(a.work, f"samples_cfg{a.cfg:g}_n{a.n}_{fp['sit']}_{fp['refiner']}")
    gen = json.load(open(os.path.join(d, "generate.json")))
    tpath = os.path.join(a.work, f"timing_cfg{a.cfg:g}_t{a.threads}_b{a.time_batch}.json")
    timing = json.load(open(tpath)) if os.path.exists(tpath) else None
    tms = {r["sampler"]: r for r in timing["rows"]} if timing else {}
    clf = qlib.Classifier(a.classifier)
    real = qlib.RealReference(clf, cache_dir=a.work)
    log(f"classifier accuracy on t10k {real.acc:.4f}")
    base = real.real_baseline(a.n)
    log(f"real vs real (train subset n={a.n} vs t10k): FD {base['fd']:.3f} KID {base['kid']:.5f} acc {base['acc']:.4f}")
    labels = qlib.labels_for(a.n)
    refs = {}
    for steps in (a.rk4_steps, a.rk4_steps // 2):
        p = ref_path(a, steps)
        if os.path.exists(p):
            refs[steps] = np.load(p)
    ref = refs.get(a.rk4_steps)
    selfcons = None
    if ref is not None and a.rk4_steps // 2 in refs:
        r, ps = qlib.rmse_psnr(refs[a.rk4_steps // 2], ref)
        selfcons = dict(steps=a.rk4_steps, half=a.rk4_steps // 2, rmse=r, psnr=ps)
        log(f"RK4 self-consistency {a.rk4_steps // 2} vs {a.rk4_steps} steps: RMSE {r:.2e} PSNR {ps:.1f} dB "
            f"(RK4 error ~ RMSE/15 for the {a.rk4_steps}-step solution)")
    rows = []
    for s in a.samplers + a.convergence:
        p = os.path.join(d, fname(s) + ".npy")
        if not os.path.exists(p):
            log(f"missing {p}")
            continue
        x = np.load(p)
        info = sampler_info(s)
        row = dict(sampler=s, **info, ms_per_img=tms[s]["ms_per_img_median"] if s in tms else None,
                   gen_ms_per_img=gen[s]["ms_per_img"])
        if ref is not None:
            row["rmse"], row["psnr"] = qlib.rmse_psnr(x[:a.n_ref], ref)
        if len(x) == a.n:
            row.update(real.score(x, labels))
        rows.append(row)
        log(f"{s:9s} pred {info['pred']:2d} ref {info['ref']:2d} ms/img {row['ms_per_img'] or float('nan'):7.1f} "
            f"PSNR {row.get('psnr', float('nan')):6.2f} FD {row.get('fd', float('nan')):7.3f} "
            f"KID {row.get('kid', float('nan')):.5f} acc {row.get('acc', float('nan')):.4f}")
    meta = dict(cfg_scale=a.cfg, n=a.n, n_ref=a.n_ref, rk4_steps=a.rk4_steps, rk4_selfconsistency=selfcons,
                real_baseline=base, classifier_t10k_acc=real.acc, fingerprints=fp,
                sit_source=qlib.st_metadata(a.sit).get("source"), refiner_source=qlib.st_metadata(a.refiner).get("source"),
                timing=dict(cmd=timing["cmd"], threads=timing["threads"], cpu=timing["cpu"]) if timing else None,
                generate_threads=a.threads, generate_batch=a.batch, cpu=cpu_model())
    os.makedirs(a.results, exist_ok=True)
    json.dump(dict(meta=meta, rows=rows), open(os.path.join(a.results, "results.json"), "w"), indent=1)
    table = make_table(meta, rows)
    open(os.path.join(a.results, "table.md"), "w").write(table)
    print(table)
    plot(meta, rows, os.path.join(a.results, "quality_vs_cost.png"))


def fmt(v, f):
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, f)


def make_table(meta, rows):
    out = ["| sampler | steps | predictor calls | refiner calls | ms/img | RMSE | PSNR dB | FD | KID ×10³ | accuracy |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "fd" not in r:
            continue
        out.append(f"| {r['sampler']} | {r['steps']} | {r['pred']} | {r['ref']} | {fmt(r['ms_per_img'], '.1f')} | "
                   f"{fmt(r.get('rmse'), '.4f')} | {fmt(r.get('psnr'), '.2f')} | {fmt(r['fd'], '.3f')} | "
                   f"{fmt(r['kid'] * 1e3, '.3f')} | {fmt(r['acc'], '.3f')} |")
    b = meta["real_baseline"]
    out.append(f"| *real: train subset vs t10k* | | | | | | | {b['fd']:.3f} | {b['kid'] * 1e3:.3f} | {b['acc']:.3f} |")
    conv = [r for r in rows if "fd" not in r and "psnr" in r]
    if conv:
        out.append("")
        out.append("Engine convergence to the RK4 solution (first %d images): " % meta["n_ref"] +
                   ", ".join(f"{r['sampler']} PSNR {r['psnr']:.2f} dB (RMSE {r['rmse']:.2e})" for r in conv) + ".")
    sc = meta.get("rk4_selfconsistency")
    if sc:
        out.append("RK4 self-consistency: %d vs %d steps RMSE %.2e (PSNR %.1f dB)." %
                   (sc["half"], sc["steps"], sc["rmse"], sc["psnr"]))
    return "\n".join(out) + "\n"


def plot(meta, rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if "fd" in r and r.get("ms_per_img")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    style = {"euler": ("tab:gray", "s", "euler:N"), "heun": ("tab:blue", "o", "heun:N"),
             "flowturbo": ("tab:red", "^", "FlowTurbo H·P·R·"), "ablation": ("tab:orange", "v", "H·P·R0 (no refiner)")}
    for ax, key, ylabel in ((axes[0], "fd", "Fréchet distance (classifier features) ↓"),
                            (axes[1], "psnr", "PSNR vs RK4 solution, dB ↑")):
        for fam, (col, mk, lab) in style.items():
            rr = sorted([r for r in rows if r["family"] == fam and r.get(key) is not None], key=lambda r: r["ms_per_img"])
            if not rr:
                continue
            ax.plot([r["ms_per_img"] for r in rr], [r[key] for r in rr], marker=mk, color=col, label=lab,
                    linestyle="-" if fam in ("euler", "heun") else "none")
            for r in rr:
                ax.annotate(r["sampler"], (r["ms_per_img"], r[key]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        if key == "fd":
            ax.axhline(meta["real_baseline"]["fd"], color="k", linestyle=":",
                       label=f"real vs real (n={meta['n']})")
            ax.set_yscale("log")
        ax.set_xlabel("ms / image (engine, CPU, %s threads)" % (meta["timing"]["threads"] if meta["timing"] else "?"))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Fashion-MNIST SiT (depth 8, 2.5 M params) + refiner, CFG {meta['cfg_scale']:g}, "
                 f"n = {meta['n']} per sampler")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log(f"plot -> {path}")


# ---------------------------------------------------------------------------------------------------------------------

def cmd_cfg_sweep(a):
    import torch
    torch.set_num_threads(a.threads)
    clf = qlib.Classifier(a.classifier)
    real = qlib.RealReference(clf, cache_dir=a.work)
    base = real.real_baseline(a.sweep_n)
    d = os.path.join(a.work, f"cfg_sweep_{fingerprints(a)['sit']}")
    os.makedirs(d, exist_ok=True)
    rows = []
    for c in a.sweep_cfgs:
        p = os.path.join(d, f"{fname(a.sweep_sampler)}_cfg{c:g}_n{a.sweep_n}.npy")
        if not os.path.exists(p):
            secs, _ = engine_generate(a, a.sweep_sampler, a.sweep_n, p, cfg=c)
        r = dict(cfg=c, **real.score(np.load(p), qlib.labels_for(a.sweep_n)))
        rows.append(r)
        log(f"cfg {c:g}: FD {r['fd']:.3f} KID {r['kid']:.5f} acc {r['acc']:.4f}")
    res = dict(sampler=a.sweep_sampler, n=a.sweep_n, real_baseline=base, rows=rows, fingerprints=fingerprints(a))
    os.makedirs(a.results, exist_ok=True)
    json.dump(res, open(os.path.join(a.results, "cfg_sweep.json"), "w"), indent=1)
    log(f"real vs real n={a.sweep_n}: FD {base['fd']:.3f} KID {base['kid']:.5f} acc {base['acc']:.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["all", "cfg-sweep", "reference", "generate", "time", "report"])
    ap.add_argument("--sit", default=qlib.SIT)
    ap.add_argument("--refiner", default=qlib.REFINER)
    ap.add_argument("--classifier", default=qlib.CLASSIFIER)
    ap.add_argument("--cfg", type=float, default=2.0, help="guidance scale (default 2.0, see README)")
    ap.add_argument("-n", "--n", type=int, default=1000, help="samples per sampler for FD/KID/accuracy")
    ap.add_argument("--n-ref", type=int, default=100, help="images with an RK4 reference (PSNR)")
    ap.add_argument("--rk4-steps", type=int, default=64)
    ap.add_argument("--store-test-ref", action="store_true",
                    help="reference: also store the first 20 solutions as the regression test's PSNR reference")
    ap.add_argument("-t", "--threads", type=int, default=2, help="engine / torch threads")
    ap.add_argument("-b", "--batch", type=int, default=50, help="engine batch for the sample generation")
    ap.add_argument("--time-batch", type=int, default=32)
    ap.add_argument("--time-n", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--convergence", default=",".join(CONVERGENCE))
    ap.add_argument("--sweep-sampler", default="heun:8")
    ap.add_argument("--sweep-cfgs", default="1,1.5,2,3,4")
    ap.add_argument("--sweep-n", type=int, default=500)
    ap.add_argument("--work", default=os.path.join(REPO, "build/quality"))
    ap.add_argument("--results", default=HERE)
    a = ap.parse_args()
    a.samplers = [s for s in a.samplers.split(",") if s]
    a.convergence = [s for s in a.convergence.split(",") if s]
    a.sweep_cfgs = [float(c) for c in a.sweep_cfgs.split(",")]
    import torch
    torch.set_num_threads(a.threads)
    if a.command in ("all", "reference"):
        cmd_reference(a)
    if a.command in ("all", "generate"):
        cmd_generate(a)
    if a.command in ("all", "time"):
        cmd_time(a)
    if a.command in ("all", "report"):
        cmd_report(a)
    if a.command == "cfg-sweep":
        cmd_cfg_sweep(a)


if __name__ == "__main__":
    main()
