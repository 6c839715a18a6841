"""Calls of libflowturbo that need no context: version, sampler strings, the seeded noise."""
from __future__ import annotations

import ctypes

import numpy as np
import numpy.typing as npt

from . import _native
from .errors import FlowturboError
from .types import SamplerInfo, Status


def version() -> str:
    """The library's version (ft_version), e.g. "0.1.0"."""
    return _native.text(_native.lib().ft_version())


def sampler_info(sampler: str) -> SamplerInfo:
    """Parses a sampler string ("H1P5R3", "heun:8", "euler:50").

    Raises FlowturboError with the library's message for a bad one, which lists the valid forms and, for a near
    miss ("heun", "R3H1P5"), ends with "did you mean '...'?".
    """
    info = _native.SamplerInfo()
    err = ctypes.create_string_buffer(1024)
    st = _native.lib().ft_sampler_describe(sampler.encode(), ctypes.byref(info), err, len(err))
    if st != Status.OK:
        raise FlowturboError(_native.text(err.value), Status(st))
    return SamplerInfo(
        name=_native.text(info.name),
        euler=bool(info.euler),
        steps=info.steps,
        heun_blocks=info.heun_blocks,
        pseudo_blocks=info.pseudo_blocks,
        refiner_blocks=info.refiner_blocks,
        predictor_calls=info.predictor_calls,
        refiner_calls=info.refiner_calls,
        guided_refiner_calls=info.guided_refiner_calls,
    )


def noise(n: int, channels: int, size: int, seed: int) -> npt.NDArray[np.float32]:
    """The initial noise generate uses: float32 [n, channels, size, size], image k from seed + k (ft_noise)."""
    if n < 0 or channels < 1 or size < 1:
        raise ValueError(f"noise: bad shape [{n}, {channels}, {size}, {size}]")
    out = np.empty((n, channels, size, size), dtype=np.float32)
    _native.lib().ft_noise(out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n, channels, size, seed % 2**64)
    return out
