"""Engine: one libflowturbo context (backend, loaded models) and the calls that use it."""
from __future__ import annotations

import ctypes
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal, Optional, Union

import numpy as np
import numpy.typing as npt

from . import _native
from .errors import CancelledError, FlowturboError
from .types import LogLevel, ModelInfo, OutputShape, Phase, Role, Status

if TYPE_CHECKING:
    from PIL import Image

Label = Union[int, str, np.integer]
"""A class id, or a class name of the predictor (case-insensitive)."""
ProgressCallback = Callable[[Phase, int, int], Optional[bool]]
"""progress(phase, step, total): return True to cancel the running call (it raises CancelledError)."""
LogCallback = Callable[[LogLevel, str], None]
RoleLike = Union[Role, Literal["predictor", "refiner", "vae"]]
PathLike = Union[str, "os.PathLike[str]"]

_BACKENDS = {"auto": 0, "cpu": 1, "cuda": 2}
_DTYPES = {"f32": 0, "f16": 1, "bf16": 2}
_logger = logging.getLogger("flowturbo")
_LOG_LEVELS = {
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARN: logging.WARNING,
    LogLevel.ERROR: logging.DEBUG,  # a failure is raised as FlowturboError with the same message
}


def log_to_logging(level: LogLevel, message: str) -> None:
    """The default log handler: the library's messages go to the "flowturbo" logger."""
    _logger.log(_LOG_LEVELS[level], "%s", message)


def _role(role: RoleLike) -> Role:
    return role if isinstance(role, Role) else Role[str(role).upper()]


@dataclass(frozen=True)
class Generation:
    """What Engine.generate made.

    ``images``: uint8 [n, H, W, 3] RGB (None when not asked for); ``latents``: float32 [n, C, S, S], the final ODE
    state in the sampler's space, as Engine.decode takes it (None when not asked for). ``labels`` are the class ids,
    ``seeds`` the noise seed of each image (seed + k), ``gray`` says the model makes one-channel (grey) pixels.
    """

    images: Optional[npt.NDArray[np.uint8]]
    latents: Optional[npt.NDArray[np.float32]]
    labels: tuple[int, ...]
    seeds: tuple[int, ...]
    sampler: str
    cfg_scale: float
    gray: bool

    def pil(self) -> list[Image.Image]:
        """The images as PIL images ("L" for grey models, else "RGB"); needs Pillow."""
        if self.images is None:
            raise ValueError("no images were generated (images=False)")
        from .images import to_pil

        return to_pil(self.images, gray=self.gray)


class Engine:
    """A libflowturbo context: a compute backend and the loaded models (predictor, refiner, VAE).

    ``backend`` is "auto" (CUDA when a usable GPU is present, else the CPU), "cpu" or "cuda"; ``threads`` CPU threads
    (0: all cores); ``dtype`` the GEMM operand type on a GPU ("bf16", "f16", "f32"); ``graphs`` CUDA-graph capture.
    None keeps the library's default. ``log`` receives the library's messages (default: the "flowturbo" logger).

    An Engine is not meant to be shared between threads: calls on one Engine are serialised by a lock. Close it
    (or use ``with``) to free the models at once.
    """

    def __init__(
        self,
        backend: Optional[Literal["auto", "cpu", "cuda"]] = None,
        *,
        device: Optional[int] = None,
        threads: Optional[int] = None,
        dtype: Optional[Literal["bf16", "f16", "f32"]] = None,
        graphs: Optional[bool] = None,
        log: Optional[LogCallback] = log_to_logging,
    ) -> None:
        self._lock = threading.RLock()
        self._ctx: Optional[int] = None
        self._progress: Optional[ProgressCallback] = None
        self._callback_error: Optional[BaseException] = None
        self._log = log
        lib = _native.lib()
        params = _native.ContextParams()
        lib.ft_context_params_init(ctypes.byref(params))
        if backend is not None:
            if backend not in _BACKENDS:
                raise ValueError(f"backend must be one of {', '.join(_BACKENDS)}, got {backend!r}")
            params.backend = _BACKENDS[backend]
        if dtype is not None:
            if dtype not in _DTYPES:
                raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
            params.compute_dtype = _DTYPES[dtype]
        if device is not None:
            params.device = device
        if threads is not None:
            params.n_threads = threads
        if graphs is not None:
            params.use_graphs = int(graphs)
        # the C callbacks hold only a weak reference: an Engine nobody uses any more is freed
        me = weakref.ref(self)

        def on_log(level: int, message: Optional[bytes], user: Optional[int]) -> None:
            engine = me()
            if engine is not None and engine._log is not None:
                engine._log(LogLevel(level), _native.text(message))

        def on_progress(phase: int, step: int, total: int, user: Optional[int]) -> int:
            engine = me()
            return engine._on_progress(phase, step, total) if engine is not None else 0

        self._log_cb = _native.LOG_CALLBACK(on_log)
        self._progress_cb = _native.PROGRESS_CALLBACK(on_progress)
        params.log_cb = self._log_cb
        params.progress_cb = self._progress_cb
        ctx = lib.ft_context_new(ctypes.byref(params))
        if not ctx:
            raise MemoryError("ft_context_new: out of memory")
        self._ctx = ctx
        if _native.text(lib.ft_backend_name(ctx)) == "none":
            message = _native.text(lib.ft_last_error(ctx))
            self.close()
            raise FlowturboError(message, Status.UNSUPPORTED)

    # ---- lifetime ----

    def close(self) -> None:
        """Frees the context and every model (ft_context_free); the Engine cannot be used afterwards."""
        with self._lock:
            if self._ctx is not None:
                _native.lib().ft_context_free(self._ctx)
                self._ctx = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_ctx", None) is not None:
            try:
                self.close()
            except Exception:  # interpreter shutdown: the library may already be unloaded
                pass

    @property
    def backend(self) -> str:
        """The backend the context runs on: "cpu" or "cuda"."""
        return _native.text(_native.lib().ft_backend_name(self._handle()))

    # ---- plumbing ----

    def _handle(self) -> int:
        if self._ctx is None:
            raise ValueError("this Engine is closed")
        return self._ctx

    def _on_progress(self, phase: int, step: int, total: int) -> int:
        if self._callback_error is not None:
            return 1
        callback = self._progress
        if callback is None:
            return 0
        try:
            return 1 if callback(Phase(phase), step, total) else 0
        except BaseException as e:  # noqa: B036 - KeyboardInterrupt too: cancel cleanly, re-raise after the call
            self._callback_error = e
            return 1

    def _call(self, fn: Callable[..., int], *args: object, progress: Optional[ProgressCallback] = None) -> None:
        """Runs fn(ctx, *args) with progress installed; raises the callback's exception or the library's error."""
        with self._lock:
            ctx = self._handle()
            self._progress, self._callback_error = progress, None
            try:
                status = fn(ctx, *args)
            finally:
                self._progress = None
                raised, self._callback_error = self._callback_error, None
            if raised is not None:
                raise raised
            if status != Status.OK:
                message = _native.text(_native.lib().ft_last_error(ctx))
                cls = CancelledError if status == Status.CANCELLED else FlowturboError
                raise cls(message or Status(status).describe(), Status(status))

    # ---- models ----

    def load(self, role: RoleLike, path: PathLike, *, progress: Optional[ProgressCallback] = None) -> None:
        """Loads (or replaces) the model of a role from an engine safetensors file (ft_load)."""
        self._call(_native.lib().ft_load, int(_role(role)), os.fsencode(path), progress=progress)

    def load_bytes(
        self, role: RoleLike, data: bytes, name: Optional[str] = None, *, progress: Optional[ProgressCallback] = None
    ) -> None:
        """Loads a model from the bytes of an engine safetensors file (ft_load_memory); name is used in messages."""
        data = bytes(data)
        self._call(
            _native.lib().ft_load_memory,
            int(_role(role)),
            data,
            len(data),
            name.encode() if name is not None else None,
            progress=progress,
        )

    def load_default(self, *, refiner: bool = True, progress: Optional[ProgressCallback] = None) -> None:
        """Loads the Fashion-MNIST models compiled into the library (ft_default_model): a class-conditional SiT on
        32x32 grey pixels with 10 named classes and, unless refiner=False, its FlowTurbo velocity refiner."""
        lib = _native.lib()
        for role in (Role.PREDICTOR, Role.REFINER) if refiner else (Role.PREDICTOR,):
            size = ctypes.c_size_t()
            name = ctypes.c_char_p()
            data = lib.ft_default_model(int(role), ctypes.byref(size), ctypes.byref(name))
            self._call(lib.ft_load_memory, int(role), data, size.value, name.value, progress=progress)

    def model_info(self, role: RoleLike) -> Optional[ModelInfo]:
        """The configuration of the loaded model of a role, or None when none is loaded."""
        info = _native.ModelInfo()
        self._call(_native.lib().ft_model_get_info, int(_role(role)), ctypes.byref(info))
        if not info.loaded:
            return None
        fields = {name: getattr(info, name) for name in ModelInfo.__dataclass_fields__}
        fields["learn_sigma"] = bool(info.learn_sigma)
        return ModelInfo(**fields)

    @property
    def class_names(self) -> list[str]:
        """The predictor's class names (its "class_names" metadata), [] when it has none."""
        info = self.model_info(Role.PREDICTOR)
        lib, ctx = _native.lib(), self._handle()
        names = [lib.ft_class_name(ctx, c) for c in range(info.num_classes if info else 0)]
        return [_native.text(n) for n in names] if all(n is not None for n in names) else []

    def class_id(self, label: Label) -> int:
        """The class id of an id or a class name (ASCII case-insensitive, ft_class_id); ValueError listing the
        classes for an unknown name."""
        if isinstance(label, (int, np.integer)):
            return int(label)
        found = _native.lib().ft_class_id(self._handle(), str(label).encode())
        if found < 0:
            names = self.class_names
            listed = ", ".join(f"{i} {n}" for i, n in enumerate(names)) if names else "the model names no classes"
            raise ValueError(f"{label!r} is not a class name of the loaded predictor ({listed})")
        return int(found)

    @property
    def output_shape(self) -> OutputShape:
        """What generate makes with the loaded models."""
        shape = _native.OutputShape()
        self._call(_native.lib().ft_get_output_shape, ctypes.byref(shape))
        return OutputShape(shape.latent_channels, shape.latent_size, shape.image_size, bool(shape.can_make_images))

    # ---- sampling ----

    def generate(
        self,
        labels: Union[Sequence[Label], Label, None],
        *,
        seed: Optional[int] = None,
        seeds: Optional[Sequence[int]] = None,
        noise: Optional[npt.ArrayLike] = None,
        class_weights: Optional[npt.ArrayLike] = None,
        sampler: Optional[str] = None,
        cfg_scale: Optional[float] = None,
        batch_size: Optional[int] = None,
        images: bool = True,
        latents: bool = False,
        progress: Optional[ProgressCallback] = None,
    ) -> Generation:
        """Samples one image per label (ft_generate).

        ``labels``: class ids or names (one per image). Image k uses noise seed ``seed + k`` (Philox, identical on
        CPU and GPU), ``seeds[k]`` when seeds are given, or ``noise[k]`` (float32 [n, C, S, S]) when noise is given.
        ``class_weights`` (float32 [n, num_classes]) conditions image k on the blend sum_c w[k, c] E[c] of class
        embeddings instead of a label (labels may then be None). ``sampler`` "H1P5R3", "heun:8",
        "euler:50", ...; ``cfg_scale`` <= 1 turns guidance off; ``batch_size`` images per model batch. None keeps
        the library's default (seed 42, H1P5R3, cfg 4, batch 8). ``images`` / ``latents`` choose the outputs.
        ``progress(phase, step, total)`` is called during the work; returning True cancels (CancelledError).
        """
        if not images and not latents:
            raise ValueError("generate: ask for images, latents or both")
        weights = None
        if class_weights is not None:
            weights = np.ascontiguousarray(class_weights, dtype=np.float32)
            info = self.model_info(Role.PREDICTOR)
            classes = info.num_classes if info is not None else 0
            if weights.ndim != 2 or weights.shape[1] != classes or weights.shape[0] < 1:
                raise ValueError(f"class_weights must be float32 [n, {classes}], got shape {list(weights.shape)}")
        if labels is None and weights is None:
            raise ValueError("generate: give labels or class_weights")
        items = [] if labels is None else [labels] if isinstance(labels, (str, int, np.integer)) else list(labels)
        ids = np.ascontiguousarray([self.class_id(x) for x in items], dtype=np.intc)
        n = len(ids) if weights is None else weights.shape[0]
        if n < 1:
            raise ValueError("generate: no labels given")
        if labels is not None and len(ids) != n:
            raise ValueError(f"generate: {len(ids)} labels for {n} rows of class_weights")
        lib = _native.lib()
        gp = _native.GenerateParams()
        lib.ft_generate_params_init(ctypes.byref(gp))
        gp.num_images = n
        if labels is not None:
            gp.labels = ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int))
        if weights is not None:
            gp.class_weights = weights.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        seed_arr = None
        if seeds is not None:
            seed_arr = np.ascontiguousarray([int(s) for s in seeds], dtype=np.uint64)
            if seed_arr.shape != (n,):
                raise ValueError(f"seeds must give one seed per image ({n}), got {seed_arr.shape[0]}")
            gp.seeds = seed_arr.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64))
        if seed is not None:
            if not 0 <= seed < 2**64:
                raise ValueError(f"seed must be in [0, 2^64), got {seed}")
            gp.seed = seed
        if sampler is not None:
            gp.sampler = sampler.encode()
        if cfg_scale is not None:
            gp.cfg_scale = cfg_scale
        if batch_size is not None:
            gp.batch_size = batch_size
        shape = self.output_shape
        state = (shape.latent_channels, shape.latent_size, shape.latent_size)
        noise_arr = None
        if noise is not None:
            noise_arr = np.ascontiguousarray(noise, dtype=np.float32)
            if noise_arr.shape != (n, *state):  # the library reads exactly that many floats
                raise ValueError(f"noise must be float32 {[n, *state]} for {n} labels, got {list(noise_arr.shape)}")
            gp.noise = noise_arr.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        lat = np.empty((n, *state), dtype=np.float32) if latents else None
        img = np.empty((n, shape.image_size, shape.image_size, 3), dtype=np.uint8) if images else None
        self._call(
            lib.ft_generate,
            ctypes.byref(gp),
            lat.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) if lat is not None else None,
            img.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)) if img is not None else None,
            progress=progress,
        )
        info = self.model_info(Role.PREDICTOR)
        vae = self.model_info(Role.VAE)
        base = int(gp.seed)
        return Generation(
            images=img,
            latents=lat,
            labels=tuple(int(x) for x in ids),
            seeds=tuple(int(s) for s in seed_arr) if seed_arr is not None else tuple((base + k) % 2**64 for k in range(n)),
            sampler=_native.text(gp.sampler),
            cfg_scale=float(gp.cfg_scale),
            gray=vae is None and info is not None and info.in_channels == 1,
        )

    def decode(
        self, latents: npt.ArrayLike, *, progress: Optional[ProgressCallback] = None
    ) -> npt.NDArray[np.uint8]:
        """Decodes latents float32 [n, C, S, S] in the sampler's space (as generate returns them) to uint8 RGB
        images [n, H, W, 3] with the loaded VAE, or, without one, maps a pixel-space predictor's states to pixels
        (ft_decode)."""
        z = np.ascontiguousarray(latents, dtype=np.float32)
        if z.ndim != 4 or z.shape[0] < 1 or z.shape[2] != z.shape[3]:
            raise ValueError(f"latents must be float32 [n, C, S, S] with n >= 1, got shape {list(z.shape)}")
        vae = self.model_info(Role.VAE)
        pred = self.model_info(Role.PREDICTOR)
        want = vae.latent_channels if vae else pred.in_channels if pred else None
        if want is not None and z.shape[1] != want:  # the library reads C floats per pixel
            raise ValueError(f"latents have {z.shape[1]} channels, the {'VAE' if vae else 'model'} takes {want}")
        lib, ctx = _native.lib(), self._handle()
        size = lib.ft_decoded_size(ctx, z.shape[2])
        out = np.empty((z.shape[0], max(size, 1), max(size, 1), 3), dtype=np.uint8)
        self._call(
            lib.ft_decode,
            z.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            z.shape[0],
            z.shape[2],
            out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
            progress=progress,
        )
        return out
