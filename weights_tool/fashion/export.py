"""Export the trained Fashion-MNIST models to the engine format (weights_tool/FORMAT.md) and check the result.

Writes
  --sit        predictor  (role predictor, arch sit, EMA weights)           default host/models/fashion_sit.safetensors
  --refiner    refiner    (role refiner, arch sit, depth 1)                 default host/models/fashion_refiner.safetensors
  --classifier classifier (role classifier, arch fashion-cnn, F32) + .json  default bench/models/fashion_classifier.*
Transformer tensors are stored as --dtype (F16 by default: predictor + refiner must stay <= 8 MB).

Checks after writing (fails loudly): reload each file, rebuild the torch module from the reloaded (rounded)
tensors, compare against the F32 module on a fixed batch, assert predictor+refiner size <= 8 MB and predictor
forward MACs >= 6x refiner MACs, classifier test accuracy unchanged; writes a sample grid from the exported
predictor (Euler, 50 steps, CFG 1 and 2) next to --report.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import data  # noqa: E402
import safetensors_io as st  # noqa: E402
from common import build_model, euler_sample, setup_threads  # noqa: E402
from model import macs_per_sample  # noqa: E402
from train_classifier import ARCH, FashionCNN, evaluate  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))


# Fashion-MNIST label order (the dataset's documentation); the CLI labels its grids with them.
FASHION_CLASSES = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"


def sit_metadata(cfg, role, source):
    return {
        "flowturbo.format": "1",
        "role": role,
        "arch": "sit",
        "input_size": str(cfg["input_size"]),
        "in_channels": str(cfg["in_channels"]),
        "out_channels": str(cfg["in_channels"]),
        "patch_size": str(cfg["patch_size"]),
        "hidden_size": str(cfg["hidden_size"]),
        "depth": str(cfg["depth"]),
        "num_heads": str(cfg["num_heads"]),
        "mlp_ratio": str(float(cfg["mlp_ratio"])),
        "num_classes": str(cfg["num_classes"]),
        "learn_sigma": "false",
        "guided_channels": "1",
        "class_names": FASHION_CLASSES,
        "source": source,
    }


def export_sit(sd, cfg, role, path, dtype, source, extra_meta=None):
    tensors = {k: v.float() for k, v in sd.items()}
    st.save(path, tensors, dict(sit_metadata(cfg, role, source), **(extra_meta or {})), dtype=dtype)
    back, meta = st.load(path)
    assert set(back) == set(tensors), "tensor names changed"
    m32 = build_model(cfg)
    m32.load_state_dict(tensors)
    mq = build_model(cfg)
    mq.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    return m32.eval(), mq.eval(), os.path.getsize(path), meta


def refiner_source(rk):
    """The export's 'source' metadata: what was trained, how long (tests/test_quality.c reads the step count)."""
    a = rk["args"]
    if a.get("data"):  # cached teacher pairs (issue 12, refiner_data.py)
        spec = json.load(open(os.path.join(a["data"], "spec.json")))
        how = (f"{spec['kind']} kind, t{'+dt' if spec['t_of'] == 'end' else ''} ~ U{list(spec['t_range'])}, "
               f"dt ~ U{list(spec['dt_range'])}" + (f", guidance ~ U{list(spec['cfg_range'])}"
                                                      if spec["kind"] == "guided" else "")
               + f", {spec['n']} cached teacher pairs")
    else:
        how = f"algorithm.md 6.1, dt~U[0,{a['dt_max']})"
    return (f"flowturbo weights_tool/fashion: FlowTurbo velocity refiner ({how}) for fashion_sit, {rk['step']} steps "
            f"of batch {a['batch']}, {rk['which']} weights")


def export_refiner(rk, path, dtype):
    """refiner_final.pt -> engine file with metadata refiner_kind; returns (F32 module, reloaded module, size, meta)."""
    kind = rk.get("kind", "released")
    return export_sit(rk["weights"], rk["config"], "refiner", path, dtype, refiner_source(rk), {"refiner_kind": kind})


def main_refiner_only(args):
    """--refiner-only: export a variant's refiner_final.pt (issue 12 runs have no predictor / classifier of their
    own) and check that the F16 file reproduces the F32 weights."""
    rk = torch.load(os.path.join(args.run, "refiner_final.pt"), map_location="cpu")
    r32, rq, rsize, rmeta = export_refiner(rk, args.refiner, args.dtype)
    g = torch.Generator().manual_seed(123)
    x, v = torch.randn(32, 1, 32, 32, generator=g), torch.randn(32, 1, 32, 32, generator=g)
    t, y = torch.rand(32, generator=g), torch.randint(0, 11, (32,), generator=g)
    with torch.no_grad():
        dr = (r32(torch.cat([x, v], 1), t, y) - rq(torch.cat([x, v], 1), t, y)).abs().max().item()
    print(f"refiner ({rmeta['refiner_kind']}) -> {args.refiner}: {rsize} B, {args.dtype} max|diff| {dr:.2e}; "
          f"source: {rmeta['source']}", flush=True)


def predictor_source(pk):
    """The export's 'source' metadata: how the EMA weights were trained (tests/test_quality.c reads the step count)."""
    a, cfg = pk["args"], pk["config"]
    head = ("flowturbo weights_tool/fashion: SiT trained from scratch on Fashion-MNIST train (60k), 28x28 padded to "
            "32x32 with -1, x = pixel/127.5 - 1; linear flow matching")
    if not a.get("init"):
        return f"{head}, EMA weights after {pk['step']} steps of batch {a['batch']}; null class {cfg['num_classes']}"
    base = trained_steps_of(a["init"])  # issue 12: a continuation of an exported predictor
    t = (f"t = sigmoid({a['t_logit_normal'].replace(',', ' + ')} n) (logit-normal), U[0, 1) for a fraction "
         f"{a['t_uniform_frac']:g}" if a.get("t_logit_normal") else "t ~ U[0, 1)")
    return (f"{head}, EMA weights after {base + pk['step']} steps of batch {a['batch']} ({base} from scratch, then "
            f"{pk['step']} continued from {os.path.basename(a['init'])} with {t}, lr {a['lr']:g}); null class "
            f"{cfg['num_classes']}")


def trained_steps_of(path):
    import re
    _, meta = st.load(path)
    m = re.search(r"(\d+) steps", meta.get("source", ""))
    return int(m.group(1)) if m else 0


def main_predictor_only(args):
    """--predictor-only (issue 12, a continued predictor): export <run>/predictor_ema.pt to --sit and check that
    the F16 file reproduces the F32 EMA weights."""
    pk = torch.load(os.path.join(args.run, "predictor_ema.pt"), map_location="cpu")
    p32, pq, psize, pmeta = export_sit(pk["ema"], pk["config"], "predictor", args.sit, args.dtype,
                                       predictor_source(pk))
    g = torch.Generator().manual_seed(123)
    x, t, y = torch.randn(32, 1, 32, 32, generator=g), torch.rand(32, generator=g), torch.randint(0, 11, (32,), generator=g)
    with torch.no_grad():
        dp = (p32(x, t, y) - pq(x, t, y)).abs().max().item()
    print(f"predictor -> {args.sit}: {psize} B, {args.dtype} max|diff| {dp:.2e}; source: {pmeta['source']}",
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="run directory with predictor_ema.pt, refiner_final.pt, "
                                                 "classifier_final.pt")
    ap.add_argument("--sit", default=os.path.join(REPO, "host/models/fashion_sit.safetensors"))
    ap.add_argument("--refiner", default=os.path.join(REPO, "host/models/fashion_refiner.safetensors"))
    ap.add_argument("--classifier", default=os.path.join(REPO, "bench/models/fashion_classifier.safetensors"))
    ap.add_argument("--dtype", default="F16", choices=["F32", "F16", "BF16"])
    ap.add_argument("--report", default=None, help="JSON report path (default <run>/export_report.json)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--refiner-only", action="store_true", help="export only <run>/refiner_final.pt to --refiner")
    ap.add_argument("--predictor-only", action="store_true", help="export only <run>/predictor_ema.pt to --sit")
    args = ap.parse_args()
    setup_threads(args.threads)
    if args.refiner_only:
        return main_refiner_only(args)
    if args.predictor_only:
        return main_predictor_only(args)
    report = {}
    for p in (args.sit, args.refiner, args.classifier):
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)

    pk = torch.load(os.path.join(args.run, "predictor_ema.pt"), map_location="cpu")
    rk = torch.load(os.path.join(args.run, "refiner_final.pt"), map_location="cpu")
    pcfg, rcfg = pk["config"], rk["config"]
    p32, pq, psize, pmeta = export_sit(pk["ema"], pcfg, "predictor", args.sit, args.dtype, predictor_source(pk))
    r32, rq, rsize, rmeta = export_refiner(rk, args.refiner, args.dtype)

    g = torch.Generator().manual_seed(123)
    B = 32
    x = torch.randn(B, 1, 32, 32, generator=g)
    v = torch.randn(B, 1, 32, 32, generator=g)
    t = torch.rand(B, generator=g)
    y = torch.randint(0, pcfg["num_classes"] + 1, (B,), generator=g)
    with torch.no_grad():
        dp = (p32(x, t, y) - pq(x, t, y)).abs().max().item()
        dr = (r32(torch.cat([x, v], 1), t, y) - rq(torch.cat([x, v], 1), t, y)).abs().max().item()
    mp, mr = macs_per_sample(pcfg), macs_per_sample(rcfg)
    report.update(
        predictor=dict(path=args.sit, bytes=psize, params=sum(p.numel() for p in p32.parameters()),
                       macs_per_sample=mp, max_abs_diff_vs_f32=dp, metadata=pmeta),
        refiner=dict(path=args.refiner, bytes=rsize, params=sum(p.numel() for p in r32.parameters()),
                     macs_per_sample=mr, max_abs_diff_vs_f32=dr, metadata=rmeta, val=rk.get("val")),
        total_transformer_bytes=psize + rsize, mac_ratio=mp / mr)
    print(f"predictor {psize} B, refiner {rsize} B, total {psize + rsize} B; MAC ratio {mp / mr:.2f}; "
          f"{args.dtype} max|diff| predictor {dp:.2e} refiner {dr:.2e}", flush=True)
    assert psize + rsize <= 8 * 1000 * 1000, "predictor + refiner exceed 8 MB"
    assert mp >= 6 * mr, "predictor must cost >= 6x the refiner"

    # classifier
    ck = torch.load(os.path.join(args.run, "classifier_final.pt"), map_location="cpu")
    cnn = FashionCNN()
    cnn.load_state_dict(ck["model"])
    tensors = {k: v.float() for k, v in ck["model"].items()}
    cmeta = {"flowturbo.format": "1", "role": "classifier", "arch": "fashion-cnn", "num_classes": "10",
             "input_size": "32", "in_channels": "1", "feature_dim": "128", "feature_layer": "fc1_relu",
             "test_accuracy": f"{ck['test_acc']:.4f}", "arch_json": json.dumps(ARCH),
             "source": "flowturbo weights_tool/fashion/train_classifier.py, Fashion-MNIST train 60k"}
    st.save(args.classifier, tensors, cmeta, dtype="F32")
    back, _ = st.load(args.classifier)
    cq = FashionCNN()
    cq.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    x_te, y_te = data.load("t10k")
    acc = evaluate(cq, x_te, y_te)
    with torch.no_grad():
        feats = cq.eval().features(x_te[:16])
    side = os.path.splitext(args.classifier)[0] + ".json"
    with open(side, "w") as f:
        json.dump(dict(ARCH, file=os.path.basename(args.classifier), dtype="F32", test_accuracy=acc,
                       tensors={k: list(v.shape) for k, v in back.items()},
                       check_features_t10k_first2=feats[:2].tolist(),
                       check_logits_t10k_first2=cq.fc2(feats[:2]).tolist()), f, indent=1)
    report["classifier"] = dict(path=args.classifier, bytes=os.path.getsize(args.classifier), test_acc=acc,
                                json=side)
    print(f"classifier {os.path.getsize(args.classifier)} B, test acc (reloaded) {acc:.4f}", flush=True)
    assert abs(acc - ck["test_acc"]) < 1e-3

    # samples from the exported (rounded) predictor
    y_s = torch.arange(10).repeat_interleave(10)
    out_dir = os.path.dirname(args.report) if args.report else args.run
    for cfg_scale in (1.0, 2.0):
        xs = euler_sample(pq, y_s, steps=50, cfg_scale=cfg_scale, seed=7)
        data.save_grid_png(os.path.join(out_dir, f"export_samples_cfg{cfg_scale:g}.png"), xs, nrow=10)
        with torch.no_grad():
            pred = cq(xs).argmax(1)
        report[f"euler50_cfg{cfg_scale:g}_class_acc"] = (pred == y_s).float().mean().item()
        print(f"exported predictor, Euler 50, cfg {cfg_scale}: classifier agrees with the label on "
              f"{report[f'euler50_cfg{cfg_scale:g}_class_acc']:.3f} of 100 samples", flush=True)
    rp = args.report or os.path.join(args.run, "export_report.json")
    with open(rp, "w") as f:
        json.dump(report, f, indent=1, default=str)
    print(f"report -> {rp}", flush=True)


if __name__ == "__main__":
    main()
