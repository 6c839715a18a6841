#!/usr/bin/python3
"""PyTorch baseline for bench/vae_bench.c: the same SD-VAE decoder, written plainly with torch ops
(F.conv2d, F.group_norm, F.silu, F.interpolate, bmm + softmax), same engine weight file
(weights_tool/safetensors_io.py), same latents (ft_noise: Philox + Box-Muller, via
tests/reference/reference.py) and the same timing protocol (warm-up, then the median of repeats).

  /usr/bin/python3 bench/vae_torch.py -m VAE.safetensors [-t threads] [-n images] [-s latent_side]
                                      [-w warmup] [-r repeats] [--compare out.f32] [--compile]

--compare reads the raw float32 output of `vae_bench -o` (same -n/-s) and prints the relative L2 error of the
C decoder against this one.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "weights_tool"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
sys.path.insert(0, HERE)
import safetensors_io as st  # noqa: E402
import torch_side  # noqa: E402

EPS = 1e-6


def load(path):
    tensors, meta = st.load(path)
    w = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in tensors.items()}
    cfg = dict(latent_channels=int(meta["latent_channels"]), out_channels=int(meta["out_channels"]),
               block_out_channels=[int(x) for x in meta["block_out_channels"].split(",")],
               layers_per_block=int(meta["layers_per_block"]), groups=int(meta["norm_num_groups"]),
               scaling_factor=float(meta["scaling_factor"]))
    return w, cfg


class Decoder:
    def __init__(self, w, cfg):
        self.w, self.cfg = w, cfg
        self.g = cfg["groups"]

    def conv(self, x, name, pad):
        return F.conv2d(x, self.w[name + ".weight"], self.w[name + ".bias"], padding=pad)

    def norm(self, x, name):
        return F.group_norm(x, self.g, self.w[name + ".weight"], self.w[name + ".bias"], EPS)

    def resnet(self, x, pre):
        h = self.conv(F.silu(self.norm(x, pre + ".norm1")), pre + ".conv1", 1)
        h = self.conv(F.silu(self.norm(h, pre + ".norm2")), pre + ".conv2", 1)
        if pre + ".conv_shortcut.weight" in self.w:
            x = self.conv(x, pre + ".conv_shortcut", 0)
        return x + h

    def attention(self, x, pre):
        n, c, hh, ww = x.shape
        w = self.w
        t = self.norm(x, pre + ".group_norm").reshape(n, c, hh * ww).transpose(1, 2)
        q = F.linear(t, w[pre + ".to_q.weight"], w[pre + ".to_q.bias"])
        k = F.linear(t, w[pre + ".to_k.weight"], w[pre + ".to_k.bias"])
        v = F.linear(t, w[pre + ".to_v.weight"], w[pre + ".to_v.bias"])
        a = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * c ** -0.5, dim=-1)
        o = F.linear(torch.bmm(a, v), w[pre + ".to_out.0.weight"], w[pre + ".to_out.0.bias"])
        return o.transpose(1, 2).reshape(n, c, hh, ww) + x

    def __call__(self, z):
        cfg = self.cfg
        nb = len(cfg["block_out_channels"])
        h = self.conv(z / cfg["scaling_factor"], "post_quant_conv", 0)
        h = self.conv(h, "decoder.conv_in", 1)
        h = self.resnet(h, "decoder.mid_block.resnets.0")
        h = self.attention(h, "decoder.mid_block.attentions.0")
        h = self.resnet(h, "decoder.mid_block.resnets.1")
        for i in range(nb):
            for j in range(cfg["layers_per_block"] + 1):
                h = self.resnet(h, "decoder.up_blocks.%d.resnets.%d" % (i, j))
            if i < nb - 1:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                h = self.conv(h, "decoder.up_blocks.%d.upsamplers.0.conv" % i, 1)
        h = F.silu(self.norm(h, "decoder.conv_norm_out"))
        return self.conv(h, "decoder.conv_out", 1)


def latents(n, c, s, seed):
    try:
        import reference as R
        return torch.from_numpy(np.stack([R.philox_normal(seed + b, c * s * s) for b in range(n)])
                                .reshape(n, c, s, s).astype(np.float32))
    except Exception:  # any fixed normal latents time the same
        return torch.randn(n, c, s, s, generator=torch.Generator().manual_seed(seed))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", required=True)
    ap.add_argument("-t", type=int, default=0, help="threads (0: torch default)")
    ap.add_argument("-n", type=int, default=1)
    ap.add_argument("-s", type=int, default=32)
    ap.add_argument("-w", type=int, default=1)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("--compare")
    torch_side.add_args(ap)
    a = ap.parse_args()
    if a.t > 0:
        torch.set_num_threads(a.t)
    w, cfg = load(a.m)
    dec = torch_side.maybe_compile(Decoder(w, cfg).__call__, a.compile)
    z = latents(a.n, cfg["latent_channels"], a.s, 1234)
    S = a.s * 2 ** (len(cfg["block_out_channels"]) - 1)
    print("vae_torch: torch %s, %d threads, mkldnn %s, latent %dx%dx%d -> %dx%dx%d, batch %d"
          % (torch.__version__, torch.get_num_threads(), torch.backends.mkldnn.is_available(),
             cfg["latent_channels"], a.s, a.s, cfg["out_channels"], S, S, a.n))
    with torch.inference_mode():
        for _ in range(a.w):
            out = dec(z)
        ms, cms = [], []
        for r in range(a.r):
            t0, c0 = time.perf_counter(), time.process_time()
            out = dec(z)
            ms.append((time.perf_counter() - t0) * 1e3 / a.n)
            cms.append((time.process_time() - c0) * 1e3 / a.n)
            print("  repeat %d: %.1f ms/img (cpu %.1f ms/img)" % (r, ms[-1], cms[-1]), flush=True)
    print("median %.1f ms/img (min %.1f, max %.1f) over %d repeats; cpu median %.1f ms/img"
          % (statistics.median(ms), min(ms), max(ms), len(ms), statistics.median(cms)))
    print("torch side: " + json.dumps(torch_side.describe(a.compile)))
    if a.compare:
        c = np.fromfile(a.compare, dtype=np.float32)
        ref = out.numpy().reshape(-1).astype(np.float64)
        if c.size != ref.size:
            print("compare: %s has %d floats, expected %d" % (a.compare, c.size, ref.size))
            return 1
        err = np.linalg.norm(c - ref) / np.linalg.norm(ref)
        print("compare: C decoder vs torch rel L2 %.3g" % err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
