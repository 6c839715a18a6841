"""Summarise a finished run: final losses, timings, export checks. Called by plot_loss.py (the last step of
run_all.sh). Writes <run>/summary.md; for the full run it also replaces the block between the RESULTS markers in
TRAINING.md and copies the loss plot and the exported-model sample grids next to TRAINING.md."""
import csv
import datetime as dt
import glob
import json
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = "<!-- RESULTS:BEGIN (written by summarize.py) -->"
END = "<!-- RESULTS:END -->"


def _rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _mean(rows, key, last=100):
    v = [float(r[key]) for r in rows[-last:] if r.get(key)]
    return sum(v) / len(v) if v else float("nan")


def _median(rows, key):
    v = sorted(float(r[key]) for r in rows if r.get(key))
    return v[len(v) // 2] if v else float("nan")


def _stage_times(run):
    """Stage start times from run_all*.log ('[ISO] stage' lines); earliest start over all attempts."""
    events = []
    for log in sorted(glob.glob(os.path.join(run, "run_all*.log"))):
        with open(log) as f:
            for line in f:
                m = re.match(r"^\[([^\]]+)\] (.*)$", line.strip())
                if m:
                    events.append((dt.datetime.fromisoformat(m.group(1)), m.group(2), os.path.basename(log)))
    return sorted(events)


def summarize(run, out_md=None, training_md=None, plot=None):
    c = _rows(os.path.join(run, "classifier_loss.csv"))
    p = _rows(os.path.join(run, "predictor_loss.csv"))
    r = _rows(os.path.join(run, "refiner_loss.csv"))
    rep_path = os.path.join(run, "export_report.json")
    rep = json.load(open(rep_path)) if os.path.exists(rep_path) else {}
    rv_path = os.path.join(run, "refiner_val.json")
    rv = json.load(open(rv_path)) if os.path.exists(rv_path) else {}
    ev = _stage_times(run)
    L = []
    L.append(f"Run directory: `{os.path.relpath(run, HERE)}`. Generated {dt.datetime.now().isoformat(timespec='seconds')}.")
    L.append("")
    if ev:
        t0, t1 = ev[0][0], ev[-1][0]
        L.append(f"Wall clock: first launch {t0.isoformat(timespec='seconds')}, last event "
                 f"{t1.isoformat(timespec='seconds')} ({(t1 - t0).total_seconds() / 3600:.2f} h, including restarts).")
        L.append("")
        L.append("| time (UTC) | event | log |")
        L.append("|---|---|---|")
        for t, e, lg in ev:
            L.append(f"| {t.isoformat(timespec='seconds')} | {e.split(' RUN=')[0]} | {lg} |")
        L.append("")
    L.append("| stage | steps | final loss (mean of last 100 steps) | median s/step | train wall (s) |")
    L.append("|---|---|---|---|---|")
    if c:
        te = [x for x in c if x["test_acc"]]
        L.append(f"| classifier | {c[-1]['step']} (epochs {int(c[-1]['epoch']) + 1}) | train CE {_mean(c, 'loss', 5):.4f} "
                 f"(last 5 logged 50-step means); test acc {float(te[-1]['test_acc']):.4f} | - | - |")
    if p:
        L.append(f"| predictor | {p[-1]['step']} | {_mean(p, 'loss'):.4f} | {_median(p, 'sec_per_step'):.2f} | "
                 f"{float(p[-1]['wall']):.0f} |")
    if r:
        L.append(f"| refiner | {r[-1]['step']} | {_mean(r, 'loss'):.3e} (zero refiner on the same batches: "
                 f"{_mean(r, 'base_loss'):.3e}) | {_median(r, 'sec_per_step'):.2f} | {float(r[-1]['wall']):.0f} |")
    L.append("")
    if rv:
        v = rv["val"]
        L.append(f"Refiner validation (same objective on t10k, 8 x 128, fixed seed): zero refiner {v['zero']:.3e}, "
                 f"raw {v['raw']:.3e}, EMA {v['ema']:.3e}; shipped: **{rv['choice']}** "
                 f"({100 * (1 - min(v['raw'], v['ema']) / v['zero']):.1f} % below the zero refiner).")
        L.append("")
    if rep:
        pr, rf = rep["predictor"], rep["refiner"]
        L.append(f"Export: predictor {pr['bytes']:,} B ({pr['params']:,} params, {pr['macs_per_sample'] / 1e6:.1f} "
                 f"MMAC/sample), refiner {rf['bytes']:,} B ({rf['params']:,} params, "
                 f"{rf['macs_per_sample'] / 1e6:.1f} MMAC/sample); together {rep['total_transformer_bytes']:,} B; "
                 f"MAC ratio {rep['mac_ratio']:.2f}. F16 rounding changes the outputs by at most "
                 f"{pr['max_abs_diff_vs_f32']:.1e} (predictor) / {rf['max_abs_diff_vs_f32']:.1e} (refiner).")
        cl = rep.get("classifier", {})
        if cl:
            L.append(f"Classifier: {cl['bytes']:,} B (F32), t10k accuracy {cl['test_acc']:.4f}.")
        L.append(f"Exported predictor, 50 Euler steps, 100 samples (10 per class): classifier agrees with the "
                 f"conditioning label for {rep.get('euler50_cfg1_class_acc', float('nan')):.2f} (CFG 1) and "
                 f"{rep.get('euler50_cfg2_class_acc', float('nan')):.2f} (CFG 2) of them.")
        L.append("")
    text = "\n".join(L) + "\n"
    with open(out_md or os.path.join(run, "summary.md"), "w") as f:
        f.write("# Run summary\n\n" + text)
    if training_md and os.path.exists(training_md):
        doc = open(training_md).read()
        if BEGIN in doc and END in doc:
            extra = ""
            for name in ("export_samples_cfg1.png", "export_samples_cfg2.png"):
                src = os.path.join(run, name)
                if os.path.exists(src):
                    dst = os.path.join(HERE, name.replace("export_", ""))
                    shutil.copyfile(src, dst)
                    extra += f"\n![{name}]({os.path.basename(dst)})\n"
            if plot and os.path.exists(plot):
                extra = f"\n![loss curves](loss.png)\n" + extra
            head, rest = doc.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            open(training_md, "w").write(head + BEGIN + "\n\n" + text + extra + "\n" + END + tail)
    return text
