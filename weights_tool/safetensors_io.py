"""Minimal safetensors reader/writer on numpy (no dependency on the safetensors package).

Layout: 8-byte little-endian header length L, L bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the tensor bytes back to back (offsets relative to the data start).
Tensors are written in the given order, back to back (no gaps, as the reference
implementation requires); the JSON header is space-padded to a multiple of 8 bytes.
"""
import json
import struct

import numpy as np

_NP_TO_ST = {
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int32"): "I32",
    np.dtype("int64"): "I64",
    np.dtype("uint8"): "U8",
}
_ST_TO_NP = {v: k for k, v in _NP_TO_ST.items()}
# Extra dtypes accepted when reading foreign files (written by the safetensors package); never produced by save().
_READ_ONLY = {
    "F64": np.dtype("float64"),
    "I8": np.dtype("int8"),
    "I16": np.dtype("int16"),
    "U16": np.dtype("uint16"),
    "BOOL": np.dtype("bool"),
}
_ITEM_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "U8": 1, "F64": 8, "I8": 1, "I16": 2, "U16": 2,
              "BOOL": 1}


def _bf16_bits(a):
    """float32 array -> uint16 bf16 bits, round to nearest even (as torch does)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    return ((u + rounding) >> 16).astype(np.uint16)


def save(path, tensors, metadata=None, dtype=None, dtypes=None):
    """tensors: dict name -> array-like (numpy or torch). dtype: None (keep),
    'F32', 'F16' or 'BF16' applied to floating tensors. dtypes: optional dict name -> dtype
    that overrides `dtype` for single floating tensors (e.g. keep pos_embed in F32)."""
    header = {}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().float().numpy() if value.is_floating_point() else value.cpu().numpy()
        arr = np.ascontiguousarray(value)
        st_dtype = _NP_TO_ST.get(arr.dtype)
        if arr.dtype.kind == "f":
            target = (dtypes or {}).get(name) or dtype or st_dtype or "F32"
            if target == "BF16":
                raw = _bf16_bits(arr.astype(np.float32)).tobytes()
            else:
                raw = arr.astype(_ST_TO_NP[target]).tobytes()
            st_dtype = target
        else:
            if st_dtype is None:
                raise ValueError(f"{name}: unsupported dtype {arr.dtype}")
            raw = arr.tobytes()
        header[name] = {"dtype": st_dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def _encode_float(arr, target):
    """float array -> raw bytes in safetensors dtype `target` (F32, F16 or BF16)."""
    if target == "BF16":
        return _bf16_bits(np.asarray(arr, dtype=np.float32)).tobytes()
    return np.ascontiguousarray(arr, dtype=_ST_TO_NP[target]).tobytes()


def save_stream(path, specs, metadata=None):
    """Streaming writer for files too large to hold twice in memory.

    specs: list of (name, shape, st_dtype, producer) with st_dtype in F32/F16/BF16/I32/I64/U8 and
    producer() -> array of exactly `shape` (called once, in order, after the header is written).
    Same layout as save(): tensors in the given order, back to back, header padded to 8."""
    header = {}
    offset = 0
    for name, shape, st_dtype, _ in specs:
        if st_dtype not in _ST_TO_NP and st_dtype != "BF16":
            raise ValueError(f"{name}: unsupported dtype {st_dtype}")
        if name in header:
            raise ValueError(f"duplicate tensor name {name}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * _ITEM_SIZE[st_dtype]
        header[name] = {"dtype": st_dtype, "shape": [int(d) for d in shape], "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape, st_dtype, producer in specs:
            info = header[name]
            b, e = info["data_offsets"]
            value = producer()
            if hasattr(value, "detach"):
                value = value.detach().cpu().float().numpy() if value.is_floating_point() else value.cpu().numpy()
            arr = np.asarray(value)
            if list(arr.shape) != info["shape"]:
                raise ValueError(f"{name}: producer gave shape {list(arr.shape)}, expected {info['shape']}")
            if st_dtype in ("F32", "F16", "BF16"):
                raw = _encode_float(arr, st_dtype)
            else:
                raw = np.ascontiguousarray(arr, dtype=_ST_TO_NP[st_dtype]).tobytes()
            assert len(raw) == e - b, name
            f.write(raw)
            del value, arr, raw


def read_header(path):
    """Returns (dict name -> {"dtype", "shape", "data_offsets"}, metadata dict, data_start) without
    reading the tensor data. Raises ValueError when the file is not a plausible safetensors file."""
    import os

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("file too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > min(100 << 20, size - 8):
            raise ValueError(f"implausible safetensors header length {n}")
        raw = f.read(n)
    if raw[:1] != b"{":
        raise ValueError("safetensors header does not start with '{'")
    try:
        header = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"safetensors header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ValueError("safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    data_len = size - 8 - n
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise ValueError(f"tensor '{name}': malformed header entry")
        if info["dtype"] not in _ITEM_SIZE:
            raise ValueError(f"tensor '{name}': unsupported dtype {info['dtype']}")
        b, e = info["data_offsets"]
        if not 0 <= b <= e <= data_len or int(np.prod(info["shape"], dtype=np.int64)) * _ITEM_SIZE[info["dtype"]] != e - b:
            raise ValueError(f"tensor '{name}': data_offsets {info['data_offsets']} do not match shape/dtype/file size")
    return header, meta, 8 + n


def load(path):
    """Returns (dict name -> float32/int numpy array, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = data[base + b : base + e]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_ST_TO_NP.get(info["dtype"]) or _READ_ONLY[info["dtype"]])
            if arr.dtype == np.float16:
                arr = arr.astype(np.float32)
        out[name] = arr.reshape(info["shape"]).copy()
    return out, meta
