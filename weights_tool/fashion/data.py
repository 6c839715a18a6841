"""Fashion-MNIST loading (Debian package dataset-fashion-mnist) and the engine's pixel convention.

Images: 28x28 uint8 -> float x = pixel / 127.5 - 1 in [-1, 1], padded to 32x32 with -1 (2 pixels on every side).
Labels: 0..9 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot); the null class
for guidance is 10.
"""
import gzip
import os

import numpy as np
import torch

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
NUM_CLASSES = 10
RES = 32
PAD = 2


def _read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_uint8(split="train"):
    """Returns (images uint8 (N, 28, 28), labels int64 (N,)). split: 'train' (60k) or 't10k' (10k)."""
    imgs = _read_idx(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz"))
    labels = _read_idx(os.path.join(DATA_DIR, f"{split}-labels-idx1-ubyte.gz")).astype(np.int64)
    assert imgs.shape[0] == labels.shape[0]
    return imgs, labels


def to_model_space(imgs_u8):
    """uint8 (N, 28, 28) -> float32 tensor (N, 1, 32, 32) in [-1, 1], padded with -1."""
    x = torch.from_numpy(np.array(imgs_u8, dtype=np.uint8, copy=True)).float().div_(127.5).sub_(1.0).unsqueeze(1)
    return torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD), value=-1.0)


def load(split="train"):
    """Returns (x float32 (N, 1, 32, 32) in [-1, 1], y int64 (N,))."""
    imgs, labels = load_uint8(split)
    return to_model_space(imgs), torch.from_numpy(labels)


def to_uint8(x):
    """Model space (N, 1, 32, 32) -> uint8 (N, 32, 32), round((x + 1) * 127.5) clamped."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1).numpy()


HOLDOUT_PER_CLASS = 500
HOLDOUT_SEED = 2024


def holdout_indices(labels, per_class=HOLDOUT_PER_CLASS, seed=HOLDOUT_SEED):
    """The validation split held out of refiner training (issue 12): per_class train images of every class, drawn
    with a fixed seed; sorted indices into the train split. Refiner variants are selected on it (validation loss,
    and FD of validation samples against its images); t10k is kept for the reported tables."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(labels)
    idx = []
    for c in range(NUM_CLASSES):
        members = torch.nonzero(labels == c).flatten()
        idx.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.sort(torch.cat(idx)).values


def step_generator(seed, step, stream=0):
    """Deterministic per-step generator: every random draw of step `step` comes from this, so a resumed run
    draws exactly what an uninterrupted run would have."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + stream * 7_919 + step) % (2 ** 63 - 1))
    return g


def batch_indices(seed, step, batch_size, n):
    """Epoch-wise seeded permutation (drop the last partial batch)."""
    spe = n // batch_size
    epoch, k = divmod(step, spe)
    g = torch.Generator()
    g.manual_seed(seed * 7_777 + epoch + 12_345)
    perm = torch.randperm(n, generator=g)
    return perm[k * batch_size:(k + 1) * batch_size]


def save_grid_png(path, x, nrow=10):
    """x: model-space tensor (N, 1, H, W). Writes a grayscale grid PNG with matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    u = to_uint8(x)
    n, h, w = u.shape
    ncol = nrow
    nr = (n + ncol - 1) // ncol
    grid = np.zeros((nr * (h + 2), ncol * (w + 2)), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[r * (h + 2) + 1: r * (h + 2) + 1 + h, c * (w + 2) + 1: c * (w + 2) + 1 + w] = u[i]
    plt.imsave(path, grid, cmap="gray", vmin=0, vmax=255)
