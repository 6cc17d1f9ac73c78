"""Checks a file written by `cargo infer convert` with Python's own readers (tests/convert.rs).

usage: convert_check.py OUT.safetensors KIND SOURCE DTYPE
KIND: safetensors (SOURCE holds the reference tensors, e.g. saved by torch) or onnx (SOURCE is
the model; its initializers, external data included, are the reference). DTYPE: none|f16|bf16|f32.
Exits non-zero, naming the tensor, on any difference."""

import json
import struct
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

out, kind, source, dtype = sys.argv[1:5]

NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
      "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}


def read_by_hand(path):
    """name → (dtype, raw bytes, shape, metadata); numpy has no bfloat16, so load_file cannot."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        out[name] = (info["dtype"], body[start:end], tuple(info["shape"]))
    return out, meta


def values(dtype, raw, shape):
    """Float values (bfloat16 widened exactly to float32), or the integers as they are."""
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=NP[dtype]).reshape(shape)


ONNX_DTYPES = {np.dtype(v): k for k, v in NP.items()}
if kind == "onnx":
    import onnx
    from onnx import numpy_helper

    model = onnx.load(source, load_external_data=True)
    ref = {}
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        ref[t.name] = (ONNX_DTYPES[a.dtype], np.ascontiguousarray(a).tobytes(), a.shape)
else:
    ref, _ = read_by_hand(source)
    if all(d != "BF16" for d, _, _ in read_by_hand(out)[0].values()):
        load_file(out)  # numpy's own loader reads it too, when it can type every tensor


def bf16_bits(a):
    """float32 → bfloat16 bits, rounding to nearest even."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


got, meta = read_by_hand(out)
assert "source_sha256" in meta and len(meta["source_sha256"]) == 64, meta
assert sorted(got) == sorted(ref), (sorted(got), sorted(ref))

with safe_open(out, framework="numpy") as f:  # Python's safetensors opens it
    assert sorted(f.keys()) == sorted(ref)
    assert f.metadata() == meta
    for name in f.keys():
        if got[name][0] != "BF16":
            assert np.array_equal(f.get_tensor(name), values(*got[name])), name

TARGET = {"f16": "F16", "bf16": "BF16", "f32": "F32"}
for name, (sdtype, sraw, shape) in ref.items():
    gdtype, graw, gshape = got[name]
    assert gshape == shape, (name, gshape, shape)
    floating = sdtype in ("F32", "F16", "BF16", "F64")
    if dtype == "none" or not floating:
        assert (gdtype, graw) == (sdtype, sraw), name
        continue
    want = TARGET[dtype]
    assert gdtype == want, (name, gdtype, want)
    v = values(sdtype, sraw, shape)
    if want == "BF16":
        expect = bf16_bits(v).tobytes()
    else:
        expect = v.astype(NP[want]).tobytes()
    assert graw == expect, name
print(f"ok {len(ref)} tensors")
