# shellcheck shell=bash
# bench/torch_venv.sh — sourced by the CPU benchmark scripts: the PyTorch sides they time the engine against.
#   TORCH_SIDES   "name|python|extra args" lines: Debian's torch 1.13 (/usr/bin/python3) where it imports,
#                 and PyTorch 2.x eager and torch.compile from a venv this creates (FT_TORCH2_VENV, default
#                 build/torch2-venv; FT_TORCH2=0 skips it). The CPU-only wheel index is tried first (a smaller
#                 download), then PyPI.
#   torch_side_run PY ARGS... runs one side; the venv's python gets the wheel's torch/lib first on
#                 LD_LIBRARY_PATH so that nothing it or a child process loads resolves to Debian's libtorch 1.13.
#                 (That alone does not keep torch.compile vectorised: inductor *links* against Debian's libtorch;
#                 bench/torch_side.py fixes its link line and reports the ISA it picked.)
TORCH_SIDES=()
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    TORCH_SIDES+=("torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') eager|/usr/bin/python3|")
fi
TORCH2_VENV=${FT_TORCH2_VENV:-build/torch2-venv}
if [ "${FT_TORCH2:-1}" != 0 ]; then
    if ! "$TORCH2_VENV/bin/python" -c 'import torch, numpy' 2>/dev/null; then
        echo "torch_venv: creating $TORCH2_VENV (PyTorch 2.x wheel; several minutes)" >&2
        /usr/bin/python3 -m venv "$TORCH2_VENV" >&2
        "$TORCH2_VENV/bin/pip" install -q torch numpy --index-url https://download.pytorch.org/whl/cpu >&2 ||
            "$TORCH2_VENV/bin/pip" install -q torch numpy >&2
    fi
    if "$TORCH2_VENV/bin/python" -c 'import torch, numpy' 2>/dev/null; then
        TORCH2_VERSION=$("$TORCH2_VENV/bin/python" -c 'import torch; print(torch.__version__)')
        TORCH2_LIB=$("$TORCH2_VENV/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
        TORCH_SIDES+=("torch $TORCH2_VERSION eager|$TORCH2_VENV/bin/python|")
        TORCH_SIDES+=("torch $TORCH2_VERSION compile|$TORCH2_VENV/bin/python|--compile")
    else
        echo "torch_venv: no PyTorch 2.x in $TORCH2_VENV; its columns are left out" >&2
    fi
fi

torch_side_run() {
    local py=$1
    shift
    if [ "$py" = /usr/bin/python3 ]; then
        "$py" "$@"
    else
        LD_LIBRARY_PATH="$TORCH2_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$py" "$@"
    fi
}
