"""Tensors of the Open Inference Protocol (KServe V2): JSON ``data`` and the binary tensor extension.

In JSON a tensor is ``{"name", "shape", "datatype", "data"}`` with ``data`` in row-major
order (flat, or nested as the shape). With the binary extension the body is the JSON header
(its length in the ``Inference-Header-Content-Length`` header) followed by the raw bytes of
each tensor whose ``parameters.binary_data_size`` is set, in order: little-endian numbers,
one byte per BOOL, and for BYTES each element as a 4-byte little-endian length then its bytes.

Example:
    >>> import numpy as np
    >>> raw = to_binary(np.array([b"ab", b"c"], dtype=object))
    >>> from_binary(raw, "BYTES", [2]).tolist()
    [b'ab', b'c']
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from tfpilot.serving.errors import BadRequest
from tfpilot.serving.tensors import BY_KSERVE, DType, dtype_of_array, numpy_dtype

HEADER_LENGTH = "inference-header-content-length"


def kserve_dtype(datatype: Any, where: str) -> DType:
    if not isinstance(datatype, str) or datatype not in BY_KSERVE:
        raise BadRequest(f"{where}: unknown datatype {datatype!r}; use one of {', '.join(sorted(BY_KSERVE))}")
    return BY_KSERVE[datatype]


def check_shape(shape: Any, where: str) -> tuple[int, ...]:
    if not isinstance(shape, list) or any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape):
        raise BadRequest(f"{where}: \"shape\" must be a list of non-negative integers; got {shape!r}")
    return tuple(shape)


def from_binary(raw: bytes, datatype: str, shape: list[int], where: str = "input") -> np.ndarray:
    """A tensor from its binary-extension bytes."""
    dtype = kserve_dtype(datatype, where)
    dims = check_shape(shape, where)
    count = int(np.prod(dims)) if dims else 1
    if not dtype.is_string:
        np_dtype = np.dtype(numpy_dtype(dtype))
        if len(raw) != count * np_dtype.itemsize:
            raise BadRequest(f"{where}: {len(raw)} bytes of binary data do not hold shape {list(dims)} of "
                             f"{datatype} ({count * np_dtype.itemsize} bytes)")
        return np.frombuffer(raw, dtype=np_dtype.newbyteorder("<")).astype(np_dtype).reshape(dims)
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest(f"{where}: truncated BYTES element length at offset {offset}")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise BadRequest(f"{where}: truncated BYTES element at offset {offset}")
        items.append(raw[offset : offset + size])
        offset += size
    if len(items) != count:
        raise BadRequest(f"{where}: {len(items)} BYTES elements do not fill shape {list(dims)} ({count})")
    arr = np.empty(count, dtype=object)
    arr[:] = items
    return arr.reshape(dims)


def to_binary(arr: np.ndarray) -> bytes:
    """A tensor's binary-extension bytes."""
    arr = np.asarray(arr)
    if dtype_of_array(arr).is_string:
        parts = []
        for x in arr.reshape(-1):
            data = x if isinstance(x, bytes) else str(x).encode("utf-8")
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def from_json(data: Any, datatype: str, shape: list[int], where: str = "input") -> np.ndarray:
    """A tensor from JSON ``data`` (flat or nested, row-major)."""
    dtype = kserve_dtype(datatype, where)
    dims = check_shape(shape, where)
    if datatype == "BF16":
        raise BadRequest(f"{where}: BF16 tensors must be sent as binary data")
    try:
        flat = np.asarray(data, dtype=object if dtype.is_string else None).reshape(-1)
    except ValueError:
        raise BadRequest(f"{where}: \"data\" is ragged; give the values flat, in row-major order") from None
    count = int(np.prod(dims)) if dims else 1
    if flat.size != count:
        raise BadRequest(f"{where}: \"data\" has {flat.size} values but shape {list(dims)} needs {count}")
    if dtype.is_string:
        if any(not isinstance(x, str) for x in flat):
            raise BadRequest(f"{where}: BYTES data in JSON must be strings (send raw bytes as binary data)")
        out = np.empty(count, dtype=object)
        out[:] = [x.encode("utf-8") for x in flat]
        return out.reshape(dims)
    kind = flat.dtype.kind
    if dtype.name == "DT_BOOL":
        if kind != "b" and flat.size:
            raise BadRequest(f"{where}: BOOL data must be true/false")
    elif kind not in "iuf" and flat.size:
        raise BadRequest(f"{where}: {datatype} data must be numbers")
    elif np.dtype(numpy_dtype(dtype)).kind in "iu" and kind == "f" and flat.size:
        raise BadRequest(f"{where}: {datatype} data must be integers")
    return flat.astype(numpy_dtype(dtype)).reshape(dims)


def to_json(arr: np.ndarray) -> list[Any]:
    """A tensor's JSON ``data``: flat, row-major (BYTES as UTF-8 strings)."""
    arr = np.asarray(arr)
    if dtype_of_array(arr).is_string:
        return [(x if isinstance(x, bytes) else str(x).encode()).decode("utf-8", "replace") for x in arr.reshape(-1)]
    if arr.dtype.name in ("bfloat16", "float16"):
        arr = arr.astype(np.float32)
    return arr.reshape(-1).tolist()
