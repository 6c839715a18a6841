"""What the PyTorch baselines (bench/cpu_torch.py, bench/vae_torch.py) share: the --compile switch and a
description of the torch that runs (version, BLAS, and for torch.compile the vector ISA inductor picked), so
every benchmark table names what it compared against.

torch.compile needs the wheel's own torch/lib ahead of any system libtorch: inductor links its code with
-L<python LIBDIR> first, which for a venv of Debian's python is /usr/lib/x86_64-linux-gnu, home of Debian's
libtorch 1.13; linked against that, the AVX2 probe fails to load (undefined Sleef_expf8_u10) and inductor
silently emits scalar code. _wheel_lib_first() puts the wheel's torch/lib first (bench/torch_venv.sh also sets
LD_LIBRARY_PATH), inductor compiles in this process so the fix applies to every build, and its cache lives
beside this benchmark's venv so a probe built wrongly elsewhere is not reused. describe() reports the ISA
inductor picked, so a table can never hide scalar code.
"""
import os
import re

import torch


def add_args(ap):
    ap.add_argument("--compile", action="store_true", help="time torch.compile'd code (torch >= 2)")


def _blas():
    """BLAS_INFO of torch's build settings, the MKL/oneDNN versions and the CPU capability ATen uses."""
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=(\w+)", cfg)
    parts = [m.group(1) if m else "unknown BLAS"]
    for line in cfg.splitlines():
        line = line.strip(" -")
        if line.startswith(("Intel(R) oneAPI Math Kernel Library Version", "Intel(R) MKL-DNN", "CPU capability")):
            parts.append(re.sub(r" \(Git Hash.*|-Product Build.*| for Intel.*", "", line))
    if parts[0] != "generic":  # MKL is linked in; the maps would only show numpy's or CUDA's BLAS
        return "; ".join(parts)
    torch.randn(64, 64) @ torch.randn(64, 64)  # loads the BLAS if torch opens it lazily
    try:  # "generic": the system libblas.so.3, whichever library the alternatives point it to
        libs = sorted({os.path.realpath(l.split()[-1]) for l in open("/proc/self/maps")
                       if re.search(r"/lib[^/]*(blas|mkl_core)[^/]*\.so", l)})
        parts += [os.path.basename(p) for p in libs]
    except OSError:
        pass
    return "; ".join(parts)


def _inductor_isa():
    try:
        from torch._inductor import cpu_vec_isa as m  # torch >= 2.4
    except ImportError:
        from torch._inductor import codecache as m
    isa = m.pick_vec_isa()
    return str(isa) if isa else "none (scalar code)"


def describe(compiled):
    """One dict naming this side: torch version, mode, BLAS; when compiled, inductor's ISA and the number of
    graphs dynamo compiled so far (call it after the timed runs)."""
    d = {"what": "torch", "version": torch.__version__, "mode": "compile" if compiled else "eager",
         "threads": torch.get_num_threads(), "blas": _blas()}
    if compiled:
        from torch._dynamo.utils import counters
        d["isa"] = _inductor_isa()
        d["graphs"] = counters["stats"]["unique_graphs"]  # > 0: compiled code ran
    return d


def _wheel_lib_first():
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR",
                          os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                       "build", "torch-inductor-cache"))
    from torch._inductor import config, cpp_builder
    config.compile_threads = 1  # no worker processes: they would not see the patch below
    python_args = cpp_builder._get_python_related_args
    torch_lib = os.path.join(os.path.dirname(torch.__file__), "lib")

    def wheel_lib_first():
        inc, libs = python_args()
        return inc, [torch_lib] + libs

    cpp_builder._get_python_related_args = wheel_lib_first


def maybe_compile(fn, compiled):
    if not compiled:
        return fn
    if not hasattr(torch, "compile"):
        raise SystemExit("torch %s has no torch.compile" % torch.__version__)
    _wheel_lib_first()
    return torch.compile(fn)
