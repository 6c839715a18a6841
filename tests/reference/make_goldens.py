"""Writes the golden fixtures the C engine is tested against into tests/data/ (deterministic: torch.manual_seed).

Models (engine format, weights_tool/FORMAT.md, F32, random non-zero weights):
  sit_a.safetensors, sit_a_refiner.safetensors, sit_a_g4.safetensors, sit_b.safetensors, vae_tiny.safetensors,
  sit_a_refiner_guided.safetensors (refiner_kind "guided")
Fixtures:
  sit_a_forward / sit_a_refiner_forward / sit_b_forward .golden.safetensors   per-op intermediates of one forward
  sampler_a.golden.safetensors, sampler_b.golden.safetensors                 sampler end states
  sampler_c.golden.safetensors                  shifted time grids and the guided refiner kind (issue 12)
  vae_tiny_forward.golden.safetensors                                         decoder intermediates + uint8 image
  rng.golden.safetensors                                                      the engine's Philox noise

usage: /usr/bin/python3 tests/reference/make_goldens.py [--out tests/data]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "weights_tool"))
import reference as R  # noqa: E402
import safetensors_io  # noqa: E402

SOURCE = "make_goldens.py"


# ---------------------------------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------------------------------

def sit_cfg(role, input_size, in_channels, patch_size, hidden_size, depth, num_heads, mlp_ratio, num_classes,
            learn_sigma, guided_channels):
    return {
        "flowturbo.format": 1, "role": role, "arch": "sit", "input_size": input_size, "in_channels": in_channels,
        "out_channels": 2 * in_channels if learn_sigma else in_channels, "patch_size": patch_size,
        "hidden_size": hidden_size, "depth": depth, "num_heads": num_heads, "mlp_ratio": mlp_ratio,
        "num_classes": num_classes, "learn_sigma": learn_sigma, "guided_channels": guided_channels, "source": SOURCE,
    }


CFG_A = sit_cfg("predictor", 8, 4, 2, 32, 2, 4, 4.0, 5, True, 3)
CFG_A_REF = sit_cfg("refiner", 8, 4, 2, 32, 1, 4, 4.0, 5, True, 3)
CFG_A_G4 = dict(CFG_A, guided_channels=4)
CFG_B = sit_cfg("predictor", 12, 3, 4, 48, 3, 2, 2.5, 3, False, 3)
CFG_VAE = {
    "flowturbo.format": 1, "role": "vae", "arch": "sd-vae-decoder", "latent_channels": 4, "out_channels": 3,
    "block_out_channels": [16, 32, 32], "layers_per_block": 1, "norm_num_groups": 8, "scaling_factor": 0.18215,
    "source": SOURCE,
}

SAMPLER_A_CASES = [("H1P5R3", 4), ("H1P5R3", 1.5), ("H1P5R3", 1), ("H2P0R1", 4), ("H3P2R0", 1.5), ("H0P3R2", 4),
                   ("H2P1R2", 2), ("euler:6", 1), ("euler:6", 4), ("heun:3", 1), ("heun:3", 1.5)]
SAMPLER_A_G4_CASES = [("H1P5R3", 4), ("heun:3", 4)]
SAMPLER_B_CASES = [("euler:4", 1), ("heun:2", 3), ("H1P2R0", 2)]
# issue 12: shifted grids (every sampler family, released refiner) with sit_a + sit_a_refiner, and the guided refiner
# kind (one call per R step on the B guided rows) with sit_a + sit_a_refiner_guided, guided and unguided
SAMPLER_C_CASES = [("euler:6/s2", 4), ("heun:3/s1.5", 1.5), ("H1P5R3/s2", 4), ("H2P0R1/s3", 1), ("H1P3R2/s0.5", 2)]
SAMPLER_C_GUIDED_CASES = [("H1P5R3", 4), ("H2P0R2", 1.5), ("H1P2R3", 1), ("H0P3R2/s2", 3)]
CFG_A_REF_GUIDED = dict(CFG_A_REF, refiner_kind="guided")
RNG_SEEDS = [0, 1, 42, 4294967301]


def case_name(sampler, cfg):
    return "%s@%s" % (sampler, format(cfg, "g"))


# ---------------------------------------------------------------------------------------------------------------------
# random weights (all non-zero; scaled so that activations stay O(1))
# ---------------------------------------------------------------------------------------------------------------------

def _nrm(g, shape, std):
    return (torch.randn(*shape, generator=g) * std).float()


def random_sit(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    D = cfg["hidden_size"]
    p = cfg["patch_size"]
    C = cfg["in_channels"]
    cin = 2 * C if cfg["role"] == "refiner" else C
    Fh = int(D * cfg["mlp_ratio"])
    T = (cfg["input_size"] // p) ** 2
    out = p * p * cfg["out_channels"]
    w = {}
    w["pos_embed"] = _nrm(g, (1, T, D), 0.5)
    w["x_embedder.proj.weight"] = _nrm(g, (D, cin, p, p), 1.0 / (cin * p * p) ** 0.5)
    w["x_embedder.proj.bias"] = _nrm(g, (D,), 0.1)
    w["t_embedder.mlp.0.weight"] = _nrm(g, (D, 256), 1.5 / 128 ** 0.5)
    w["t_embedder.mlp.0.bias"] = _nrm(g, (D,), 0.1)
    w["t_embedder.mlp.2.weight"] = _nrm(g, (D, D), 1.0 / D ** 0.5)
    w["t_embedder.mlp.2.bias"] = _nrm(g, (D,), 0.1)
    w["y_embedder.embedding_table.weight"] = _nrm(g, (cfg["num_classes"] + 1, D), 1.0)
    for l in range(cfg["depth"]):
        pre = "blocks.%d." % l
        w[pre + "attn.qkv.weight"] = _nrm(g, (3 * D, D), 1.0 / D ** 0.5)
        w[pre + "attn.qkv.bias"] = _nrm(g, (3 * D,), 0.1)
        w[pre + "attn.proj.weight"] = _nrm(g, (D, D), 1.0 / D ** 0.5)
        w[pre + "attn.proj.bias"] = _nrm(g, (D,), 0.1)
        w[pre + "mlp.fc1.weight"] = _nrm(g, (Fh, D), 1.0 / D ** 0.5)
        w[pre + "mlp.fc1.bias"] = _nrm(g, (Fh,), 0.1)
        w[pre + "mlp.fc2.weight"] = _nrm(g, (D, Fh), 1.0 / Fh ** 0.5)
        w[pre + "mlp.fc2.bias"] = _nrm(g, (D,), 0.1)
        w[pre + "adaLN_modulation.1.weight"] = _nrm(g, (6 * D, D), 0.6 / D ** 0.5)
        w[pre + "adaLN_modulation.1.bias"] = _nrm(g, (6 * D,), 0.2)
    w["final_layer.linear.weight"] = _nrm(g, (out, D), 1.0 / D ** 0.5)
    w["final_layer.linear.bias"] = _nrm(g, (out,), 0.1)
    w["final_layer.adaLN_modulation.1.weight"] = _nrm(g, (2 * D, D), 0.6 / D ** 0.5)
    w["final_layer.adaLN_modulation.1.bias"] = _nrm(g, (2 * D,), 0.2)
    return w


def random_vae(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    L = cfg["latent_channels"]
    boc = cfg["block_out_channels"]
    rev = list(reversed(boc))
    w = {}

    def conv(name, cout, cin, k, gain=1.0):
        w[name + ".weight"] = _nrm(g, (cout, cin, k, k), gain / (cin * k * k) ** 0.5)
        w[name + ".bias"] = _nrm(g, (cout,), 0.1)

    def norm(name, c):
        w[name + ".weight"] = 1.0 + _nrm(g, (c,), 0.2)
        w[name + ".bias"] = _nrm(g, (c,), 0.2)

    def resnet(pre, cin, cout):
        norm(pre + ".norm1", cin)
        conv(pre + ".conv1", cout, cin, 3)
        norm(pre + ".norm2", cout)
        conv(pre + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(pre + ".conv_shortcut", cout, cin, 1)

    conv("post_quant_conv", L, L, 1, gain=0.5)
    c = rev[0]
    conv("decoder.conv_in", c, L, 3, gain=0.5)
    resnet("decoder.mid_block.resnets.0", c, c)
    norm("decoder.mid_block.attentions.0.group_norm", c)
    for nm in ("to_q", "to_k", "to_v", "to_out.0"):
        w["decoder.mid_block.attentions.0.%s.weight" % nm] = _nrm(g, (c, c), 1.0 / c ** 0.5)
        w["decoder.mid_block.attentions.0.%s.bias" % nm] = _nrm(g, (c,), 0.1)
    resnet("decoder.mid_block.resnets.1", c, c)
    for i, cout in enumerate(rev):
        for j in range(cfg["layers_per_block"] + 1):
            resnet("decoder.up_blocks.%d.resnets.%d" % (i, j), c, cout)
            c = cout
        if i < len(rev) - 1:
            conv("decoder.up_blocks.%d.upsamplers.0.conv" % i, c, c, 3)
    norm("decoder.conv_norm_out", c)
    conv("decoder.conv_out", cfg["out_channels"], c, 3, gain=1.0)
    return w


# ---------------------------------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------------------------------

def save(out_dir, name, tensors, meta, written):
    path = os.path.join(out_dir, name)
    safetensors_io.save(path, tensors, meta, dtype=None)
    written.append(path)
    return path


def forward_fixture(w, cfg, model_file, x, t, y, v=None):
    trace = {}
    with torch.no_grad():
        out = R.sit_forward(w, cfg, x, t, y, v=v, trace=trace)
    tensors = {"in.x": x}
    if v is not None:
        tensors["in.v"] = v
    tensors["in.t"] = t
    tensors["in.y"] = y.float()
    tensors.update(trace)
    assert torch.equal(tensors["out"], out)
    meta = {"model": model_file, "source": SOURCE}
    return tensors, meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(20240918)
    os.makedirs(args.out, exist_ok=True)
    written = []
    summary = []

    # ---- models -----------------------------------------------------------------------------------------------------
    wa = random_sit(CFG_A, 101)
    wr = random_sit(CFG_A_REF, 102)
    wb = random_sit(CFG_B, 103)
    wv = random_vae(CFG_VAE, 104)
    for name, w, cfg in [("sit_a.safetensors", wa, CFG_A), ("sit_a_refiner.safetensors", wr, CFG_A_REF),
                         ("sit_a_g4.safetensors", wa, CFG_A_G4), ("sit_b.safetensors", wb, CFG_B),
                         ("vae_tiny.safetensors", wv, CFG_VAE)]:
        assert all(bool((t != 0).all()) for t in w.values()), name
        save(args.out, name, w, R.cfg_to_metadata(cfg), written)

    # reload through the engine-format metadata so the fixtures are computed from exactly what was written
    def reload(name):
        t, meta = safetensors_io.load(os.path.join(args.out, name))
        return {k: torch.from_numpy(v) for k, v in t.items()}, R.cfg_from_metadata(meta)

    wa, ca = reload("sit_a.safetensors")
    wr, cr = reload("sit_a_refiner.safetensors")
    wa4, ca4 = reload("sit_a_g4.safetensors")
    wb, cb = reload("sit_b.safetensors")
    wv, cv = reload("vae_tiny.safetensors")

    # ---- forward fixtures -------------------------------------------------------------------------------------------
    g = torch.Generator().manual_seed(201)
    xa = torch.randn(3, 4, 8, 8, generator=g)
    ta = torch.tensor([0.0, 0.375, 1.0])
    ya = torch.tensor([2.0, 5.0, 0.0])  # 5 = null class
    tens, meta = forward_fixture(wa, ca, "sit_a.safetensors", xa, ta, ya)
    save(args.out, "sit_a_forward.golden.safetensors", tens, meta, written)
    summary.append("sit_a forward: out rms %.3f, block1.out rms %.3f" % (tens["out"].pow(2).mean().sqrt(),
                                                                      tens["block1.out"].pow(2).mean().sqrt()))

    xr = torch.randn(3, 4, 8, 8, generator=g)
    vr = torch.randn(3, 4, 8, 8, generator=g)
    tr = torch.tensor([1.0, 0.0, 0.6])
    yr = torch.tensor([5.0, 4.0, 1.0])
    tens, meta = forward_fixture(wr, cr, "sit_a_refiner.safetensors", xr, tr, yr, v=vr)
    save(args.out, "sit_a_refiner_forward.golden.safetensors", tens, meta, written)
    summary.append("sit_a_refiner forward: out rms %.3f" % tens["out"].pow(2).mean().sqrt())

    xb = torch.randn(3, 3, 12, 12, generator=g)
    tb = torch.tensor([0.0, 0.8, 1.0])
    yb = torch.tensor([1.0, 3.0, 0.0])  # 3 = null class
    tens, meta = forward_fixture(wb, cb, "sit_b.safetensors", xb, tb, yb)
    save(args.out, "sit_b_forward.golden.safetensors", tens, meta, written)
    summary.append("sit_b forward: out rms %.3f" % tens["out"].pow(2).mean().sqrt())

    # ---- sampler fixtures -------------------------------------------------------------------------------------------
    def run_cases(pw, pc, rw, rc, noise, labels, cases, prefix, tensors, meta):
        for sampler, cfg in cases:
            nm = case_name(sampler, cfg)
            st = {}
            with torch.no_grad():
                o = R.sample(pw, pc, rw, rc, noise, labels, sampler, float(cfg), stats=st)
                o1 = R.sample(pw, pc, rw, rc, noise[:1], labels[:1], sampler, float(cfg))
            tensors["out.%s%s" % (prefix, nm)] = o
            tensors["out1.%s%s" % (prefix, nm)] = o1
            meta["nfe.%s%s" % (prefix, nm)] = "%d,%d" % (st["predictor"], st["refiner"])
            summary.append("  %-18s rms %.3f  nfe predictor %d refiner %d  |out1 - out[:1]| %.1e"
                           % (prefix + nm, o.pow(2).mean().sqrt(), st["predictor"], st["refiner"],
                              (o1 - o[:1]).abs().max()))

    def sampler_golden(name, noise, labels, files, runs):
        """One sampler golden file: the noise, the labels and every run's cases (prefix -> metadata 'cases_<prefix>')
        with the model files named in the metadata."""
        tens = {"noise": noise, "labels": labels}
        meta = {("cases_" + prefix.rstrip(".")) if prefix else "cases": ",".join(case_name(s, c) for s, c in cases)
                for _, _, _, _, cases, prefix in runs}
        meta.update(files)
        meta["source"] = SOURCE
        summary.append(name.split(".")[0] + ":")
        for pw, pc, rw, rc, cases, prefix in runs:
            run_cases(pw, pc, rw, rc, noise, labels, cases, prefix, tens, meta)
        save(args.out, name, tens, meta, written)

    g = torch.Generator().manual_seed(301)
    noise_a = torch.randn(3, 4, 8, 8, generator=g)
    labels_a = torch.tensor([1.0, 4.0, 2.0])
    sampler_golden("sampler_a.golden.safetensors", noise_a, labels_a,
                   {"predictor": "sit_a.safetensors", "refiner": "sit_a_refiner.safetensors",
                    "predictor_g4": "sit_a_g4.safetensors"},
                   [(wa, ca, wr, cr, SAMPLER_A_CASES, ""), (wa4, ca4, wr, cr, SAMPLER_A_G4_CASES, "g4.")])
    noise_b = torch.randn(3, 3, 12, 12, generator=g)
    labels_b = torch.tensor([0.0, 2.0, 1.0])
    sampler_golden("sampler_b.golden.safetensors", noise_b, labels_b, {"predictor": "sit_b.safetensors"},
                   [(wb, cb, None, None, SAMPLER_B_CASES, "")])

    # ---- issue 12: shifted grids and the guided refiner kind (new files; the ones above are unchanged) ---------------
    wrg = random_sit(CFG_A_REF_GUIDED, 105)
    assert all(bool((t != 0).all()) for t in wrg.values())
    save(args.out, "sit_a_refiner_guided.safetensors", wrg, R.cfg_to_metadata(CFG_A_REF_GUIDED), written)
    wrg, crg = reload("sit_a_refiner_guided.safetensors")
    assert crg["refiner_kind"] == "guided"
    sampler_golden("sampler_c.golden.safetensors", noise_a, labels_a,
                   {"predictor": "sit_a.safetensors", "refiner": "sit_a_refiner.safetensors",
                    "refiner_guided": "sit_a_refiner_guided.safetensors"},
                   [(wa, ca, wr, cr, SAMPLER_C_CASES, ""), (wa, ca, wrg, crg, SAMPLER_C_GUIDED_CASES, "guided.")])

    # ---- VAE fixture ------------------------------------------------------------------------------------------------
    g = torch.Generator().manual_seed(401)
    lat = torch.randn(2, 4, 4, 4, generator=g)
    trace = {}
    with torch.no_grad():
        img = R.vae_decode(wv, cv, lat, trace=trace)
    rgb = R.to_uint8_nhwc(img)
    tens = {"in.latents": lat}
    tens.update(trace)
    tens["rgb8"] = rgb
    save(args.out, "vae_tiny_forward.golden.safetensors", tens, {"model": "vae_tiny.safetensors", "source": SOURCE},
         written)
    u = rgb.numpy()
    summary.append("vae_tiny: out std %.3f, rgb8 mean %.1f, clamped %.1f%% (0: %d, 255: %d)"
                   % (img.std(), u.mean(), 100.0 * np.mean((u == 0) | (u == 255)), int((u == 0).sum()),
                      int((u == 255).sum())))

    # ---- RNG fixture ------------------------------------------------------------------------------------------------
    tens = {"seed.%d" % s: torch.from_numpy(R.philox_normal(s, 4 * 8 * 8)) for s in RNG_SEEDS}
    save(args.out, "rng.golden.safetensors", tens,
         {"spec": "kernels/common/philox.h", "per_image": "256", "image_shape": "4,8,8",
          "seeds": ",".join(str(s) for s in RNG_SEEDS), "source": SOURCE}, written)
    summary.append("rng: seed.0[:4] = %s" % np.array2string(tens["seed.0"][:4].numpy(), precision=6))

    total = 0
    print("written:")
    for p in written:
        sz = os.path.getsize(p)
        total += sz
        print("  %-44s %9d bytes" % (os.path.relpath(p, ROOT), sz))
    print("  total %d bytes (%.2f MiB)" % (total, total / 2 ** 20))
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
