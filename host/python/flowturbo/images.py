"""Images as PIL images (Pillow is needed only here)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from PIL import Image


def to_pil(images: npt.NDArray[np.uint8], *, gray: bool = False) -> list[Image.Image]:
    """uint8 RGB images [n, H, W, 3] (as Engine.generate / Engine.decode return them) as PIL images; gray=True keeps
    channel 0 as "L" images (what a one-channel model makes)."""
    from PIL import Image

    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3:
        raise ValueError(f"images must be uint8 [n, H, W, 3], got {arr.dtype} {list(arr.shape)}")
    if gray:
        return [Image.fromarray(np.ascontiguousarray(a[:, :, 0]), mode="L") for a in arr]
    return [Image.fromarray(np.ascontiguousarray(a), mode="RGB") for a in arr]
