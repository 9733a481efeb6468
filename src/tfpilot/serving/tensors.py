"""Tensors between numpy and the wire formats: TF Serving's ``TensorProto`` and JSON, KServe's datatypes.

The JSON rules are TF Serving's (``util/json_tensor.cc``): a tensor is a (nested) list, or a
scalar; numbers go to numeric tensors (no booleans, no fractions for integer types); strings
and ``{"b64": "..."}`` objects go to ``DT_STRING``; an output whose name ends in ``_bytes``
comes back as ``{"b64": ...}``. Unlike TF Serving, a ragged list or a value out of the
dtype's range is a 400 that says where, and a non-UTF-8 string output comes back as base64.

Example:
    >>> import numpy as np
    >>> from tfpilot.serving.tensors import DTYPES, json_to_array, array_to_json
    >>> json_to_array([[1, 2], [3, 4]], DTYPES["DT_UINT8"], "x").dtype
    dtype('uint8')
    >>> array_to_json(np.array([b"hi"], dtype=object), as_bytes=True)
    [{'b64': 'aGk='}]
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from tfpilot.serving.errors import BadRequest

BYTES_SUFFIX = "_bytes"


@dataclass(frozen=True)
class DType:
    """One tensor element type under its three names.

    Args:
        name: TensorFlow's enum name ("DT_FLOAT").
        enum: the ``tensorflow.DataType`` number.
        numpy: the numpy dtype (``object`` for strings).
        kserve: the Open Inference Protocol's datatype ("FP32", "BYTES").
    """

    name: str
    enum: int
    numpy: Any
    kserve: str

    @property
    def is_string(self) -> bool:
        return self.name == "DT_STRING"

    @property
    def short(self) -> str:
        """``float32``, ``string``: the name TensorFlow's messages use."""
        return "string" if self.is_string else np.dtype(self.numpy).name


def _bfloat16() -> Any:
    import ml_dtypes

    return ml_dtypes.bfloat16


_TABLE = (
    ("DT_FLOAT", 1, np.float32, "FP32"), ("DT_DOUBLE", 2, np.float64, "FP64"),
    ("DT_INT32", 3, np.int32, "INT32"), ("DT_UINT8", 4, np.uint8, "UINT8"),
    ("DT_INT16", 5, np.int16, "INT16"), ("DT_INT8", 6, np.int8, "INT8"),
    ("DT_STRING", 7, object, "BYTES"), ("DT_INT64", 9, np.int64, "INT64"),
    ("DT_BOOL", 10, np.bool_, "BOOL"), ("DT_UINT16", 17, np.uint16, "UINT16"),
    ("DT_HALF", 19, np.float16, "FP16"), ("DT_UINT32", 22, np.uint32, "UINT32"),
    ("DT_UINT64", 23, np.uint64, "UINT64"), ("DT_BFLOAT16", 14, None, "BF16"),
)
#: Every supported element type by TensorFlow name.
DTYPES: Mapping[str, DType] = MappingProxyType({n: DType(n, e, d, k) for n, e, d, k in _TABLE})
#: ... by ``DataType`` number.
BY_ENUM: Mapping[int, DType] = MappingProxyType({d.enum: d for d in DTYPES.values()})
#: ... by KServe datatype.
BY_KSERVE: Mapping[str, DType] = MappingProxyType({d.kserve: d for d in DTYPES.values()})


def numpy_dtype(dtype: DType) -> Any:
    """The numpy dtype of ``dtype`` (ml_dtypes' bfloat16 for DT_BFLOAT16)."""
    return _bfloat16() if dtype.name == "DT_BFLOAT16" else dtype.numpy


def dtype_of_enum(enum: int) -> DType:
    """The :class:`DType` for a ``DataType`` number; a 400 for a type tfpilot does not serve."""
    try:
        return BY_ENUM[int(enum)]
    except KeyError:
        raise BadRequest(f"tensor dtype {enum} is not supported here; use one of "
                         f"{', '.join(sorted(DTYPES))}") from None


#: ... by numpy dtype (numbers and booleans).
BY_NUMPY: Mapping[np.dtype, DType] = MappingProxyType(
    {np.dtype(d.numpy): d for d in DTYPES.values() if d.numpy is not None and d.numpy is not object})


def dtype_of_array(arr: np.ndarray) -> DType:
    """The :class:`DType` of a numpy array (object and bytes/str arrays: DT_STRING)."""
    found = BY_NUMPY.get(arr.dtype)
    if found is not None:
        return found
    if arr.dtype.kind in "OSU":
        return DTYPES["DT_STRING"]
    if arr.dtype.name == "bfloat16":
        return DTYPES["DT_BFLOAT16"]
    raise BadRequest(f"arrays of {arr.dtype} cannot be sent as tensors")


# -- TensorProto -------------------------------------------------------------------------------
def array_from_proto(proto: Any) -> np.ndarray:
    """A ``tensorflow.TensorProto`` as a numpy array (strings as an object array of bytes)."""
    dtype = dtype_of_enum(proto.dtype)
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if proto.tensor_content and not dtype.is_string:
        arr = np.frombuffer(proto.tensor_content, dtype=numpy_dtype(dtype))
        if arr.size != int(np.prod(shape)):
            raise BadRequest(f"tensor_content holds {arr.size} values but tensor_shape {list(shape)} "
                             f"needs {int(np.prod(shape))}")
        return arr.reshape(shape)
    import tensorflow as tf

    try:
        arr = tf.make_ndarray(proto)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"malformed TensorProto: {exc}") from None
    if dtype.is_string:
        arr = arr.astype(object)
    return arr


#: The ``TensorProto`` field TensorFlow's ``Tensor::AsProtoField`` fills for each dtype.
PROTO_FIELDS: Mapping[str, str] = MappingProxyType({
    "DT_FLOAT": "float_val", "DT_DOUBLE": "double_val", "DT_INT32": "int_val", "DT_UINT8": "int_val",
    "DT_INT16": "int_val", "DT_INT8": "int_val", "DT_UINT16": "int_val", "DT_STRING": "string_val",
    "DT_INT64": "int64_val", "DT_BOOL": "bool_val", "DT_HALF": "half_val", "DT_BFLOAT16": "half_val",
    "DT_UINT32": "uint32_val", "DT_UINT64": "uint64_val",
})


def array_to_proto(arr: np.ndarray, tensor_content: bool = False) -> Any:
    """A numpy array as a ``tensorflow.TensorProto``, filled as TF Serving fills its answers.

    Args:
        arr: the tensor.
        tensor_content: pack numbers into ``tensor_content`` (``Tensor::AsProtoTensorContent``);
            by default every value goes to its dtype's typed field (``float_val``, ``int64_val``,
            ``half_val`` as the bits of each half, ...), as ``Tensor::AsProtoField`` does.

    Example:
        >>> list(array_to_proto(np.array([[1.5, 2.0]], np.float32)).float_val)
        [1.5, 2.0]
    """
    from tensorflow.core.framework import tensor_pb2

    arr = np.asarray(arr)
    dtype = dtype_of_array(arr)
    proto = tensor_pb2.TensorProto(dtype=dtype.enum)
    for d in arr.shape:
        proto.tensor_shape.dim.add(size=d)
    flat = arr.reshape(-1)
    if dtype.is_string:
        proto.string_val.extend(_as_bytes(x) for x in flat)
    elif tensor_content:
        proto.tensor_content = np.ascontiguousarray(arr).tobytes()
    elif dtype.name in ("DT_HALF", "DT_BFLOAT16"):
        proto.half_val.extend(flat.view(np.uint16).astype(np.int32).tolist())
    else:
        getattr(proto, PROTO_FIELDS[dtype.name]).extend(flat.tolist())
    return proto


def _as_bytes(x: Any) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode("utf-8")


# -- JSON --------------------------------------------------------------------------------------
def json_type(x: Any) -> str:
    """How a JSON value is named in an error message ("a number", "a list", ...)."""
    if isinstance(x, bool):
        return "a boolean"
    if x is None:
        return "null"
    if isinstance(x, (int, float)):
        return "a number"
    if isinstance(x, str):
        return "a string"
    if isinstance(x, list):
        return "a list"
    if isinstance(x, dict):
        return "an object"
    return type(x).__name__


def b64_decode(value: dict[str, Any], where: str) -> bytes:
    """The bytes of ``{"b64": "..."}``; a 400 when it is not exactly that or not base64."""
    data = value.get("b64")
    if len(value) != 1 or not isinstance(data, str):
        raise BadRequest(f"{where}: an object in a tensor must be {{\"b64\": \"<base64 string>\"}}; "
                         f"got keys {sorted(value)[:5]}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(data)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{where}: \"b64\" is not valid base64") from None


def _string_leaf(x: Any, where: str) -> bytes:
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, dict):
        return b64_decode(x, where)
    raise BadRequest(f"{where}: wrong type: a DT_STRING tensor takes strings or {{\"b64\": ...}}; "
                     f"got {json_type(x)}")


def _string_array(value: Any, where: str) -> np.ndarray:
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat: list[bytes] = []

    def walk(x: Any, level: int) -> None:
        if level == len(shape):
            if isinstance(x, list):
                raise BadRequest(f"{where}: wrong shape: a list nested deeper than the first element's "
                                 f"{len(shape)} levels")
            flat.append(_string_leaf(x, where))
            return
        if not isinstance(x, list) or len(x) != shape[level]:
            raise BadRequest(f"{where}: wrong shape: the nested lists are ragged (expected "
                             f"{shape[level]} items at depth {level})")
        for item in x:
            walk(item, level + 1)

    try:
        walk(value, 0)
    except RecursionError:
        raise BadRequest(f"{where}: nested too deeply") from None
    arr = np.empty(len(flat), dtype=object)
    arr[:] = flat
    return arr.reshape(shape)


def json_to_array(value: Any, dtype: DType, where: str) -> np.ndarray:
    """A JSON tensor (a scalar or nested lists) as a numpy array of ``dtype``.

    Args:
        value: the parsed JSON value.
        dtype: the signature input's element type.
        where: what to name in error messages ("input 'x'").
    """
    if dtype.is_string:
        return _string_array(value, where)
    if isinstance(value, dict):
        raise BadRequest(f"{where}: wrong type: {{\"b64\": ...}} objects only go to DT_STRING inputs; "
                         f"this input is {dtype.name}")
    try:
        arr = np.asarray(value)
    except ValueError:
        raise BadRequest(f"{where}: wrong shape: the nested lists are ragged (rows of different lengths)") from None
    except RecursionError:
        raise BadRequest(f"{where}: nested too deeply") from None
    kind = arr.dtype.kind
    if dtype.name == "DT_BOOL":
        if kind != "b" and arr.size:
            raise BadRequest(f"{where}: wrong type: a DT_BOOL tensor takes true/false; got numbers or strings")
        return arr.astype(np.bool_)
    if kind not in "iuf" and arr.size:
        found = "booleans" if kind == "b" else "strings, objects or null"
        raise BadRequest(f"{where}: wrong type: a {dtype.name} tensor takes numbers; found {found} "
                         f"(not of expected type: {dtype.short.replace('float32', 'float')})")
    target = np.dtype(numpy_dtype(dtype))
    if target.kind in "iu":
        if kind == "f" and arr.size:
            raise BadRequest(f"{where}: wrong type: a {dtype.name} tensor takes integers; found numbers "
                             "with a fraction or exponent")
        info = np.iinfo(target)
        if arr.size and (int(arr.min()) < info.min or int(arr.max()) > info.max):
            raise BadRequest(f"{where}: values must be within {info.min}..{info.max} for {dtype.name}; "
                             f"got {int(arr.min())}..{int(arr.max())}")
    return arr.astype(target)


def array_to_json(arr: np.ndarray, as_bytes: bool = False) -> Any:
    """A numpy array as JSON: nested lists of numbers/booleans/strings (bytes as base64 objects).

    Args:
        arr: the output tensor.
        as_bytes: string elements as ``{"b64": ...}`` (TF Serving does so for outputs named ``*_bytes``).
    """
    arr = np.asarray(arr)
    if arr.dtype.kind not in "OSU":
        if arr.dtype.name in ("bfloat16", "float16"):
            arr = arr.astype(np.float32)
        return arr.tolist()

    def leaf(x: Any) -> Any:
        if isinstance(x, str):
            return x
        data = bytes(x)
        if not as_bytes:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(data).decode("ascii")}

    def walk(x: Any) -> Any:
        return [walk(i) for i in x] if isinstance(x, list) else leaf(x)

    return walk(arr.tolist())
