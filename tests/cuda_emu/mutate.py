#!/usr/bin/env python3
"""tests/cuda_emu/mutate.py — deliberate bugs the emulated CUDA suite must catch.

Each mutation below is one textual change to one source file of the CUDA
backend (or of the engine code that drives it). For each, the mutated file is
compiled on its own (with the flags of `make CUDA_EMU=1`), linked with the
other objects of build/emu into a mutant build/emu/test_cuda, and the tests
that cover that code are run under the emulator (each in its own process).
A mutation is caught when that run fails. One line per mutation:

    caught   <name>: <what reported it>
    MISSED   <name>

Before the mutants, the same test selections run on the unmutated build and
must pass, so a "caught" means the mutation broke something.

    python3 tests/cuda_emu/mutate.py [NAME...]      (after make CUDA_EMU=1 build/emu/test_cuda)
Exit status 0 when every mutation was caught.
"""
import os
import re
import shlex
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "build", "emu", "mutants")

# name, file, old text, new text, test filter, extra environment, why it is a bug
MUTATIONS = [
    ("flash_no_barrier_after_tile", "kernels/cuda/attention.cu",
     "        __syncthreads(); /* this buffer is refilled two tiles later */\n", "",
     "cuda_op_attention_hd72", {},
     "the next tile's cp.async overwrites K/V that other warps still read"),
    ("block_sum_no_barrier", "kernels/cuda/norm.cu",
     "    if (l == 0) sh[w] = v;\n    __syncthreads();\n", "    if (l == 0) sh[w] = v;\n",
     "cuda_op_layernorm_modulate", {},
     "warp sums read from shared memory before every warp wrote its own"),
    ("block_sum_no_barrier_between_calls", "kernels/cuda/norm.cu",
     "    __syncthreads(); /* sh may still be read by a previous call */\n", "",
     "cuda_op_layernorm_modulate", {},
     "the variance's partial sums overwrite the mean's while other warps read them"),
    ("flash_missing_cp_async_wait", "kernels/cuda/attention.cu",
     "            cp_async_wait<1>(); /* all but the newest group: tile j is in */\n", "",
     "cuda_op_attention_hd72", {},
     "K/V tiles read before their cp.async copies landed"),
    ("flash_fragment_lane_off_by_one", "kernels/cuda/attention.cu",
     "    const int g = lane >> 2, tq = lane & 3;\n", "    const int g = lane >> 2, tq = (lane + 1) & 3;\n",
     "cuda_op_attention_hd72", {},
     "the output fragment's column pairs written by the wrong lanes"),
    ("flash_padding_not_zeroed", "kernels/cuda/attention.cu",
     "        *reinterpret_cast<uint4 *>(row + FA_HD) = make_uint4(0u, 0u, 0u, 0u);\n", "",
     "cuda_op_attention_hd72", {},
     "Q K^T over hd padded to 80 reads columns 72..79 that nobody zeroed"),
    ("gemm_wrong_transpose", "kernels/cuda/gemm.cu",
     "    cu_matmul(be, 1, 0, N, M, K, w, K, x, K, y, N, y_type == FT_BUF_ACT, bias, epi);\n",
     "    cu_matmul(be, 0, 0, N, M, K, w, K, x, K, y, N, y_type == FT_BUF_ACT, bias, epi);\n",
     "cuda_op_linear", {},
     "the weight is used untransposed"),
    ("bias_wrong_axis", "kernels/cuda/gemm.cu",
     "        if (bias) v += bias[i];\n", "        if (bias) v += bias[j];\n",
     "cuda_op_linear", {"FT_EMU_CUBLASLT_NO_EPILOGUES": "1"},
     "the fallback epilogue adds the bias along D's columns instead of its rows"),
    ("shuffle_in_divergent_branch", "kernels/cuda/attention.cu",
     "            for (int qi = 0; qi < GA_QPW; qi++) pj[qi] = __shfl_sync(0xffffffffu, p[qi], jj);\n",
     "            for (int qi = 0; qi < GA_QPW; qi++)\n"
     "                if (lane < nk) pj[qi] = __shfl_sync(0xffffffffu, p[qi], jj);\n",
     "cuda_op_attention_generic", {},
     "a full-mask shuffle that the lanes past the last key skip"),
    ("graph_bakes_cfg_scale", "engine/plan.c",
     "    ft_status st = be->upload(be, p->cfg_scale, &cfg_scale, sizeof cfg_scale);\n",
     "    ft_status st = p->warmed_up ? FT_OK : be->upload(be, p->cfg_scale, &cfg_scale, sizeof cfg_scale);\n",
     "cuda_sampler_heun_euler", {},
     "the guidance scale of the first call stays in the replayed graph"),
    ("oob_store_last_block_odd_batch", "kernels/cuda/embed.cu",
     "            if (t < nvalid) {\n                size_t row = row0 + t;\n",
     "            {\n                size_t row = row0 + t;\n",
     "cuda_op_patch_embed", {},
     "the last block of an odd token count stores rows past the end"),
    ("transpose_no_barrier", "kernels/cuda/elementwise.cu",
     "    }\n    __syncthreads();\n    for (int k = threadIdx.y; k < 32; k += blockDim.y) {\n",
     "    }\n    for (int k = threadIdx.y; k < 32; k += blockDim.y) {\n",
     "cuda_op_elementwise", {},
     "the tile is read back transposed before the other threads wrote it"),
    ("flash_missing_smem_opt_in", "kernels/cuda/attention.cu",
     "    if (e == cudaSuccess) e = cudaFuncSetAttribute(fa_hd72_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, FA_SMEM);\n",
     "",
     "cuda_op_attention_hd72", {},
     "56 KB of dynamic shared memory without the opt-in attribute"),
    ("group_norm_stats_wrong_partial", "kernels/cuda/norm.cu",
     "        float *p = partials + (ng * S + s) * 3;\n", "        float *p = partials + (ng * S + s) * 2;\n",
     "cuda_op_group_norm", {},
     "per-chunk statistics written over each other"),
    ("fm_upsample_wrong_source_pixel", "kernels/cuda/fmap.cu",
     "        y[i] = x[((n * S + (size_t)(Y >> 1)) * S + (size_t)(X >> 1)) * C8 + c];\n",
     "        y[i] = x[((n * S + (size_t)(Y >> 1)) * S + (size_t)(X >> 2)) * C8 + c];\n",
     "cuda_op_fm_conv", {},
     "the nearest-2x upsample in front of a cuDNN conv reads the wrong source column"),
    ("cudnn_residual_dropped", "kernels/cuda/conv_cudnn.cu",
     "        const float alpha2 = residual ? 1.0f : 0.0f;\n", "        const float alpha2 = 0.0f;\n",
     "cuda_op_fm_conv", {},
     "the resnet's residual is not added by the fused convolution"),
    ("ln_modulation_wrong_row", "kernels/cuda/norm.cu",
     "    const int n = (int)(row / (size_t)Ttok);\n    const float4 *x4 = reinterpret_cast<const float4 *>(x + row * D);\n",
     "    const int n = (int)(row % (size_t)Ttok);\n    const float4 *x4 = reinterpret_cast<const float4 *>(x + row * D);\n",
     "cuda_op_layernorm_modulate", {},
     "each token modulated with another sample's shift and scale"),
]


def build_flags():
    out = subprocess.run(["make", "-s", "CUDA_EMU=1", "print-build-flags"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    flags = {}
    for line in out.splitlines():
        k, _, v = line.partition("=")
        flags[k] = v
    return flags


def run_tests(binary, test_filter, env, log_path):
    e = dict(os.environ)
    e.update({"OMP_WAIT_POLICY": "passive", "FT_TEST_TIMEOUT": "600"})
    e.update(env)
    with open(log_path, "w") as log:
        r = subprocess.run([binary, "--isolate", test_filter], cwd=ROOT, env=e, stdout=log,
                           stderr=subprocess.STDOUT, timeout=1800)
    return r.returncode


def first_report(log_path):
    text = open(log_path, errors="replace").read()
    for pattern in (r"\[cuda-emu\] (.*)", r"^    (.*(?:rel L2 \S+ >|differs|element|missing|guard|error).*)$",
                    r"^(FAIL .*)$"):
        m = re.search(pattern, text, re.M)
        if m:
            s = m.group(1).strip()
            return s if len(s) < 220 else s[:217] + "..."
    return "the tests failed"


def main():
    names = set(sys.argv[1:])
    chosen = [m for m in MUTATIONS if not names or m[0] in names]
    if names and len(chosen) != len(names):
        sys.exit("unknown mutation(s): %s" % ", ".join(sorted(names - {m[0] for m in chosen})))
    flags = build_flags()
    base_bin = os.path.join(ROOT, "build", "emu", "test_cuda")
    if not os.path.exists(base_bin):
        sys.exit("mutate.py: build/emu/test_cuda is missing: run make CUDA_EMU=1 build/emu/test_cuda")
    os.makedirs(OUT, exist_ok=True)
    t_start = time.time()

    # the unmutated build passes every selection used below
    for sel in sorted({(m[4], tuple(sorted(m[5].items()))) for m in chosen}):
        log = os.path.join(OUT, "baseline.log")
        if run_tests(base_bin, sel[0], dict(sel[1]), log) != 0:
            print("mutate.py: the unmutated build fails '%s' %s: %s" % (sel[0], dict(sel[1]), first_report(log)))
            return 2
    print("baseline: the unmutated build passes every selection (%.0f s)" % (time.time() - t_start))

    lib_obj = flags["LIB_OBJ"].split()
    test_obj = flags["TEST_CUDA_OBJ"].split()
    missed = []
    for name, path, old, new, test_filter, env, why in chosen:
        t0 = time.time()
        src = open(os.path.join(ROOT, path)).read()
        if src.count(old) != 1:
            print("MISSED   %s: its pattern occurs %d times in %s (update the mutation)" % (name, src.count(old), path))
            missed.append(name)
            continue
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        mutant_src = os.path.join(d, os.path.basename(path))
        open(mutant_src, "w").write(src.replace(old, new))
        obj = os.path.join(d, os.path.splitext(os.path.basename(path))[0] + ".o")
        incl = ["-iquote", os.path.join(ROOT, os.path.dirname(path))]
        if path.endswith(".cu"):
            cmd = [flags["EMU_CXX"]] + shlex.split(flags["EMU_CXXFLAGS"]) + shlex.split(flags["EMU_KERNEL_FLAGS"])
        else:
            cmd = [flags["CC"]] + shlex.split(flags["CFLAGS"])
        cmd += incl + ["-c", mutant_src, "-o", obj]
        comp = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if comp.returncode != 0:
            print("MISSED   %s: the mutant does not compile:\n%s" % (name, comp.stderr[-2000:]))
            missed.append(name)
            continue
        orig = "build/emu/obj/" + os.path.splitext(path)[0] + ".o"
        objs = [obj if o == orig else o for o in lib_obj]
        binary = os.path.join(d, "test_cuda")
        link = [flags["CC"]] + test_obj + objs + shlex.split(flags["LDLIBS"]) + ["-o", binary]
        lk = subprocess.run(link, cwd=ROOT, capture_output=True, text=True)
        if lk.returncode != 0:
            print("MISSED   %s: the mutant does not link:\n%s" % (name, lk.stderr[-2000:]))
            missed.append(name)
            continue
        log = os.path.join(d, "test.log")
        rc = run_tests(binary, test_filter, env, log)
        where = "%s (%s)" % (path, why)
        if rc != 0:
            print("caught   %-32s %s\n         %-32s -> %s  [%.0f s]" % (name, where, "", first_report(log),
                                                                       time.time() - t0))
        else:
            print("MISSED   %-32s %s: '%s' passed" % (name, where, test_filter))
            missed.append(name)
        sys.stdout.flush()
    print("mutations: %d caught, %d missed (%.0f s)" % (len(chosen) - len(missed), len(missed), time.time() - t_start))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
