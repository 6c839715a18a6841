"""ctypes declarations of libflowturbo's C API (engine/flowturbo.h) and where the shared library is found.

The library is looked up, in order: the path in the environment variable ``FLOWTURBO_LIB``; the copy bundled into
the installed package (``pip install ./host/python`` copies ``build/libflowturbo.so``); ``build/libflowturbo.so`` of
the repository this file sits in (running from a checkout with ``PYTHONPATH=host/python``). Nothing is compiled at
import time.
"""
from __future__ import annotations

import ctypes
import functools
import os
from ctypes import POINTER, Structure, c_char, c_char_p, c_float, c_int, c_size_t, c_uint64, c_void_p
from pathlib import Path

LIB_NAME = "libflowturbo.so"

# ft_status, ft_log_level, ft_phase, ft_role, ft_backend_kind, ft_dtype: plain C ints
c_status = c_int

LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_void_p)
PROGRESS_CALLBACK = ctypes.CFUNCTYPE(c_int, c_int, c_int, c_int, c_void_p)


class ContextParams(Structure):
    """ft_context_params"""

    _fields_ = [
        ("backend", c_int),
        ("device", c_int),
        ("n_threads", c_int),
        ("compute_dtype", c_int),
        ("use_graphs", c_int),
        ("log_cb", LOG_CALLBACK),
        ("log_user", c_void_p),
        ("progress_cb", PROGRESS_CALLBACK),
        ("progress_user", c_void_p),
    ]


class ModelInfo(Structure):
    """ft_model_info"""

    _fields_ = [
        ("loaded", c_int),
        ("input_size", c_int),
        ("in_channels", c_int),
        ("patch_size", c_int),
        ("hidden_size", c_int),
        ("depth", c_int),
        ("num_heads", c_int),
        ("mlp_hidden", c_int),
        ("num_classes", c_int),
        ("learn_sigma", c_int),
        ("guided_channels", c_int),
        ("latent_channels", c_int),
        ("out_channels", c_int),
        ("upscale", c_int),
        ("scaling_factor", c_float),
        ("n_params", c_size_t),
    ]


class OutputShape(Structure):
    """ft_output_shape"""

    _fields_ = [
        ("latent_channels", c_int),
        ("latent_size", c_int),
        ("image_size", c_int),
        ("can_make_images", c_int),
    ]


class GenerateParams(Structure):
    """ft_generate_params"""

    _fields_ = [
        ("num_images", c_int),
        ("labels", POINTER(c_int)),
        ("seed", c_uint64),
        ("noise", POINTER(c_float)),
        ("sampler", c_char_p),
        ("cfg_scale", c_float),
        ("batch_size", c_int),
        ("seeds", POINTER(c_uint64)),
        ("class_weights", POINTER(c_float)),
    ]


class SamplerInfo(Structure):
    """ft_sampler_info"""

    _fields_ = [
        ("name", c_char * 32),
        ("euler", c_int),
        ("steps", c_int),
        ("heun_blocks", c_int),
        ("pseudo_blocks", c_int),
        ("refiner_blocks", c_int),
        ("predictor_calls", c_int),
        ("refiner_calls", c_int),
        ("guided_refiner_calls", c_int),
    ]


STRUCTS = {
    "ft_context_params": ContextParams,
    "ft_model_info": ModelInfo,
    "ft_output_shape": OutputShape,
    "ft_generate_params": GenerateParams,
    "ft_sampler_info": SamplerInfo,
}

# name: (restype, argtypes)
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "ft_status_string": (c_char_p, [c_status]),
    "ft_version": (c_char_p, []),
    "ft_context_params_init": (None, [POINTER(ContextParams)]),
    "ft_context_new": (c_void_p, [POINTER(ContextParams)]),
    "ft_context_free": (None, [c_void_p]),
    "ft_last_error": (c_char_p, [c_void_p]),
    "ft_backend_name": (c_char_p, [c_void_p]),
    "ft_load": (c_status, [c_void_p, c_int, c_char_p]),
    "ft_load_memory": (c_status, [c_void_p, c_int, c_void_p, c_size_t, c_char_p]),
    "ft_default_model": (c_void_p, [c_int, POINTER(c_size_t), POINTER(c_char_p)]),
    "ft_model_get_info": (c_status, [c_void_p, c_int, POINTER(ModelInfo)]),
    "ft_class_name": (c_char_p, [c_void_p, c_int]),
    "ft_class_id": (c_int, [c_void_p, c_char_p]),
    "ft_get_output_shape": (c_status, [c_void_p, POINTER(OutputShape)]),
    "ft_generate_params_init": (None, [POINTER(GenerateParams)]),
    "ft_generate": (c_status, [c_void_p, POINTER(GenerateParams), POINTER(c_float), POINTER(ctypes.c_uint8)]),
    "ft_decode": (c_status, [c_void_p, POINTER(c_float), c_int, c_int, POINTER(ctypes.c_uint8)]),
    "ft_decoded_size": (c_int, [c_void_p, c_int]),
    "ft_sampler_describe": (c_status, [c_char_p, POINTER(SamplerInfo), c_char_p, c_size_t]),
    "ft_noise": (None, [POINTER(c_float), c_int, c_int, c_int, c_uint64]),
}


def library_path() -> Path:
    """Where libflowturbo.so is loaded from (see the module docstring for the order)."""
    env = os.environ.get("FLOWTURBO_LIB")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    candidates = [here / LIB_NAME, here.parents[2] / "build" / LIB_NAME]
    for path in candidates:
        if path.is_file():
            return path
    raise OSError(
        f"{LIB_NAME} not found (looked at {', '.join(str(p) for p in candidates)}): build it with `make` in the "
        "flowturbo repository and reinstall the package (pip install ./host/python), or point FLOWTURBO_LIB at it"
    )


@functools.lru_cache(maxsize=None)
def lib() -> ctypes.CDLL:
    """The loaded library with every prototype declared (loaded on first use)."""
    handle = ctypes.CDLL(str(library_path()))
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(handle, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return handle


def text(value: bytes | None) -> str:
    """A C string from the library as str (library messages are UTF-8; file names may not be)."""
    return value.decode("utf-8", "replace") if value is not None else ""
