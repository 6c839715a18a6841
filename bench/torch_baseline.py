#!/usr/bin/env python3
"""bench/torch_baseline.py — the same models and the same FlowTurbo sampler in
PyTorch, timed the same way on the same GPU, so every flowturbo-bench number
has a same-card ratio.

Models (own code, the official SiT/DiT and diffusers parameter names): SiT-XL/2
(hidden 1152, 28 blocks, 16 heads x 72, patch 2, 4x32x32 latents, learn_sigma),
the FlowTurbo velocity refiner (one XL block on [x, v], 8 input channels) and
the SD-VAE decoder. Weights: the bf16 files flowturbo-bench writes
(--weights-dir, same random init, loaded by name) when present, else PyTorch's
own random init of the same architecture.

Sampler (FlowTurbo models_assemble.py, as engine/plan.c): linspace(0, 1, N+1)
grid with the single step h = t[1] - t[0]; every call runs 2B rows (x twice,
labels then the null class); guidance s on channels 0..2 only; Heun blocks
carry the velocity at the Euler point, pseudo-corrector blocks reuse it,
refiner blocks compute d = w + R(x, w, t_i), e = d + R(x~, w, t_i+1), carry d.

Modes: eager under torch.autocast(bfloat16) and torch.compile of each network
(model-level compile; --compile-mode). Timing: CUDA events, warm-up, median of
--reps. Output: a markdown table and --json (schema shared with
flowturbo-bench: "network" and "samples" records with an "impl" field).

FID pipeline (as flowturbo-bench section 4; --no-fid skips it, --only-fid runs
it alone): per sampler and batch, images/s from noise (torch.randn on the
device) to uint8 NHWC images in host memory, the loop of the authors'
sample_ddp.py (sample, VAE decode, clamp(127.5 x + 128), permute, .cpu()),
over --fid-batches batches; the same with the npz written in the loop (the
batches kept, np.savez of arr_0 + labels at the end into a temporary file,
deleted); and the parts alone (medians): sampling, decode to uint8, the
device-to-host copy; peak device memory (GPU) or peak RSS (CPU).

--device cpu --tiny: the same pipeline on the CPU with the tiny models of
flowturbo-bench --preset tiny (a smoke test; no GPU needed).

  python3 bench/torch_baseline.py --json $OUT/torch.json [--batches 1,8,64]
      [--samplers heun:8,H1P5R3,H2P4R2,H8P9R5] [--compile-batches 8] [--budget 150]
  python3 bench/torch_baseline.py --device cpu --tiny --only-fid --batches 1,8 --reps 2
"""
import argparse
import json
import math
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------- models


def _sdpa(q, k, v):
    """softmax(q k^T / sqrt(d)) v, for a PyTorch without F.scaled_dot_product_attention (Debian 12's 1.13)."""
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


sdpa = getattr(F, "scaled_dot_product_attention", _sdpa)


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.H = H
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.H, D // self.H).permute(2, 0, 3, 1, 4)
        o = sdpa(q, k, v)
        return self.proj(o.transpose(1, 2).reshape(B, T, D))


class Mlp(nn.Module):
    def __init__(self, D, Fh):
        super().__init__()
        self.fc1 = nn.Linear(D, Fh)
        self.fc2 = nn.Linear(Fh, D)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, D, H, Fh):
        super().__init__()
        self.attn = Attention(D, H)
        self.mlp = Mlp(D, Fh)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))

    def forward(self, x, c):
        sm, cm, gm, sp, cp, gp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gm.unsqueeze(1) * self.attn(modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), sm, cm))
        return x + gp.unsqueeze(1) * self.mlp(modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), sp, cp))


class PatchEmbed(nn.Module):
    def __init__(self, cin, D, p):
        super().__init__()
        self.proj = nn.Conv2d(cin, D, p, stride=p)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, D):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))

    def forward(self, t):
        half = 128
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class LabelEmbedder(nn.Module):
    def __init__(self, n, D):
        super().__init__()
        self.embedding_table = nn.Embedding(n + 1, D)

    def forward(self, y):
        return self.embedding_table(y)


class FinalLayer(nn.Module):
    def __init__(self, D, out):
        super().__init__()
        self.linear = nn.Linear(D, out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(F.layer_norm(x, x.shape[-1:], eps=1e-6), shift, scale))


class SiT(nn.Module):
    def __init__(self, input_size=32, in_channels=4, cin=4, patch=2, D=1152, depth=28, H=16, mlp_ratio=4.0,
                 num_classes=1000, learn_sigma=True):
        super().__init__()
        self.C, self.p, self.S = in_channels, patch, input_size
        self.out = in_channels * (2 if learn_sigma else 1)
        T = (input_size // patch) ** 2
        self.x_embedder = PatchEmbed(cin, D, patch)
        self.t_embedder = TimestepEmbedder(D)
        self.y_embedder = LabelEmbedder(num_classes, D)
        self.pos_embed = nn.Parameter(torch.zeros(1, T, D), requires_grad=False)
        self.blocks = nn.ModuleList([Block(D, H, int(D * mlp_ratio)) for _ in range(depth)])
        self.final_layer = FinalLayer(D, patch * patch * self.out)

    def forward(self, x, t, y):
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for b in self.blocks:
            x = b(x, c)
        x = self.final_layer(x, c)
        N, p, g = x.shape[0], self.p, self.S // self.p
        x = x.reshape(N, g, g, p, p, self.out).permute(0, 5, 1, 3, 2, 4).reshape(N, self.out, self.S, self.S)
        return x[:, :self.C]


class Resnet(nn.Module):
    def __init__(self, cin, cout, G):
        super().__init__()
        self.norm1 = nn.GroupNorm(G, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(G, cout, eps=1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class VaeAttention(nn.Module):
    def __init__(self, C, G):
        super().__init__()
        self.group_norm = nn.GroupNorm(G, C, eps=1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)
        self.to_out = nn.ModuleList([nn.Linear(C, C)])

    def forward(self, x):
        N, C, Hh, W = x.shape
        h = self.group_norm(x).flatten(2).transpose(1, 2)
        o = sdpa(self.to_q(h)[:, None], self.to_k(h)[:, None], self.to_v(h)[:, None])[:, 0]
        return x + self.to_out[0](o).transpose(1, 2).reshape(N, C, Hh, W)


class Mid(nn.Module):
    def __init__(self, C, G):
        super().__init__()
        self.resnets = nn.ModuleList([Resnet(C, C, G), Resnet(C, C, G)])
        self.attentions = nn.ModuleList([VaeAttention(C, G)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Upsample(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.conv = nn.Conv2d(C, C, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpBlock(nn.Module):
    def __init__(self, cin, cout, n, G, up):
        super().__init__()
        self.resnets = nn.ModuleList([Resnet(cin if i == 0 else cout, cout, G) for i in range(n)])
        self.upsamplers = nn.ModuleList([Upsample(cout)]) if up else None

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        return self.upsamplers[0](x) if self.upsamplers is not None else x


class Decoder(nn.Module):
    def __init__(self, L=4, ch=(128, 256, 512, 512), layers=2, G=32, out=3):
        super().__init__()
        top = ch[-1]
        self.conv_in = nn.Conv2d(L, top, 3, padding=1)
        self.mid_block = Mid(top, G)
        rev = list(reversed(ch))
        self.up_blocks = nn.ModuleList(
            [UpBlock(rev[max(i - 1, 0)] if i else top, rev[i], layers + 1, G, i < len(ch) - 1) for i in range(len(ch))])
        self.conv_norm_out = nn.GroupNorm(G, ch[0], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[0], out, 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for u in self.up_blocks:
            x = u(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class VAE(nn.Module):
    def __init__(self, scaling_factor=0.18215, **kw):
        super().__init__()
        self.sf = scaling_factor
        self.post_quant_conv = nn.Conv2d(4, 4, 1)
        self.decoder = Decoder(**kw)

    def forward(self, z):
        if z.device.type == "cpu":  # CPU autocast's group_norm cannot mix bf16 and f32 (torch 1.13): f32 there
            with torch.autocast("cpu", enabled=False):
                img = self.decoder(self.post_quant_conv(z.float() / self.sf))
        else:
            img = self.decoder(self.post_quant_conv(z / self.sf))
        return ((img * 127.5 + 128).clamp(0, 255)).to(torch.uint8)


# ---------------------------------------------------------------------------- weights


def load_weights(model, path, what):
    """Loads a flowturbo engine file (same names) if present; returns a note."""
    if not path or not os.path.exists(path):
        return f"{what}: PyTorch random init (no {path})"
    try:
        from safetensors.torch import load_file
    except ImportError:
        return f"{what}: PyTorch random init (safetensors not installed)"
    sd = load_file(path)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    if missing or unexpected:
        return f"{what}: {path} loaded partially (missing {len(missing)}, unexpected {len(unexpected)})"
    return f"{what}: {path}"


# ---------------------------------------------------------------------------- sampler


def parse_sampler(s):
    m = re.fullmatch(r"heun:(\d+)", s)
    if m:
        return int(m.group(1)), 0, 0
    m = re.fullmatch(r"(?:H(\d+))?(?:P(\d+))?(?:R(\d+))?", s)
    if not m or not s:
        raise SystemExit(f"unknown sampler {s}")
    return tuple(int(g or 0) for g in m.groups())


class FlowTurbo:
    def __init__(self, pred, ref, vae, cfg_scale=1.5, guided=3):
        self.pred, self.ref, self.vae, self.s, self.g = pred, ref, vae, cfg_scale, guided

    def guide(self, raw):
        cond, unc = raw.chunk(2)
        gd = unc[:, :self.g] + self.s * (cond[:, :self.g] - unc[:, :self.g])
        return torch.cat([torch.cat([gd, cond[:, self.g:]], 1), torch.cat([gd, unc[:, self.g:]], 1)])

    def V(self, x, t, y):
        xx = torch.cat([x, x])
        return self.guide(self.pred(xx, torch.full((xx.shape[0],), t, device=x.device), y).float())

    def R(self, x, w, t, y):
        xx = torch.cat([torch.cat([x, x]), w.to(x.dtype)], 1)
        return self.guide(self.ref(xx, torch.full((xx.shape[0],), t, device=x.device), y).float())

    @torch.no_grad()
    def __call__(self, x, y, sampler, decode=False):
        nh, np_, nr = parse_sampler(sampler)
        n = nh + np_ + nr
        grid = torch.linspace(0, 1, n + 1).tolist()
        h = grid[1] - grid[0]
        B = x.shape[0]
        carry = None
        for k in range(n):
            ti, tn = grid[k], grid[k + 1]
            if k < nh + np_:
                d = carry if (k >= nh and carry is not None) else self.V(x, ti, y)
                xt = x + h * d[:B]
                e = self.V(xt, tn, y)
                x = x + h / 2 * (d[:B] + e[:B])
                carry = e
            else:
                w = carry
                d = w + self.R(x, w, ti, y)
                xt = x + h * d[:B]
                e = d + self.R(xt, w, tn, y)
                x = x + h / 2 * (d[:B] + e[:B])
                carry = d
        if decode:
            return self.vae(x)
        return x


# ---------------------------------------------------------------------------- timing


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"CPU: {line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return "CPU"


def dev_time(fn, reps, warmup, dev):
    """ms of fn, median of reps after warmup: CUDA events on a GPU, the wall clock on the CPU."""
    if dev.type != "cuda":
        for _ in range(warmup):
            fn()
        v = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            v.append((time.perf_counter() - t) * 1e3)
        return statistics.median(v)
    return cuda_time(fn, reps, warmup)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def to_uint8_nhwc(img):
    """The authors' sample_ddp.py: clamp(127.5 x + 128, 0, 255), NHWC, uint8 (VAE.forward did the clamp)."""
    return img.permute(0, 2, 3, 1)


def run_fid(impl, P, R, Vd, bs, samplers, args, dev, cfg, rows, autocast, flush, over):
    """The FID pipeline of flowturbo-bench section 4, the PyTorch way (one batch after the other)."""
    ft = FlowTurbo(P, R, Vd)
    C, S, ncls = cfg["C"], cfg["S"], cfg["classes"]
    for B in bs:
        for s in samplers:
            if over():
                return
            y = torch.cat([torch.arange(B, device=dev) % ncls, torch.full((B,), ncls, device=dev)])
            g = torch.Generator(device=dev).manual_seed(B)

            def sample():
                return ft(torch.randn(B, C, S, S, device=dev, generator=g), y, s)

            def batch():
                return to_uint8_nhwc(ft(torch.randn(B, C, S, S, device=dev, generator=g), y, s, decode=True)).cpu()

            with autocast(), torch.no_grad():
                warm = args.warmup + (2 if impl != "torch-eager" else 0)
                sample_ms = dev_time(sample, args.reps, warm, dev)
                lat = sample()
                decode_ms = dev_time(lambda: to_uint8_nhwc(Vd(lat)), args.reps, warm, dev)
                img = to_uint8_nhwc(Vd(lat)).contiguous()
                sync(dev)

                def copy():
                    img.cpu()
                    sync(dev)
                copy_ms = dev_time(copy, args.reps, args.warmup, dev)
                for _ in range(max(warm, 1)):
                    batch()
                sync(dev)
                t = time.perf_counter()
                for _ in range(args.fid_batches):
                    batch()
                e2e = time.perf_counter() - t
                fd, path = tempfile.mkstemp(suffix=".npz")
                os.close(fd)
                t = time.perf_counter()
                kept = [batch().numpy() for _ in range(args.fid_batches)]
                np.savez(path, arr_0=np.concatenate(kept), labels=np.arange(B * args.fid_batches) % ncls)
                npz = time.perf_counter() - t
                os.remove(path)
            n = B * args.fid_batches
            peak = (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda"
                    else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            rows.append({"impl": impl, "sampler": s, "backend": dev.type, "batch": B, "batches": args.fid_batches,
                         "img_per_s": n / e2e, "img_per_s_npz": n / npz, "sample_ms_per_batch": sample_ms,
                         "decode_ms_per_batch": decode_ms, "copy_ms_per_batch": copy_ms,
                         ("peak_device_mib" if dev.type == "cuda" else "peak_rss_mib"): peak})
            print(f"  fid {impl} {s} batch {B}: {n / e2e:.1f} img/s, {n / npz:.1f} img/s with the npz "
                  f"(sample {sample_ms:.2f}, decode {decode_ms:.2f}, copy {copy_ms:.3f} ms/batch)", file=sys.stderr)
            flush()


def cuda_time(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    v = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        v.append(a.elapsed_time(b))
    return statistics.median(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--samplers", default="heun:8,H1P5R3,H2P4R2,H8P9R5")
    ap.add_argument("--compile-batches", default="8", help="batches timed under torch.compile ('' = none)")
    ap.add_argument("--compile-mode", default="default")
    ap.add_argument("--compile-vae", action="store_true", help="also compile the VAE (slow to compile)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--weights-dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "flowturbo-bench"))
    ap.add_argument("--no-vae", action="store_true")
    ap.add_argument("--budget", type=float, default=0, help="seconds; later measurements are skipped")
    ap.add_argument("--json", default="")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: the same pipeline on the CPU (bf16 autocast), e.g. with --tiny as a smoke test")
    ap.add_argument("--tiny", action="store_true", help="the tiny models of flowturbo-bench --preset tiny")
    ap.add_argument("--dtype", default="auto", choices=["auto", "bf16", "f32"],
                    help="auto: bf16 autocast on the GPU, f32 on the CPU (as flowturbo's CPU backend; CPU bf16 is slow)")
    ap.add_argument("--fid-batches", type=int, default=8, help="batches per timed FID-pipeline run")
    ap.add_argument("--fid-samplers", default="", help="samplers of the FID pipeline (default: --samplers)")
    ap.add_argument("--no-fid", action="store_true", help="skip the FID pipeline")
    ap.add_argument("--only-fid", action="store_true", help="run the FID pipeline only")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("torch_baseline: no CUDA device (--device cpu runs on the CPU)", file=sys.stderr)
        return 3
    t0 = time.time()
    over = lambda: args.budget > 0 and time.time() - t0 > args.budget
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device(args.device)
    bf16 = args.dtype == "bf16" or (args.dtype == "auto" and dev.type == "cuda")
    autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)
    batches = [int(b) for b in args.batches.split(",") if b]
    cbatches = [int(b) for b in args.compile_batches.split(",") if b]
    samplers = [s for s in args.samplers.split(",") if s]
    fid_samplers = [s for s in (args.fid_samplers or args.samplers).split(",") if s]

    notes = []
    if args.tiny:  # bench/flowturbo_bench.c ensure_models, --preset tiny
        sit = dict(input_size=16, in_channels=4, cin=4, patch=2, D=144, depth=2, H=2, num_classes=10)
        pred, ref = SiT(**sit).eval(), SiT(**{**sit, "cin": 8, "depth": 1}).eval()
        vae = VAE(ch=(16, 32), layers=1, G=8).eval()
        cfg, names = dict(C=4, S=16, classes=10), ("tiny-pred", "tiny-ref", "tiny-vae")
    else:
        pred, ref, vae = SiT().eval(), SiT(cin=8, depth=1).eval(), VAE().eval()
        cfg, names = dict(C=4, S=32, classes=1000), ("xl2-pred", "xl2-ref", "sd-vae")
    pred, ref, vae = pred.to(dev), ref.to(dev), vae.to(dev)
    for m, n, what in zip((pred, ref, vae), names, ("predictor", "refiner", "vae")):
        notes.append(load_weights(m, os.path.join(args.weights_dir, n + ".safetensors"), what))
    for n in notes:
        print(n, file=sys.stderr)

    net, smp, fid = [], [], []
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(0)
        device = dict(name=p.name, sms=p.multi_processor_count, memory_mib=p.total_memory / 2**20)
    else:
        device = dict(name=cpu_name())

    def flush():
        """Writes the JSON with what is measured so far (a killed run keeps it)."""
        if not args.json:
            return
        out = dict(tool="torch_baseline", torch=torch.__version__,
                   device=device,
                   config=dict(dtype="bf16 autocast" if bf16 else "f32", reps=args.reps, warmup=args.warmup, cfg_scale=1.5,
                               weights=notes, compile_mode=args.compile_mode),
                   peak_device_mib=torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None,
                   network=net, samples=smp, fid_pipeline=fid,
                   elapsed_s=time.time() - t0, budget_hit=over())
        tmp = os.path.join(tempfile.gettempdir(), f"torch_baseline.{os.getpid()}.json")
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        shutil.copyfile(tmp, args.json)
        os.remove(tmp)

    def run_mode(impl, P, R, Vd, bs, with_vae):
        ft = FlowTurbo(P, R, Vd)
        for B in bs:
            if over():
                return
            g = torch.Generator(device=dev).manual_seed(B)
            x = torch.randn(B, cfg["C"], cfg["S"], cfg["S"], device=dev, generator=g)
            y = torch.cat([torch.arange(B, device=dev) % cfg["classes"], torch.full((B,), cfg["classes"], device=dev)])
            xx, tt = torch.cat([x, x]), torch.full((2 * B,), 0.3, device=dev)
            with autocast(), torch.no_grad():
                ms = dev_time(lambda: P(xx, tt, y), args.reps, args.warmup + (2 if impl != "torch-eager" else 0), dev)
                net.append(dict(impl=impl, model="predictor", batch=B, rows=2 * B, ms=ms, ms_per_img=ms / B))
                w = torch.randn(2 * B, cfg["C"], cfg["S"], cfg["S"], device=dev)
                xr = torch.cat([xx, w], 1)
                ms = dev_time(lambda: R(xr, tt, y), args.reps, args.warmup + (2 if impl != "torch-eager" else 0), dev)
                net.append(dict(impl=impl, model="refiner", batch=B, rows=2 * B, ms=ms, ms_per_img=ms / B))
                if with_vae:
                    ms = dev_time(lambda: Vd(x), args.reps, args.warmup + (2 if impl != "torch-eager" else 0), dev)
                    net.append(dict(impl=impl, model="vae", batch=B, rows=B, ms=ms, ms_per_img=ms / B))
                flush()
                print(f"  {impl} batch {B}: " + ", ".join(f"{r['model']} {r['ms']:.3f} ms" for r in net
                                                         if r["impl"] == impl and r["batch"] == B), file=sys.stderr)
                for s in samplers:
                    for decode in ([False, True] if with_vae else [False]):
                        if over():
                            return
                        ms = dev_time(lambda: ft(x, y, s, decode), args.reps, args.warmup, dev)
                        smp.append(dict(impl=impl, sampler=s, batch=B, graphs=False, decode=decode, ms_per_batch=ms,
                                        ms_per_img=ms / B, img_per_s=1e3 * B / ms))
                        print(f"  {impl} {s} batch {B}{' +decode' if decode else ''}: {ms / B:.3f} ms/img",
                              file=sys.stderr)
                        flush()

    do_fid = not args.no_fid and not args.no_vae
    print(f"torch eager ({'bf16 autocast' if bf16 else 'f32'}, {dev.type})", file=sys.stderr)
    if not args.only_fid:
        run_mode("torch-eager", pred, ref, vae, batches, not args.no_vae)
    if do_fid and not over():
        run_fid("torch-eager", pred, ref, vae, batches, fid_samplers, args, dev, cfg, fid, autocast, flush, over)
        flush()
    if cbatches and not hasattr(torch, "compile"):
        print(f"torch {torch.__version__} has no torch.compile: compiled rows skipped", file=sys.stderr)
        cbatches = []
    if cbatches and not over():
        print(f"torch.compile (mode {args.compile_mode})", file=sys.stderr)
        kw = {} if args.compile_mode == "default" else {"mode": args.compile_mode}
        cp, cr = (torch.compile(m, dynamic=False, **kw) for m in (pred, ref))
        cv = torch.compile(vae, dynamic=False, **kw) if args.compile_vae else vae
        if not args.only_fid:
            run_mode("torch-compile", cp, cr, cv, cbatches, args.compile_vae and not args.no_vae)
        if do_fid and not over():
            run_fid("torch-compile", cp, cr, cv, cbatches, fid_samplers, args, dev, cfg, fid, autocast, flush, over)

    flush()
    if fid:
        print("| FID pipeline: impl | sampler | backend | batch | img/s (noise -> uint8 in host memory) | "
              "img/s with the npz writer | sampling ms/batch | decode ms/batch | copy ms/batch |\n"
              "|---|---|---|---:|---:|---:|---:|---:|---:|")
        for r in fid:
            print(f"| {r['impl']} | {r['sampler']} | {r['backend']} | {r['batch']} | {r['img_per_s']:.1f} | "
                  f"{r['img_per_s_npz']:.1f} | {r['sample_ms_per_batch']:.2f} | {r['decode_ms_per_batch']:.2f} | "
                  f"{r['copy_ms_per_batch']:.3f} |")
        print()
    print("| impl | sampler | batch | output | ms/img | img/s |\n|---|---|---:|---|---:|---:|")
    for r in smp:
        print(f"| {r['impl']} | {r['sampler']} | {r['batch']} | {'+VAE' if r['decode'] else 'latents'} | "
              f"{r['ms_per_img']:.3f} | {r['img_per_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
