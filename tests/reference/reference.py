"""Independent fp32 PyTorch reference for the flowturbo engine.

Written from the semantics in shared/reference/{algorithm,model}.md (SiT / FlowTurbo / LDM code conventions), as plain
functions over a dict of weight tensors with the official key names. Nothing here needs nn.Module.

Contents
  sit_forward(w, cfg, x, t, y, v=None, trace=None)   SiT/DiT velocity transformer (predictor or refiner)
  sample(pred_w, pred_cfg, ref_w, ref_cfg, noise, labels, sampler, cfg_scale)
                                                      FlowTurbo sampler (models_assemble.py semantics), euler:N, heun:N
  vae_decode(w, cfg, latents, trace=None)            SD-VAE decoder (current diffusers key names)
  to_uint8_nhwc(img)                                  trunc(clamp(127.5 x + 128, 0, 255)), NHWC
  philox_normal(seed, n)                              the engine's noise generator (kernels/common/philox.h), numpy

cfg dicts use the engine metadata keys of weights_tool/FORMAT.md with parsed values (see cfg_from_metadata).
All computation is fp32; call torch.set_num_threads(1) in scripts for reproducibility on a shared machine.
"""
import math
import re

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------------------------
# config helpers
# ---------------------------------------------------------------------------------------------------------------------

_INT_KEYS = ("input_size", "in_channels", "out_channels", "patch_size", "hidden_size", "depth", "num_heads",
             "num_classes", "guided_channels", "latent_channels", "layers_per_block", "norm_num_groups")


def cfg_from_metadata(meta):
    """Engine safetensors metadata (all strings) -> dict with typed values."""
    cfg = {}
    for k, v in meta.items():
        if k in _INT_KEYS:
            cfg[k] = int(v)
        elif k in ("mlp_ratio", "scaling_factor"):
            cfg[k] = float(v)
        elif k == "learn_sigma":
            cfg[k] = v.strip().lower() == "true"
        elif k == "block_out_channels":
            cfg[k] = [int(c) for c in v.split(",")]
        else:
            cfg[k] = v
    return cfg


def cfg_to_metadata(cfg):
    """Inverse of cfg_from_metadata (all values as strings)."""
    meta = {}
    for k, v in cfg.items():
        if isinstance(v, bool):
            meta[k] = "true" if v else "false"
        elif isinstance(v, (list, tuple)):
            meta[k] = ",".join(str(c) for c in v)
        elif isinstance(v, float):
            meta[k] = repr(v)
        else:
            meta[k] = str(v)
    return meta


# ---------------------------------------------------------------------------------------------------------------------
# elementary ops (written out by hand)
# ---------------------------------------------------------------------------------------------------------------------

def _linear(x, w, b):
    return torch.matmul(x, w.t()) + b


def _silu(x):
    return x * torch.sigmoid(x)


def _gelu_tanh(z):
    return 0.5 * z * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z * z * z)))


def _layer_norm(x, eps=1e-6):
    """Non-affine LayerNorm over the last dim, biased variance, eps inside the sqrt."""
    mu = x.mean(dim=-1, keepdim=True)
    xc = x - mu
    var = (xc * xc).mean(dim=-1, keepdim=True)
    return xc / torch.sqrt(var + eps)


def _modulate(h, shift, scale):
    return h * (1.0 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def _group_norm(x, groups, gamma, beta, eps=1e-6):
    n, c, hh, ww = x.shape
    g = x.reshape(n, groups, (c // groups) * hh * ww)
    mu = g.mean(dim=-1, keepdim=True)
    gc = g - mu
    var = (gc * gc).mean(dim=-1, keepdim=True)
    g = gc / torch.sqrt(var + eps)
    return g.reshape(n, c, hh, ww) * gamma.view(1, c, 1, 1) + beta.view(1, c, 1, 1)


def _softmax_lastdim(s):
    s = s - s.max(dim=-1, keepdim=True).values
    e = torch.exp(s)
    return e / e.sum(dim=-1, keepdim=True)


# ---------------------------------------------------------------------------------------------------------------------
# SiT / DiT transformer
# ---------------------------------------------------------------------------------------------------------------------

def timestep_embedding(t, dim=256, max_period=10000):
    """cos first, then sin; t unscaled (SiT: t in [0, 1]). Frequencies computed in fp32 as the reference does."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def sit_forward(w, cfg, x, t, y, v=None, trace=None):
    """SiT forward. w: dict of fp32 tensors (official key names); cfg: parsed engine metadata.

    x: [N, C, S, S]; t: [N] float; y: [N] class ids (float or int; num_classes = null);
    v: [N, C, S, S] for a refiner (input is cat([x, v], channels)).
    Returns the velocity channels [N, C, S, S] (learn_sigma half dropped).
    trace: optional dict, filled with intermediates (names as in the golden fixtures).
    """
    def rec(name, val):
        if trace is not None:
            trace[name] = val.detach().clone()

    p = cfg["patch_size"]
    D = cfg["hidden_size"]
    H = cfg["num_heads"]
    hd = D // H
    C_out = cfg["out_channels"]
    depth = cfg["depth"]
    if cfg.get("role") == "refiner":
        if v is None:
            raise ValueError("refiner needs v")
        x = torch.cat([x, v], dim=1)
    N, _, S, _ = x.shape
    g = S // p
    T = g * g

    # (1)+(2) patch embed (conv k=p s=p), tokens row-major, + pos_embed
    e = F.conv2d(x, w["x_embedder.proj.weight"], w["x_embedder.proj.bias"], stride=p)
    e = e.flatten(2).transpose(1, 2)
    h = e + w["pos_embed"]
    rec("x_embed", h)

    # (3)-(5) conditioning
    t_freq = timestep_embedding(t.float())
    rec("t_freq", t_freq)
    t_emb = _linear(_silu(_linear(t_freq, w["t_embedder.mlp.0.weight"], w["t_embedder.mlp.0.bias"])),
                    w["t_embedder.mlp.2.weight"], w["t_embedder.mlp.2.bias"])
    rec("t_emb", t_emb)
    y_emb = w["y_embedder.embedding_table.weight"][y.long()]
    c = t_emb + y_emb
    rec("c", c)
    sc = _silu(c)
    rec("silu_c", sc)

    # (6) blocks
    scale_attn = hd ** -0.5
    for l in range(depth):
        pre = "blocks.%d." % l
        m = _linear(sc, w[pre + "adaLN_modulation.1.weight"], w[pre + "adaLN_modulation.1.bias"])
        rec("mod.block%d" % l, m)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = m.chunk(6, dim=1)

        h1 = _modulate(_layer_norm(h), shift_msa, scale_msa)
        rec("block%d.h1" % l, h1)
        qkv = _linear(h1, w[pre + "attn.qkv.weight"], w[pre + "attn.qkv.bias"])
        rec("block%d.qkv" % l, qkv)
        q, k, vv = qkv.reshape(N, T, 3, H, hd).permute(2, 0, 3, 1, 4)  # each [N, H, T, hd]
        att = _softmax_lastdim(torch.matmul(q, k.transpose(-2, -1)) * scale_attn)
        o = torch.matmul(att, vv).transpose(1, 2).reshape(N, T, D)
        rec("block%d.attn" % l, o)
        a = _linear(o, w[pre + "attn.proj.weight"], w[pre + "attn.proj.bias"])
        rec("block%d.proj" % l, a)
        h = h + gate_msa.unsqueeze(1) * a
        rec("block%d.x_mid" % l, h)

        h2 = _modulate(_layer_norm(h), shift_mlp, scale_mlp)
        rec("block%d.h2" % l, h2)
        u = _gelu_tanh(_linear(h2, w[pre + "mlp.fc1.weight"], w[pre + "mlp.fc1.bias"]))
        rec("block%d.fc1" % l, u)
        u2 = _linear(u, w[pre + "mlp.fc2.weight"], w[pre + "mlp.fc2.bias"])
        rec("block%d.fc2" % l, u2)
        h = h + gate_mlp.unsqueeze(1) * u2
        rec("block%d.out" % l, h)

    # (7) final layer
    mf = _linear(sc, w["final_layer.adaLN_modulation.1.weight"], w["final_layer.adaLN_modulation.1.bias"])
    rec("mod.final", mf)
    shift, scale = mf.chunk(2, dim=1)
    fh = _modulate(_layer_norm(h), shift, scale)
    rec("final.h", fh)
    fo = _linear(fh, w["final_layer.linear.weight"], w["final_layer.linear.bias"])
    rec("final.linear", fo)

    # (8) unpatchify: img[n, c, p*r + pi, p*cc + qi] = fo[n, r*g + cc, (pi*p + qi)*C_out + c]
    img = fo.reshape(N, g, g, p, p, C_out).permute(0, 5, 1, 3, 2, 4).reshape(N, C_out, g * p, g * p)
    # (9) learn_sigma
    if cfg.get("learn_sigma", False):
        img = img[:, : C_out // 2]
    img = img.contiguous()
    rec("out", img)
    return img


# ---------------------------------------------------------------------------------------------------------------------
# sampler
# ---------------------------------------------------------------------------------------------------------------------

def parse_sampler(s):
    """'H1P5R3' -> ('flowturbo', 1, 5, 3); 'heun:3' -> ('flowturbo', 3, 0, 0); 'euler:6' -> ('euler', 6, 0, 0).
    A grid-shift suffix '/s<F>' is not part of this tuple (see split_shift)."""
    s = split_shift(s)[0]
    m = re.fullmatch(r"H(\d+)P(\d+)R(\d+)", s)
    if m:
        return ("flowturbo",) + tuple(int(g) for g in m.groups())
    m = re.fullmatch(r"heun:(\d+)", s)
    if m:
        return ("flowturbo", int(m.group(1)), 0, 0)
    m = re.fullmatch(r"euler:(\d+)", s)
    if m:
        return ("euler", int(m.group(1)), 0, 0)
    raise ValueError("unknown sampler %r" % s)


def split_shift(s):
    """'heun:8/s2' -> ('heun:8', 2.0); 'heun:8' -> ('heun:8', 1.0)."""
    m = re.fullmatch(r"(.+)/s([0-9.eE+-]+)", s)
    if not m:
        return s, 1.0
    shift = float(np.float32(m.group(2)))
    if not 0.0 < shift <= 100.0:
        raise ValueError("grid shift out of (0, 100]: %r" % s)
    return m.group(1), shift


def shifted_grid(n_steps, shift):
    """The shifted grid t_i = F u / (1 + (F - 1) u), u = i / N (float64, rounded to float32; t_N = 1 exactly) and the
    per-step sizes h_k = t[k+1] - t[k] in float32. Written from the grid definition in engine/sampler.h."""
    s = float(np.float32(shift))
    t = np.array([s * (i / n_steps) / (1.0 + (s - 1.0) * (i / n_steps)) for i in range(n_steps + 1)])
    t = t.astype(np.float32)
    t[-1] = np.float32(1.0)
    t = torch.from_numpy(t)
    return t, t[1:] - t[:-1]


def grid_for(n_steps, shift):
    """(t, h per step): the released uniform grid with one constant h when shift == 1, else shifted_grid."""
    if shift == 1.0:
        t, h = time_grid(n_steps)
        return t, [h] * n_steps
    t, h = shifted_grid(n_steps, shift)
    return t, list(h)


def time_grid(n_steps):
    """torch.linspace(0, 1, N + 1) in float32 and h = t[1] - t[0] (one constant step for every update).

    Computed explicitly with torch's documented two-sided float32 formula (the serial CPU kernel of torch >= 2.0 and
    algorithm.md section 1.3): step = 1.0f / N; t[i] = 0 + step * i for i < (N+1)/2, else 1 - step * (N - i).
    (Debian's torch 1.13 CPU build differs for some N because of a vectorised path, e.g. N = 9 gives t[6] =
    0.6666667 = step * 6 instead of 0.6666666 = 1 - step * 3; we do not follow that build quirk.)"""
    f = np.float32
    steps = n_steps + 1
    step = f(1.0) / f(n_steps)
    halfway = steps // 2
    t = np.array([f(0.0) + step * f(i) if i < halfway else f(1.0) - step * f(steps - i - 1) for i in range(steps)],
                 dtype=np.float32)
    t = torch.from_numpy(t)
    return t, t[1] - t[0]


def _cfg_combine(out, B, guided, s):
    """[cond; uncond] rows -> channels [0, guided) get u + s (c - u) in both halves; the rest pass through."""
    eps, rest = out[:, :guided], out[:, guided:]
    cond, uncond = eps[:B], eps[B:]
    half = uncond + s * (cond - uncond)
    return torch.cat([torch.cat([half, half], dim=0), rest], dim=1)


def sample(pred_w, pred_cfg, ref_w, ref_cfg, noise, labels, sampler, cfg_scale, guided_channels=None, stats=None):
    """Runs the sampler and returns the final latents of the conditional half, [B, C, S, S].

    sampler may end in '/s<F>': the shifted time grid (shifted_grid), each update with its own h.
    ref_cfg["refiner_kind"] == "guided" (issue 12, not in the released code): each R step makes ONE refiner call on
    the B conditional rows (labels, x[:B], the carried guided velocity w[:B]), adds its raw offset (no guidance
    combine) and takes an Euler step: d = w + r(x, w, t_i), x += h d, carry d.

    Guidance (cfg_scale > 1): state doubled to 2B = [cond; uncond], y = [labels; null]; every model call sees
    x = [x[:B]; x[:B]]; guidance on channels [0, guided_channels) (default: the predictor's guided_channels; the
    refiner uses the same rule). The refiner's v input is the full 2B carried velocity (not re-halved).
    cfg_scale <= 1: no doubling, plain model calls.
    stats: optional dict receiving NFE counts.
    """
    kind, nh, npc, nr = parse_sampler(sampler)
    shift = split_shift(sampler)[1]
    guided_refiner = ref_cfg is not None and ref_cfg.get("refiner_kind", "released") == "guided"
    noise = torch.as_tensor(noise, dtype=torch.float32)
    labels = torch.as_tensor(labels).long()
    B = noise.shape[0]
    if guided_channels is None:
        guided_channels = pred_cfg.get("guided_channels", pred_cfg["in_channels"])
    guided = cfg_scale > 1.0
    null = pred_cfg["num_classes"]
    if guided:
        x = torch.cat([noise, noise], dim=0)
        y = torch.cat([labels, torch.full((B,), null, dtype=torch.long)], dim=0)
    else:
        x = noise.clone()
        y = labels
    n_rows = x.shape[0]
    nfe = {"predictor": 0, "refiner": 0}

    def V(xs, tv):
        nfe["predictor"] += 1
        tt = torch.ones(n_rows) * tv
        if guided:
            xin = torch.cat([xs[:B], xs[:B]], dim=0)
            return _cfg_combine(sit_forward(pred_w, pred_cfg, xin, tt, y), B, guided_channels, cfg_scale)
        return sit_forward(pred_w, pred_cfg, xs, tt, y)

    def R_guided(xs, ws, tv):
        """One guided-refiner call: the B conditional rows only, raw offset."""
        nfe["refiner"] += 1
        return sit_forward(ref_w, ref_cfg, xs[:B], torch.ones(B) * tv, y[:B], v=ws[:B])

    def R(xs, ws, tv):
        nfe["refiner"] += 1
        tt = torch.ones(n_rows) * tv
        if guided:
            xin = torch.cat([xs[:B], xs[:B]], dim=0)
            return _cfg_combine(sit_forward(ref_w, ref_cfg, xin, tt, y, v=ws), B, guided_channels, cfg_scale)
        return sit_forward(ref_w, ref_cfg, xs, tt, y, v=ws)

    if kind == "euler":
        t, hs = grid_for(nh, shift)
        for i in range(nh):
            d = V(x, t[i])
            x = x + hs[i] * d
    else:
        N = nh + npc + nr
        if N == 0:
            raise ValueError("empty sampler")
        if nr > 0 and nh + npc == 0:
            raise ValueError("refiner steps need a preceding Heun or pseudo-corrector step")
        t, hs = grid_for(N, shift)
        carry = None
        i = 0
        for blk in range(nh + npc):
            use_cache = blk >= nh
            if use_cache and carry is not None:
                d = carry
            else:
                d = V(x, t[i])
            h = hs[i]
            xt = x + h * d
            e = V(xt, t[i + 1])
            x = x + (0.5 * h) * (d + e)
            carry = e
            i += 1
        for _ in range(nr):
            wv = carry
            h = hs[i]
            if guided_refiner:
                d = R_guided(x, wv, t[i]) + wv[:B]
                d = torch.cat([d, d]) if guided else d  # the second half of the state is never read
                x = x + h * d
                carry = d
                i += 1
                continue
            d = R(x, wv, t[i]) + wv
            xt = x + h * d
            e = R(xt, wv, t[i + 1]) + d
            x = x + (0.5 * h) * (d + e)
            carry = d
            i += 1
    if stats is not None:
        stats.update(nfe)
    return x[:B].contiguous()


# ---------------------------------------------------------------------------------------------------------------------
# SD-VAE decoder (diffusers AutoencoderKL Decoder semantics, current key names)
# ---------------------------------------------------------------------------------------------------------------------

def _conv(x, w, pre, pad):
    return F.conv2d(x, w[pre + ".weight"], w[pre + ".bias"], padding=pad)


def _resnet(x, w, pre, groups):
    h = _silu(_group_norm(x, groups, w[pre + ".norm1.weight"], w[pre + ".norm1.bias"]))
    h = _conv(h, w, pre + ".conv1", 1)
    h = _silu(_group_norm(h, groups, w[pre + ".norm2.weight"], w[pre + ".norm2.bias"]))
    h = _conv(h, w, pre + ".conv2", 1)
    if (pre + ".conv_shortcut.weight") in w:
        x = _conv(x, w, pre + ".conv_shortcut", 0)
    return x + h


def _mid_attention(x, w, pre, groups):
    n, c, hh, ww = x.shape
    xn = _group_norm(x, groups, w[pre + ".group_norm.weight"], w[pre + ".group_norm.bias"])
    tok = xn.reshape(n, c, hh * ww).transpose(1, 2)  # [n, HW, C], token = y*W + x
    q = _linear(tok, w[pre + ".to_q.weight"], w[pre + ".to_q.bias"])
    k = _linear(tok, w[pre + ".to_k.weight"], w[pre + ".to_k.bias"])
    v = _linear(tok, w[pre + ".to_v.weight"], w[pre + ".to_v.bias"])
    a = _softmax_lastdim(torch.matmul(q, k.transpose(1, 2)) * (c ** -0.5))
    o = _linear(torch.matmul(a, v), w[pre + ".to_out.0.weight"], w[pre + ".to_out.0.bias"])
    return o.transpose(1, 2).reshape(n, c, hh, ww) + x


def vae_decode(w, cfg, latents, trace=None):
    """latents [N, L, h, w] in the sampler's latent space -> image [N, 3, 8h', 8w'] float (roughly [-1, 1])."""
    def rec(name, val):
        if trace is not None:
            trace[name] = val.detach().clone()

    groups = cfg["norm_num_groups"]
    boc = cfg["block_out_channels"]
    nblk = len(boc)
    lpb = cfg["layers_per_block"]
    z = torch.as_tensor(latents, dtype=torch.float32) / cfg["scaling_factor"]
    rec("scaled", z)
    z = _conv(z, w, "post_quant_conv", 0)
    rec("post_quant", z)
    h = _conv(z, w, "decoder.conv_in", 1)
    rec("conv_in", h)
    h = _resnet(h, w, "decoder.mid_block.resnets.0", groups)
    rec("mid.res0", h)
    h = _mid_attention(h, w, "decoder.mid_block.attentions.0", groups)
    rec("mid.attn", h)
    h = _resnet(h, w, "decoder.mid_block.resnets.1", groups)
    rec("mid.res1", h)
    for i in range(nblk):
        for j in range(lpb + 1):
            h = _resnet(h, w, "decoder.up_blocks.%d.resnets.%d" % (i, j), groups)
        if i < nblk - 1:
            h = h.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest x2
            h = _conv(h, w, "decoder.up_blocks.%d.upsamplers.0.conv" % i, 1)
        rec("up%d" % i, h)
    h = _silu(_group_norm(h, groups, w["decoder.conv_norm_out.weight"], w["decoder.conv_norm_out.bias"]))
    rec("norm_out", h)
    h = _conv(h, w, "decoder.conv_out", 1)
    rec("out", h)
    return h


def to_uint8_nhwc(img):
    """trunc(clamp(127.5 x + 128, 0, 255)) as uint8, NCHW -> NHWC."""
    img = torch.as_tensor(img, dtype=torch.float32)
    return torch.clamp(127.5 * img + 128.0, 0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def ldm_vae_to_diffusers(sd, num_blocks):
    """Rename an LDM (CompVis) VAE state_dict to the engine's current-diffusers names; drops encoder-side tensors.
    LDM up.{k} == up_blocks.{num_blocks-1-k}; attention 1x1 convs become Linear [C, C]."""
    out = {}
    for k, v in sd.items():
        if k.startswith("post_quant_conv."):
            out[k] = v
            continue
        if not k.startswith("decoder."):
            continue
        name = k[len("decoder."):]
        m = re.match(r"up\.(\d+)\.(.*)$", name)
        if m:
            i = num_blocks - 1 - int(m.group(1))
            rest = m.group(2)
            rest = re.sub(r"^block\.(\d+)\.", r"resnets.\1.", rest)
            rest = rest.replace("nin_shortcut", "conv_shortcut")
            rest = rest.replace("upsample.conv", "upsamplers.0.conv")
            name = "up_blocks.%d.%s" % (i, rest)
        elif name.startswith("mid."):
            rest = name[4:]
            rest = rest.replace("block_1.", "resnets.0.").replace("block_2.", "resnets.1.")
            if rest.startswith("attn_1."):
                a = rest[len("attn_1."):]
                a = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}[
                    a.rsplit(".", 1)[0]] + "." + a.rsplit(".", 1)[1]
                rest = "attentions.0." + a
                if v.dim() == 4:
                    v = v[:, :, 0, 0]
            elif "nin_shortcut" in rest:
                rest = rest.replace("nin_shortcut", "conv_shortcut")
            name = "mid_block." + rest
        elif name.startswith("norm_out."):
            name = name.replace("norm_out.", "conv_norm_out.")
        out["decoder." + name] = v.float().contiguous()
    return out


# ---------------------------------------------------------------------------------------------------------------------
# the engine's noise (kernels/common/philox.h), numpy float32
# ---------------------------------------------------------------------------------------------------------------------

_f32 = np.float32


def _fmaf(a, b, c):
    """Correctly rounded float32 fma on arrays: a*b is exact in float64 (24+24 bits); s = fl64(a*b + c) with its
    exact error from TwoSum; when s sits exactly on a float32 rounding midpoint and the error is non-zero, nudge s
    one float64 ulp toward the exact value so that the final rounding to float32 is correct (no double rounding)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    bits = np.asarray(s).view(np.uint64)
    mid = (bits & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)
    fix = mid & (err != 0)
    if np.any(fix):
        s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def _philox4x32_10(c0, c1, c2, c3, k0, k1):
    M0 = np.uint64(0xD2511F53)
    M1 = np.uint64(0xCD9E8D57)
    mask = np.uint64(0xFFFFFFFF)
    c = [np.asarray(c0, np.uint64), np.asarray(c1, np.uint64), np.asarray(c2, np.uint64), np.asarray(c3, np.uint64)]
    k0 = int(k0) & 0xFFFFFFFF
    k1 = int(k1) & 0xFFFFFFFF
    for _ in range(10):
        p0 = M0 * c[0]
        p1 = M1 * c[2]
        hi0, lo0 = p0 >> np.uint64(32), p0 & mask
        hi1, lo1 = p1 >> np.uint64(32), p1 & mask
        c = [hi1 ^ c[1] ^ np.uint64(k0), lo1, hi0 ^ c[3] ^ np.uint64(k1), lo0]
        k0 = (k0 + 0x9E3779B9) & 0xFFFFFFFF
        k1 = (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return [x.astype(np.uint32) for x in c]


def _philox_log(u):
    u = np.asarray(u, dtype=np.float32)
    bits = u.view(np.uint32)
    e = ((bits >> np.uint32(23)) & np.uint32(0xFF)).astype(np.int32) - 127
    m = ((bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000)).view(np.float32)
    big = m > _f32(1.41421356)
    m = np.where(big, m * _f32(0.5), m).astype(np.float32)
    e = e + big.astype(np.int32)
    s = ((m - _f32(1.0)) / (m + _f32(1.0))).astype(np.float32)
    s2 = s * s
    p = _fmaf(s2, _f32(0.0909090909), _f32(0.1111111111))
    p = _fmaf(s2, p, _f32(0.1428571429))
    p = _fmaf(s2, p, _f32(0.2))
    p = _fmaf(s2, p, _f32(0.3333333333))
    p = _fmaf(s2, p, _f32(1.0))
    ln_m = (_f32(2.0) * s) * p
    fe = e.astype(np.float32)
    return _fmaf(fe, _f32(0.693145752), _fmaf(fe, _f32(1.42860677e-06), ln_m))


def _philox_sincos2pi(f):
    f = np.asarray(f, dtype=np.float32)
    f4 = f * _f32(4.0)
    q = f4.astype(np.int32)  # truncation, f4 >= 0
    r = (f4 - q.astype(np.float32)) - _f32(0.5)
    x = r * _f32(1.57079632679)
    x2 = x * x
    sp = _fmaf(x2, _f32(2.75573192e-06), _f32(-1.98412698e-04))
    sp = _fmaf(x2, sp, _f32(8.33333333e-03))
    sp = _fmaf(x2, sp, _f32(-1.66666667e-01))
    sx = _fmaf(x * x2, sp, x)
    cp = _fmaf(x2, _f32(-2.75573192e-07), _f32(2.48015873e-05))
    cp = _fmaf(x2, cp, _f32(-1.38888889e-03))
    cp = _fmaf(x2, cp, _f32(4.16666667e-02))
    cp = _fmaf(x2, cp, _f32(-0.5))
    cx = _fmaf(x2, cp, _f32(1.0))
    sa = (cx + sx) * _f32(0.707106781)
    ca = (cx - sx) * _f32(0.707106781)
    s = np.select([q == 0, q == 1, q == 2], [sa, ca, -sa], -ca).astype(np.float32)
    c = np.select([q == 0, q == 1, q == 2], [ca, -sa, -ca], sa).astype(np.float32)
    return s, c


def philox_normal(seed, n):
    """n float32 normals of one image with 64-bit seed `seed` (element i = normal i%4 of block i//4)."""
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    nblk = (n + 3) // 4
    j = np.arange(nblk, dtype=np.uint64)
    r = _philox4x32_10(j & np.uint64(0xFFFFFFFF), j >> np.uint64(32), np.zeros_like(j), np.zeros_like(j),
                       seed & 0xFFFFFFFF, seed >> 32)
    out = np.empty((nblk, 4), dtype=np.float32)
    for pair in range(2):
        ra, rb = r[2 * pair], r[2 * pair + 1]
        u = ((ra >> np.uint32(8)) + np.uint32(1)).astype(np.float32) * _f32(5.9604644775390625e-08)
        f = (rb >> np.uint32(8)).astype(np.float32) * _f32(5.9604644775390625e-08)
        rho = np.sqrt(_f32(-2.0) * _philox_log(u)).astype(np.float32)
        s, c = _philox_sincos2pi(f)
        out[:, 2 * pair] = rho * c
        out[:, 2 * pair + 1] = rho * s
    return out.reshape(-1)[:n].copy()


def philox_noise(seed, batch, shape):
    """[batch, *shape] noise of one engine call: image b uses seed + b."""
    n = int(np.prod(shape))
    return np.stack([philox_normal(int(seed) + b, n).reshape(shape) for b in range(batch)])
