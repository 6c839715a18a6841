#!/usr/bin/python3
"""flowturbo weight converter: official checkpoints -> the engine's safetensors format (FORMAT.md).

Subcommands
  convert INPUT -o OUT.safetensors   SiT/DiT predictor, FlowTurbo refiner or SD-VAE decoder
  inspect FILE                       metadata + tensor table of an engine file, or what `convert` would infer
  random  --kind sit|refiner|vae ... a seeded, randomly initialised model of any size (every layer non-zero)

Inputs of `convert`: PyTorch .pt/.pth/.ckpt (bare state_dict, or a training checkpoint wrapped in
"model"/"ema"/"state_dict"; DDP "module." and LDM "first_stage_model." prefixes are stripped) and
.safetensors (diffusers AutoencoderKL `diffusion_pytorch_model.safetensors`, or an engine file).
The VAE may use the current diffusers names, the deprecated diffusers attention names
(query/key/value/proj_attn) or the original LDM names (reversed up-block numbering, 1x1-conv attention);
everything is written with the current diffusers names.

Run with the Debian python (/usr/bin/python3) that has torch; torch is needed only to read .pt/.ckpt files.
Exit status: 0 ok, 2 bad input or bad arguments (one clear message, no traceback).
"""
import argparse
import json
import math
import os
import pickle
import re
import sys
import time
import zlib
from collections import Counter, OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402

FORMAT_VERSION = "1"
FREQ_EMBED = 256  # SiT/DiT TimestepEmbedder frequency_embedding_size
DEFAULT_SCALING = 0.18215
DEFAULT_GROUPS = 32

# name -> (hidden, depth, heads); patch size comes from the "/p" suffix.
TRANSFORMER_PRESETS = {"S": (384, 12, 6), "B": (768, 12, 12), "L": (1024, 24, 16), "XL": (1152, 28, 16)}
VAE_PRESETS = {
    # stabilityai/sd-vae-ft-ema (= the kl-f8 first stage of Stable Diffusion / LDM)
    "sd": dict(block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32,
               latent_channels=4, out_channels=3),
    # the conformance decoder (/work/shared/conformance/vae.ckpt: ch 32, ch_mult 1,2,2, num_res_blocks 1)
    "tiny": dict(block_out_channels=[32, 64, 64], layers_per_block=1, norm_num_groups=32,
                 latent_channels=4, out_channels=3),
}
DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


class UserError(Exception):
    """Bad input or arguments: reported as one message, exit status 2."""


def info(msg):
    print(msg, flush=True)


def warn(msg):
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def fmt_shape(shape):
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def fmt_count(n):
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


# --------------------------------------------------------------------------------------------------
# Tensor helpers (torch tensors or numpy arrays)
# --------------------------------------------------------------------------------------------------

def is_tensor(v):
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, (str, bytes))


def shape_of(v):
    return tuple(int(d) for d in v.shape)


def to_f32(name, v):
    if hasattr(v, "detach"):  # torch
        if not v.is_floating_point():
            raise UserError(f"tensor '{name}' has non-float dtype {v.dtype}")
        return v.detach().cpu().float().numpy()
    arr = np.asarray(v)
    if arr.dtype.kind != "f":
        raise UserError(f"tensor '{name}' has non-float dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def mode(values):
    """Most common value (first seen wins ties), so one misshaped tensor does not skew inference."""
    return Counter(values).most_common(1)[0][0] if values else None


# --------------------------------------------------------------------------------------------------
# Expected tensors (single source of truth for convert validation, random generation and inspect)
# --------------------------------------------------------------------------------------------------

def transformer_spec(cfg):
    """[(name, shape)] of a SiT/DiT-layout transformer, in the official state_dict order."""
    D, p, C = cfg["hidden_size"], cfg["patch_size"], cfg["in_channels"]
    cin = 2 * C if cfg["role"] == "refiner" else C
    F = cfg["mlp_hidden"]
    T = (cfg["input_size"] // p) ** 2
    fo = p * p * cfg["out_channels"]
    spec = [
        ("pos_embed", (1, T, D)),
        ("x_embedder.proj.weight", (D, cin, p, p)),
        ("x_embedder.proj.bias", (D,)),
        ("t_embedder.mlp.0.weight", (D, FREQ_EMBED)),
        ("t_embedder.mlp.0.bias", (D,)),
        ("t_embedder.mlp.2.weight", (D, D)),
        ("t_embedder.mlp.2.bias", (D,)),
        ("y_embedder.embedding_table.weight", (cfg["num_classes"] + 1, D)),
    ]
    for l in range(cfg["depth"]):
        b = f"blocks.{l}."
        spec += [
            (b + "attn.qkv.weight", (3 * D, D)), (b + "attn.qkv.bias", (3 * D,)),
            (b + "attn.proj.weight", (D, D)), (b + "attn.proj.bias", (D,)),
            (b + "mlp.fc1.weight", (F, D)), (b + "mlp.fc1.bias", (F,)),
            (b + "mlp.fc2.weight", (D, F)), (b + "mlp.fc2.bias", (D,)),
            (b + "adaLN_modulation.1.weight", (6 * D, D)), (b + "adaLN_modulation.1.bias", (6 * D,)),
        ]
    spec += [
        ("final_layer.linear.weight", (fo, D)), ("final_layer.linear.bias", (fo,)),
        ("final_layer.adaLN_modulation.1.weight", (2 * D, D)), ("final_layer.adaLN_modulation.1.bias", (2 * D,)),
    ]
    return spec


def vae_spec(cfg):
    """[(name, shape)] of the SD-VAE decoder path, current diffusers names."""
    boc = cfg["block_out_channels"]
    L, O = cfg["latent_channels"], cfg["out_channels"]
    n = len(boc)
    rev = list(reversed(boc))
    top = boc[-1]

    def resnet(prefix, cin, cout):
        s = [
            (prefix + "norm1.weight", (cin,)), (prefix + "norm1.bias", (cin,)),
            (prefix + "conv1.weight", (cout, cin, 3, 3)), (prefix + "conv1.bias", (cout,)),
            (prefix + "norm2.weight", (cout,)), (prefix + "norm2.bias", (cout,)),
            (prefix + "conv2.weight", (cout, cout, 3, 3)), (prefix + "conv2.bias", (cout,)),
        ]
        if cin != cout:
            s += [(prefix + "conv_shortcut.weight", (cout, cin, 1, 1)), (prefix + "conv_shortcut.bias", (cout,))]
        return s

    spec = [("post_quant_conv.weight", (L, L, 1, 1)), ("post_quant_conv.bias", (L,)),
            ("decoder.conv_in.weight", (top, L, 3, 3)), ("decoder.conv_in.bias", (top,))]
    spec += resnet("decoder.mid_block.resnets.0.", top, top)
    a = "decoder.mid_block.attentions.0."
    spec += [(a + "group_norm.weight", (top,)), (a + "group_norm.bias", (top,))]
    for proj in ("to_q", "to_k", "to_v", "to_out.0"):
        spec += [(a + proj + ".weight", (top, top)), (a + proj + ".bias", (top,))]
    spec += resnet("decoder.mid_block.resnets.1.", top, top)
    prev = top
    for i in range(n):
        out = rev[i]
        for j in range(cfg["layers_per_block"] + 1):
            spec += resnet(f"decoder.up_blocks.{i}.resnets.{j}.", prev if j == 0 else out, out)
        if i < n - 1:
            spec += [(f"decoder.up_blocks.{i}.upsamplers.0.conv.weight", (out, out, 3, 3)),
                     (f"decoder.up_blocks.{i}.upsamplers.0.conv.bias", (out,))]
        prev = out
    spec += [("decoder.conv_norm_out.weight", (boc[0],)), ("decoder.conv_norm_out.bias", (boc[0],)),
             ("decoder.conv_out.weight", (O, boc[0], 3, 3)), ("decoder.conv_out.bias", (O,))]
    return spec


def fmt_ratio(mlp_hidden, hidden):
    """mlp_ratio as a string s with int(hidden * float(s)) == mlp_hidden (the engine's rule)."""
    r = mlp_hidden / hidden
    for _ in range(8):
        if int(hidden * r) == mlp_hidden:
            return repr(r)
        r = float(np.nextafter(r, np.inf))
    raise UserError(f"no mlp_ratio gives MLP hidden {mlp_hidden} for hidden_size {hidden}")


def transformer_meta(cfg, source):
    return OrderedDict([
        ("flowturbo.format", FORMAT_VERSION),
        ("role", cfg["role"]),
        ("arch", "sit"),
        ("input_size", cfg["input_size"]),
        ("in_channels", cfg["in_channels"]),
        ("out_channels", cfg["out_channels"]),
        ("patch_size", cfg["patch_size"]),
        ("hidden_size", cfg["hidden_size"]),
        ("depth", cfg["depth"]),
        ("num_heads", cfg["num_heads"]),
        ("mlp_ratio", fmt_ratio(cfg["mlp_hidden"], cfg["hidden_size"])),
        ("num_classes", cfg["num_classes"]),
        ("learn_sigma", "true" if cfg["learn_sigma"] else "false"),
        ("guided_channels", cfg["guided_channels"]),
        ("source", source),
    ])


def vae_meta(cfg, source):
    return OrderedDict([
        ("flowturbo.format", FORMAT_VERSION),
        ("role", "vae"),
        ("arch", "sd-vae-decoder"),
        ("latent_channels", cfg["latent_channels"]),
        ("out_channels", cfg["out_channels"]),
        ("block_out_channels", ",".join(str(c) for c in cfg["block_out_channels"])),
        ("layers_per_block", cfg["layers_per_block"]),
        ("norm_num_groups", cfg["norm_num_groups"]),
        ("scaling_factor", repr(float(cfg["scaling_factor"]))),
        ("source", source),
    ])


def cfg_line(cfg):
    if cfg["role"] == "vae":
        keys = ("latent_channels", "out_channels", "block_out_channels", "layers_per_block", "norm_num_groups",
                "scaling_factor")
    else:
        keys = ("input_size", "patch_size", "in_channels", "out_channels", "hidden_size", "depth", "num_heads",
                "mlp_hidden", "num_classes", "learn_sigma", "guided_channels")

    def v(x):
        if x is None:
            return "?"
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, list):
            return ",".join(map(str, x))
        return str(x)
    return " ".join(f"{k}={v(cfg[k])}" for k in keys)


def check_against_spec(found, spec, origin=None, what="model", source_name=None):
    """found: name -> shape. Returns problem strings naming each missing / misshaped / unexpected tensor.
    origin: engine name -> source name (for renamed layouts); source_name(engine name) -> the name the
    tensor would have had in the input's layout (for missing tensors)."""
    problems = []
    expected = OrderedDict(spec)

    def via(name):
        src = origin.get(name) if origin else None
        return f" (from '{src}')" if src and src != name else ""
    for name, shape in expected.items():
        if name not in found:
            alt = source_name(name) if source_name else None
            alt = f", '{alt}' in the input's naming" if alt and alt != name else ""
            problems.append(f"missing tensor '{name}'{alt} (expected shape {fmt_shape(shape)})")
        elif tuple(found[name]) != tuple(shape):
            problems.append(f"tensor '{name}'{via(name)} has shape {fmt_shape(found[name])}, "
                            f"expected {fmt_shape(shape)}")
    for name, shape in found.items():
        if name not in expected:
            problems.append(f"unexpected tensor '{name}'{via(name)} {fmt_shape(shape)}: not part of a {what}")
    return problems


def raise_problems(problems, context):
    shown = problems[:12]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    raise UserError(context + "\n  - " + "\n  - ".join(shown) + more)


def check_transformer_cfg(cfg):
    D = cfg["hidden_size"]
    if cfg["num_heads"] <= 0 or D % cfg["num_heads"]:
        raise UserError(f"num_heads {cfg['num_heads']} does not divide hidden_size {D}")
    C = cfg["in_channels"]
    if not 1 <= cfg["guided_channels"] <= C:
        raise UserError(f"guided_channels {cfg['guided_channels']} must be in 1..in_channels ({C})")
    if cfg["out_channels"] != (2 * C if cfg["learn_sigma"] else C):
        raise UserError(f"out_channels {cfg['out_channels']} inconsistent with in_channels {C} and "
                        f"learn_sigma {cfg['learn_sigma']}")
    if cfg["input_size"] % cfg["patch_size"]:
        raise UserError(f"input_size {cfg['input_size']} is not a multiple of patch_size {cfg['patch_size']}")


def check_vae_cfg(cfg):
    g = cfg["norm_num_groups"]
    for c in cfg["block_out_channels"]:
        if g <= 0 or c % g:
            raise UserError(f"norm_num_groups {g} does not divide block channel count {c} "
                            f"(block_out_channels {cfg['block_out_channels']}); pass --norm-num-groups")
    if not cfg["scaling_factor"] > 0:
        raise UserError(f"scaling_factor must be > 0 (got {cfg['scaling_factor']})")


def default_heads(D):
    """num_heads is not stored in SiT/DiT checkpoints: released convention XL -> head dim 72, else 64."""
    if D == 1152:
        return 16, "hidden_size 1152 = SiT/DiT-XL, head dim 72"
    if D % 64 == 0:
        return D // 64, "head dim 64, the S/B/L convention"
    return None, None


# --------------------------------------------------------------------------------------------------
# Reading inputs
# --------------------------------------------------------------------------------------------------

class _Stub:
    """Stands in for classes of unavailable modules (pytorch_lightning callbacks, ...) inside checkpoints."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state


class _StubUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return type(name, (_Stub,), {"__module__": module})


class _StubPickleModule:
    __name__ = "pickle"
    Unpickler = _StubUnpickler
    load = staticmethod(lambda f, **kw: _StubUnpickler(f, **kw).load())

    def __getattr__(self, item):
        return getattr(pickle, item)


def _looks_like_safetensors(path):
    try:
        st.read_header(path)
        return True
    except (ValueError, OSError):
        return False


def read_input(path):
    """Returns dict(kind='safetensors'|'torch', obj=..., meta=...)."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise UserError(f"{path}: not a regular file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors" or _looks_like_safetensors(path):
        try:
            header, meta, _ = st.read_header(path)
        except ValueError as e:
            raise UserError(f"{path}: not a valid safetensors file ({e})") from None
        tensors, meta = st.load(path)
        return dict(kind="safetensors", obj=tensors, meta=meta)
    try:
        import torch
    except ImportError:
        raise UserError(f"{path}: reading PyTorch checkpoints needs torch; run with /usr/bin/python3") from None
    torch.set_num_threads(1)
    try:
        obj = torch.load(path, map_location="cpu")
    except (ModuleNotFoundError, AttributeError):
        try:  # classes from packages we do not have (e.g. pytorch_lightning callbacks): stub them out
            obj = torch.load(path, map_location="cpu", pickle_module=_StubPickleModule())
        except Exception as e:  # noqa: BLE001 - any failure here means "not a readable checkpoint"
            raise UserError(f"{path}: cannot read as a PyTorch checkpoint ({type(e).__name__}: {e})") from None
    except Exception as e:  # noqa: BLE001
        raise UserError(f"{path}: not a PyTorch checkpoint or safetensors file ({type(e).__name__}: {e})") from None
    return dict(kind="torch", obj=obj, meta={})


def describe_value(v):
    if is_tensor(v):
        return f"tensor {fmt_shape(shape_of(v))} {str(v.dtype).replace('torch.', '')}"
    if isinstance(v, dict):
        nt = sum(1 for x in v.values() if is_tensor(x))
        return f"dict with {len(v)} entries ({nt} tensors)"
    if isinstance(v, (list, tuple)):
        return f"{type(v).__name__} of {len(v)}"
    if isinstance(v, (int, float, str, bool)) or v is None:
        s = repr(v)
        return s if len(s) < 60 else s[:57] + "..."
    return type(v).__name__


WRAPPER_KEYS = ("model", "ema", "state_dict")


def tensors_of(d):
    return OrderedDict((str(k), v) for k, v in d.items() if is_tensor(v))


def strip_prefixes(sd, notes):
    keys = list(sd)
    if keys and sum(k.startswith("module.") for k in keys) * 2 >= len(keys):
        sd = OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in sd.items())
        notes.append("stripped DDP prefix 'module.'")
    fsm = [k for k in sd if k.startswith("first_stage_model.")]
    if fsm:
        others = Counter(k.split(".")[0] for k in sd if not k.startswith("first_stage_model."))
        sd = OrderedDict((k[len("first_stage_model."):], v) for k, v in sd.items() if k.startswith("first_stage_model."))
        msg = f"selected {len(fsm)} 'first_stage_model.*' tensors (prefix stripped)"
        if others:
            msg += "; ignored " + ", ".join(f"{k}.* ({n})" for k, n in others.most_common())
        notes.append(msg)
    return sd


def guess_kind(sd):
    """'transformer', 'vae' or None from key names alone."""
    if "x_embedder.proj.weight" in sd:
        return "transformer"
    if any(k.startswith("decoder.") for k in sd):
        return "vae"
    return None


def unwrap(src, path, key_opt, kind_opt):
    """-> (state_dict, chosen key or None, notes)."""
    obj = src["obj"]
    notes = []
    if src["kind"] == "safetensors":
        if key_opt not in (None, "auto"):
            raise UserError(f"--key {key_opt}: {path} is a safetensors file (a flat tensor dict, no wrapper keys)")
        return strip_prefixes(OrderedDict(obj), notes), None, notes
    if not isinstance(obj, dict):
        raise UserError(f"{path}: top-level object is a {type(obj).__name__}, expected a state_dict or a training "
                        f"checkpoint dict")
    wrappers = [k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)]
    if not wrappers:
        sd = tensors_of(obj)
        if not sd:
            keys = ", ".join(map(str, list(obj)[:12])) or "(empty)"
            raise UserError(f"{path}: no tensors and no 'model'/'ema'/'state_dict' entry; top-level keys: {keys}")
        if key_opt not in (None, "auto"):
            raise UserError(f"--key {key_opt}: {path} is a bare state_dict (no 'model'/'ema'/'state_dict' entry)")
        return strip_prefixes(sd, notes), None, notes
    if key_opt not in (None, "auto"):
        if key_opt not in wrappers:
            raise UserError(f"--key {key_opt}: {path} has no '{key_opt}' entry (it has: {', '.join(wrappers)})")
        chosen, why = key_opt, "--key"
    elif len(wrappers) == 1:
        chosen, why = wrappers[0], "the only wrapper key"
    else:
        first = strip_prefixes(tensors_of(obj[wrappers[0]]), [])
        kind = kind_opt or guess_kind(first)
        if kind == "transformer":
            try:
                kind = classify_transformer(first, None)[0]
            except UserError:
                kind = "sit"
        if kind == "refiner":
            order, why = ("model", "ema", "state_dict"), "FlowTurbo find_model loads 'model' for the refiner"
        elif kind == "vae":
            order, why = ("state_dict", "ema", "model"), "LDM checkpoints keep the weights in 'state_dict'"
        else:
            order, why = ("ema", "model", "state_dict"), "SiT/DiT find_model prefers the EMA weights"
        chosen = next(k for k in order if k in wrappers)
    others = [str(k) for k in obj if k != chosen]
    notes.append(f"checkpoint key: '{chosen}' ({why})" + (f"; also present: {', '.join(others)}" if others else ""))
    sd = tensors_of(obj[chosen])
    if not sd:
        raise UserError(f"{path}: entry '{chosen}' holds no tensors")
    return strip_prefixes(sd, notes), chosen, notes


# --------------------------------------------------------------------------------------------------
# Transformers (SiT / DiT predictor, FlowTurbo refiner)
# --------------------------------------------------------------------------------------------------

def need(sd, name, purpose):
    if name not in sd:
        raise UserError(f"missing tensor '{name}' (needed to infer {purpose})")
    return shape_of(sd[name])


def classify_transformer(sd, kind_opt):
    """-> (kind 'sit'|'refiner', in_channels C, learn_sigma, explanation).

    The patch embed takes Cin channels (C for a predictor, 2C = [x, v] for a refiner); the final layer
    gives p*p*O outputs with O = 2C under learn_sigma, else C."""
    w = need(sd, "x_embedder.proj.weight", "the patch embedding")
    if len(w) != 4 or w[2] != w[3]:
        raise UserError(f"tensor 'x_embedder.proj.weight' has shape {fmt_shape(w)}, expected [D, Cin, p, p]")
    cin, p = w[1], w[2]
    fl = need(sd, "final_layer.linear.weight", "the output channels")
    if fl[0] % (p * p):
        raise UserError(f"tensor 'final_layer.linear.weight' has {fl[0]} rows, not a multiple of patch^2 = {p * p}")
    out = fl[0] // (p * p)
    depth = len({m.group(1) for m in (re.match(r"blocks\.(\d+)\.", k) for k in sd) if m})
    if kind_opt == "refiner":
        if cin % 2 or out not in (cin // 2, cin):
            raise UserError(f"--kind refiner: patch embed takes {cin} channels and the final layer gives {out}; "
                            f"a refiner needs 2C input channels and C or 2C outputs")
        return "refiner", cin // 2, out == cin, "--kind refiner"
    if kind_opt == "sit":
        if out not in (cin, 2 * cin):
            raise UserError(f"--kind sit: patch embed takes {cin} channels and the final layer gives {out}; "
                            f"a predictor needs C input channels and C or 2C outputs")
        return "sit", cin, out == 2 * cin, "--kind sit"
    if out == 2 * cin:
        return "sit", cin, True, f"patch embed takes {cin} channels, final layer gives {out} = 2x{cin} (learn_sigma)"
    if cin == 2 * out:
        return "refiner", out, False, f"patch embed takes {cin} = 2x{out} channels ([x, v]), final layer gives {out}"
    if out == cin:
        if depth == 1 and cin % 2 == 0:
            return ("refiner", cin // 2, True,
                    f"depth 1 and patch embed takes {cin} = 2x{cin // 2} channels ([x, v]), final layer gives "
                    f"{out} (learn_sigma); use --kind sit for a 1-block predictor without learn_sigma")
        return "sit", cin, False, f"patch embed takes {cin} channels, final layer gives {out} (no learn_sigma)"
    raise UserError(f"cannot relate the patch embed's {cin} input channels to the final layer's {out} output "
                    f"channels (expected out = 2*in (predictor), in = 2*out or in = out with depth 1 (refiner)); "
                    f"pass --kind")


def infer_transformer(sd, args, kind_opt, allow_unknown_heads=False):
    kind, C, learn_sigma, why = classify_transformer(sd, kind_opt)
    w = shape_of(sd["x_embedder.proj.weight"])
    D, p = w[0], w[2]
    pe = need(sd, "pos_embed", "input_size")
    if len(pe) != 3 or pe[0] != 1 or pe[2] != D:
        raise UserError(f"tensor 'pos_embed' has shape {fmt_shape(pe)}, expected [1, T, {D}]")
    g = math.isqrt(pe[1])
    if g * g != pe[1]:
        raise UserError(f"tensor 'pos_embed' has {pe[1]} tokens, not a square grid")
    blocks = sorted({int(m.group(1)) for m in (re.match(r"blocks\.(\d+)\.", k) for k in sd) if m})
    if not blocks:
        raise UserError("no 'blocks.N.*' tensors: not a SiT/DiT transformer")
    depth = blocks[-1] + 1
    fc1 = [shape_of(sd[k])[0] for k in sd if re.fullmatch(r"blocks\.\d+\.mlp\.fc1\.weight", k) and sd[k].ndim == 2]
    if not fc1:
        raise UserError("missing tensor 'blocks.0.mlp.fc1.weight' (needed to infer mlp_ratio)")
    F = mode(fc1)
    tab = need(sd, "y_embedder.embedding_table.weight", "num_classes")
    if len(tab) != 2 or tab[0] < 2:
        raise UserError(f"tensor 'y_embedder.embedding_table.weight' has shape {fmt_shape(tab)}, "
                        f"expected [num_classes + 1, {D}]")
    cfg = dict(role="refiner" if kind == "refiner" else "predictor", input_size=g * p, in_channels=C,
               out_channels=2 * C if learn_sigma else C, patch_size=p, hidden_size=D, depth=depth,
               mlp_hidden=F, num_classes=tab[0] - 1, learn_sigma=learn_sigma)
    # Flags that describe the architecture must agree with the tensor shapes.
    for flag, key in (("input_size", "input_size"), ("patch_size", "patch_size"), ("in_channels", "in_channels"),
                      ("hidden_size", "hidden_size"), ("depth", "depth"), ("num_classes", "num_classes")):
        v = getattr(args, flag, None)
        if v is not None and v != cfg[key]:
            raise UserError(f"--{flag.replace('_', '-')} {v} contradicts the checkpoint, whose tensor shapes give "
                            f"{key} = {cfg[key]}")
    if getattr(args, "mlp_ratio", None) is not None and int(D * args.mlp_ratio) != F:
        raise UserError(f"--mlp-ratio {args.mlp_ratio} contradicts the checkpoint (MLP hidden {F}, hidden {D})")
    if getattr(args, "learn_sigma", None) is not None and (args.learn_sigma == "true") != learn_sigma:
        raise UserError(f"--learn-sigma {args.learn_sigma} contradicts the checkpoint's final layer "
                        f"({cfg['out_channels']} output channels for in_channels {C})")
    notes = [f"kind: {kind} ({why})"]
    if getattr(args, "num_heads", None):
        cfg["num_heads"] = args.num_heads
    else:
        h, rule = default_heads(D)
        if h is None:
            if not allow_unknown_heads:
                raise UserError(f"num_heads is not stored in the checkpoint and hidden_size {D} matches no "
                                f"convention (1152 -> 16, multiple of 64 -> hidden/64); pass --num-heads")
            cfg["num_heads"] = None
            notes.append(f"num_heads: unknown for hidden_size {D} (convert needs --num-heads)")
        else:
            cfg["num_heads"] = h
            warn(f"num_heads is not stored in the checkpoint; assuming {h} ({rule}). Pass --num-heads to override.")
    gc = getattr(args, "guided_channels", None)
    if gc is None:
        gc = min(3, C)
        notes.append(f"guided_channels: {gc} (released SiT/DiT/FlowTurbo rule: CFG only on channels 0..2; "
                     f"--guided-channels {C} for standard CFG)")
    cfg["guided_channels"] = gc
    if cfg["num_heads"] is not None:
        check_transformer_cfg(cfg)
    return cfg, notes


def plan_transformer(sd, args, kind_opt, dtype, allow_unknown_heads=False):
    cfg, notes = infer_transformer(sd, args, kind_opt, allow_unknown_heads)
    spec = transformer_spec(cfg)
    problems = check_against_spec({k: shape_of(v) for k, v in sd.items()}, spec, what="SiT/DiT transformer")
    if problems:
        raise_problems(problems, f"the checkpoint does not match a {cfg['role']} with {cfg_line(cfg)}:")
    items = []
    for name, shape in spec:
        t = "F32" if name == "pos_embed" else dtype
        items.append((name, shape, t, (lambda n=name: to_f32(n, sd[n]))))
    return cfg, notes, items


# --------------------------------------------------------------------------------------------------
# VAE decoder
# --------------------------------------------------------------------------------------------------

_LDM_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
_DEPRECATED_ATTN = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def map_vae_key(k, n_ldm_up):
    """One source key (decoder.* / post_quant_conv.*) -> current diffusers name."""
    m = re.fullmatch(r"decoder\.mid\.block_(\d+)\.(.+)", k)
    if m:
        rest = m.group(2).replace("nin_shortcut", "conv_shortcut")
        return f"decoder.mid_block.resnets.{int(m.group(1)) - 1}.{rest}"
    m = re.fullmatch(r"decoder\.mid\.attn_1\.(norm|q|k|v|proj_out)\.(weight|bias)", k)
    if m:
        return f"decoder.mid_block.attentions.0.{_LDM_ATTN[m.group(1)]}.{m.group(2)}"
    m = re.fullmatch(r"decoder\.up\.(\d+)\.block\.(\d+)\.(.+)", k)
    if m:
        rest = m.group(3).replace("nin_shortcut", "conv_shortcut")
        return f"decoder.up_blocks.{n_ldm_up - 1 - int(m.group(1))}.resnets.{m.group(2)}.{rest}"
    m = re.fullmatch(r"decoder\.up\.(\d+)\.upsample\.conv\.(weight|bias)", k)
    if m:
        return f"decoder.up_blocks.{n_ldm_up - 1 - int(m.group(1))}.upsamplers.0.conv.{m.group(2)}"
    if k.startswith("decoder.norm_out."):
        return "decoder.conv_norm_out." + k[len("decoder.norm_out."):]
    m = re.fullmatch(r"decoder\.mid_block\.attentions\.0\.(query|key|value|proj_attn)\.(weight|bias)", k)
    if m:
        return f"decoder.mid_block.attentions.0.{_DEPRECATED_ATTN[m.group(1)]}.{m.group(2)}"
    return k


def ldm_name(name, n_up):
    """Inverse of map_vae_key for the LDM layout (used to name missing tensors in error messages)."""
    inv_attn = {v: k for k, v in _LDM_ATTN.items()}
    m = re.fullmatch(r"decoder\.mid_block\.resnets\.(\d+)\.(.+)", name)
    if m:
        return f"decoder.mid.block_{int(m.group(1)) + 1}.{m.group(2).replace('conv_shortcut', 'nin_shortcut')}"
    m = re.fullmatch(r"decoder\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)", name)
    if m:
        return f"decoder.mid.attn_1.{inv_attn[m.group(1)]}.{m.group(2)}"
    m = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", name)
    if m:
        rest = m.group(3).replace("conv_shortcut", "nin_shortcut")
        return f"decoder.up.{n_up - 1 - int(m.group(1))}.block.{m.group(2)}.{rest}"
    m = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(weight|bias)", name)
    if m:
        return f"decoder.up.{n_up - 1 - int(m.group(1))}.upsample.conv.{m.group(2)}"
    if name.startswith("decoder.conv_norm_out."):
        return "decoder.norm_out." + name[len("decoder.conv_norm_out."):]
    return name


def map_vae(sd, notes):
    """-> (mapped name -> tensor, mapped name -> source name, layout string). Drops encoder/quant_conv/etc."""
    dropped = Counter()
    keep = OrderedDict()
    for k, v in sd.items():
        if k.startswith("decoder.") or k.startswith("post_quant_conv."):
            keep[k] = v
        else:
            dropped[k.split(".")[0]] += 1
    ldm_up = {int(m.group(1)) for m in (re.match(r"decoder\.up\.(\d+)\.", k) for k in keep) if m}
    n_ldm_up = max(ldm_up) + 1 if ldm_up else 0
    if any(k.startswith(("decoder.mid.", "decoder.up.", "decoder.norm_out.")) for k in keep):
        layout = "original LDM (CompVis) names"
    elif any(re.match(r"decoder\.mid_block\.attentions\.0\.(query|key|value|proj_attn)\.", k) for k in keep):
        layout = "deprecated diffusers attention names (query/key/value/proj_attn)"
    else:
        layout = "current diffusers names"
    out, origin = OrderedDict(), {}
    for k, v in keep.items():
        name = map_vae_key(k, n_ldm_up)
        if name in out:
            raise UserError(f"tensor '{name}' is given twice (as '{origin[name]}' and as '{k}')")
        if re.fullmatch(r"decoder\.mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight", name):
            s = shape_of(v)
            if len(s) > 2 and all(d == 1 for d in s[2:]):
                v = v.reshape(s[0], s[1])  # 1x1 conv -> Linear [C, C]
        out[name] = v
        origin[name] = k
    if dropped:
        notes.append("dropped non-decoder tensors: " + ", ".join(f"{p}.* ({n})" for p, n in dropped.most_common()))
    return out, origin, layout


def read_diffusers_config(path):
    """config.json next to a diffusers safetensors file (AutoencoderKL), or {}."""
    cand = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    if not os.path.isfile(cand):
        return {}
    try:
        with open(cand) as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) and cfg.get("_class_name") == "AutoencoderKL" else {}


def infer_vae(m, args, dcfg):
    ups = sorted({int(x.group(1)) for x in (re.match(r"decoder\.up_blocks\.(\d+)\.", k) for k in m) if x})
    if not ups:
        raise UserError("no decoder up blocks ('decoder.up_blocks.N.*' or LDM 'decoder.up.N.*') found")
    n = ups[-1] + 1
    rev = []
    for i in range(n):
        outs = [shape_of(v)[0] for k, v in m.items()
                if re.fullmatch(rf"decoder\.up_blocks\.{i}\.resnets\.\d+\.(conv1|conv2|norm2)\.weight", k)]
        if not outs:
            raise UserError(f"missing tensor 'decoder.up_blocks.{i}.resnets.0.conv1.weight' "
                            f"(needed to infer block_out_channels)")
        rev.append(mode(outs))
    boc = list(reversed(rev))
    counts = [len({int(x.group(1)) for x in (re.match(rf"decoder\.up_blocks\.{i}\.resnets\.(\d+)\.", k)
                                                for k in m) if x}) for i in range(n)]
    lpb = mode(counts) - 1
    if "post_quant_conv.weight" in m:
        L = shape_of(m["post_quant_conv.weight"])[0]
    else:
        L = need(m, "decoder.conv_in.weight", "latent_channels")[1]
    O = need(m, "decoder.conv_out.weight", "out_channels")[0]
    groups = args.norm_num_groups if getattr(args, "norm_num_groups", None) else \
        dcfg.get("norm_num_groups", DEFAULT_GROUPS)
    scaling = args.scaling_factor if getattr(args, "scaling_factor", None) else \
        dcfg.get("scaling_factor", DEFAULT_SCALING)
    cfg = dict(role="vae", block_out_channels=boc, layers_per_block=lpb, latent_channels=L, out_channels=O,
               norm_num_groups=int(groups), scaling_factor=float(scaling))
    for key in ("block_out_channels", "layers_per_block", "latent_channels", "out_channels"):
        if key in dcfg and dcfg[key] != cfg[key]:
            warn(f"config.json says {key} = {dcfg[key]} but the tensors give {cfg[key]}; using the tensors")
    check_vae_cfg(cfg)
    return cfg


def plan_vae(sd, args, dtype, path):
    notes = []
    m, origin, layout = map_vae(sd, notes)
    notes.insert(0, f"kind: vae decoder ({layout})")
    dcfg = read_diffusers_config(path) if path.lower().endswith(".safetensors") else {}
    if dcfg:
        notes.append("read norm_num_groups/scaling_factor defaults from the diffusers config.json next to the input")
    cfg = infer_vae(m, args, dcfg)
    spec = vae_spec(cfg)
    n_up = len(cfg["block_out_channels"])
    problems = check_against_spec({k: shape_of(v) for k, v in m.items()}, spec, origin, what="SD-VAE decoder",
                                  source_name=(lambda n: ldm_name(n, n_up)) if layout.startswith("original LDM")
                                  else None)
    if problems:
        raise_problems(problems, f"the checkpoint does not match an SD-VAE decoder with {cfg_line(cfg)}:")
    items = [(name, shape, dtype, (lambda n=name: to_f32(origin[n], m[n]))) for name, shape in spec]
    return cfg, notes, items


# --------------------------------------------------------------------------------------------------
# convert / inspect
# --------------------------------------------------------------------------------------------------

def build_plan(path, args, dtype="F32", allow_unknown_heads=False):
    src = read_input(path)
    kind_opt = args.kind if getattr(args, "kind", "auto") != "auto" else None
    want = {"sit": "transformer", "refiner": "transformer", "vae": "vae"}.get(kind_opt)
    sd, key, notes = unwrap(src, path, getattr(args, "key", "auto"), kind_opt)
    kind = guess_kind(sd)
    if kind is None:
        if any(k.startswith(("transformer_blocks.", "pos_embed.proj.")) for k in sd):
            raise UserError(f"{path}: looks like a diffusers Transformer2DModel (DiT) checkpoint; convert the "
                            f"original DiT/SiT .pt instead")
        sample = ", ".join(list(sd)[:6])
        raise UserError(f"{path}: unrecognised checkpoint: no 'x_embedder.proj.weight' (SiT/DiT/refiner) and no "
                        f"'decoder.*' tensors (VAE); first tensors: {sample}")
    if want and want != kind:
        raise UserError(f"--kind {kind_opt}: {path} holds a {'SiT/DiT transformer' if kind == 'transformer' else 'VAE'}"
                        f" (found {'x_embedder.proj.weight' if kind == 'transformer' else 'decoder.* tensors'})")
    if kind == "transformer":
        cfg, more, items = plan_transformer(sd, args, kind_opt, dtype, allow_unknown_heads)
    else:
        cfg, more, items = plan_vae(sd, args, dtype, path)
    source = getattr(args, "source", None) or (os.path.basename(path) + (f" [{key}]" if key else ""))
    meta = vae_meta(cfg, source) if kind == "vae" else (
        transformer_meta(cfg, source) if cfg["num_heads"] is not None else None)
    return dict(src=src, key=key, cfg=cfg, notes=notes + more, items=items, meta=meta)


def write_items(out, items, meta):
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d):
        raise UserError(f"{out}: output directory {d} does not exist")
    tmp = out + ".tmp"
    try:
        st.save_stream(tmp, items, meta)
        os.replace(tmp, out)
    except OSError as e:
        raise UserError(f"{out}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def cmd_convert(args):
    t0 = time.time()
    dtype = DTYPES[args.dtype]
    plan = build_plan(args.input, args, dtype)
    info(f"read {args.input}")
    for n in plan["notes"]:
        info(f"  {n}")
    cfg = plan["cfg"]
    info(f"  config: {cfg_line(cfg)}")
    write_items(args.output, plan["items"], plan["meta"])
    nparams = sum(int(np.prod(s)) for _, s, _, _ in plan["items"])
    keep = " (pos_embed kept F32)" if dtype != "F32" and cfg["role"] != "vae" else ""
    info(f"wrote {args.output}: role {cfg['role']}, {len(plan['items'])} tensors, {fmt_count(nparams)} params, "
         f"{dtype}{keep}, {os.path.getsize(args.output) / 1e6:.1f} MB in {time.time() - t0:.1f} s")
    return 0


def validate_engine_header(header, meta):
    """Problems of an engine file against FORMAT.md (from the header only)."""
    role = meta.get("role")
    try:
        if role in ("predictor", "refiner"):
            D = int(meta["hidden_size"])
            ratio = float(meta["mlp_ratio"])
            C = int(meta["in_channels"])
            cfg = dict(role=role, input_size=int(meta["input_size"]), in_channels=C,
                       out_channels=int(meta["out_channels"]), patch_size=int(meta["patch_size"]), hidden_size=D,
                       depth=int(meta["depth"]), num_heads=int(meta["num_heads"]), mlp_hidden=int(D * ratio),
                       num_classes=int(meta["num_classes"]), learn_sigma=meta["learn_sigma"] == "true",
                       guided_channels=int(meta["guided_channels"]))
            check_transformer_cfg(cfg)
            spec = transformer_spec(cfg)
            what = "SiT/DiT transformer"
        elif role == "vae":
            cfg = dict(role="vae", block_out_channels=[int(c) for c in meta["block_out_channels"].split(",")],
                       layers_per_block=int(meta["layers_per_block"]), latent_channels=int(meta["latent_channels"]),
                       out_channels=int(meta["out_channels"]), norm_num_groups=int(meta["norm_num_groups"]),
                       scaling_factor=float(meta["scaling_factor"]))
            check_vae_cfg(cfg)
            spec = vae_spec(cfg)
            what = "SD-VAE decoder"
        else:
            return [f"metadata 'role' is {role!r}, expected predictor, refiner or vae"]
    except KeyError as e:
        return [f"metadata key {e} missing"]
    except (ValueError, UserError) as e:
        return [f"bad metadata: {e}"]
    probs = check_against_spec({k: v["shape"] for k, v in header.items()}, spec, what=what)
    for k, v in header.items():
        if v["dtype"] not in ("F32", "F16", "BF16"):
            probs.append(f"tensor '{k}' has dtype {v['dtype']}, expected F32/F16/BF16")
    return probs


def cmd_inspect(args):
    path = args.file
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    if _looks_like_safetensors(path):
        header, meta, _ = st.read_header(path)
        if "flowturbo.format" in meta:
            return inspect_engine(path, header, meta, args.stats)
        info(f"{path}: safetensors file with {len(header)} tensors (not an engine file)")
        for k, v in meta.items():
            info(f"  metadata {k} = {v}")
    src = None
    try:
        src = read_input(path)
    except UserError as e:
        info(f"cannot read: {e}")
        return 2
    if src["kind"] == "torch":
        obj = src["obj"]
        if isinstance(obj, dict):
            info(f"{path}: PyTorch checkpoint, top-level dict with {len(obj)} entries:")
            shown = list(obj.items())[:20]
            for k, v in shown:
                info(f"  {str(k)!r}: {describe_value(v)}")
            if len(obj) > len(shown):
                info(f"  ... {len(obj) - len(shown)} more")
        else:
            info(f"{path}: PyTorch file holding a {type(obj).__name__}")
    try:
        plan = build_plan(path, args, "F32", allow_unknown_heads=True)
    except UserError as e:
        info(f"convert would fail: {e}")
        return 0
    info("convert would infer:")
    for n in plan["notes"]:
        info(f"  {n}")
    info(f"  config: {cfg_line(plan['cfg'])}")
    nparams = sum(int(np.prod(s)) for _, s, _, _ in plan["items"])
    info(f"  {len(plan['items'])} tensors, {fmt_count(nparams)} params")
    return 0


def inspect_engine(path, header, meta, stats):
    info(f"{path}: engine safetensors file ({os.path.getsize(path) / 1e6:.1f} MB)")
    info("metadata:")
    for k, v in meta.items():
        info(f"  {k} = {v}")
    data = st.load(path)[0] if stats else None
    w = max([len(k) for k in header] + [6])
    head = f"{'tensor':<{w}}  dtype  {'shape':<22} {'params':>12}"
    if stats:
        head += f" {'rms':>10} {'absmax':>10} {'zeros':>6}"
    info(head)
    total, nbytes, dts = 0, 0, Counter()
    for k, v in header.items():
        n = int(np.prod(v["shape"], dtype=np.int64))
        total += n
        nbytes += v["data_offsets"][1] - v["data_offsets"][0]
        dts[v["dtype"]] += 1
        line = f"{k:<{w}}  {v['dtype']:<5}  {fmt_shape(v['shape']):<22} {n:>12,}"
        if stats:
            a = data[k].astype(np.float64)
            line += f" {np.sqrt(np.mean(a * a)):>10.4g} {np.abs(a).max():>10.4g} {int((a == 0).sum()):>6}"
        info(line)
    info(f"total: {len(header)} tensors, {total:,} params ({fmt_count(total)}), {nbytes / 1e6:.1f} MB data; "
         + ", ".join(f"{d} x{c}" for d, c in dts.items()))
    probs = validate_engine_header(header, meta)
    if probs:
        info("NOT consistent with FORMAT.md:")
        for p in probs[:20]:
            info(f"  - {p}")
        return 1
    info("consistent with FORMAT.md")
    return 0


# --------------------------------------------------------------------------------------------------
# random
# --------------------------------------------------------------------------------------------------

def sincos_pos_embed(D, grid):
    """MAE 2-D sin-cos table [1, grid*grid, D] (SiT/DiT get_2d_sincos_pos_embed, float64 -> float32)."""
    if D % 4:
        raise UserError(f"hidden_size {D} must be a multiple of 4 for the 2-D sin-cos position embedding")
    omega = 1.0 / 10000 ** (np.arange(D // 4, dtype=np.float64) / (D / 4.0))
    w, h = np.meshgrid(np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32))  # grid[0] = w

    def emb1d(pos):
        out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    return np.concatenate([emb1d(w), emb1d(h)], axis=1)[None].astype(np.float32)


def _rng(seed, name):
    return np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32, zlib.crc32(name.encode())])


def _normal(rng, shape, std):
    a = rng.standard_normal(shape, dtype=np.float32)
    a *= np.float32(std)
    return a


def random_transformer_tensor(name, shape, cfg, seed):
    """Scaled-normal init with every layer non-zero; activations stay O(1) through the depth.

    Linear/conv weights ~ N(0, 1/fan_in); biases ~ N(0, 0.02^2); label table ~ N(0, 0.5^2);
    adaLN rows scaled per chunk so that shift/scale ~ 0.25 and the residual gates ~ 1/sqrt(2*depth)."""
    if name == "pos_embed":
        return sincos_pos_embed(shape[2], math.isqrt(shape[1]))
    rng = _rng(seed, name)
    if name.endswith(".bias"):
        return _normal(rng, shape, 0.02)
    if name == "y_embedder.embedding_table.weight":
        return _normal(rng, shape, 0.5)
    fan_in = int(np.prod(shape[1:]))
    if name.endswith("adaLN_modulation.1.weight"):
        D = shape[1]
        chunks = shape[0] // D
        s_rms = 0.35  # typical rms of SiLU(t_emb + y_emb) under this init
        gate = 1.0 / math.sqrt(2 * max(cfg["depth"], 1))
        target = [0.25, 0.25, gate, 0.25, 0.25, gate][:chunks]  # shift/scale/gate (msa, mlp); final: shift, scale
        a = _normal(rng, (chunks, D, D), 1.0 / (math.sqrt(D) * s_rms))
        a *= np.asarray(target, dtype=np.float32)[:, None, None]
        return a.reshape(shape)
    gain = 1.0
    if name.endswith("mlp.fc2.weight"):
        gain = 1.6  # GELU halves the variance
    elif name == "t_embedder.mlp.2.weight":
        gain = 1.4
    return _normal(rng, shape, gain / math.sqrt(fan_in))


def random_vae_tensor(name, shape, cfg, seed):
    """Convs ~ N(0, 1/fan_in) (the second conv of each resnet 0.7/sqrt(fan_in) to limit residual growth;
    post_quant_conv scaling_factor/sqrt(fan_in) so unit-variance sampler latents give O(1) activations),
    GroupNorm gamma ~ 1 + N(0, 0.1^2), beta ~ N(0, 0.1^2), other biases ~ N(0, 0.02^2)."""
    rng = _rng(seed, name)
    is_norm = re.search(r"(norm1|norm2|group_norm|conv_norm_out)\.(weight|bias)$", name)
    if is_norm:
        a = _normal(rng, shape, 0.1)
        if name.endswith(".weight"):
            a += np.float32(1.0)
        return a
    if name.endswith(".bias"):
        return _normal(rng, shape, 0.02)
    fan_in = int(np.prod(shape[1:]))
    gain = 0.7 if name.endswith("conv2.weight") else 1.0
    if name == "post_quant_conv.weight":
        gain = cfg["scaling_factor"]  # undo the 1/scaling_factor of decode: unit latents -> O(1) activations
    return _normal(rng, shape, gain / math.sqrt(fan_in))


def parse_preset(p):
    m = re.fullmatch(r"(S|B|L|XL)/(\d+)", p or "")
    if not m:
        raise UserError(f"--preset {p!r}: expected S/2, B/2, L/2 or XL/2 (any patch size after the slash)")
    D, depth, heads = TRANSFORMER_PRESETS[m.group(1)]
    return dict(hidden_size=D, depth=depth, num_heads=heads, patch_size=int(m.group(2)))


def random_transformer_cfg(args):
    base = dict(input_size=32, in_channels=4, num_classes=1000, mlp_ratio=4.0, learn_sigma=True, patch_size=2)
    if args.preset or args.hidden is None:
        base.update(parse_preset(args.preset or "XL/2"))  # XL/2 = SiT-XL/2 (refiner: its 1-block refiner)
    elif args.depth is None and args.kind != "refiner":
        raise UserError("random: give --preset S/2|B/2|L/2|XL/2, or --hidden together with --depth")
    if args.kind == "refiner":
        base["depth"] = 1
    over = dict(hidden_size=args.hidden, depth=args.depth, num_heads=args.heads, patch_size=args.patch,
                input_size=args.input_size, in_channels=args.in_channels, num_classes=args.num_classes,
                mlp_ratio=args.mlp_ratio,
                learn_sigma=None if args.learn_sigma is None else args.learn_sigma == "true")
    base.update({k: v for k, v in over.items() if v is not None})
    D = base["hidden_size"]
    if base.get("num_heads") is None:
        h, _ = default_heads(D)
        if h is None:
            raise UserError(f"--heads is required for hidden size {D}")
        base["num_heads"] = h
    for k in ("hidden_size", "depth", "num_heads", "patch_size", "input_size", "in_channels", "num_classes"):
        if base[k] < 1:
            raise UserError(f"{k} must be >= 1 (got {base[k]})")
    C = base["in_channels"]
    cfg = dict(role="refiner" if args.kind == "refiner" else "predictor", input_size=base["input_size"],
               in_channels=C, out_channels=2 * C if base["learn_sigma"] else C, patch_size=base["patch_size"],
               hidden_size=D, depth=base["depth"], num_heads=base["num_heads"],
               mlp_hidden=int(D * base["mlp_ratio"]), num_classes=base["num_classes"],
               learn_sigma=base["learn_sigma"],
               guided_channels=args.guided_channels if args.guided_channels is not None else min(3, C))
    if cfg["mlp_hidden"] < 1:
        raise UserError("mlp_ratio too small")
    check_transformer_cfg(cfg)
    if D % 4:
        raise UserError(f"hidden size {D} must be a multiple of 4 (2-D sin-cos position embedding)")
    return cfg


def random_vae_cfg(args):
    args.vae_preset = args.vae_preset or "sd"
    if args.vae_preset not in VAE_PRESETS:
        raise UserError(f"--vae-preset {args.vae_preset!r}: expected one of {', '.join(VAE_PRESETS)}")
    cfg = dict(VAE_PRESETS[args.vae_preset], role="vae", scaling_factor=DEFAULT_SCALING)
    if args.block_out_channels:
        try:
            cfg["block_out_channels"] = [int(c) for c in args.block_out_channels.split(",")]
        except ValueError:
            raise UserError(f"--block-out-channels {args.block_out_channels!r}: expected e.g. 128,256,512,512") \
                from None
        if not cfg["block_out_channels"] or min(cfg["block_out_channels"]) < 1:
            raise UserError("--block-out-channels needs positive channel counts")
    for flag, key in (("layers_per_block", "layers_per_block"), ("groups", "norm_num_groups"),
                      ("latent_channels", "latent_channels"), ("out_channels", "out_channels"),
                      ("scaling_factor", "scaling_factor")):
        v = getattr(args, flag)
        if v is not None:
            cfg[key] = v
    if cfg["layers_per_block"] < 0 or cfg["latent_channels"] < 1 or cfg["out_channels"] < 1:
        raise UserError("layers_per_block must be >= 0, latent/out channels >= 1")
    check_vae_cfg(cfg)
    return cfg


def cmd_random(args):
    t0 = time.time()
    dtype = DTYPES[args.dtype]
    seed = args.seed
    if seed < 0:
        raise UserError("--seed must be >= 0")
    tflags = [f for f in ("preset", "hidden", "depth", "heads", "patch", "input_size", "in_channels", "num_classes",
                          "mlp_ratio", "learn_sigma", "guided_channels") if getattr(args, f) is not None]
    vflags = [f for f in ("vae_preset", "block_out_channels", "layers_per_block", "groups", "latent_channels",
                          "out_channels", "scaling_factor") if getattr(args, f) is not None]
    wrong = tflags if args.kind == "vae" else vflags
    if wrong:
        raise UserError(f"random --kind {args.kind}: " + ", ".join("--" + f.replace("_", "-") for f in wrong)
                        + (" (transformer options) do not apply to a VAE" if args.kind == "vae"
                           else " (VAE options) do not apply to a transformer"))
    if args.kind == "vae":
        cfg = random_vae_cfg(args)
        spec = vae_spec(cfg)
        gen = random_vae_tensor
        desc = f"vae-preset {args.vae_preset}"
    else:
        cfg = random_transformer_cfg(args)
        spec = transformer_spec(cfg)
        gen = random_transformer_tensor
        desc = f"preset {args.preset}" if args.preset else "explicit config"
    source = args.source or f"random init (seed {seed}, {args.kind}, {desc}, scaled normal, all layers non-zero)"
    meta = vae_meta(cfg, source) if args.kind == "vae" else transformer_meta(cfg, source)
    items = [(name, shape, "F32" if name == "pos_embed" else dtype,
              (lambda n=name, s=shape: gen(n, s, cfg, seed))) for name, shape in spec]
    info(f"random {args.kind}: {cfg_line(cfg)}, seed {seed}")
    write_items(args.output, items, meta)
    nparams = sum(int(np.prod(s)) for _, s in spec)
    info(f"wrote {args.output}: {len(spec)} tensors, {nparams:,} params ({fmt_count(nparams)}), {dtype}, "
         f"{os.path.getsize(args.output) / 1e6:.1f} MB in {time.time() - t0:.1f} s")
    return 0


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

def _pos_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _pos_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}")
    return v


def build_parser():
    ap = argparse.ArgumentParser(
        prog="convert.py", description="Convert SiT/DiT, FlowTurbo refiner and SD-VAE checkpoints to the flowturbo "
        "engine's safetensors format (weights_tool/FORMAT.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  convert.py convert SiT-XL-2-256x256.pt -o predictor.safetensors --dtype bf16\n"
               "  convert.py convert SiT-XL-2-Refiner.pt -o refiner.safetensors\n"
               "  convert.py convert sd-vae-ft-ema/diffusion_pytorch_model.safetensors -o vae.safetensors\n"
               "  convert.py inspect predictor.safetensors\n"
               "  convert.py random --kind sit --preset XL/2 --seed 0 --dtype bf16 -o sit-xl2-random.safetensors")
    sub = ap.add_subparsers(dest="cmd", metavar="{convert,inspect,random}")
    sub.required = True

    def transformer_flags(p, conv):
        g = p.add_argument_group("transformer config" + (" (inferred from shapes; flags must agree)" if conv else ""))
        g.add_argument("--input-size", type=_pos_int)
        g.add_argument("--patch-size" if conv else "--patch", dest="patch_size" if conv else "patch", type=_pos_int)
        g.add_argument("--hidden-size" if conv else "--hidden", dest="hidden_size" if conv else "hidden",
                       type=_pos_int)
        g.add_argument("--depth", type=_pos_int)
        g.add_argument("--in-channels", type=_pos_int, help="channels of the state x (refiner embeds 2x this)")
        g.add_argument("--num-classes", type=_pos_int)
        g.add_argument("--mlp-ratio", type=_pos_float)
        g.add_argument("--learn-sigma", choices=["true", "false"])
        g2 = p.add_argument_group("transformer settings not stored in checkpoints")
        g2.add_argument("--num-heads" if conv else "--heads", dest="num_heads" if conv else "heads", type=_pos_int,
                        help="default: 16 for hidden 1152 (XL, head dim 72), else hidden/64")
        g2.add_argument("--guided-channels", type=_pos_int,
                        help="CFG guides velocity channels [0, N); default 3 (the released SiT/DiT/FlowTurbo rule, "
                             "which their FIDs depend on); in_channels for standard CFG")

    c = sub.add_parser("convert", help="convert a checkpoint to an engine safetensors file",
                       description="Convert a checkpoint (.pt/.pth/.ckpt/.safetensors) to an engine safetensors file.")
    c.add_argument("input", help="SiT/DiT/refiner .pt, LDM .ckpt, diffusers AutoencoderKL .safetensors")
    c.add_argument("-o", "--output", required=True, help="output .safetensors")
    c.add_argument("--kind", choices=["auto", "sit", "refiner", "vae"], default="auto")
    c.add_argument("--key", choices=["auto", "model", "ema", "state_dict"], default="auto",
                   help="wrapper entry of a training checkpoint; auto: 'ema' for SiT/DiT (SiT find_model), 'model' "
                        "for the FlowTurbo refiner (FlowTurboAssemble.find_model), 'state_dict' for LDM .ckpt")
    c.add_argument("--dtype", choices=list(DTYPES), default="f32", help="stored precision (pos_embed stays F32)")
    c.add_argument("--source", help="free text for the 'source' metadata (default: input file name [key])")
    transformer_flags(c, True)
    v = c.add_argument_group("VAE settings not stored in checkpoints")
    v.add_argument("--norm-num-groups", type=_pos_int, help=f"GroupNorm groups (default {DEFAULT_GROUPS})")
    v.add_argument("--scaling-factor", type=_pos_float, help=f"latent scaling factor (default {DEFAULT_SCALING})")
    c.set_defaults(func=cmd_convert)

    i = sub.add_parser("inspect", help="show an engine file's metadata and tensors, or what convert would infer")
    i.add_argument("file")
    i.add_argument("--stats", action="store_true", help="also print rms / absmax / zero count per tensor")
    i.add_argument("--num-heads", type=_pos_int, help=argparse.SUPPRESS)
    i.set_defaults(func=cmd_inspect, kind="auto", key="auto")

    r = sub.add_parser("random", help="write a seeded random model (every layer non-zero)",
                       description="Write a randomly initialised model of any config with every layer non-zero "
                                   "(scaled normal init, real sin-cos pos_embed); seeded and reproducible.")
    r.add_argument("--kind", choices=["sit", "refiner", "vae"], required=True)
    r.add_argument("--preset", help="S/2, B/2, L/2 or XL/2 (default XL/2 unless --hidden is given; refiner: "
                                    "those dims with depth 1 and a 2C-channel patch embed)")
    transformer_flags(r, False)
    v = r.add_argument_group("VAE decoder config")
    v.add_argument("--vae-preset", help="sd (128,256,512,512 x2, the SD-VAE) or tiny (32,64,64 x1)")
    v.add_argument("--block-out-channels", help="e.g. 128,256,512,512 (diffusers order, lowest resolution last)")
    v.add_argument("--layers-per-block", type=int)
    v.add_argument("--groups", type=_pos_int, help="GroupNorm groups")
    v.add_argument("--latent-channels", type=_pos_int)
    v.add_argument("--out-channels", type=_pos_int)
    v.add_argument("--scaling-factor", type=_pos_float)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--dtype", choices=list(DTYPES), default="f32")
    r.add_argument("--source", help="free text for the 'source' metadata")
    r.add_argument("-o", "--output", required=True)
    r.set_defaults(func=cmd_random)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
