#!/usr/bin/python3
"""Checks behind tests/test_quality.c (the C test makes the samples with ft_generate and writes them as .npy into a
directory; this script compares them). Run with /usr/bin/python3.

  regress.py reference --dir D --cfg S --seed K --samplers a,b   engine samples D/<sampler>.npy (labels k % 10,
                                                                  noise seed K + k) vs tests/reference/reference.py's
                                                                  sample() from the same noise: relative L2 <= --tol
  regress.py metrics   --dir D --cfg S --n N --samplers a,b       class accuracy, FD (classifier features) and PSNR
                                                                  vs the stored RK4 solutions, against the thresholds
                                                                  in bench/quality/thresholds.json
  regress.py ranking   --dir D ... --ranking FT,HEUN              the order (FD and PSNR) of the pair stays as derived
  regress.py zero-refiner --out F                                 writes the shipped refiner with its final layer
                                                                  zeroed (r = 0: the refiner ablation at equal cost)
  regress.py ablation  --dir D --cfg S --n N --samplers FT        FT with the shipped refiner (D/FT.npy) against FT with
                                                                  the zeroed one (D/FT-zero.npy): on every metric the
                                                                  trained refiner won at derivation it must still win

FT_QUALITY_DERIVE=1 (metrics, ablation): instead of checking, write the measured numbers and the thresholds derived
from them (see derive(), derive_ablation()) into thresholds.json. Exit status: 0 pass, 1 fail, 77 torch missing, 78 data/models missing.
"""
import argparse
import json
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"SKIPPED: {e} (run with /usr/bin/python3, which has torch)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import qlib  # noqa: E402

torch.set_num_threads(int(os.environ.get("FT_QUALITY_TORCH_THREADS", "1")))
THRESHOLDS = os.path.join(HERE, "thresholds.json")
RK4_REF = os.path.join(HERE, "data", "rk4_ref.npy")
FD_REF_N = 2000  # class-balanced t10k subset used as the FD reference in the test (all 10 000 take ~13 s)


def fname(s):
    return s.replace(":", "")


def load_samples(d, sampler, n=None):
    x = np.load(os.path.join(d, fname(sampler) + ".npy"))
    if n is not None and len(x) != n:
        raise SystemExit(f"{sampler}: expected {n} samples, got {len(x)}")
    return x


def cmd_reference(a):
    import reference as R
    pw, pcfg = qlib.load_sit(a.sit)
    rw, rcfg = qlib.load_sit(a.refiner)
    worst = 0.0
    for s in a.samplers:
        x = load_samples(a.dir, s)
        n = len(x)
        noise = qlib.engine_noise(a.seed, n)
        labels = qlib.labels_for(n)
        with torch.no_grad():
            ref = R.sample(pw, pcfg, rw, rcfg, noise, labels, s, a.cfg).numpy()
        rel = float(np.linalg.norm((x - ref).ravel()) / np.linalg.norm(ref.ravel()))
        worst = max(worst, rel)
        print(f"{s}: engine vs reference.py rel L2 {rel:.3e} (n={n}, cfg {a.cfg:g}, tol {a.tol:g})")
    return 0 if worst <= a.tol else 1


def measure(a):
    clf = qlib.Classifier(a.classifier)
    real = qlib.RealReference(clf, ref_n=FD_REF_N, cache_dir=a.dir)
    labels = qlib.labels_for(a.n)
    rk4 = None
    if os.path.exists(RK4_REF):
        meta = json.load(open(os.path.splitext(RK4_REF)[0] + ".json"))
        if meta["sit_fingerprint"] != qlib.tensor_fingerprint(a.sit) or meta["cfg_scale"] != a.cfg:
            print(f"note: {RK4_REF} was made for another predictor or guidance scale; no PSNR check")
        else:
            rk4 = np.load(RK4_REF)
    out = {}
    for s in a.samplers:
        x = load_samples(a.dir, s, a.n)
        f, logits = clf.features_logits(qlib.quantize(x))
        mu, sig = qlib.stats(f)
        m = dict(acc=float((logits.argmax(1) == labels).mean()), fd=qlib.frechet(mu, sig, real.mu, real.sigma))
        if rk4 is not None:
            k = min(len(rk4), a.n)
            m["psnr"] = qlib.rmse_psnr(x[:k], rk4[:k])[1]
        out[s] = m
        print(f"{s}: n={a.n} accuracy {m['acc']:.4f} FD {m['fd']:.3f}"
              + (f" PSNR {m['psnr']:.2f} dB (first {k} images vs RK4)" if "psnr" in m else ""))
    return out


def spec_of(a):
    return dict(cfg=a.cfg, n=a.n, seed=a.seed, samplers=a.samplers, ranking=a.ranking,
                fd_ref="t10k balanced subset %d (seed 4321)" % FD_REF_N,
                psnr_ref="bench/quality/data/rk4_ref.npy (first images, RK4)")


def check_models(th):
    fp = {"sit": qlib.tensor_fingerprint(qlib.SIT), "refiner": qlib.tensor_fingerprint(qlib.REFINER),
          "classifier": qlib.tensor_fingerprint(qlib.CLASSIFIER)}
    if fp != th["fingerprints"]:
        print(f"the models changed since bench/quality/thresholds.json was derived ({fp} != {th['fingerprints']}): "
              "re-derive with FT_QUALITY_DERIVE=1 build/test_runner quality_ (see bench/quality/README.md)")
        return False
    return True


def derive(a, measured):
    """Thresholds from the measured (deterministic, fixed-seed) values: accuracy >= measured - 0.05 (5 points);
    FD <= 1.25 x measured + 2 (FD at this n is mostly the finite-sample bias; the margin absorbs thread-count /
    backend rounding and harmless engine changes, a broken sampler moves FD by far more); PSNR >= measured - 1 dB.
    The ranking pair keeps whatever order was measured."""
    th = dict(spec=spec_of(a), fingerprints={"sit": qlib.tensor_fingerprint(qlib.SIT),
                                             "refiner": qlib.tensor_fingerprint(qlib.REFINER),
                                             "classifier": qlib.tensor_fingerprint(qlib.CLASSIFIER)},
              measured=measured, derivation=derive.__doc__.strip(), thresholds={})
    for s, m in measured.items():
        t = dict(acc_min=round(m["acc"] - 0.05, 4), fd_max=round(1.25 * m["fd"] + 2.0, 3))
        if "psnr" in m:
            t["psnr_min"] = round(m["psnr"] - 1.0, 2)
        th["thresholds"][s] = t
    if a.ranking:
        ft, heun = a.ranking
        order = {}
        for key, better_high in (("fd", False), ("psnr", True)):
            if key in measured[ft]:
                ft_better = measured[ft][key] > measured[heun][key] if better_high else measured[ft][key] < measured[heun][key]
                order[key] = "flowturbo_better" if ft_better else "heun_better"
        th["ranking"] = dict(flowturbo=ft, heun=heun, order=order)
    json.dump(th, open(THRESHOLDS, "w"), indent=1)
    print(f"wrote {THRESHOLDS}")
    return 0


# A metric counts as won at derivation only by more than this (at n = 100 one image is 0.01 of accuracy, and FD
# moves by a few units with harmless last-bit changes): a guard on a near-tie would fail on noise.
WIN_MARGIN = {"psnr": 0.5, "fd": 5.0, "acc": 0.03}


def derive_ablation(a, measured):
    """The trained refiner against its zero ablation (same sampler, same samples): the metrics on which the trained
    refiner was better at derivation by more than WIN_MARGIN are recorded as 'won' and checked to stay won; the
    others are recorded only (the ablation is not a bound the product must keep losing)."""
    ft = a.samplers[0]
    t, z = measured[ft], measured[ft + "-zero"]
    won = [k for k, high in (("psnr", True), ("fd", False), ("acc", True)) if k in t and
           (t[k] - z[k] if high else z[k] - t[k]) > WIN_MARGIN[k]]
    th = json.load(open(THRESHOLDS))
    th["ablation"] = dict(sampler=ft, cfg=a.cfg, n=a.n, measured=dict(trained=t, zero=z), won=won,
                          derivation=derive_ablation.__doc__.strip())
    json.dump(th, open(THRESHOLDS, "w"), indent=1)
    print(f"wrote the ablation entry of {THRESHOLDS}: the trained refiner wins on {won or 'nothing'}")
    return 0


def cmd_ablation(a):
    ft = a.samplers[0]
    a.samplers = [ft, ft + "-zero"]
    measured = measure(a)
    if os.environ.get("FT_QUALITY_DERIVE") == "1":
        return derive_ablation(a, measured)
    th = json.load(open(THRESHOLDS)) if os.path.exists(THRESHOLDS) else {}
    ab = th.get("ablation")
    if not ab or (ab["sampler"], ab["cfg"], ab["n"]) != (ft, a.cfg, a.n):
        print(f"{THRESHOLDS} has no ablation entry for {ft} at cfg {a.cfg:g}, n {a.n}: derive it")
        return 1
    if not check_models(th):
        return 1
    if not ab["won"]:
        print("the trained refiner won on no metric at derivation: nothing to guard")
        return 1
    ok = True
    for k in ab["won"]:
        t, z = measured[ft][k], measured[ft + "-zero"][k]
        good = t > z if k != "fd" else t < z
        ok &= bool(good)
        print(f"  {k}: trained {t:.4f} vs zeroed {z:.4f} (derivation {ab['measured']['trained'][k]:.4f} vs "
              f"{ab['measured']['zero'][k]:.4f}): {'trained better, ok' if good else 'FAIL'}")
    for k in sorted(set(ab["measured"]["trained"]) - set(ab["won"])):
        print(f"  {k}: trained {measured[ft][k]:.4f} vs zeroed {measured[ft + '-zero'][k]:.4f} (not won at derivation; "
              "recorded only)")
    return 0 if ok else 1


def cmd_metrics(a):
    measured = measure(a)
    if os.environ.get("FT_QUALITY_DERIVE") == "1" and a.command == "metrics":
        return derive(a, measured)
    if not os.path.exists(THRESHOLDS):
        print(f"{THRESHOLDS} is missing: derive it (see bench/quality/README.md)")
        return 1
    th = json.load(open(THRESHOLDS))
    if th["spec"] != spec_of(a):
        print(f"the test's sample spec {spec_of(a)} differs from thresholds.json's {th['spec']}: re-derive")
        return 1
    if not check_models(th):
        return 1
    ok = True
    if a.command == "metrics":
        for s, m in measured.items():
            t = th["thresholds"][s]
            checks = [("acc", "accuracy", ">=", t["acc_min"]), ("fd", "FD", "<=", t["fd_max"])]
            if "psnr_min" in t:
                checks.append(("psnr", "PSNR", ">=", t["psnr_min"]))
            for key, name, op, lim in checks:
                v = m.get(key, float("nan"))
                good = v >= lim if op == ">=" else v <= lim
                ok &= bool(good)
                print(f"  {s} {name} {v:.4f} {op} {lim} (measured at derivation {th['measured'][s][key]:.4f}): "
                      f"{'ok' if good else 'FAIL'}")
    else:
        r = th["ranking"]
        for key, want in r["order"].items():
            f, h = measured[r["flowturbo"]][key], measured[r["heun"]][key]
            ft_better = f > h if key == "psnr" else f < h
            got = "flowturbo_better" if ft_better else "heun_better"
            ok &= got == want
            print(f"  ranking by {key}: {r['flowturbo']} {f:.4f} vs {r['heun']} {h:.4f} -> {got} "
                  f"(derivation: {r['flowturbo']} {th['measured'][r['flowturbo']][key]:.4f} vs "
                  f"{r['heun']} {th['measured'][r['heun']][key]:.4f}, {want}): {'ok' if got == want else 'FAIL'}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["reference", "metrics", "ranking", "zero-refiner", "ablation"])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--out", default=None, help="zero-refiner: the file to write")
    ap.add_argument("--cfg", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--samplers", default="")
    ap.add_argument("--ranking", default="", help="the FLOWTURBO,HEUN pair whose order the ranking check keeps")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--sit", default=qlib.SIT)
    ap.add_argument("--refiner", default=qlib.REFINER)
    ap.add_argument("--classifier", default=qlib.CLASSIFIER)
    a = ap.parse_args()
    a.samplers = [s for s in a.samplers.split(",") if s]
    a.ranking = [s for s in a.ranking.split(",") if s]
    if a.command == "zero-refiner":
        if not a.out:
            ap.error("zero-refiner needs --out")
        qlib.write_zero_refiner(a.refiner, a.out)
        print(f"wrote {a.out} ({a.refiner} with its final layer zeroed)")
        return 0
    if not a.dir or a.cfg is None or not a.samplers:
        ap.error(f"{a.command} needs --dir, --cfg and --samplers")
    if a.command == "reference":
        return cmd_reference(a)
    if not os.path.exists(a.classifier):
        print(f"SKIPPED: {a.classifier} is missing (weights_tool/fashion/run_all.sh exports it)")
        return 78
    if not qlib.have_data():
        print(f"SKIPPED: Fashion-MNIST is not installed in {qlib.DATA_DIR} (apt-get install dataset-fashion-mnist)")
        return 78
    return cmd_ablation(a) if a.command == "ablation" else cmd_metrics(a)


if __name__ == "__main__":
    sys.exit(main())
