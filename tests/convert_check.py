#!/usr/bin/python3
"""Checks of weights_tool/convert.py (run with /usr/bin/python3, which has torch).

usage: tests/convert_check.py [all | CASE ...]      (no argument = all)
exit:  0 all passed, 1 a check failed, 77 skipped (torch missing)

Every input layout is built as a tiny checkpoint in exactly the official layout (torch modules with the
official module/parameter names, saved the way the official code saves them), converted through the CLI
entry point, reloaded and compared tensor by tensor with the source. The conformance case converts
/work/shared/conformance/{predictor.pt,refiner.pt,vae.ckpt} into tests/data/conformance/ (with the .npy/.json
vectors), and re-runs the authors' sampler / decoder math in torch on the converted files to reproduce
the stored outputs.
"""
import argparse
import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import OrderedDict

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIPPED: {e} (run with /usr/bin/python3, which has torch)")
    sys.exit(77)

torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "weights_tool"))
import convert  # noqa: E402
import safetensors_io as st  # noqa: E402

CONVERT = os.path.join(REPO, "weights_tool", "convert.py")
# the authors' conformance checkpoints and vectors, copied from shared/conformance; the engine files
# converted from them are committed beside them and must be reproduced byte for byte
CONF_SRC = os.path.join(REPO, "tests", "data", "conformance")


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def run_cli(*argv):
    """convert.main in-process: (rc, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = convert.main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def convert_ok(*argv):
    rc, out, err = run_cli(*argv)
    check(rc == 0, f"convert {' '.join(map(str, argv))} failed (rc {rc}):\n{out}{err}")
    check("Traceback" not in out + err, "traceback printed")
    return out, err


def convert_fails(expect_parts, *argv):
    out_path = None
    if "-o" in argv:
        out_path = str(argv[list(argv).index("-o") + 1])
    rc, out, err = run_cli(*argv)
    check(rc == 2, f"expected exit 2, got {rc} for {argv}:\n{out}{err}")
    check("Traceback" not in out + err, f"traceback printed for {argv}")
    for part in expect_parts:
        check(part in err, f"error message lacks {part!r}:\n{err}")
    if out_path:
        check(not os.path.exists(out_path), f"{out_path} written despite the error")
    return err


def load_out(path):
    tensors, meta = st.load(path)
    header, _, _ = st.read_header(path)
    return tensors, meta, header


def compare(tensors, header, expected, dtype="F32", keep_f32=("pos_embed",)):
    """expected: name -> torch tensor in the engine naming (ground truth). Exact for F32, the correctly rounded
    value for F16/BF16."""
    check(list(tensors) == list(expected) or set(tensors) == set(expected),
          f"tensor set differs: missing {sorted(set(expected) - set(tensors))[:5]}, "
          f"extra {sorted(set(tensors) - set(expected))[:5]}")
    for name, ref in expected.items():
        ref = ref.detach().float()
        got = torch.from_numpy(tensors[name])
        want_dtype = "F32" if name in keep_f32 else dtype
        check(header[name]["dtype"] == want_dtype, f"{name}: dtype {header[name]['dtype']}, expected {want_dtype}")
        check(tuple(got.shape) == tuple(ref.shape), f"{name}: shape {tuple(got.shape)} vs {tuple(ref.shape)}")
        if want_dtype == "F16":
            ref = ref.half().float()
        elif want_dtype == "BF16":
            ref = ref.bfloat16().float()
        check(torch.equal(got, ref), f"{name}: values differ (max abs {(got - ref).abs().max().item():.3g})")


# ----------------------------------------------------------------------------------------------------------
# Tiny official modules (parameter names as in SiT/DiT models.py + timm, FlowTurbo models_assemble.py,
# diffusers AutoencoderKL Decoder, LDM ldm/modules/diffusionmodules/model.py Decoder)
# ----------------------------------------------------------------------------------------------------------

class PatchEmbed(nn.Module):
    def __init__(self, p, cin, D):
        super().__init__()
        self.proj = nn.Conv2d(cin, D, p, p)
        self.norm = nn.Identity()


class TimestepEmbedder(nn.Module):
    def __init__(self, D):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))


class LabelEmbedder(nn.Module):
    def __init__(self, ncls, D):
        super().__init__()
        self.embedding_table = nn.Embedding(ncls + 1, D)


class Attention(nn.Module):  # timm
    def __init__(self, D):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(D, D)
        self.proj_drop = nn.Dropout(0.0)


class Mlp(nn.Module):  # timm
    def __init__(self, D, Fh):
        super().__init__()
        self.fc1 = nn.Linear(D, Fh)
        self.act = nn.GELU(approximate="tanh")
        self.drop1 = nn.Dropout(0.0)
        self.norm = nn.Identity()
        self.fc2 = nn.Linear(Fh, D)
        self.drop2 = nn.Dropout(0.0)


class SiTBlock(nn.Module):
    def __init__(self, D, Fh):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(D)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(D, Fh)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))


class FinalLayer(nn.Module):
    def __init__(self, D, p, out):
        super().__init__()
        self.norm_final = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(D, p * p * out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))


class SiT(nn.Module):
    """SiT/DiT (and FlowTurbo VelocityPredictor with in_channels_scale=2 for the refiner)."""

    def __init__(self, input_size=8, patch=2, C=4, D=64, depth=2, ncls=10, learn_sigma=True, cin_scale=1,
                 mlp_ratio=4.0):
        super().__init__()
        self.x_embedder = PatchEmbed(patch, C * cin_scale, D)
        self.t_embedder = TimestepEmbedder(D)
        self.y_embedder = LabelEmbedder(ncls, D)
        T = (input_size // patch) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, T, D), requires_grad=False)
        self.blocks = nn.ModuleList([SiTBlock(D, int(D * mlp_ratio)) for _ in range(depth)])
        self.final_layer = FinalLayer(D, patch, 2 * C if learn_sigma else C)
        g = torch.Generator().manual_seed(D * 1000 + depth)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)  # every weight non-zero


def sit_engine_names(sd):
    return OrderedDict((k, v) for k, v in sd.items())  # the engine keeps the official names


def training_ckpt(model, ema, args_ns):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    opt.zero_grad()
    loss = sum((p.float() ** 2).sum() for p in model.parameters() if p.requires_grad)
    loss.backward()
    opt.step()
    return {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "args": args_ns}


# --- VAE decoders -----------------------------------------------------------------------------------------

class DResnet(nn.Module):  # diffusers ResnetBlock2D (decoder: no time embedding)
    def __init__(self, cin, cout, g):
        super().__init__()
        self.norm1 = nn.GroupNorm(g, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(g, cout, eps=1e-6)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.nonlinearity = nn.SiLU()
        if cin != cout:
            self.conv_shortcut = nn.Conv2d(cin, cout, 1)


class DUpsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)


class DUpBlock(nn.Module):
    def __init__(self, cin, cout, n, g, up):
        super().__init__()
        self.resnets = nn.ModuleList([DResnet(cin if j == 0 else cout, cout, g) for j in range(n)])
        self.upsamplers = nn.ModuleList([DUpsample(cout)]) if up else None


class DAttention(nn.Module):
    def __init__(self, c, g, deprecated=False):
        super().__init__()
        self.group_norm = nn.GroupNorm(g, c, eps=1e-6)
        if deprecated:  # diffusers < 0.14 AttentionBlock
            self.query, self.key, self.value = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
            self.proj_attn = nn.Linear(c, c)
        else:
            self.to_q, self.to_k, self.to_v = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
            self.to_out = nn.ModuleList([nn.Linear(c, c), nn.Dropout(0.0)])


class DMid(nn.Module):
    def __init__(self, c, g, deprecated=False):
        super().__init__()
        self.attentions = nn.ModuleList([DAttention(c, g, deprecated)])
        self.resnets = nn.ModuleList([DResnet(c, c, g), DResnet(c, c, g)])


class DDecoder(nn.Module):
    def __init__(self, boc, lpb, g, L=4, O=3, deprecated=False):
        super().__init__()
        self.conv_in = nn.Conv2d(L, boc[-1], 3, padding=1)
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(boc))
        prev = rev[0]
        for i, c in enumerate(rev):
            self.up_blocks.append(DUpBlock(prev, c, lpb + 1, g, i < len(boc) - 1))
            prev = c
        self.mid_block = DMid(boc[-1], g, deprecated)
        self.conv_norm_out = nn.GroupNorm(g, boc[0], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[0], O, 3, padding=1)


class LResnet(nn.Module):  # LDM ResnetBlock (temb_channels=0)
    def __init__(self, cin, cout, g):
        super().__init__()
        self.norm1 = nn.GroupNorm(g, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(g, cout, eps=1e-6)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)


class LAttn(nn.Module):
    def __init__(self, c, g):
        super().__init__()
        self.norm = nn.GroupNorm(g, c, eps=1e-6)
        self.q, self.k, self.v = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)


class LDecoder(nn.Module):
    """LDM Decoder (ch, ch_mult, num_res_blocks); up[0] is the highest resolution."""

    def __init__(self, ch, ch_mult, nrb, g, L=4, O=3):
        super().__init__()
        n = len(ch_mult)
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(L, block_in, 3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = LResnet(block_in, block_in, g)
        self.mid.attn_1 = LAttn(block_in, g)
        self.mid.block_2 = LResnet(block_in, block_in, g)
        self.up = nn.ModuleList()
        for i_level in reversed(range(n)):
            up = nn.Module()
            up.block = nn.ModuleList()
            up.attn = nn.ModuleList()
            out = ch * ch_mult[i_level]
            for _ in range(nrb + 1):
                up.block.append(LResnet(block_in, out, g))
                block_in = out
            if i_level != 0:
                up.upsample = DUpsample(block_in)
            self.up.insert(0, up)
        self.norm_out = nn.GroupNorm(g, block_in, eps=1e-6)
        self.conv_out = nn.Conv2d(block_in, O, 3, padding=1)


def randomize(module, seed, scale=0.1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module


def ldm_from_diffusers(dec, boc, lpb, g):
    """An LDM Decoder holding the same weights as the diffusers Decoder `dec`, copied module by module."""
    ch = boc[0]
    ldm = LDecoder(ch, [c // ch for c in boc], lpb, g)
    n = len(boc)

    def cp(dst, src):
        with torch.no_grad():
            dst.weight.copy_(src.weight.reshape(dst.weight.shape))
            dst.bias.copy_(src.bias)

    def res(dst, src):
        for a in ("norm1", "conv1", "norm2", "conv2"):
            cp(getattr(dst, a), getattr(src, a))
        if hasattr(src, "conv_shortcut"):
            cp(dst.nin_shortcut, src.conv_shortcut)
    cp(ldm.conv_in, dec.conv_in)
    res(ldm.mid.block_1, dec.mid_block.resnets[0])
    res(ldm.mid.block_2, dec.mid_block.resnets[1])
    at = dec.mid_block.attentions[0]
    cp(ldm.mid.attn_1.norm, at.group_norm)
    cp(ldm.mid.attn_1.q, at.to_q)
    cp(ldm.mid.attn_1.k, at.to_k)
    cp(ldm.mid.attn_1.v, at.to_v)
    cp(ldm.mid.attn_1.proj_out, at.to_out[0])
    for k in range(n):
        i = n - 1 - k
        for j in range(lpb + 1):
            res(ldm.up[k].block[j], dec.up_blocks[i].resnets[j])
        if k != 0:
            cp(ldm.up[k].upsample.conv, dec.up_blocks[i].upsamplers[0].conv)
    cp(ldm.norm_out, dec.conv_norm_out)
    cp(ldm.conv_out, dec.conv_out)
    return ldm


def deprecated_from_current(dec, boc, lpb, g):
    old = DDecoder(boc, lpb, g, deprecated=True)
    sd = dec.state_dict()
    ren = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    new = OrderedDict()
    for k, v in sd.items():
        for a, b in ren.items():
            k = k.replace(f"attentions.0.{a}.", f"attentions.0.{b}.")
        new[k] = v
    old.load_state_dict(new, strict=True)
    return old


def vae_ground_truth(dec, pqc):
    gt = OrderedDict()
    gt["post_quant_conv.weight"] = pqc.weight
    gt["post_quant_conv.bias"] = pqc.bias
    for k, v in dec.state_dict().items():
        gt["decoder." + k] = v
    return gt


def encoder_tensors(style, g):
    """A few encoder-side tensors a decoder converter must drop (names in the given style)."""
    gen = torch.Generator().manual_seed(7)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    if style == "ldm":
        names = {"encoder.conv_in.weight": (32, 3, 3, 3), "encoder.down.0.block.0.norm1.weight": (32,),
                 "encoder.mid.attn_1.q.weight": (64, 64, 1, 1), "encoder.norm_out.bias": (64,),
                 "quant_conv.weight": (8, 8, 1, 1), "quant_conv.bias": (8,)}
    else:
        att = "query" if style == "deprecated" else "to_q"
        names = {"encoder.conv_in.weight": (32, 3, 3, 3), "encoder.down_blocks.0.resnets.0.norm1.weight": (32,),
                 f"encoder.mid_block.attentions.0.{att}.weight": (64, 64), "encoder.conv_norm_out.bias": (64,),
                 "quant_conv.weight": (8, 8, 1, 1), "quant_conv.bias": (8,)}
    return OrderedDict((k, r(*s)) for k, s in names.items())


def make_vae(boc, lpb, g, seed):
    dec = randomize(DDecoder(boc, lpb, g), seed)
    pqc = randomize(nn.Conv2d(4, 4, 1), seed + 1)
    return dec, pqc


# ----------------------------------------------------------------------------------------------------------
# Reference math (authors' semantics, model.md §1 and §3) on engine-format tensors
# ----------------------------------------------------------------------------------------------------------

def sit_forward(W, meta, x, t, y):
    D, p, H = int(meta["hidden_size"]), int(meta["patch_size"]), int(meta["num_heads"])
    depth, C = int(meta["depth"]), int(meta["in_channels"])
    Co = int(meta["out_channels"])
    N = x.shape[0]
    h = F.conv2d(x, W["x_embedder.proj.weight"], W["x_embedder.proj.bias"], stride=p)
    g = h.shape[-1]
    h = h.flatten(2).transpose(1, 2) + W["pos_embed"]
    freqs = torch.exp(-math.log(10000) * torch.arange(128, dtype=torch.float32) / 128)
    a = t[:, None].float() * freqs[None]
    tf = torch.cat([torch.cos(a), torch.sin(a)], dim=-1)
    temb = F.linear(F.silu(F.linear(tf, W["t_embedder.mlp.0.weight"], W["t_embedder.mlp.0.bias"])),
                    W["t_embedder.mlp.2.weight"], W["t_embedder.mlp.2.bias"])
    s = F.silu(temb + W["y_embedder.embedding_table.weight"][y])
    T = h.shape[1]
    hd = D // H
    stats = []
    for l in range(depth):
        b = f"blocks.{l}."
        m = F.linear(s, W[b + "adaLN_modulation.1.weight"], W[b + "adaLN_modulation.1.bias"]).chunk(6, dim=1)
        hn = F.layer_norm(h, (D,), eps=1e-6) * (1 + m[1][:, None]) + m[0][:, None]
        qkv = F.linear(hn, W[b + "attn.qkv.weight"], W[b + "attn.qkv.bias"]).reshape(N, T, 3, H, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) * hd ** -0.5, dim=-1) @ v
        att = F.linear(att.transpose(1, 2).reshape(N, T, D), W[b + "attn.proj.weight"], W[b + "attn.proj.bias"])
        h = h + m[2][:, None] * att
        hn = F.layer_norm(h, (D,), eps=1e-6) * (1 + m[4][:, None]) + m[3][:, None]
        u = F.gelu(F.linear(hn, W[b + "mlp.fc1.weight"], W[b + "mlp.fc1.bias"]), approximate="tanh")
        h = h + m[5][:, None] * F.linear(u, W[b + "mlp.fc2.weight"], W[b + "mlp.fc2.bias"])
        stats.append(h.pow(2).mean().sqrt().item())
    sh, sc = F.linear(s, W["final_layer.adaLN_modulation.1.weight"], W["final_layer.adaLN_modulation.1.bias"]) \
        .chunk(2, dim=1)
    hn = F.layer_norm(h, (D,), eps=1e-6) * (1 + sc[:, None]) + sh[:, None]
    out = F.linear(hn, W["final_layer.linear.weight"], W["final_layer.linear.bias"])
    out = out.reshape(N, g, g, p, p, Co).permute(0, 5, 1, 3, 2, 4).reshape(N, Co, g * p, g * p)
    return out[:, :C], stats


def flowturbo_sample(P, Pm, R, Rm, noise, labels, null, sampler, cfg_scale):
    """FlowTurboAssemble (models_assemble.py) semantics, algorithm.md §3-§4."""
    import re
    nh, npc, nr = (int(v) for v in re.fullmatch(r"H(\d+)P(\d+)R(\d+)", sampler).groups())
    B = noise.shape[0]
    gc = int(Pm["guided_channels"])
    yy = torch.cat([labels, torch.full_like(labels, null)])

    def combine(out):
        c, u = out[:B], out[B:]
        gd = u[:, :gc] + cfg_scale * (c[:, :gc] - u[:, :gc])
        return torch.cat([torch.cat([gd, c[:, gc:]], 1), torch.cat([gd, u[:, gc:]], 1)])

    def V(x, t):
        xin = torch.cat([x[:B], x[:B]])
        return combine(sit_forward(P, Pm, xin, t.expand(2 * B), yy)[0])

    def Rf(x, w, t):
        xin = torch.cat([x[:B], x[:B]])
        return combine(sit_forward(R, Rm, torch.cat([xin, w], 1), t.expand(2 * B), yy)[0])
    n = nh + npc + nr + 1
    ts = torch.linspace(0, 1, n)
    dt = ts[1] - ts[0]
    x = torch.cat([noise, noise])
    i, carry = 0, None
    for _ in range(nh):
        d = V(x, ts[i])
        e = V(x + dt * d, ts[i + 1])
        x = x + dt / 2 * (d + e)
        carry, i = e, i + 1
    for _ in range(npc):
        d = carry if carry is not None else V(x, ts[i])
        e = V(x + dt * d, ts[i + 1])
        x = x + dt / 2 * (d + e)
        carry, i = e, i + 1
    for _ in range(nr):
        w = carry
        d = w + Rf(x, w, ts[i])
        e = d + Rf(x + dt * d, w, ts[i + 1])
        x = x + dt / 2 * (d + e)
        carry, i = d, i + 1
    return x[:B]


def vae_decode(W, meta, z):
    g = int(meta["norm_num_groups"])
    n = len(meta["block_out_channels"].split(","))
    lpb = int(meta["layers_per_block"])

    def gn(h, name):
        return F.group_norm(h, g, W[name + ".weight"], W[name + ".bias"], eps=1e-6)

    def conv(h, name, pad=1):
        return F.conv2d(h, W[name + ".weight"], W[name + ".bias"], padding=pad)

    def res(h, pre):
        x = h
        h = conv(F.silu(gn(h, pre + "norm1")), pre + "conv1")
        h = conv(F.silu(gn(h, pre + "norm2")), pre + "conv2")
        if pre + "conv_shortcut.weight" in W:
            x = conv(x, pre + "conv_shortcut", 0)
        return x + h
    h = conv(z / float(meta["scaling_factor"]), "post_quant_conv", 0)
    h = conv(h, "decoder.conv_in")
    h = res(h, "decoder.mid_block.resnets.0.")
    a = "decoder.mid_block.attentions.0."
    N, C, Hh, Ww = h.shape
    xt = gn(h, a + "group_norm").reshape(N, C, Hh * Ww).transpose(1, 2)
    q = F.linear(xt, W[a + "to_q.weight"], W[a + "to_q.bias"])
    k = F.linear(xt, W[a + "to_k.weight"], W[a + "to_k.bias"])
    v = F.linear(xt, W[a + "to_v.weight"], W[a + "to_v.bias"])
    o = torch.softmax(q @ k.transpose(1, 2) * C ** -0.5, dim=-1) @ v
    o = F.linear(o, W[a + "to_out.0.weight"], W[a + "to_out.0.bias"])
    h = h + o.transpose(1, 2).reshape(N, C, Hh, Ww)
    h = res(h, "decoder.mid_block.resnets.1.")
    stats = []
    for i in range(n):
        for j in range(lpb + 1):
            h = res(h, f"decoder.up_blocks.{i}.resnets.{j}.")
            stats.append(h.pow(2).mean().sqrt().item())
        if i < n - 1:
            h = conv(F.interpolate(h, scale_factor=2.0, mode="nearest"), f"decoder.up_blocks.{i}.upsamplers.0.conv")
    h = conv(F.silu(gn(h, "decoder.conv_norm_out")), "decoder.conv_out")
    return h, stats


def rel_l2(a, b):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return ((a - b).norm() / b.norm()).item()


def torch_weights(path):
    tensors, meta = st.load(path)
    return {k: torch.from_numpy(v) for k, v in tensors.items()}, meta


# ----------------------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------------------

def sit_meta(role, input_size, C, patch, D, depth, heads, ncls, learn_sigma=True, guided=3, source=None,
             mlp_ratio="4.0"):
    m = OrderedDict([("flowturbo.format", "1"), ("role", role), ("arch", "sit"), ("input_size", str(input_size)),
                     ("in_channels", str(C)), ("out_channels", str(2 * C if learn_sigma else C)),
                     ("patch_size", str(patch)), ("hidden_size", str(D)), ("depth", str(depth)),
                     ("num_heads", str(heads)), ("mlp_ratio", mlp_ratio), ("num_classes", str(ncls)),
                     ("learn_sigma", "true" if learn_sigma else "false"), ("guided_channels", str(guided))])
    if source is not None:
        m["source"] = source
    return m


def check_meta(meta, expected):
    for k, v in expected.items():
        check(meta.get(k) == v, f"metadata {k} = {meta.get(k)!r}, expected {v!r}")
    extra = set(meta) - set(expected) - {"source"}
    check(not extra, f"unexpected metadata keys {sorted(extra)}")


def case_sit_bare(tmp):
    """Tiny SiT bare state_dict (SiT-XL-2-256x256.pt layout); also with a DDP 'module.' prefix."""
    m = SiT(input_size=8, patch=2, C=4, D=64, depth=3, ncls=10)
    sd = m.state_dict()
    check(list(sd)[0] == "pos_embed" and len(sd) == 8 + 10 * 3 + 4, "tiny SiT state_dict layout")
    src = os.path.join(tmp, "SiT-tiny.pt")
    torch.save(sd, src)
    out = os.path.join(tmp, "sit.safetensors")
    o, e = convert_ok("convert", src, "-o", out)
    check("assuming 1" in e and "--num-heads" in e, f"no num_heads warning:\n{e}")
    t, meta, hdr = load_out(out)
    check_meta(meta, sit_meta("predictor", 8, 4, 2, 64, 3, 1, 10, source="SiT-tiny.pt"))
    compare(t, hdr, sit_engine_names(sd))
    check(list(t) == list(sd), "tensor order differs from the official state_dict order")
    # DDP wrapper prefix
    src2 = os.path.join(tmp, "SiT-ddp.pt")
    torch.save(OrderedDict(("module." + k, v) for k, v in sd.items()), src2)
    out2 = os.path.join(tmp, "sit2.safetensors")
    o, _ = convert_ok("convert", src2, "-o", out2, "--num-heads", "4", "--guided-channels", "4", "--source", "x")
    check("module." in o, "DDP prefix strip not reported")
    t, meta, hdr = load_out(out2)
    check_meta(meta, sit_meta("predictor", 8, 4, 2, 64, 3, 4, 10, guided=4, source="x"))
    compare(t, hdr, sd)


def case_sit_train(tmp):
    """SiT train.py checkpoint {"model","ema","opt","args"}: auto picks "ema" (SiT find_model)."""
    model = SiT(input_size=8, patch=2, C=4, D=128, depth=2, ncls=5)
    ema = SiT(input_size=8, patch=2, C=4, D=128, depth=2, ncls=5)
    with torch.no_grad():
        for p in ema.parameters():
            p.mul_(0.5).add_(0.01)
    ck = training_ckpt(model, ema, argparse.Namespace(model="SiT-XL/2", image_size=256, global_batch_size=256))
    src = os.path.join(tmp, "0400000.pt")
    torch.save(ck, src)
    out = os.path.join(tmp, "sit_ema.safetensors")
    o, e = convert_ok("convert", src, "-o", out)
    check("'ema'" in o, f"used key not printed:\n{o}")
    t, meta, hdr = load_out(out)
    check_meta(meta, sit_meta("predictor", 8, 4, 2, 128, 2, 2, 5, source="0400000.pt [ema]"))
    compare(t, hdr, ck["ema"])
    out2 = os.path.join(tmp, "sit_model.safetensors")
    o, _ = convert_ok("convert", src, "-o", out2, "--key", "model")
    t, meta, hdr = load_out(out2)
    compare(t, hdr, ck["model"])
    check(meta["source"] == "0400000.pt [model]", meta["source"])
    convert_ok("convert", src, "-o", out2, "--kind", "sit")
    check(load_out(out2)[1]["source"] == "0400000.pt [ema]", "--kind sit must pick 'ema'")


def case_refiner_train(tmp):
    """FlowTurbo refiner {"model","ema"} (VelocityPredictor depth 1, in_channels_scale 2): auto picks "model"."""
    model = SiT(input_size=8, patch=2, C=4, D=64, depth=1, ncls=10, cin_scale=2)
    ema = SiT(input_size=8, patch=2, C=4, D=64, depth=1, ncls=10, cin_scale=2)
    with torch.no_grad():
        for p in ema.parameters():
            p.mul_(-1.0)
    sd = model.state_dict()
    check(tuple(sd["x_embedder.proj.weight"].shape) == (64, 8, 2, 2) and len(sd) == 22, "refiner layout")
    src = os.path.join(tmp, "SiT-XL-2-Refiner.pt")
    torch.save({"model": sd, "ema": ema.state_dict()}, src)
    out = os.path.join(tmp, "refiner.safetensors")
    o, e = convert_ok("convert", src, "-o", out)
    check("'model'" in o and "refiner" in o, o)
    t, meta, hdr = load_out(out)
    check_meta(meta, sit_meta("refiner", 8, 4, 2, 64, 1, 1, 10, source="SiT-XL-2-Refiner.pt [model]"))
    compare(t, hdr, sd)
    out2 = os.path.join(tmp, "refiner_ema.safetensors")
    convert_ok("convert", src, "-o", out2, "--key", "ema")
    t, meta, hdr = load_out(out2)
    compare(t, hdr, ema.state_dict())
    # a refiner without learn_sigma (8 in, 4 out) is recognised too; --kind sit on it is refused
    m2 = SiT(input_size=8, patch=2, C=4, D=64, depth=1, ncls=10, cin_scale=2, learn_sigma=False)
    src3 = os.path.join(tmp, "ref_nosigma.pt")
    torch.save(m2.state_dict(), src3)
    out3 = os.path.join(tmp, "ref3.safetensors")
    convert_ok("convert", src3, "-o", out3)
    t, meta, hdr = load_out(out3)
    check(meta["role"] == "refiner" and meta["learn_sigma"] == "false" and meta["out_channels"] == "4", str(meta))
    convert_fails(["--kind sit"], "convert", src3, "-o", os.path.join(tmp, "bad.safetensors"), "--kind", "sit")


def case_dit_bare(tmp):
    """DiT-style bare state_dict (DiT-XL-2-256x256.pt layout) in F16 and BF16; pos_embed stays F32."""
    m = SiT(input_size=16, patch=4, C=4, D=256, depth=2, ncls=20)
    with torch.no_grad():
        m.pos_embed.copy_(torch.from_numpy(convert.sincos_pos_embed(256, 4)))
    sd = m.state_dict()
    src = os.path.join(tmp, "DiT-tiny.pt")
    torch.save(sd, src)
    for dt, st_dt in (("f16", "F16"), ("bf16", "BF16")):
        out = os.path.join(tmp, f"dit_{dt}.safetensors")
        convert_ok("convert", src, "-o", out, "--dtype", dt)
        t, meta, hdr = load_out(out)
        check_meta(meta, sit_meta("predictor", 16, 4, 4, 256, 2, 4, 20, source="DiT-tiny.pt"))
        compare(t, hdr, sd, dtype=st_dt)
    # explicit flags that agree are accepted
    convert_ok("convert", src, "-o", os.path.join(tmp, "dit_f32.safetensors"), "--input-size", "16",
               "--patch-size", "4", "--num-heads", "8", "--kind", "sit")
    # a predictor without learn_sigma
    m2 = SiT(input_size=8, patch=2, C=4, D=64, depth=2, ncls=10, learn_sigma=False)
    src2 = os.path.join(tmp, "nosigma.pt")
    torch.save(m2.state_dict(), src2)
    out2 = os.path.join(tmp, "nosigma.safetensors")
    convert_ok("convert", src2, "-o", out2)
    t, meta, hdr = load_out(out2)
    check_meta(meta, sit_meta("predictor", 8, 4, 2, 64, 2, 1, 10, learn_sigma=False, source="nosigma.pt"))
    compare(t, hdr, m2.state_dict())


def _vae_expect_meta(boc, lpb, g, source, sf="0.18215"):
    return OrderedDict([("flowturbo.format", "1"), ("role", "vae"), ("arch", "sd-vae-decoder"),
                        ("latent_channels", "4"), ("out_channels", "3"),
                        ("block_out_channels", ",".join(map(str, boc))), ("layers_per_block", str(lpb)),
                        ("norm_num_groups", str(g)), ("scaling_factor", sf), ("source", source)])


def case_vae_diffusers(tmp):
    """diffusers AutoencoderKL diffusion_pytorch_model.safetensors, current names (+ config.json next to it)."""
    boc, lpb, g = [16, 32, 32, 64], 2, 8
    dec, pqc = make_vae(boc, lpb, g, 11)
    d = os.path.join(tmp, "sd-vae-tiny")
    os.makedirs(d)
    full = OrderedDict(encoder_tensors("current", g))
    full.update(("decoder." + k, v) for k, v in dec.state_dict().items())
    full["post_quant_conv.weight"], full["post_quant_conv.bias"] = pqc.weight, pqc.bias
    src = os.path.join(d, "diffusion_pytorch_model.safetensors")
    st.save(src, full, {"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"_class_name": "AutoencoderKL", "_diffusers_version": "0.4.2", "block_out_channels": boc,
                   "latent_channels": 4, "layers_per_block": lpb, "norm_num_groups": g, "out_channels": 3}, f)
    out = os.path.join(tmp, "vae.safetensors")
    o, _ = convert_ok("convert", src, "-o", out)
    check("current diffusers" in o and "encoder" in o, o)
    t, meta, hdr = load_out(out)
    check_meta(meta, _vae_expect_meta(boc, lpb, g, "diffusion_pytorch_model.safetensors"))
    gt = vae_ground_truth(dec, pqc)
    compare(t, hdr, gt, keep_f32=())
    # F16 + explicit scaling factor override
    out2 = os.path.join(tmp, "vae16.safetensors")
    convert_ok("convert", src, "-o", out2, "--dtype", "f16", "--scaling-factor", "0.13025")
    t, meta, hdr = load_out(out2)
    check(meta["scaling_factor"] == "0.13025", meta["scaling_factor"])
    compare(t, hdr, gt, dtype="F16", keep_f32=())


def case_vae_deprecated(tmp):
    """diffusers safetensors with the deprecated attention names (query/key/value/proj_attn), no config.json."""
    boc, lpb, g = [32, 64], 1, 16
    dec, pqc = make_vae(boc, lpb, g, 21)
    old = deprecated_from_current(dec, boc, lpb, g)
    full = OrderedDict(encoder_tensors("deprecated", g))
    full.update(("decoder." + k, v) for k, v in old.state_dict().items())
    full["post_quant_conv.weight"], full["post_quant_conv.bias"] = pqc.weight, pqc.bias
    check("decoder.mid_block.attentions.0.proj_attn.weight" in full, "deprecated layout")
    src = os.path.join(tmp, "diffusion_pytorch_model.safetensors")
    st.save(src, full, {"format": "pt"})
    out = os.path.join(tmp, "vae.safetensors")
    # no config.json here: GroupNorm groups are not in the tensors, so the (non-default) 16 must be passed
    o, _ = convert_ok("convert", src, "-o", out, "--norm-num-groups", "16", "--dtype", "bf16")
    check("deprecated" in o, o)
    t, meta, hdr = load_out(out)
    check_meta(meta, _vae_expect_meta(boc, lpb, g, "diffusion_pytorch_model.safetensors"))
    compare(t, hdr, vae_ground_truth(dec, pqc), dtype="BF16", keep_f32=())


def _ldm_state(dec, pqc, boc, lpb, g):
    ldm = ldm_from_diffusers(dec, boc, lpb, g)
    sdl = OrderedDict(encoder_tensors("ldm", g))
    sdl.update(("decoder." + k, v) for k, v in ldm.state_dict().items())
    sdl["post_quant_conv.weight"], sdl["post_quant_conv.bias"] = pqc.weight, pqc.bias
    return sdl


def case_vae_ldm(tmp):
    """LDM .ckpt {"state_dict"}: decoder.*/post_quant_conv.* + encoder tensors; reversed up numbering, 1x1 attn."""
    boc, lpb, g = [32, 64, 64, 128], 2, 32
    dec, pqc = make_vae(boc, lpb, g, 31)
    sdl = _ldm_state(dec, pqc, boc, lpb, g)
    check("decoder.up.3.upsample.conv.weight" in sdl and "decoder.up.0.upsample.conv.weight" not in sdl
          and tuple(sdl["decoder.mid.attn_1.q.weight"].shape) == (128, 128, 1, 1)
          and "decoder.up.2.block.0.nin_shortcut.weight" in sdl
          and "decoder.up.0.block.0.nin_shortcut.weight" in sdl, "LDM layout")
    src = os.path.join(tmp, "vae-ft-ema-560000-ema-pruned.ckpt")
    torch.save({"state_dict": sdl}, src)
    out = os.path.join(tmp, "vae.safetensors")
    o, _ = convert_ok("convert", src, "-o", out)
    check("original LDM" in o and "'state_dict'" in o, o)
    t, meta, hdr = load_out(out)
    check_meta(meta, _vae_expect_meta(boc, lpb, g, "vae-ft-ema-560000-ema-pruned.ckpt [state_dict]"))
    gt = vae_ground_truth(dec, pqc)
    compare(t, hdr, gt, keep_f32=())
    # spot-check the reversal and the squeeze against the LDM names directly
    check(torch.equal(torch.from_numpy(t["decoder.up_blocks.0.resnets.1.conv1.weight"]),
                      sdl["decoder.up.3.block.1.conv1.weight"]), "up-block reversal")
    check(torch.equal(torch.from_numpy(t["decoder.up_blocks.2.upsamplers.0.conv.bias"]),
                      sdl["decoder.up.1.upsample.conv.bias"]), "upsampler reversal")
    check(torch.equal(torch.from_numpy(t["decoder.mid_block.attentions.0.to_out.0.weight"]),
                      sdl["decoder.mid.attn_1.proj_out.weight"][:, :, 0, 0]), "attention squeeze")
    # the same decoder from a pytorch_lightning-style checkpoint with extra entries
    src2 = os.path.join(tmp, "last.ckpt")
    torch.save({"epoch": 3, "global_step": 1000, "state_dict": sdl, "optimizer_states": [{}],
                "lr_schedulers": []}, src2)
    convert_ok("convert", src2, "-o", os.path.join(tmp, "vae2.safetensors"))
    t2, _, _ = load_out(os.path.join(tmp, "vae2.safetensors"))
    check(all(np.array_equal(t[k], t2[k]) for k in t), "lightning ckpt differs")
    # and the decoded image matches a direct LDM-naming decode (the mapping preserves the math)
    W = {k: torch.from_numpy(v) for k, v in t.items()}
    z = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    img, _ = vae_decode(W, meta, z)
    check(img.shape == (1, 3, 32, 32), f"decode shape {tuple(img.shape)}")


def case_vae_ldm_prefixed(tmp):
    """Full Stable Diffusion LDM checkpoint: first_stage_model.* among model.diffusion_model.* etc."""
    boc, lpb, g = [32, 64, 64], 1, 32
    dec, pqc = make_vae(boc, lpb, g, 41)
    sdl = _ldm_state(dec, pqc, boc, lpb, g)
    full = OrderedDict()
    gen = torch.Generator().manual_seed(3)
    full["betas"] = torch.rand(10, generator=gen)
    full["model.diffusion_model.input_blocks.0.0.weight"] = torch.randn(32, 4, 3, 3, generator=gen)
    full["model.diffusion_model.out.2.bias"] = torch.randn(4, generator=gen)
    full.update(("first_stage_model." + k, v) for k, v in sdl.items())
    full["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = torch.randn(16, generator=gen)
    full["model_ema.decay"] = torch.tensor(0.9999)
    full["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    src = os.path.join(tmp, "sd-v1-4.ckpt")
    torch.save({"state_dict": full, "global_step": 470000}, src)
    out = os.path.join(tmp, "vae.safetensors")
    o, _ = convert_ok("convert", src, "-o", out)
    check("first_stage_model" in o, o)
    t, meta, hdr = load_out(out)
    check_meta(meta, _vae_expect_meta(boc, lpb, g, "sd-v1-4.ckpt [state_dict]"))
    compare(t, hdr, vae_ground_truth(dec, pqc), keep_f32=())


def case_conformance(tmp):
    """Convert tests/data/conformance/{predictor.pt,refiner.pt,vae.ckpt} (the authors' tiny checkpoints), check
    the results equal the committed engine files byte for byte, and reproduce the stored sampler / decoder
    outputs from the converted files."""
    if not os.path.isdir(CONF_SRC):
        raise CheckFailed(f"{CONF_SRC} missing")
    P = os.path.join(tmp, "predictor.safetensors")
    R = os.path.join(tmp, "refiner.safetensors")
    Vf = os.path.join(tmp, "vae.safetensors")
    # without --num-heads (hidden 32 matches no convention) the converter refuses and says what to pass
    convert_fails(["--num-heads"], "convert", f"{CONF_SRC}/predictor.pt", "-o", os.path.join(tmp, "p.safetensors"))
    convert_ok("convert", f"{CONF_SRC}/predictor.pt", "-o", P, "--num-heads", "4")
    o, _ = convert_ok("convert", f"{CONF_SRC}/refiner.pt", "-o", R, "--num-heads", "4")
    check("'model'" in o, o)
    convert_ok("convert", f"{CONF_SRC}/vae.ckpt", "-o", Vf)
    for made in (P, R, Vf):
        committed = os.path.join(CONF_SRC, os.path.basename(made))
        with open(made, "rb") as a, open(committed, "rb") as b:
            check(a.read() == b.read(), f"{committed} differs from a fresh conversion (regenerate it)")
    man = json.load(open(os.path.join(CONF_SRC, "manifest.json")))
    c = man["config"]
    pt, pm, ph = load_out(P)
    check_meta(pm, sit_meta("predictor", c["input_size"], c["channels"], c["patch"], c["hidden"], c["depth"],
                            c["heads"], c["num_classes"], c["learn_sigma"], c["guided_channels"], "predictor.pt"))
    rt, rm, rh = load_out(R)
    check_meta(rm, sit_meta("refiner", c["input_size"], c["channels"], c["patch"], c["hidden"], 1,
                            c["heads"], c["num_classes"], c["learn_sigma"], c["guided_channels"], "refiner.pt [model]"))
    vt, vm, vh = load_out(Vf)
    vman = json.load(open(os.path.join(CONF_SRC, "vae_manifest.json")))
    boc = [vman["ch"] * m for m in vman["ch_mult"]]
    check_meta(vm, _vae_expect_meta(boc, vman["num_res_blocks"], 32, "vae.ckpt [state_dict]"))
    check(boc == [32, 64, 64] and vm["layers_per_block"] == "1", "VAE config")
    src_p = torch.load(f"{CONF_SRC}/predictor.pt", map_location="cpu")
    compare(pt, ph, src_p)
    src_r = torch.load(f"{CONF_SRC}/refiner.pt", map_location="cpu")
    compare(rt, rh, src_r["model"])
    check(any(not torch.equal(src_r["model"][k], src_r["ema"][k]) for k in src_r["model"]), "ema == model?")
    for k, v in vt.items():
        check(v.dtype == np.float32 and vh[k]["dtype"] == "F32", f"{k} not F32")
    for hdr in (ph, rh):
        check(all(v["dtype"] == "F32" for v in hdr.values()), "conformance files must be F32")
    # end to end: the authors' sampler on the converted weights reproduces the stored latents
    Pw, Rw = {k: torch.from_numpy(v) for k, v in pt.items()}, {k: torch.from_numpy(v) for k, v in rt.items()}
    noise = torch.from_numpy(np.load(f"{CONF_SRC}/noise.npy"))
    labels = torch.from_numpy(np.load(f"{CONF_SRC}/labels.npy"))
    worst = 0.0
    for case in man["cases"]:
        ref = np.load(f"{CONF_SRC}/out_{case['name']}.npy")
        got = flowturbo_sample(Pw, pm, Rw, rm, noise, labels, man["null_class"], case["sampler"], case["cfg_scale"])
        err = rel_l2(got, ref)
        worst = max(worst, err)
        check(err < 1e-5, f"sampler {case['name']}: rel L2 {err:.3g} vs the authors' output")
    Vw = {k: torch.from_numpy(v) for k, v in vt.items()}
    img, _ = vae_decode(Vw, vm, torch.from_numpy(np.load(f"{CONF_SRC}/vae_latents.npy")))
    err_v = rel_l2(img, np.load(f"{CONF_SRC}/vae_out_float.npy"))
    check(err_v < 1e-5, f"VAE decode rel L2 {err_v:.3g} vs the authors' output")
    return f"sampler worst rel L2 {worst:.2e}, VAE rel L2 {err_v:.2e}"


def case_errors(tmp):
    """Missing / misshaped / unexpected tensors and unrecognisable files -> exit 2 naming the problem."""
    bad = lambda n: os.path.join(tmp, n)  # noqa: E731
    m = SiT(input_size=8, patch=2, C=4, D=64, depth=3, ncls=10)
    sd = m.state_dict()
    # missing tensor
    s1 = OrderedDict(sd)
    del s1["blocks.1.mlp.fc2.bias"]
    torch.save(s1, bad("missing.pt"))
    convert_fails(["missing tensor 'blocks.1.mlp.fc2.bias'"], "convert", bad("missing.pt"), "-o", bad("o.safetensors"))
    # misshaped tensor
    s2 = OrderedDict(sd)
    s2["blocks.2.attn.proj.weight"] = torch.randn(64, 65)
    torch.save(s2, bad("misshaped.pt"))
    convert_fails(["'blocks.2.attn.proj.weight' has shape [64, 65], expected [64, 64]"], "convert",
                  bad("misshaped.pt"), "-o", bad("o.safetensors"))
    # misshaped first-block MLP: inference uses the majority, the message names the odd tensor
    s2b = OrderedDict(sd)
    s2b["blocks.0.mlp.fc1.weight"] = torch.randn(200, 64)
    torch.save(s2b, bad("misshaped2.pt"))
    convert_fails(["'blocks.0.mlp.fc1.weight' has shape [200, 64], expected [256, 64]"], "convert",
                  bad("misshaped2.pt"), "-o", bad("o.safetensors"))
    # unexpected tensor (strict loading)
    s3 = OrderedDict(sd)
    s3["blocks.0.norm1.weight"] = torch.ones(64)
    torch.save(s3, bad("extra.pt"))
    convert_fails(["unexpected tensor 'blocks.0.norm1.weight'"], "convert", bad("extra.pt"), "-o",
                  bad("o.safetensors"))
    # unrecognisable inputs
    with open(bad("notes.pt"), "w") as f:
        f.write("this is not a checkpoint\n")
    convert_fails(["not a PyTorch checkpoint"], "convert", bad("notes.pt"), "-o", bad("o.safetensors"))
    torch.save({"conv.weight": torch.randn(3, 3), "fc.bias": torch.randn(3)}, bad("other.pt"))
    convert_fails(["unrecognised checkpoint", "x_embedder.proj.weight"], "convert", bad("other.pt"), "-o",
                  bad("o.safetensors"))
    torch.save(torch.randn(3), bad("tensor.pt"))
    convert_fails(["top-level object is a Tensor"], "convert", bad("tensor.pt"), "-o", bad("o.safetensors"))
    torch.save({"epoch": 3, "lr": 0.1}, bad("notensors.pt"))
    convert_fails(["no tensors"], "convert", bad("notensors.pt"), "-o", bad("o.safetensors"))
    with open(bad("garbage.safetensors"), "wb") as f:
        f.write(os.urandom(64))
    convert_fails(["not a valid safetensors file"], "convert", bad("garbage.safetensors"), "-o", bad("o.safetensors"))
    convert_fails(["no such file"], "convert", bad("nope.pt"), "-o", bad("o.safetensors"))
    torch.save({"transformer_blocks.0.attn1.to_q.weight": torch.randn(4, 4)}, bad("diffdit.pt"))
    convert_fails(["diffusers Transformer2DModel"], "convert", bad("diffdit.pt"), "-o", bad("o.safetensors"))
    # argument errors
    torch.save(sd, bad("good.pt"))
    convert_fails(["--key ema", "bare state_dict"], "convert", bad("good.pt"), "-o", bad("o.safetensors"),
                  "--key", "ema")
    convert_fails(["--kind vae"], "convert", bad("good.pt"), "-o", bad("o.safetensors"), "--kind", "vae")
    convert_fails(["--input-size 32 contradicts", "input_size = 8"], "convert", bad("good.pt"), "-o",
                  bad("o.safetensors"), "--input-size", "32")
    convert_fails(["num_heads 5 does not divide hidden_size 64"], "convert", bad("good.pt"), "-o",
                  bad("o.safetensors"), "--num-heads", "5")
    convert_fails(["guided_channels 9"], "convert", bad("good.pt"), "-o", bad("o.safetensors"),
                  "--guided-channels", "9")
    convert_fails(["does not exist"], "convert", bad("good.pt"), "-o", bad("nodir/o.safetensors"))
    rc, _, err = run_cli("convert", bad("good.pt"), "-o", bad("o.safetensors"), "--dtype", "f64")
    check(rc == 2 and "invalid choice" in err, "argparse error exit code")
    # VAE: missing (named in both namings), misshaped, unknown decoder tensor, bad group count
    boc, lpb, g = [32, 64, 64], 1, 32
    dec, pqc = make_vae(boc, lpb, g, 51)
    sdl = _ldm_state(dec, pqc, boc, lpb, g)
    v1 = OrderedDict(sdl)
    del v1["decoder.up.1.block.0.conv2.bias"]
    torch.save({"state_dict": v1}, bad("vmissing.ckpt"))
    convert_fails(["missing tensor 'decoder.up_blocks.1.resnets.0.conv2.bias'", "decoder.up.1.block.0.conv2.bias"],
                  "convert", bad("vmissing.ckpt"), "-o", bad("o.safetensors"))
    v2 = OrderedDict(sdl)
    v2["decoder.mid.attn_1.k.weight"] = torch.randn(64, 32, 1, 1)
    torch.save({"state_dict": v2}, bad("vshape.ckpt"))
    convert_fails(["'decoder.mid_block.attentions.0.to_k.weight' (from 'decoder.mid.attn_1.k.weight') has shape "
                   "[64, 32], expected [64, 64]"], "convert", bad("vshape.ckpt"), "-o", bad("o.safetensors"))
    v3 = OrderedDict(sdl)
    v3["decoder.up.2.attn.0.q.weight"] = torch.randn(64, 64, 1, 1)
    torch.save({"state_dict": v3}, bad("vextra.ckpt"))
    convert_fails(["unexpected tensor 'decoder.up.2.attn.0.q.weight'"], "convert", bad("vextra.ckpt"), "-o",
                  bad("o.safetensors"))
    v4 = OrderedDict(sdl)
    del v4["post_quant_conv.weight"], v4["post_quant_conv.bias"]
    torch.save({"state_dict": v4}, bad("vnopqc.ckpt"))
    convert_fails(["missing tensor 'post_quant_conv.weight'"], "convert", bad("vnopqc.ckpt"), "-o",
                  bad("o.safetensors"))
    torch.save({"state_dict": sdl}, bad("vok.ckpt"))
    convert_fails(["norm_num_groups 24"], "convert", bad("vok.ckpt"), "-o", bad("o.safetensors"),
                  "--norm-num-groups", "24")
    # the real process: exit status 2 and no traceback
    p = subprocess.run([sys.executable, CONVERT, "convert", bad("missing.pt"), "-o", bad("o.safetensors")],
                       capture_output=True, text=True)
    check(p.returncode == 2 and "missing tensor" in p.stderr and "Traceback" not in p.stderr,
          f"subprocess: rc {p.returncode}\n{p.stderr}")


def case_random(tmp):
    """random: every tensor non-zero, reproducible, real pos_embed, valid per inspect, O(1) activations."""
    out = lambda n: os.path.join(tmp, n)  # noqa: E731
    common = ["--hidden", "128", "--depth", "6", "--heads", "2", "--patch", "2", "--input-size", "16",
              "--num-classes", "10"]
    convert_ok("random", "--kind", "sit", *common, "--seed", "5", "-o", out("a.safetensors"))
    convert_ok("random", "--kind", "sit", *common, "--seed", "5", "-o", out("b.safetensors"))
    convert_ok("random", "--kind", "sit", *common, "--seed", "6", "-o", out("c.safetensors"))
    a, b, c = (open(out(n), "rb").read() for n in ("a.safetensors", "b.safetensors", "c.safetensors"))
    check(a == b, "same seed gives different files")
    check(a != c, "different seeds give the same file")
    t, meta, hdr = load_out(out("a.safetensors"))
    check_meta(meta, sit_meta("predictor", 16, 4, 2, 128, 6, 2, 10, source=meta["source"]))
    for k, v in t.items():
        if k == "pos_embed":  # sin(0) entries are exact zeros in the real table
            continue
        frac = float((v == 0).mean())
        check(frac < 0.01, f"{k}: {frac:.1%} zeros")
    # pos_embed = the MAE 2-D sin-cos table (model.md §1.3 (2): first half column, second half row)
    D, Q, gsz = 128, 32, 8
    pe = np.zeros((gsz * gsz, D))
    om = 1.0 / 10000 ** (np.arange(Q) / Q)
    for n in range(gsz * gsz):
        i, j = divmod(n, gsz)
        pe[n] = np.concatenate([np.sin(j * om), np.cos(j * om), np.sin(i * om), np.cos(i * om)])
    check(np.abs(t["pos_embed"][0] - pe).max() < 1e-6, "pos_embed is not the sin-cos table")
    rc, o, _ = run_cli("inspect", out("a.safetensors"), "--stats")
    check(rc == 0 and "consistent with FORMAT.md" in o, f"inspect: rc {rc}\n{o}")
    # activations stay O(1) through the depth, and the output velocity is O(1)
    W = {k: torch.from_numpy(v) for k, v in t.items()}
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 16, generator=gen)
    v, stats = sit_forward(W, meta, x, torch.tensor([0.3, 0.9]), torch.tensor([1, 10]))
    check(max(stats) < 8 and min(stats) > 0.2, f"residual rms through depth {stats}")
    vr = v.pow(2).mean().sqrt().item()
    check(0.1 < vr < 10, f"output rms {vr}")
    # refiner (XL dims are exercised by the timing run; here S/2 dims at a small input) in bf16
    convert_ok("random", "--kind", "refiner", "--preset", "S/2", "--input-size", "8", "--dtype", "bf16",
               "--seed", "1", "-o", out("r.safetensors"))
    t, meta, hdr = load_out(out("r.safetensors"))
    check(meta["role"] == "refiner" and meta["depth"] == "1" and meta["hidden_size"] == "384"
          and meta["num_heads"] == "6", str(meta))
    check(hdr["x_embedder.proj.weight"]["shape"] == [384, 8, 2, 2], "refiner patch embed")
    check(hdr["pos_embed"]["dtype"] == "F32" and hdr["blocks.0.attn.qkv.weight"]["dtype"] == "BF16", "dtypes")
    check(all((v != 0).mean() > 0.99 for k, v in t.items() if k != "pos_embed"), "zeros in refiner")
    W = {k: torch.from_numpy(v) for k, v in t.items()}
    xv = torch.randn(2, 8, 8, 8, generator=gen)
    v, stats = sit_forward(W, meta, xv, torch.tensor([0.5, 0.5]), torch.tensor([3, 1000]))
    vr = v.pow(2).mean().sqrt().item()
    check(0.1 < vr < 10, f"refiner output rms {vr}")
    rc, o, _ = run_cli("inspect", out("r.safetensors"))
    check(rc == 0 and "consistent with FORMAT.md" in o, o)
    # VAE (tiny preset) with activations O(1)
    convert_ok("random", "--kind", "vae", "--vae-preset", "tiny", "--seed", "3", "-o", out("v.safetensors"))
    t, meta, hdr = load_out(out("v.safetensors"))
    check_meta(meta, _vae_expect_meta([32, 64, 64], 1, 32, meta["source"]))
    check(all((v != 0).mean() > 0.99 for v in t.values()), "zeros in VAE")
    W = {k: torch.from_numpy(v) for k, v in t.items()}
    img, stats = vae_decode(W, meta, torch.randn(1, 4, 8, 8, generator=gen) * 0.18215 * 5)
    ir = img.pow(2).mean().sqrt().item()
    check(max(stats) < 10 and 0.05 < ir < 10, f"VAE rms through up blocks {stats}, output {ir}")
    rc, o, _ = run_cli("inspect", out("v.safetensors"))
    check(rc == 0 and "consistent with FORMAT.md" in o, o)
    # explicit VAE config + errors
    convert_ok("random", "--kind", "vae", "--block-out-channels", "16,32", "--layers-per-block", "0", "--groups",
               "8", "-o", out("v2.safetensors"))
    convert_fails(["norm_num_groups 32 does not divide"], "random", "--kind", "vae", "--block-out-channels", "16,32",
                  "-o", out("v3.safetensors"))
    convert_fails(["--preset"], "random", "--kind", "sit", "--preset", "XXL/2", "-o", out("x.safetensors"))
    convert_fails(["--heads is required"], "random", "--kind", "sit", "--hidden", "40", "--depth", "2",
                  "-o", out("x.safetensors"))
    # the random file converts back to itself (engine safetensors are accepted as convert input)
    convert_ok("convert", out("a.safetensors"), "-o", out("a2.safetensors"), "--num-heads", "2", "--source",
               meta.get("source", ""))
    t1, _ = st.load(out("a.safetensors"))
    t2, _ = st.load(out("a2.safetensors"))
    check(all(np.array_equal(t1[k], t2[k]) for k in t1), "round trip")


def case_inspect(tmp):
    """inspect: .pt summary + inference, engine file table, inconsistent engine file reported."""
    m = SiT(input_size=8, patch=2, C=4, D=64, depth=2, ncls=10)
    src = os.path.join(tmp, "ck.pt")
    torch.save({"model": m.state_dict(), "ema": m.state_dict(), "args": argparse.Namespace(a=1)}, src)
    rc, o, e = run_cli("inspect", src)
    check(rc == 0 and "'model': dict with 32 entries" in o and "'args': Namespace" in o
          and "convert would infer" in o and "kind: sit" in o, f"inspect .pt:\n{o}{e}")
    check("checkpoint key: 'ema'" in o, o)
    out = os.path.join(tmp, "e.safetensors")
    convert_ok("convert", src, "-o", out)
    rc, o, _ = run_cli("inspect", out)
    check(rc == 0 and "blocks.1.mlp.fc2.weight" in o and "role = predictor" in o and "consistent" in o, o)
    t, meta = st.load(out)
    del t["blocks.1.mlp.fc2.bias"]
    st.save(os.path.join(tmp, "broken.safetensors"), t, meta)
    rc, o, _ = run_cli("inspect", os.path.join(tmp, "broken.safetensors"))
    check(rc == 1 and "missing tensor 'blocks.1.mlp.fc2.bias'" in o, o)
    rc, o, e = run_cli("inspect", os.path.join(tmp, "nope.pt"))
    check(rc == 2 and "no such file" in e, e)


CASES = OrderedDict([
    ("sit_bare", case_sit_bare),
    ("sit_train", case_sit_train),
    ("refiner_train", case_refiner_train),
    ("dit_bare", case_dit_bare),
    ("vae_diffusers", case_vae_diffusers),
    ("vae_diffusers_deprecated", case_vae_deprecated),
    ("vae_ldm", case_vae_ldm),
    ("vae_ldm_prefixed", case_vae_ldm_prefixed),
    ("conformance", case_conformance),
    ("errors", case_errors),
    ("random", case_random),
    ("inspect", case_inspect),
])


def main():
    names = sys.argv[1:] or ["all"]
    if names == ["all"]:
        names = list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; available: all, {', '.join(CASES)}")
        return 2
    passed = failed = 0
    t_all = time.time()
    for name in names:
        tmp = tempfile.mkdtemp(prefix=f"convert_check_{name}_")
        t0 = time.time()
        try:
            note = CASES[name](tmp)
            passed += 1
            print(f"PASS {name} ({time.time() - t0:.1f} s){': ' + note if note else ''}", flush=True)
        except CheckFailed as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception:  # noqa: BLE001
            failed += 1
            print(f"FAIL {name}: exception\n{traceback.format_exc()}", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed, 0 skipped ({time.time() - t_all:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
