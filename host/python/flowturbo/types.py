"""The library's enums and the plain-data results of its queries."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.IntEnum):
    """ft_status."""

    OK = 0
    INVALID_ARGUMENT = 1
    IO = 2
    FORMAT = 3
    OUT_OF_MEMORY = 4
    UNSUPPORTED = 5
    NOT_LOADED = 6
    BACKEND = 7
    CANCELLED = 8
    INTERNAL = 9
    BUSY = 10
    NUMERIC = 11

    def describe(self) -> str:
        """The library's name of the status (ft_status_string), e.g. "i/o error"."""
        from . import _native

        return _native.text(_native.lib().ft_status_string(int(self)))


class Role(enum.IntEnum):
    """ft_role: which model a file is loaded as."""

    PREDICTOR = 0
    REFINER = 1
    VAE = 2


class Phase(enum.IntEnum):
    """ft_phase: what a progress report counts (step of total)."""

    LOADING = 0  # tensors converted of the file's tensors
    SAMPLING = 1  # sampler steps done in this batch of the trajectory's steps
    DECODING = 2  # images decoded of the batch's images
    BATCH = 3  # images finished of the images requested


class LogLevel(enum.IntEnum):
    """ft_log_level."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


@dataclass(frozen=True)
class SamplerInfo:
    """What a sampler string means (ft_sampler_describe)."""

    name: str  # canonical form: "H1P5R3", "heun:8", "euler:50"
    euler: bool
    steps: int  # points of the time grid minus one
    heun_blocks: int
    pseudo_blocks: int
    refiner_blocks: int
    predictor_calls: int  # network calls per trajectory (2B rows each with guidance)
    refiner_calls: int  # with a released refiner: two per R step (2B rows each with guidance)
    guided_refiner_calls: int  # with a guided refiner (refiner_kind "guided"): one per R step, on the B guided rows


@dataclass(frozen=True)
class ModelInfo:
    """The configuration of a loaded model (ft_model_get_info)."""

    input_size: int
    in_channels: int
    patch_size: int
    hidden_size: int
    depth: int
    num_heads: int
    mlp_hidden: int
    num_classes: int
    learn_sigma: bool
    guided_channels: int
    latent_channels: int  # VAE only
    out_channels: int  # VAE only
    upscale: int  # VAE only
    scaling_factor: float  # VAE only
    n_params: int


@dataclass(frozen=True)
class OutputShape:
    """What generate makes with the loaded models (ft_get_output_shape)."""

    latent_channels: int
    latent_size: int  # latents are [n, latent_channels, latent_size, latent_size] float32
    image_size: int  # images are [n, image_size, image_size, 3] uint8 RGB
    can_make_images: bool  # False for a latent model without a VAE
