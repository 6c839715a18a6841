#!/usr/bin/python3
"""Fashion-MNIST quality vs cost of the engine's samplers (issue #5 parts 3-5). Run with /usr/bin/python3.

  quality.py all              everything below in order (reference, generate, time, report)
  quality.py cfg-sweep        FD / KID / accuracy of one sampler over guidance scales (the choice of --cfg)
  quality.py reference        high-accuracy solutions of the guided ODE: RK4 with --rk4-steps and half as many
  quality.py generate         engine samples (build/flowturbo generate) of every sampler, N images each
  quality.py time             ms/img of every sampler (build/quality/time_samplers, through ft_generate)
  quality.py report           metrics -> results.json, table.md, quality_vs_cost.png (in --results)
  quality.py refiner-ablation FlowTurbo with the trained refiner vs with r = 0, guided and unguided
  quality.py local-error      one Heun step vs two Euler half-steps from the exact solution, per t segment

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
HEUN = ["heun:3", "heun:4", "heun:5", "heun:6", "heun:8", "heun:12", "heun:32"]  # heun:32 ~ the exact ODE
FLOWTURBO = ["H1P3R2", "H1P5R3", "H2P4R2", "H1P7R3", "H2P6R3", "H3P6R3", "H2P10R4", "H4P8R4"]
# FlowTurbo without the refiner: pseudo-corrector blocks only (H1P8R0 / H2P9R0 have the grids of H1P5R3 / H2P6R3 with
# P blocks instead of R blocks; H1P4R0 / H1P6R0 cost about what H1P3R2 / H1P5R3 cost)
ABLATION = ["H1P4R0", "H1P6R0", "H1P8R0", "H2P9R0"]
SAMPLERS = EULER + HEUN + FLOWTURBO + ABLATION
CONVERGENCE = ["heun:64"]  # engine vs RK4 (first --n-ref images only)


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
        path = ref_path(a, steps)
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


def ref_path(a, steps, cfg=None):
    cfg = a.cfg if cfg is None else cfg
    return os.path.join(a.work, f"rk4_{steps}_cfg{cfg:g}_n{a.n_ref}_{fingerprints(a)['sit']}.npy")


def samples_dir(a):
    """Where `generate` keeps the table's samples (keyed by guidance, n and the models' fingerprints)."""
    fp = fingerprints(a)
    return os.path.join(a.work, f"samples_cfg{a.cfg:g}_n{a.n}_{fp['sit']}_{fp['refiner']}")


def cmd_generate(a):
    """--jobs processes of `flowturbo generate -t THREADS` at a time (1-thread processes side by side are robust on a
    shared VM, where a 2-thread OpenMP pool waits for its descheduled thread at every op)."""
    from concurrent.futures import ThreadPoolExecutor
    d = samples_dir(a)
    os.makedirs(d, exist_ok=True)
    gen_log = os.path.join(d, "generate.json")
    done = json.load(open(gen_log)) if os.path.exists(gen_log) else {}
    jobs = [(s, a.n) for s in a.samplers] + [(s, a.n_ref) for s in a.convergence]
    jobs = [(s, n) for s, n in jobs
            if not (os.path.exists(os.path.join(d, fname(s) + ".npy")) and s in done and done[s]["n"] == n)]
    jobs.sort(key=lambda j: -j[1] * (sampler_info(j[0])["pred"] + sampler_info(j[0])["ref"] / 7.76))  # longest first

    def one(job):
        s, n = job
        secs, cmd = engine_generate(a, s, n, os.path.join(d, fname(s) + ".npy"))
        log(f"{s}: {n} images in {secs:.1f} s ({1e3 * secs / n:.1f} ms/img, -t {a.threads} -b {a.batch})")
        return s, dict(n=n, seconds=secs, ms_per_img=1e3 * secs / n, threads=a.threads, batch=a.batch,
                       parallel_jobs=a.jobs, cmd=cmd)

    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        for s, rec in ex.map(one, jobs):
            done[s] = rec
            json.dump(done, open(gen_log, "w"), indent=1)
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
    fp = fingerprints(a)
    d = samples_dir(a)
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
    ablation = load_ablation(a, rows)
    table = make_table(meta, rows) + ablation_table(ablation)
    open(os.path.join(a.results, "table.md"), "w").write(table)
    print(table)
    plot(meta, rows, ablation, os.path.join(a.results, "quality_vs_cost.png"))


def load_ablation(a, rows):
    """refiner_ablation.json rows at the table's guidance scale, with the ms/img of the same sampler (a zeroed refiner
    costs what the trained one costs)."""
    p = os.path.join(a.results, "refiner_ablation.json")
    if not os.path.exists(p):
        return []
    ms = {r["sampler"]: r.get("ms_per_img") for r in rows}
    out = [dict(r, ms_per_img=ms.get(r["sampler"])) for r in json.load(open(p))["rows"]]
    return [r for r in out if r["refiner"] in ("trained", "zero")]


def ablation_table(ablation):
    if not ablation:
        return ""
    out = ["", "Refiner ablation (`quality.py refiner-ablation`): the same samplers with the refiner's final layer zeroed "
           "(r = 0, so every R step is an Euler step with the carried velocity; same cost).", "",
           "| sampler | guidance | refiner | PSNR dB | FD | KID | accuracy |", "|---|---:|---|---:|---:|---:|---:|"]
    for r in sorted(ablation, key=lambda r: (-r["cfg"], r["sampler"], r["refiner"])):
        out.append(f"| {r['sampler']} | {r['cfg']:g} | {r['refiner']} | {fmt(r.get('psnr'), '.2f')} | "
                   f"{fmt(r.get('fd'), '.3f')} | {fmt(r.get('kid'), '.2f')} | {fmt(r.get('acc'), '.3f')} |")
    return "\n".join(out) + "\n"


def fmt(v, f):
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, f)


def make_table(meta, rows):
    out = ["| sampler | steps | predictor calls | refiner calls | ms/img | RMSE | PSNR dB | FD | KID | accuracy |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "fd" not in r:
            continue
        out.append(f"| {r['sampler']} | {r['steps']} | {r['pred']} | {r['ref']} | {fmt(r['ms_per_img'], '.1f')} | "
                   f"{fmt(r.get('rmse'), '.4f')} | {fmt(r.get('psnr'), '.2f')} | {fmt(r['fd'], '.3f')} | "
                   f"{fmt(r['kid'], '.2f')} | {fmt(r['acc'], '.3f')} |")
    b = meta["real_baseline"]
    out.append(f"| *real: train subset vs t10k* | | | | | | | {b['fd']:.3f} | {b['kid']:.2f} | {b['acc']:.3f} |")
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


def plot(meta, rows, ablation, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if "fd" in r and r.get("ms_per_img")]
    off = [r for r in rows if r["ms_per_img"] > 250]  # heun:32, the near-exact solution, would squash the axis
    rows = [r for r in rows if r["ms_per_img"] <= 250]
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
        zr = [r for r in ablation if r["refiner"] == "zero" and r["cfg"] == meta["cfg_scale"]
              and r.get(key) is not None and r.get("ms_per_img")]
        if zr:
            ax.plot([r["ms_per_img"] for r in zr], [r[key] for r in zr], marker="^", color="tab:red",
                    markerfacecolor="none", linestyle="none", label="FlowTurbo, refiner zeroed (r = 0)")
        if key == "fd":
            ax.axhline(meta["real_baseline"]["fd"], color="k", linestyle=":",
                       label=f"real vs real (n={meta['n']}): {meta['real_baseline']['fd']:.2f}")
            ax.set_ylim(0, None)
        ax.set_xlabel("ms / image (engine, CPU, %s threads)" % (meta["timing"]["threads"] if meta["timing"] else "?"))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    note = "".join(f"; off scale: {r['sampler']} {r['ms_per_img']:.0f} ms, FD {r['fd']:.1f}, PSNR {r['psnr']:.1f} dB"
                   for r in off if r.get("psnr") is not None)
    fig.suptitle(f"Fashion-MNIST SiT (depth 8, 2.5 M params) + refiner, CFG {meta['cfg_scale']:g}, "
                 f"n = {meta['n']} per sampler{note}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log(f"plot -> {path}")


# ---------------------------------------------------------------------------------------------------------------------

def cmd_cfg_sweep(a):
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


def zero_refiner(a):
    """The trained refiner with its final linear layer zeroed: r = 0 exactly, so every R block reuses the cached
    velocity (an Euler step with the stale velocity); same file layout and cost."""
    sys.path.insert(0, os.path.join(REPO, "weights_tool"))
    import safetensors_io as st
    w, meta = qlib.st_load(a.refiner)
    for k in ("final_layer.linear.weight", "final_layer.linear.bias"):
        w[k] = np.zeros_like(w[k])
    meta = dict(meta, source="bench/quality: " + meta.get("source", "") + " -- final layer ZEROED (refiner ablation)")
    path = os.path.join(a.work, f"zero_refiner_{fingerprints(a)['refiner']}.safetensors")
    st.save(path, w, meta, dtype="F16")
    return path


def cmd_refiner_ablation(a):
    """FlowTurbo with the trained refiner vs the same sampler with r = 0 (zero_refiner), at --cfg (PSNR on --n-ref
    images, FD / KID / accuracy on --n) and without guidance (cfg 1: PSNR vs its own RK4 solution, --n-ref images)."""
    fp = fingerprints(a)
    zr = zero_refiner(a)
    d = os.path.join(a.work, f"refiner_ablation_{fp['sit']}_{fp['refiner']}")
    os.makedirs(d, exist_ok=True)
    samplers = a.ablation_samplers
    clf = qlib.Classifier(a.classifier)
    real = qlib.RealReference(clf, cache_dir=a.work)
    pw, pcfg = qlib.load_sit(a.sit)
    res = dict(cfg_scale=a.cfg, n=a.n, n_ref=a.n_ref, rk4_steps=a.rk4_steps, rows=[])
    for cfg, n in ((a.cfg, a.n), (1.0, a.n_ref)):
        rp = ref_path(a, a.rk4_steps, cfg)
        if not os.path.exists(rp):
            qlib.save_npy_f32(rp, qlib.rk4_solve(pw, pcfg, qlib.engine_noise(0, a.n_ref), qlib.labels_for(a.n_ref),
                                                 cfg, a.rk4_steps, log=log))
        ref = np.load(rp)
        for s in samplers:
            for which, rf in (("trained", a.refiner), ("zero", zr)):
                if cfg == a.cfg and which == "trained":
                    p = os.path.join(samples_dir(a), fname(s) + ".npy")
                else:
                    p = os.path.join(d, f"{fname(s)}_{which}_cfg{cfg:g}_n{n}.npy")
                    if not os.path.exists(p):
                        b = argparse.Namespace(**vars(a))
                        b.refiner = rf
                        engine_generate(b, s, n, p, cfg=cfg)
                x = np.load(p)[:n]
                row = dict(sampler=s, refiner=which, cfg=cfg)
                row["rmse"], row["psnr"] = qlib.rmse_psnr(x[:a.n_ref], ref)
                if n == a.n:
                    row.update(real.score(x, qlib.labels_for(n)))
                res["rows"].append(row)
                log(f"cfg {cfg:g} {s} {which} refiner: PSNR {row['psnr']:.2f}" +
                    (f" FD {row['fd']:.3f} KID {row['kid']:.2f} acc {row['acc']:.3f}" if "fd" in row else ""))
        if cfg != 1.0:
            continue
        for s in ("heun:4", "heun:8"):  # unguided baselines for the PSNR column
            p = os.path.join(d, f"{fname(s)}_cfg1_n{n}.npy")
            if not os.path.exists(p):
                engine_generate(a, s, n, p, cfg=1.0)
            row = dict(sampler=s, refiner="-", cfg=1.0)
            row["rmse"], row["psnr"] = qlib.rmse_psnr(np.load(p)[:a.n_ref], ref)
            res["rows"].append(row)
            log(f"cfg 1 {s}: PSNR {row['psnr']:.2f}")
    os.makedirs(a.results, exist_ok=True)
    json.dump(res, open(os.path.join(a.results, "refiner_ablation.json"), "w"), indent=1)


def cmd_local_error(a):
    """Where along t the error comes from: follow the RK4 solution (--rk4-steps) of --local-n images; from the exact
    state at each t_k = k/8 take ONE Heun step of h = 1/8 and, at the same cost (2 guided evaluations), TWO Euler steps
    of h/2, and compare both with the exact state at t_{k+1}. Also the relative rate of change of the guided velocity
    |dv/dt| / |v| along the solution. Written to local_error.json (guidance --cfg and 1)."""
    import torch
    torch.set_grad_enabled(False)
    pw, pcfg = qlib.load_sit(a.sit)
    n, segs = a.local_n, 8
    sub = a.rk4_steps // segs
    noise = torch.from_numpy(qlib.engine_noise(0, n)).double()
    y = torch.from_numpy(qlib.labels_for(n)).long()
    res = dict(n=n, segments=segs, rk4_steps=a.rk4_steps, fingerprints=fingerprints(a), rows=[])
    for cfg in (a.cfg, 1.0):
        v = qlib.guided_velocity(pw, pcfg, cfg)
        h, H = 1.0 / a.rk4_steps, 1.0 / segs
        x, states, dv = noise.clone(), [noise.clone()], []
        for i in range(a.rk4_steps):
            x, k1, k4 = qlib.rk4_step(v, x, i * h, h, y)
            dv.append(((k4 - k1).norm() / (h * k1.norm())).item())  # relative |dv/dt| over this fine step
            if (i + 1) % sub == 0:
                states.append(x.clone())
        for k in range(segs):
            x0, x1, t0 = states[k], states[k + 1], k * H
            d = v(x0, t0, y)
            e = v(x0 + H * d, t0 + H, y)
            heun = x0 + 0.5 * H * (d + e)
            xm = x0 + 0.5 * H * d
            euler2 = xm + 0.5 * H * v(xm, t0 + 0.5 * H, y)
            rms = lambda z: ((z - x1).pow(2).mean().sqrt()).item()
            row = dict(cfg=cfg, t0=t0, t1=t0 + H, heun_step_rmse=rms(heun), euler2_step_rmse=rms(euler2),
                       rel_dvdt_mean=float(np.mean(dv[k * sub:(k + 1) * sub])),
                       rel_dvdt_max=float(np.max(dv[k * sub:(k + 1) * sub])))
            res["rows"].append(row)
            log(f"cfg {cfg:g} t {t0:.3f}-{t0 + H:.3f}: one Heun step RMSE {row['heun_step_rmse']:.2e}, two Euler "
                f"half-steps {row['euler2_step_rmse']:.2e}; |dv/dt|/|v| mean {row['rel_dvdt_mean']:.2f} "
                f"max {row['rel_dvdt_max']:.2f}")
    os.makedirs(a.results, exist_ok=True)
    json.dump(res, open(os.path.join(a.results, "local_error.json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["all", "cfg-sweep", "reference", "generate", "time", "report",
                                        "refiner-ablation", "local-error"])
    ap.add_argument("--sit", default=qlib.SIT)
    ap.add_argument("--refiner", default=qlib.REFINER)
    ap.add_argument("--classifier", default=qlib.CLASSIFIER)
    ap.add_argument("--cfg", type=float, default=3.0, help="guidance scale (default 3.0: the FD minimum of cfg-sweep, see README)")
    ap.add_argument("-n", "--n", type=int, default=2000, help="samples per sampler for FD/KID/accuracy")
    ap.add_argument("--n-ref", type=int, default=100, help="images with an RK4 reference (PSNR)")
    ap.add_argument("--rk4-steps", type=int, default=128)
    ap.add_argument("--store-test-ref", action="store_true",
                    help="reference: also store the first 20 solutions as the regression test's PSNR reference")
    ap.add_argument("-t", "--threads", type=int, default=1, help="engine / torch threads")
    ap.add_argument("-b", "--batch", type=int, default=50, help="engine batch for the sample generation")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="generate: engine processes side by side")
    ap.add_argument("--time-batch", type=int, default=32)
    ap.add_argument("--time-n", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--convergence", default=",".join(CONVERGENCE))
    ap.add_argument("--sweep-sampler", default="heun:8")
    ap.add_argument("--sweep-cfgs", default="1,1.5,2,3,4")
    ap.add_argument("--sweep-n", type=int, default=500)
    ap.add_argument("--local-n", type=int, default=20, help="local-error: images")
    ap.add_argument("--ablation-samplers", default="H1P3R2,H1P5R3,H2P4R2,H2P6R3")
    ap.add_argument("--work", default=os.path.join(REPO, "build/quality"))
    ap.add_argument("--results", default=HERE)
    a = ap.parse_args()
    a.samplers = [s for s in a.samplers.split(",") if s]
    a.convergence = [s for s in a.convergence.split(",") if s]
    a.sweep_cfgs = [float(c) for c in a.sweep_cfgs.split(",")]
    a.ablation_samplers = [s for s in a.ablation_samplers.split(",") if s]
    import torch
    torch.set_num_threads(a.threads)  # every command's torch work (references, features) uses -t threads
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
    if a.command == "refiner-ablation":
        cmd_refiner_ablation(a)
    if a.command == "local-error":
        cmd_local_error(a)


if __name__ == "__main__":
    main()
