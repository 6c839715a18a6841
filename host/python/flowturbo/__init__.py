"""flowturbo: Python bindings of libflowturbo, the FlowTurbo inference engine (SiT/DiT velocity predictor, velocity
refiner, SD-VAE decoder, the FlowTurbo sampler).

A thin ctypes binding: every computation happens in the C library (``build/libflowturbo.so``), nothing is compiled
at import time. ::

    import flowturbo

    with flowturbo.Engine(backend="cpu") as engine:
        engine.load_default()                            # the embedded Fashion-MNIST SiT + refiner
        out = engine.generate(["Trouser", "bag", 3], seed=0, sampler="H1P5R3", cfg_scale=4.0)
        out.images                                       # uint8 [3, 32, 32, 3]
        out.pil()[0].save("trouser.png")

Errors are FlowturboError (the library's message and status); a progress callback returning True cancels a call
(CancelledError).
"""
from ._native import library_path
from .engine import Engine, Generation, Label, LogCallback, ProgressCallback, log_to_logging
from .errors import CancelledError, FlowturboError
from .fid import cli_path, sample_fid
from .images import to_pil
from .library import noise, sampler_info, version
from .types import LogLevel, ModelInfo, OutputShape, Phase, Role, SamplerInfo, Status

__version__ = "0.1.0"

__all__ = [
    "CancelledError",
    "Engine",
    "FlowturboError",
    "Generation",
    "Label",
    "LogCallback",
    "LogLevel",
    "ModelInfo",
    "OutputShape",
    "Phase",
    "ProgressCallback",
    "Role",
    "SamplerInfo",
    "Status",
    "cli_path",
    "library_path",
    "log_to_logging",
    "noise",
    "sample_fid",
    "sampler_info",
    "to_pil",
    "version",
]
