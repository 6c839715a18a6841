"""Shared pieces of the Fashion-MNIST quality harness (bench/quality): data, classifier features, metrics, the
high-accuracy ODE reference. Run everything with /usr/bin/python3 (Debian torch 1.13 CPU + numpy + matplotlib).

Conventions (weights_tool/fashion/TRAINING.md): x = pixel / 127.5 - 1 in [-1, 1], 28x28 padded to 32x32 with -1,
labels 0..9, null class 10. Engine noise = reference.philox_noise (image k of a call uses seed + k).
"""
import gzip
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # callers decide (the regression script exits 77)
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
# FT_QUALITY_{SIT,REFINER,CLASSIFIER} override the files (tests/test_quality.c honours the same variables)
SIT = os.environ.get("FT_QUALITY_SIT", os.path.join(REPO, "host/models/fashion_sit.safetensors"))
REFINER = os.environ.get("FT_QUALITY_REFINER", os.path.join(REPO, "host/models/fashion_refiner.safetensors"))
CLASSIFIER = os.environ.get("FT_QUALITY_CLASSIFIER", os.path.join(REPO, "bench/models/fashion_classifier.safetensors"))


# ---------------------------------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------------------------------

_ST = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def st_load(path):
    """Minimal safetensors reader: (dict name -> float32/int numpy array, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=_ST[info["dtype"]])
            if arr.dtype == np.float16:
                arr = arr.astype(np.float32)
        out[name] = arr.reshape(info["shape"]).copy()
    return out, meta


def st_metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {}) or {}


def tensor_fingerprint(path):
    """sha256 over the tensor data section only (metadata edits do not change it), first 16 hex digits."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + n)
        return hashlib.sha256(f.read()).hexdigest()[:16]


def trained_steps(meta):
    """Training steps named in an export's 'source' metadata ('... after 3600 steps ...', '... 1000 steps of ...'),
    or 0 when absent."""
    import re
    m = re.search(r"(\d+) steps", meta.get("source", ""))
    return int(m.group(1)) if m else 0


def save_npy_f32(path, arr):
    np.save(path, np.ascontiguousarray(arr, dtype=np.float32))


# ---------------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------------

def _read_idx(path):
    with gzip.open(path, "rb") as f:
        d = f.read()
    ndim = d[3]
    dims = [int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(d, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def have_data():
    return os.path.exists(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz"))


def load_split(split):
    """split 'train' or 't10k' -> (float32 [N, 1, 32, 32] in [-1, 1] padded with -1, int64 labels [N])."""
    imgs = _read_idx(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz"))
    labels = _read_idx(os.path.join(DATA_DIR, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64)
    x = imgs.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)[:, None]
    return np.ascontiguousarray(x, dtype=np.float32), labels


def balanced_subset(labels, n, seed):
    """Indices of n items, n/10 per class (n multiple of 10), drawn without replacement with a fixed seed."""
    rng = np.random.default_rng(seed)
    per = n // 10
    idx = [rng.choice(np.flatnonzero(labels == c), per, replace=False) for c in range(10)]
    return np.sort(np.concatenate(idx))


def quantize(x):
    """What a PNG of the sample holds: round((x + 1) * 127.5) clamped to [0, 255], back to the model space."""
    u = np.clip(np.round((np.asarray(x, dtype=np.float32) + 1.0) * 127.5), 0, 255)
    return (u / 127.5 - 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# classifier (weights_tool/fashion/train_classifier.py, bench/models/fashion_classifier.json), written functionally
# ---------------------------------------------------------------------------------------------------------------------

class Classifier:
    def __init__(self, path=CLASSIFIER):
        if path.endswith(".pt"):
            sd = torch.load(path, map_location="cpu")["model"]
            self.w = {k: v.float() for k, v in sd.items()}
        else:
            w, _ = st_load(path)
            self.w = {k: torch.from_numpy(v).float() for k, v in w.items()}
        self.path = path

    def _feat(self, x):
        w = self.w
        for i in (1, 2, 3):
            x = F.max_pool2d(F.relu(F.conv2d(x, w[f"conv{i}.weight"], w[f"conv{i}.bias"], padding=1)), 2)
        return F.relu(F.linear(x.flatten(1), w["fc1.weight"], w["fc1.bias"]))

    @torch.no_grad()
    def features_logits(self, x, bs=500):
        """x: numpy [N, 1, 32, 32] -> (features float64 [N, 128], logits float64 [N, 10])."""
        feats, logits = [], []
        for s in range(0, len(x), bs):
            f = self._feat(torch.from_numpy(np.ascontiguousarray(x[s:s + bs], dtype=np.float32)))
            feats.append(f.double().numpy())
            logits.append(F.linear(f, self.w["fc2.weight"], self.w["fc2.bias"]).double().numpy())
        return np.concatenate(feats), np.concatenate(logits)


# ---------------------------------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------------------------------

def stats(feats):
    f = np.asarray(feats, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet(mu1, s1, mu2, s2):
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), with symmetric eigendecompositions (no scipy)."""
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sqrt(np.clip(ev, 0, None)).sum()
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def kid(f1, f2, n_subsets=100, subset_size=1000, seed=0):
    """Kernel inception distance (Binkowski et al. 2018): unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, mean and
    std over n_subsets random subsets of subset_size (capped by the smaller set) drawn with a fixed seed."""
    f1 = np.asarray(f1, dtype=np.float64)
    f2 = np.asarray(f2, dtype=np.float64)
    d = f1.shape[1]
    m = min(subset_size, len(f1), len(f2))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_subsets):
        a = f1[rng.choice(len(f1), m, replace=False)]
        b = f2[rng.choice(len(f2), m, replace=False)]
        kaa = (a @ a.T / d + 1) ** 3
        kbb = (b @ b.T / d + 1) ** 3
        kab = (a @ b.T / d + 1) ** 3
        mmd = ((kaa.sum() - np.trace(kaa)) + (kbb.sum() - np.trace(kbb))) / (m * (m - 1)) - 2 * kab.mean()
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def rmse_psnr(x, ref):
    """Global RMSE over all pixels of all images (raw final ODE states, no clamp) and PSNR with peak-to-peak 2."""
    e = np.asarray(x, dtype=np.float64) - np.asarray(ref, dtype=np.float64)
    rmse = float(np.sqrt(np.mean(e * e)))
    return rmse, (float("inf") if rmse == 0 else 20 * math.log10(2.0 / rmse))


class RealReference:
    """Features of the reference images: split 't10k' = the Fashion-MNIST test set (all 10 000, or a class-balanced
    subset of ref_n, seed 4321), the reported tables' reference; split 'holdout' = the 5000 train images held out of
    refiner training (weights_tool/fashion/data.holdout_indices), the reference for selecting models and samplers
    (issue 12). real_baseline draws a class-balanced train subset (seed 1234; disjoint from t10k)."""

    def __init__(self, clf, ref_n=10000, cache_dir=None, split="t10k"):
        key = None
        self.clf = clf
        self.split = split
        self.describe = (f"Fashion-MNIST t10k ({ref_n} images)" if split == "t10k" else
                         "Fashion-MNIST train images held out of refiner training (data.holdout_indices, 5000)")
        if cache_dir:
            key = os.path.join(cache_dir, f"{split}_feats_{ref_n}_{file_hash(clf.path)}.npz")
            if os.path.exists(key):
                z = np.load(key)
                self.feats, self.labels = z["feats"], z["labels"]
                self.acc = float(z["acc"])
                self.mu, self.sigma = stats(self.feats)
                return
        if split == "t10k":
            x, y = load_split("t10k")
            if ref_n < len(x):
                idx = balanced_subset(y, ref_n, seed=4321)
                x, y = x[idx], y[idx]
        else:
            x, y = load_split("train")
            idx = holdout_indices(y)
            x, y = x[idx], y[idx]
        self.feats, logits = clf.features_logits(x)
        self.labels = y
        self.acc = float((logits.argmax(1) == y).mean())
        self.mu, self.sigma = stats(self.feats)
        if key:
            os.makedirs(cache_dir, exist_ok=True)
            np.savez(key, feats=self.feats, labels=self.labels, acc=self.acc)

    def real_baseline(self, n, kid_subsets=100):
        xt, yt = load_split("train")
        idx = balanced_subset(yt, n, seed=1234)
        f, logits = self.clf.features_logits(xt[idx])
        mu, s = stats(f)
        return dict(n=n, fd=frechet(mu, s, self.mu, self.sigma), kid=kid(f, self.feats, n_subsets=kid_subsets)[0],
                    acc=float((logits.argmax(1) == yt[idx]).mean()))

    def score(self, x, labels, kid_subsets=100):
        """x: samples [N, 1, 32, 32] (quantized here like a PNG); labels: the requested classes."""
        f, logits = self.clf.features_logits(quantize(x))
        mu, s = stats(f)
        k, kstd = kid(f, self.feats, n_subsets=kid_subsets)
        return dict(n=len(x), fd=frechet(mu, s, self.mu, self.sigma), kid=k, kid_std=kstd,
                    acc=float((logits.argmax(1) == np.asarray(labels)).mean()))


def holdout_indices(labels):
    """The train images held out of refiner training (weights_tool/fashion/data.py, the one definition)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("fashion_data", os.path.join(REPO, "weights_tool/fashion/data.py"))
    fashion_data = importlib.util.module_from_spec(spec)  # by path: bench/quality/data/ would shadow 'import data'
    spec.loader.exec_module(fashion_data)
    return fashion_data.holdout_indices(torch.from_numpy(np.asarray(labels))).numpy()


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------------------------
# models and the high-accuracy guided ODE solution (reference.py's SiT forward + the same CFG combine)
# ---------------------------------------------------------------------------------------------------------------------

def write_zero_refiner(path, out):
    """The refiner of `path` with its final linear layer zeroed (r = 0 exactly: every R step then steps with the
    carried velocity, d = w) into `out`: same layout, metadata (kind included) and cost; the refiner ablation."""
    sys.path.insert(0, os.path.join(REPO, "weights_tool"))
    import safetensors_io as st
    w, meta = st_load(path)
    for k in ("final_layer.linear.weight", "final_layer.linear.bias"):
        w[k] = np.zeros_like(w[k])
    meta = dict(meta, source="bench/quality: " + meta.get("source", "") + " -- final layer ZEROED (refiner ablation)")
    st.save(out, w, meta, dtype="F16")
    return out


def load_sit(path):
    import reference as R
    w, meta = st_load(path)
    return {k: torch.from_numpy(v).float() for k, v in w.items()}, R.cfg_from_metadata(meta)


def labels_for(n):
    """Labels of image k: k % 10 (what `flowturbo generate --class 0,1,...,9` and time_samplers use)."""
    return np.arange(n) % 10


def guided_velocity(pw, pcfg, cfg_scale):
    """v(x, t) of the guided ODE exactly as the samplers see it: rows [cond; uncond] with x duplicated,
    u + s (c - u) on the guided channels (reference._cfg_combine); cfg_scale <= 1: the conditional field."""
    import reference as R
    null = pcfg["num_classes"]

    def v(x, t, y):
        B = x.shape[0]
        xf = x.float()
        if cfg_scale <= 1.0:
            return R.sit_forward(pw, pcfg, xf, torch.full((B,), float(t)), y).double()
        yy = torch.cat([y, torch.full((B,), null, dtype=torch.long)])
        out = R.sit_forward(pw, pcfg, torch.cat([xf, xf]), torch.full((2 * B,), float(t)), yy)
        g = pcfg.get("guided_channels", pcfg["in_channels"])
        return R._cfg_combine(out, B, g, cfg_scale)[:B].double()
    return v


def rk4_step(v, x, t, h, y):
    """One classical RK4 step of dx/dt = v(x, t, y) from t to t + h. Returns (x(t + h), v at the start, v at the
    end-point estimate x + h k3)."""
    k1 = v(x, t, y)
    k2 = v(x + 0.5 * h * k1, t + 0.5 * h, y)
    k3 = v(x + 0.5 * h * k2, t + 0.5 * h, y)
    k4 = v(x + h * k3, t + h, y)
    return x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4), k1, k4


@torch.no_grad() if torch is not None else (lambda f: f)
def rk4_solve(pw, pcfg, noise, labels, cfg_scale, steps, bs=50, log=None):
    """Classical RK4 with `steps` uniform steps from t = 0 (noise) to t = 1 (data); state in float64, model in
    float32 (reference.sit_forward). Returns float32 [N, C, S, S]."""
    v = guided_velocity(pw, pcfg, cfg_scale)
    out = []
    h = 1.0 / steps
    for s in range(0, len(noise), bs):
        x = torch.from_numpy(np.asarray(noise[s:s + bs], dtype=np.float64))
        y = torch.from_numpy(np.asarray(labels[s:s + bs])).long()
        for i in range(steps):
            x, _, _ = rk4_step(v, x, i * h, h, y)
        out.append(x.float().numpy())
        if log:
            log(f"rk4 {steps} steps: {min(s + bs, len(noise))}/{len(noise)} images")
    return np.concatenate(out)


def engine_noise(seed, n, shape=(1, 32, 32)):
    import reference as R
    return R.philox_noise(seed, n, shape).astype(np.float32)
