"""The PyTorch reference (tests/reference/reference.py, fp32 CPU) timed exactly like bench/cpu_bench.c:
one predictor forward on the guidance batch, one refiner forward, and whole samples, median of repeats
after warm-up, with the same thread count. Prints one JSON object per line.

  /usr/bin/python3 bench/cpu_torch.py -m sit.safetensors [-r refiner.safetensors] [-t 2] [-b 1]
                                      [--sampler H1P5R3 ...] [--repeat 5] [--warmup 1] [--compile]
The last line describes the torch side (bench/torch_side.py).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
sys.path.insert(0, os.path.join(ROOT, "weights_tool"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402
import torch_side  # noqa: E402


def load(path):
    tensors, meta = st.load(path)
    return {k: torch.from_numpy(v) for k, v in tensors.items()}, ref.cfg_from_metadata(meta)


def timed(fn, warmup, repeat):
    ms = []
    for r in range(-warmup, repeat):
        t0 = time.perf_counter()
        fn()
        if r >= 0:
            ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", required=True)
    ap.add_argument("-r")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-b", type=int, default=1)
    ap.add_argument("--cfg-scale", type=float, default=4.0)
    ap.add_argument("--sampler", action="append", default=[])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    torch_side.add_args(ap)
    a = ap.parse_args()
    # ref.sample calls ref.sit_forward through the module, so this compiles the samples' forwards too
    ref.sit_forward = torch_side.maybe_compile(ref.sit_forward, a.compile)
    torch.set_num_threads(a.t)
    pw, pc = load(a.m)
    rw, rc = load(a.r) if a.r else (None, None)
    rows = 2 * a.b if a.cfg_scale > 1 else a.b
    C, S = pc["in_channels"], pc["input_size"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, C, S, S, generator=gen)
    v = torch.randn(rows, C, S, S, generator=gen)
    t = torch.full((rows,), 0.5)
    y = torch.arange(rows) % pc["num_classes"]
    with torch.no_grad():
        print(json.dumps({"what": "predictor_forward", "rows": rows, "threads": a.t,
                          "ms": round(timed(lambda: ref.sit_forward(pw, pc, x, t, y), a.warmup, a.repeat), 3)}))
        if rw is not None:
            print(json.dumps({"what": "refiner_forward", "rows": rows, "threads": a.t,
                              "ms": round(timed(lambda: ref.sit_forward(rw, rc, x, t, y, v=v), a.warmup, a.repeat), 3)}))
        noise = torch.randn(a.b, C, S, S, generator=gen)
        labels = torch.arange(a.b) % pc["num_classes"]
        for s in a.sampler:
            fn = lambda: ref.sample(pw, pc, rw, rc, noise, labels, s, a.cfg_scale)  # noqa: E731
            print(json.dumps({"what": "sample", "sampler": s, "batch": a.b, "cfg": a.cfg_scale, "threads": a.t,
                              "ms": round(timed(fn, a.warmup, a.repeat), 3)}))
    print(json.dumps(torch_side.describe(a.compile)))


if __name__ == "__main__":
    main()
