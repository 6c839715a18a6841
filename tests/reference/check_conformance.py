"""Validates reference.py against the authors' own outputs in shared/conformance.

Runs every case of manifest.json (FlowTurbo sampler, released code semantics) and the VAE decoder of
vae_manifest.json, prints the relative L2 error per case, exits 0 when all are <= 1e-5 and the uint8 images match.

usage: /usr/bin/python3 tests/reference/check_conformance.py [--dir /work/shared/conformance]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402

TOL = 1e-5


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def load_state(path, key=None):
    ck = torch.load(path, map_location="cpu")
    if key is not None:
        ck = ck[key]
    return {k: v.float().contiguous() for k, v in ck.items()}


def sit_cfg(conf, w, role):
    D = conf["hidden"]
    p = conf["patch"]
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    C = conf["channels"]
    out_ch = w["final_layer.linear.weight"].shape[0] // (p * p)
    return {
        "role": role, "arch": "sit", "input_size": conf["input_size"], "in_channels": C, "out_channels": out_ch,
        "patch_size": p, "hidden_size": D, "depth": depth, "num_heads": conf["heads"],
        "mlp_ratio": w["blocks.0.mlp.fc1.weight"].shape[0] / D, "num_classes": conf["num_classes"],
        "learn_sigma": bool(conf["learn_sigma"]), "guided_channels": conf["guided_channels"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/work/shared/conformance")
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = args.dir
    ok = True

    man = json.load(open(os.path.join(d, "manifest.json")))
    conf = man["config"]
    pw = load_state(os.path.join(d, "predictor.pt"))
    rw = load_state(os.path.join(d, "refiner.pt"), "model")  # the released sampler loads "model", not "ema"
    pcfg = sit_cfg(conf, pw, "predictor")
    rcfg = sit_cfg(conf, rw, "refiner")
    assert pcfg["depth"] == conf["depth"] and rcfg["depth"] == 1
    assert man["null_class"] == conf["num_classes"]
    noise = torch.from_numpy(np.load(os.path.join(d, "noise.npy")))
    labels = torch.from_numpy(np.load(os.path.join(d, "labels.npy")))
    print("sampler cases (predictor depth %d, hidden %d, refiner from ckpt['model']):" % (pcfg["depth"], conf["hidden"]))
    for case in man["cases"]:
        want = np.load(os.path.join(d, "out_%s.npy" % case["name"]))
        stats = {}
        got = R.sample(pw, pcfg, rw, rcfg, noise, labels, case["sampler"], case["cfg_scale"], stats=stats)
        e = rel_l2(got.numpy(), want)
        rms = float(np.sqrt(np.mean(want.astype(np.float64) ** 2)))
        good = e <= TOL
        ok &= good
        print("  %-16s rel_l2 %.3e  rms %.4f (manifest %.4f)  nfe pred %d ref %d  %s"
              % (case["name"], e, rms, case["rms"], stats["predictor"], stats["refiner"], "ok" if good else "FAIL"))

    # negative controls (informational): the vectors must reject the plausible wrong readings
    case = man["cases"][1]
    want = np.load(os.path.join(d, "out_%s.npy" % case["name"]))
    ew = load_state(os.path.join(d, "refiner.pt"), "ema")
    e_g4 = rel_l2(R.sample(pw, pcfg, rw, rcfg, noise, labels, case["sampler"], case["cfg_scale"],
                           guided_channels=conf["channels"]).numpy(), want)
    e_ema = rel_l2(R.sample(pw, pcfg, ew, rcfg, noise, labels, case["sampler"], case["cfg_scale"]).numpy(), want)
    print("  negative controls on %s: all-channel CFG rel_l2 %.3e, ckpt['ema'] refiner rel_l2 %.3e (must be large)"
          % (case["name"], e_g4, e_ema))
    ok &= e_g4 > 1e-3 and e_ema > 1e-3

    vm = json.load(open(os.path.join(d, "vae_manifest.json")))
    sd = torch.load(os.path.join(d, "vae.ckpt"), map_location="cpu")["state_dict"]
    nb = len(vm["ch_mult"])
    vw = R.ldm_vae_to_diffusers(sd, nb)
    vcfg = {"latent_channels": vm["z_channels"], "out_channels": 3,
            "block_out_channels": [vm["ch"] * m for m in vm["ch_mult"]],
            "layers_per_block": vm["num_res_blocks"], "norm_num_groups": 32, "scaling_factor": vm["scaling_factor"]}
    lat = np.load(os.path.join(d, "vae_latents.npy"))
    img = R.vae_decode(vw, vcfg, lat)
    want_f = np.load(os.path.join(d, "vae_out_float.npy"))
    want_u = np.load(os.path.join(d, "vae_out_uint8.npy"))
    e = rel_l2(img.numpy(), want_f)
    u8 = R.to_uint8_nhwc(img).numpy()
    diff = np.abs(u8.astype(np.int32) - want_u.astype(np.int32))
    good = e <= TOL and diff.max() <= 1
    ok &= good
    print("vae decoder (%d tensors after renaming, block_out_channels %s):" % (len(vw), vcfg["block_out_channels"]))
    print("  float     rel_l2 %.3e  std %.4f (manifest %.4f)  %s" % (e, img.std().item(), vm["out_std"],
                                                                       "ok" if e <= TOL else "FAIL"))
    print("  uint8     exact %d/%d, max |diff| %d, mean %.4f (manifest %.4f)  %s"
          % (int((diff == 0).sum()), diff.size, int(diff.max()), u8.mean(), vm["uint8_mean"],
             "ok" if diff.max() <= 1 else "FAIL"))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
