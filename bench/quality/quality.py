#!/usr/bin/python3
"""Fashion-MNIST quality vs cost of the engine's samplers (issue #5 parts 3-5, issue #12). Run with /usr/bin/python3.

  quality.py all              for every --cfgs scale: reference, generate, time, report; then plot
  quality.py reference        high-accuracy solutions of the guided ODE: RK4 with --rk4-steps and half as many
  quality.py generate         engine samples (build/flowturbo generate) of every sampler, N images each
  quality.py time             ms/img of every sampler (build/quality/time_samplers, through ft_generate), all samplers
                              of one guidance scale in ONE session, interleaved (round r times every sampler once)
  quality.py report           metrics -> results_<split>_cfg<S>.json and table_<split>_cfg<S>.md (in --results)
  quality.py plot             quality_vs_cost.png: FD and PSNR against ms/img, every sampler, one row per --cfgs
  quality.py grid             samples_cfg<S>.png: the first 20 images of each --grid-samplers sampler, one row each
  quality.py cfg-sweep        FD / KID / accuracy of one sampler over guidance scales (the choice of --cfg)
  quality.py local-error      one Heun step vs two Euler half-steps from the exact solution, per t segment

Samplers: euler:N, heun:N, H<a>P<b>R<c>, each optionally with a shifted time grid ('/s<F>', engine/sampler.h) and a
refiner tag ('+TAG'): the R blocks then use the refiner --refiners names TAG=FILE (TAG=zero:OTHER is OTHER's file
with the final layer zeroed, r = 0: the ablation at the same cost; the tag 'zero' alone is the zeroed --refiner).
Without a tag, --refiner.

Splits: --split test (the reported tables): image k uses engine noise seed k and label k % 10, FD / KID against all
10 000 t10k images; --split val (model and sampler selection, issue 12): noise seeds 1 000 000 + k, FD / KID against
the 5000 train images held out of refiner training (weights_tool/fashion/data.holdout_indices). The first --n-ref
images of a split are also solved with RK4 in PyTorch (tests/reference/reference.py's SiT forward and CFG combine)
for the trajectory error. FD / KID / accuracy use the penultimate features / logits of the Fashion-MNIST
classifier (bench/models/fashion_classifier.safetensors); the test split's real-vs-real line uses a class-balanced
train subset of the same size. Intermediate files go to --work (default build/quality, ignored by git); tables, plot
and JSON to --results (default bench/quality).
"""
import argparse
import copy
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
SEED_BASE = {"test": 0, "val": 1_000_000}

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


def fname(spec):
    return spec.replace(":", "").replace("/", "_").replace("+", "-")


def split_spec(spec):
    """'H2P4R2/s2+guided' -> ('H2P4R2/s2', 'guided'); no tag -> ''."""
    sampler, _, tag = spec.partition("+")
    return sampler, tag


def parse_refiners(a):
    """--refiners 'A=path,B=zero:A' -> {tag: spec}; '' is --refiner and 'zero' its zeroed copy unless given."""
    out = {"": a.refiner, "zero": "zero:"}
    for item in filter(None, a.refiners.split(",")):
        tag, _, path = item.partition("=")
        if not tag or not path:
            raise SystemExit(f"--refiners: '{item}' is not TAG=FILE")
        out[tag] = path
    return out


_RESOLVED = {}


def refiner_path(a, tag):
    """The refiner file of a tag (zeroed copies are written into --work once)."""
    if tag not in a.refiner_map:
        raise SystemExit(f"refiner tag '{tag}' is not in --refiners")
    spec = a.refiner_map[tag]
    if not spec.startswith("zero:"):
        return spec
    if tag not in _RESOLVED:
        _RESOLVED[tag] = zero_refiner(a, refiner_path(a, spec[len("zero:"):]))
    return _RESOLVED[tag]


def zero_refiner(a, path):
    """The refiner with its final linear layer zeroed (qlib.write_zero_refiner), written into --work once."""
    os.makedirs(a.work, exist_ok=True)
    out = os.path.join(a.work, f"zero_refiner_{qlib.file_hash(path)}.safetensors")  # metadata (kind) included
    return qlib.write_zero_refiner(path, out)


def refiner_kind(path):
    return qlib.st_metadata(path).get("refiner_kind", "released")


_MACS = {}


def macs(path):
    """Multiply-accumulates of one forward for one row (weights_tool/fashion/model.macs_per_sample)."""
    if path not in _MACS:
        sys.path.insert(0, os.path.join(REPO, "weights_tool", "fashion"))
        from model import macs_per_sample
        m = qlib.st_metadata(path)
        cfg = {k: int(m[k]) for k in ("hidden_size", "patch_size", "input_size", "in_channels", "depth")}
        cfg["mlp_ratio"] = float(m["mlp_ratio"])
        cfg["in_channels_scale"] = 2 if m.get("role") == "refiner" else 1
        _MACS[path] = macs_per_sample(cfg)
    return _MACS[path]


def sampler_info(a, spec, cfg=None):
    """Family, network calls (refiner calls by the tag's refiner kind) and MACs per image of one sampler spec."""
    import reference as R
    sampler, tag = split_spec(spec)
    kind, h, p, r = R.parse_sampler(sampler)
    shift = R.split_shift(sampler)[1]
    rows = 2 if (a.cfg if cfg is None else cfg) > 1.0 else 1
    if kind == "euler":
        return dict(family="euler", variant="", pred=h, ref=0, steps=h, shift=shift, mmac=h * rows * macs(a.sit) / 1e6)
    pred = 2 * h + p + (1 if h == 0 and p > 0 else 0)
    info = dict(pred=pred, ref=0, steps=h + p + r, shift=shift, variant="", refiner_kind="")
    mac = pred * rows * macs(a.sit)
    if r == 0:
        info["family"] = "heun" if p == 0 else "ablation"
    else:
        path = refiner_path(a, tag)
        rk = refiner_kind(path)
        info.update(family="flowturbo", variant=tag or "default", refiner_kind=rk,
                    ref=r if rk == "guided" else 2 * r)
        mac += info["ref"] * (1 if rk == "guided" else rows) * macs(path)
    info["mmac"] = mac / 1e6
    return info


def model_args(a, tag=""):
    return ["-m", a.sit, "--refiner", refiner_path(a, tag)]


def fingerprints(a):
    return {"sit": qlib.tensor_fingerprint(a.sit), "refiner": qlib.tensor_fingerprint(a.refiner)}


def sample_path(a, spec):
    """Samples of one spec: keyed by the refiner's tensor fingerprint, so new weights never reuse old samples."""
    import reference as R
    sampler, tag = split_spec(spec)
    key = qlib.tensor_fingerprint(refiner_path(a, tag)) if R.parse_sampler(sampler)[3] > 0 else "-"
    return os.path.join(samples_dir(a), f"{fname(spec)}_{key}.npy")


# ---------------------------------------------------------------------------------------------------------------------

def engine_generate(a, spec, n, out_path, cfg=None, threads=None):
    """build/flowturbo generate: n images, seed SEED_BASE[split], labels k % 10; returns the CLI's sampling seconds."""
    sampler, tag = split_spec(spec)
    cmd = [CLI, "generate"] + model_args(a, tag) + [
        "--sampler", sampler, "--cfg-scale", str(a.cfg if cfg is None else cfg), "--class", ",".join(map(str, range(10))),
        "-n", str(n), "-s", str(SEED_BASE[a.split]), "-b", str(a.batch), "-t", str(threads or a.threads),
        "--backend", "cpu", "--latents-out", out_path]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    m = re.search(r"sampling completed, taking ([0-9.]+)s", p.stderr)
    return float(m.group(1)) if m else float("nan"), " ".join(cmd)


def split_noise_labels(a, n):
    return qlib.engine_noise(SEED_BASE[a.split], n), qlib.labels_for(n)


def cmd_reference(a):
    pw, pcfg = qlib.load_sit(a.sit)
    noise, labels = split_noise_labels(a, a.n_ref)
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
    if a.store_test_ref and a.split == "test":
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
    split = "" if a.split == "test" else f"_{a.split}"
    return os.path.join(a.work, f"rk4_{steps}_cfg{cfg:g}_n{a.n_ref}{split}_{fingerprints(a)['sit']}.npy")


def samples_dir(a):
    """Where `generate` keeps a split's samples (keyed by guidance, n and the predictor's fingerprint)."""
    return os.path.join(a.work, f"samples_{a.split}_cfg{a.cfg:g}_n{a.n}_{fingerprints(a)['sit']}")


def cmd_generate(a):
    """--jobs processes of `flowturbo generate -t THREADS` at a time (1-thread processes side by side are robust on a
    shared VM, where a 2-thread OpenMP pool waits for its descheduled thread at every op)."""
    from concurrent.futures import ThreadPoolExecutor
    d = samples_dir(a)
    os.makedirs(d, exist_ok=True)
    gen_log = os.path.join(d, "generate.json")
    done = json.load(open(gen_log)) if os.path.exists(gen_log) else {}
    jobs = [(s, a.n) for s in a.samplers] + [(s, a.n_ref) for s in a.convergence]
    jobs = [(s, n) for s, n in jobs if not (os.path.exists(sample_path(a, s)) and s in done and done[s]["n"] == n)]
    jobs.sort(key=lambda j: -j[1] * sampler_info(a, j[0])["mmac"])  # longest first

    def one(job):
        s, n = job
        secs, cmd = engine_generate(a, s, n, sample_path(a, s))
        log(f"{s}: {n} images in {secs:.1f} s ({1e3 * secs / n:.1f} ms/img, -t {a.threads} -b {a.batch})")
        return s, dict(n=n, seconds=secs, ms_per_img=1e3 * secs / n, threads=a.threads, batch=a.batch,
                       parallel_jobs=a.jobs, cmd=cmd, file=os.path.basename(sample_path(a, s)))

    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        for s, rec in ex.map(one, jobs):
            done[s] = rec
            json.dump(done, open(gen_log, "w"), indent=1)
    return d


def build_timer():
    """Links build/quality/time_samplers against build/libflowturbo.a with the libraries `make` links the shared
    library with (LIB_LIBS: BLAS, and CUDA / cuDNN when configured)."""
    lib = os.path.join(REPO, "build/libflowturbo.a")
    src = os.path.join(HERE, "time_samplers.c")
    if os.path.exists(TIMER) and os.path.getmtime(TIMER) >= max(os.path.getmtime(lib), os.path.getmtime(src)):
        return
    os.makedirs(os.path.dirname(TIMER), exist_ok=True)
    libs = subprocess.run(["make", "-s", "--no-print-directory", "-C", REPO, "--eval",
                           "ft-print-libs: ; @echo $(LIB_LIBS)", "ft-print-libs"],
                          capture_output=True, text=True, check=True).stdout.split()
    cmd = ["gcc", "-std=c11", "-O2", "-fopenmp", "-D_DEFAULT_SOURCE", src, lib] + libs + ["-lpng", "-lz", "-o", TIMER]
    subprocess.run(cmd, check=True)


def timing_path(a):
    return os.path.join(a.work, f"timing_cfg{a.cfg:g}_t{a.threads}_b{a.time_batch}.json")


def cmd_time(a):
    build_timer()
    tags = sorted({split_spec(s)[1] for s in a.samplers} - {""})
    cmd = [TIMER, "-m", a.sit, "--refiner", refiner_path(a, "")]
    for t in tags:
        cmd += ["--refiner-as", f"{t}={refiner_path(a, t)}"]
    cmd += ["--cfg-scale", str(a.cfg), "-t", str(a.threads), "-b", str(a.time_batch), "-n", str(a.time_n),
            "--reps", str(a.reps)] + a.samplers
    log("timing: " + " ".join(cmd))
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit("time_samplers failed")
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    for r in rows:
        log(f"{r['sampler']}: {r['ms_per_img_median']:.1f} ms/img (min {r['ms_per_img_min']:.1f}, "
            f"CPU {r['cpu_ms_per_img_median']:.1f})")
    os.makedirs(a.work, exist_ok=True)
    json.dump(dict(cmd=" ".join(cmd), rows=rows, cpu=cpu_model(), threads=a.threads, wall_s=time.time() - t0,
                   started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)), load_before=os.getloadavg()),
              open(timing_path(a), "w"), indent=1)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return platform.processor()


# ---------------------------------------------------------------------------------------------------------------------

def results_path(a, ext="json", cfg=None):
    stem = "results" if ext == "json" else "table"
    return os.path.join(a.results, f"{stem}_{a.split}_cfg{a.cfg if cfg is None else cfg:g}.{ext}")


def cmd_report(a):
    d = samples_dir(a)
    gen = json.load(open(os.path.join(d, "generate.json")))
    timing = json.load(open(timing_path(a))) if os.path.exists(timing_path(a)) else None
    tms = {r["sampler"]: r for r in timing["rows"]} if timing else {}
    clf = qlib.Classifier(a.classifier)
    real = qlib.RealReference(clf, cache_dir=a.work, split="t10k" if a.split == "test" else "holdout")
    log(f"classifier accuracy on the {real.split} reference images: {real.acc:.4f}")
    base = None
    if a.split == "test":
        base = real.real_baseline(a.n)
        log(f"real vs real (train subset n={a.n} vs t10k): FD {base['fd']:.3f} KID {base['kid']:.5f} "
            f"acc {base['acc']:.4f}")
    labels = qlib.labels_for(a.n)
    refs = {steps: np.load(ref_path(a, steps)) for steps in (a.rk4_steps, a.rk4_steps // 2)
            if os.path.exists(ref_path(a, steps))}
    if a.rk4_file:  # another high-accuracy solution of the same noises (e.g. velocity_t1.py's final states)
        refs = {a.rk4_steps: np.load(a.rk4_file)[:a.n_ref]}
    ref = refs.get(a.rk4_steps)
    selfcons = None
    if ref is not None and a.rk4_steps // 2 in refs:
        r, ps = qlib.rmse_psnr(refs[a.rk4_steps // 2], ref)
        selfcons = dict(steps=a.rk4_steps, half=a.rk4_steps // 2, rmse=r, psnr=ps)
        log(f"RK4 self-consistency {a.rk4_steps // 2} vs {a.rk4_steps} steps: RMSE {r:.2e} PSNR {ps:.1f} dB")
    rows = []
    for s in a.samplers + a.convergence:
        p = sample_path(a, s)
        if not os.path.exists(p) or s not in gen:
            log(f"missing {p}")
            continue
        x = np.load(p)
        t = tms.get(s, {})
        row = dict(sampler=s, **sampler_info(a, s), ms_per_img=t.get("ms_per_img_median"),
                   cpu_ms_per_img=t.get("cpu_ms_per_img_median"), gen_ms_per_img=gen[s]["ms_per_img"])
        if ref is not None:
            row["rmse"], row["psnr"] = qlib.rmse_psnr(x[:a.n_ref], ref)
        if len(x) == a.n:
            row.update(real.score(x, labels))
        rows.append(row)
        log(f"{s:18s} pred {row['pred']:2d} ref {row['ref']:2d} ms/img {row['ms_per_img'] or float('nan'):7.1f} "
            f"PSNR {row.get('psnr', float('nan')):6.2f} FD {row.get('fd', float('nan')):7.3f} "
            f"KID {row.get('kid', float('nan')):.3f} acc {row.get('acc', float('nan')):.4f}")
    meta = dict(split=a.split, seed_base=SEED_BASE[a.split], fd_reference=real.describe, cfg_scale=a.cfg, n=a.n,
                n_ref=a.n_ref, rk4_steps=a.rk4_steps, rk4_file=a.rk4_file, rk4_selfconsistency=selfcons,
                real_baseline=base,
                classifier_reference_acc=real.acc, sit_fingerprint=fingerprints(a)["sit"],
                sit_source=qlib.st_metadata(a.sit).get("source"),
                refiners={t: dict(file=os.path.relpath(refiner_path(a, t), REPO) if os.path.isabs(refiner_path(a, t))
                                  else refiner_path(a, t), fingerprint=qlib.tensor_fingerprint(refiner_path(a, t)),
                                  kind=refiner_kind(refiner_path(a, t)),
                                  source=qlib.st_metadata(refiner_path(a, t)).get("source"))
                          for t in sorted({split_spec(s)[1] for s in a.samplers})},
                timing={k: timing[k] for k in ("cmd", "threads", "cpu", "started", "wall_s", "load_before")
                        if k in timing} if timing else None,
                generate_threads=a.threads, generate_batch=a.batch, cpu=cpu_model())
    os.makedirs(a.results, exist_ok=True)
    json.dump(dict(meta=meta, rows=rows), open(results_path(a), "w"), indent=1)
    table = make_table(meta, rows)
    open(results_path(a, "md"), "w").write(table)
    print(table)


def fmt(v, f):
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, f)


def make_table(meta, rows):
    out = ["| sampler | refiner | predictor calls | refiner calls | MMAC/img | ms/img | CPU ms/img | RMSE | PSNR dB | FD "
           "| KID | accuracy |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "fd" not in r:
            continue
        ref = f"{r['variant']} ({r['refiner_kind']})" if r.get("variant") else "–"
        out.append(f"| {split_spec(r['sampler'])[0]} | {ref} | {r['pred']} | {r['ref']} | {r['mmac']:.0f} | "
                   f"{fmt(r['ms_per_img'], '.1f')} | {fmt(r.get('cpu_ms_per_img'), '.1f')} | "
                   f"{fmt(r.get('rmse'), '.4f')} | {fmt(r.get('psnr'), '.2f')} | {fmt(r['fd'], '.3f')} | "
                   f"{fmt(r['kid'], '.2f')} | {fmt(r['acc'], '.3f')} |")
    b = meta.get("real_baseline")
    if b:
        out.append(f"| *real: train subset vs t10k* | | | | | | | | | {b['fd']:.3f} | {b['kid']:.2f} | {b['acc']:.3f} |")
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


PLOT_MAX_MS = 400  # the near-exact heun:32 would squash the axis; off-scale rows are listed in the title


_VARIANT_COLOURS = {"default": "tab:red", "zero": "black"}


def plot_style(r):
    """(group label, colour, marker, filled, joined by a line) of a result row."""
    shifted = r["shift"] != 1.0
    if r["family"] in ("euler", "heun"):
        col = "tab:gray" if r["family"] == "euler" else "tab:blue"
        if shifted:
            return f"{r['family']}:N/s{r['shift']:g}", col, "D", False, True
        return f"{r['family']}:N", col, "s" if r["family"] == "euler" else "o", True, True
    if r["family"] == "ablation":
        return "H·P·R0 (no refiner)", "tab:orange", "v", True, False
    cols = _VARIANT_COLOURS
    palette = ["tab:purple", "tab:green", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    v = r["variant"]
    if v not in cols:  # one colour per refiner tag, in order of appearance (no two tags share one)
        cols[v] = palette[(len(cols) - 2) % len(palette)]
    zero = v.startswith("zero")
    lab = f"H·P·R· + refiner {v}" + (f" (grid /s{r['shift']:g})" if shifted else "")
    return lab, cols[v], "^" if not shifted else ">", not zero, False


def cmd_plot(a):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cfgs = [c for c in a.cfgs if os.path.exists(results_path(a, cfg=c))]
    if not cfgs:
        raise SystemExit("no results to plot: run report first")
    fig, axes = plt.subplots(len(cfgs), 2, figsize=(15, 5.2 * len(cfgs)), squeeze=False)
    for row_axes, c in zip(axes, cfgs):
        res = json.load(open(results_path(a, cfg=c)))
        rows = [r for r in res["rows"] if "fd" in r and r.get("ms_per_img")]
        off = [r for r in rows if r["ms_per_img"] > PLOT_MAX_MS]
        rows = [r for r in rows if r["ms_per_img"] <= PLOT_MAX_MS]
        for ax, key, ylabel in ((row_axes[0], "fd", "Fréchet distance (classifier features) ↓"),
                                (row_axes[1], "psnr", "PSNR vs RK4 solution, dB ↑")):
            groups = {}
            for r in rows:
                if r.get(key) is not None:
                    groups.setdefault(plot_style(r), []).append(r)
            for (lab, col, mk, filled, line), rr in sorted(groups.items()):
                rr.sort(key=lambda r: r["ms_per_img"])
                ax.plot([r["ms_per_img"] for r in rr], [r[key] for r in rr], marker=mk, color=col, label=lab,
                        linestyle="-" if line else "none", markerfacecolor=col if filled else "none")
                for r in rr:
                    ax.annotate(split_spec(r["sampler"])[0], (r["ms_per_img"], r[key]), fontsize=6, xytext=(3, 2),
                                textcoords="offset points", color=col)
            if key == "fd" and res["meta"].get("real_baseline"):
                b = res["meta"]["real_baseline"]["fd"]
                ax.axhline(b, color="k", linestyle=":", label=f"real vs real (n={res['meta']['n']}): {b:.2f}")
            ax.set_xlabel(f"ms / image (engine, CPU, {res['meta']['timing']['threads']} thread, median, "
                          "interleaved, loaded machine)" if res["meta"].get("timing") else "ms / image")
            ax.set_ylabel(ylabel)
            ax.set_title(f"guidance {c:g}, n = {res['meta']['n']} per sampler"
                         + "".join(f"; off scale: {r['sampler']} {r['ms_per_img']:.0f} ms, FD {r['fd']:.1f}"
                                   for r in off), fontsize=9)
            ax.grid(alpha=0.3)
        row_axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("Fashion-MNIST SiT (depth 8, 2.5 M params) + refiner variants: quality against measured cost")
    fig.tight_layout()
    out = os.path.join(a.results, a.plot_name)
    fig.savefig(out, dpi=100)
    log(f"plot -> {out}")


def cmd_grid(a):
    """The first 20 test images (noise seeds 0..19, classes 0..9 twice) of every --grid-samplers sampler, one row
    each, cropped to 28x28 like a PNG of the sample."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    specs = a.grid_samplers or a.samplers
    k = 20
    imgs = []
    for s in specs:
        p = sample_path(a, s)
        if not os.path.exists(p):
            raise SystemExit(f"missing samples {p}: run generate for {s}")
        x = qlib.quantize(np.load(p)[:k])[:, 0, 2:30, 2:30]
        imgs.append(np.concatenate([np.pad(im, 1, constant_values=1.0) for im in x], axis=1))
    fig, ax = plt.subplots(figsize=(k * 0.6 + 2.2, len(specs) * 0.62 + 0.6))
    ax.imshow(np.concatenate(imgs, axis=0), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_yticks([30 * i + 15 for i in range(len(specs))])
    ax.set_yticklabels([s.replace("+", " + ") for s in specs], fontsize=8)
    ax.set_xticks([30 * i + 15 for i in range(k)])
    ax.set_xticklabels([qlib.CLASS_NAMES[i % 10].split("/")[0] for i in range(k)], fontsize=6, rotation=60)
    ax.set_title(f"guidance {a.cfg:g}: images 0..{k - 1} of the table (noise seed k, class k % 10), same noise "
                 "in every row", fontsize=8)
    fig.tight_layout()
    out = os.path.join(a.results, f"samples_cfg{a.cfg:g}.png")
    fig.savefig(out, dpi=110)
    log(f"grid -> {out}")


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
    ap.add_argument("command", choices=["all", "reference", "generate", "time", "report", "plot", "grid", "cfg-sweep",
                                        "local-error"])
    ap.add_argument("--sit", default=qlib.SIT)
    ap.add_argument("--refiner", default=qlib.REFINER)
    ap.add_argument("--refiners", default="", help="TAG=FILE[,TAG=zero:TAG2...]: refiners of SAMPLER+TAG specs")
    ap.add_argument("--classifier", default=qlib.CLASSIFIER)
    ap.add_argument("--split", choices=sorted(SEED_BASE), default="test")
    ap.add_argument("--cfg", type=float, default=3.0, help="guidance scale (default 3.0: the FD minimum of cfg-sweep, see README)")
    ap.add_argument("--cfgs", default=None, help="guidance scales for reference/generate/time/report/plot/all "
                                                 "(comma separated; default --cfg)")
    ap.add_argument("-n", "--n", type=int, default=2000, help="samples per sampler for FD/KID/accuracy")
    ap.add_argument("--n-ref", type=int, default=100, help="images with an RK4 reference (PSNR)")
    ap.add_argument("--rk4-steps", type=int, default=128)
    ap.add_argument("--rk4-file", default="", help="report: PSNR against this solution (.npy of the first --n-ref "
                                                   "images) instead of the RK4 file of --rk4-steps")
    ap.add_argument("--store-test-ref", action="store_true",
                    help="reference: also store the first 20 solutions as the regression test's PSNR reference")
    ap.add_argument("-t", "--threads", type=int, default=1, help="engine / torch threads")
    ap.add_argument("-b", "--batch", type=int, default=50, help="engine batch for the sample generation")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="generate: engine processes side by side")
    ap.add_argument("--time-batch", type=int, default=32)
    ap.add_argument("--time-n", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--plot-name", default="quality_vs_cost.png", help="plot: the figure's file name in --results")
    ap.add_argument("--grid-samplers", default="", help="grid: the rows (default --samplers)")
    ap.add_argument("--convergence", default=",".join(CONVERGENCE))
    ap.add_argument("--sweep-sampler", default="heun:8")
    ap.add_argument("--sweep-cfgs", default="1,1.5,2,3,4")
    ap.add_argument("--sweep-n", type=int, default=500)
    ap.add_argument("--local-n", type=int, default=20, help="local-error: images")
    ap.add_argument("--work", default=os.path.join(REPO, "build/quality"))
    ap.add_argument("--results", default=HERE)
    a = ap.parse_args()
    a.samplers = [s for s in a.samplers.split(",") if s]
    a.grid_samplers = [s for s in a.grid_samplers.split(",") if s]
    a.convergence = [s for s in a.convergence.split(",") if s]
    a.sweep_cfgs = [float(c) for c in a.sweep_cfgs.split(",")]
    a.cfgs = [float(c) for c in a.cfgs.split(",")] if a.cfgs else [a.cfg]
    a.refiner_map = parse_refiners(a)
    import torch
    torch.set_num_threads(a.threads)  # every command's torch work (references, features) uses -t threads
    steps = {"all": (cmd_reference, cmd_generate, cmd_time, cmd_report), "reference": (cmd_reference,),
             "generate": (cmd_generate,), "time": (cmd_time,), "report": (cmd_report,), "grid": (cmd_grid,)}
    for c in a.cfgs if a.command in steps else []:
        b = copy.copy(a)
        b.cfg = c
        for fn in steps[a.command]:
            fn(b)
    if a.command in ("all", "plot"):
        cmd_plot(a)
    if a.command == "cfg-sweep":
        cmd_cfg_sweep(a)
    if a.command == "local-error":
        cmd_local_error(a)


if __name__ == "__main__":
    main()
