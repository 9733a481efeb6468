"""SignatureDefs: what each signature of a model takes and returns, read from ``saved_model.pb``.

A :class:`Signature` is the serving view of one ``SignatureDef``: its method
(``tensorflow/serving/predict``, ``classify`` or ``regress``), its inputs and outputs by
alias, with dtype, shape (``None`` for a -1 dimension) and graph tensor name. The
``SignatureDef`` protos themselves are kept, so metadata answers are TF Serving's own
(``GetModelMetadataResponse`` with a ``SignatureDefMap``, converted to JSON as TF Serving does).

Example:
    >>> from tfpilot.serving.signatures import TensorInfo
    >>> from tfpilot.serving.tensors import DTYPES
    >>> import numpy as np
    >>> info = TensorInfo("x", DTYPES["DT_FLOAT"], (None, 2), "serving_default_x:0")
    >>> info.check(np.zeros((3, 2), "float32"), "input 'x'").shape
    (3, 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from tfpilot.serving.errors import BadRequest
from tfpilot.serving.tensors import DTYPES, DType, dtype_of_array, dtype_of_enum

DEFAULT_SIGNATURE = "serving_default"
#: A model with image inputs also takes them as uint8 pixels (``serving_default``: encoded files).
PIXELS_SIGNATURE = "serving_pixels"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SERVE_TAG = "serve"
#: Signatures a SavedModel lists that are not for clients (TF2's init op).
_INTERNAL_PREFIX = "__"

Shape = tuple[int | None, ...] | None


class ModelLoadError(RuntimeError):
    """A model version could not be loaded; ``code`` is TF Serving's canonical error code."""

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.code = code


def shape_text(shape: Shape) -> str:
    """``[-1, 28, 28, 1]`` (or ``unknown rank``) as in TensorFlow's messages."""
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature.

    Args:
        key: its alias in the signature (what requests name).
        dtype: the element type.
        shape: dimensions (None: any size), or None when the rank is unknown.
        tensor_name: the graph tensor (``serving_default_x:0``), for metadata.
    """

    key: str
    dtype: DType
    shape: Shape
    tensor_name: str = ""

    def check(self, arr: np.ndarray, where: str, shape: bool = True) -> np.ndarray:
        """``arr`` if its dtype (and, with ``shape``, its shape) fit this input, else a 400 that says
        what is expected. Without ``shape`` the graph decides, as TF Serving feeds a tensor as sent."""
        got = dtype_of_array(arr)
        if got.name != self.dtype.name:
            raise BadRequest(f"{where}: expects {self.dtype.short} ({self.dtype.name}) but {got.short} "
                             f"({got.name}) was provided")
        if shape and self.shape is not None:
            ok = arr.ndim == len(self.shape) and all(w is None or w == g for w, g in zip(self.shape, arr.shape))
            if not ok:
                raise BadRequest(f"{where}: wrong shape {list(arr.shape)}: the signature takes "
                                 f"{shape_text(self.shape)} (-1: any size)")
        return arr

    def to_proto(self) -> Any:
        """``tensorflow.TensorInfo``."""
        from tensorflow.core.protobuf import meta_graph_pb2

        info = meta_graph_pb2.TensorInfo(name=self.tensor_name, dtype=self.dtype.enum)
        if self.shape is None:
            info.tensor_shape.unknown_rank = True
        else:
            for d in self.shape:
                info.tensor_shape.dim.add(size=-1 if d is None else int(d))
        return info

    @classmethod
    def from_proto(cls, key: str, info: Any) -> TensorInfo:
        shape = None if info.tensor_shape.unknown_rank else tuple(
            None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
        return cls(key, dtype_of_enum(info.dtype), shape, info.name)


@dataclass(frozen=True)
class Signature:
    """One signature of a model.

    Args:
        name: its key in the model ("serving_default").
        method_name: ``tensorflow/serving/predict``, ``.../classify`` or ``.../regress``.
        inputs, outputs: by alias.
    """

    name: str
    method_name: str
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]

    @property
    def batchable(self) -> bool:
        """Whether requests can be concatenated along dimension 0 (every input is -1 there)."""
        return bool(self.inputs) and all(i.shape is not None and len(i.shape) >= 1 and i.shape[0] is None
                                         for i in self.inputs.values())

    def to_proto(self) -> Any:
        """``tensorflow.SignatureDef``."""
        from tensorflow.core.protobuf import meta_graph_pb2

        sig = meta_graph_pb2.SignatureDef(method_name=self.method_name)
        for key, info in self.inputs.items():
            sig.inputs[key].CopyFrom(info.to_proto())
        for key, info in self.outputs.items():
            sig.outputs[key].CopyFrom(info.to_proto())
        return sig

    @classmethod
    def from_proto(cls, name: str, sig: Any) -> Signature:
        return cls(name, sig.method_name,
                   MappingProxyType({k: TensorInfo.from_proto(k, v) for k, v in sorted(sig.inputs.items())}),
                   MappingProxyType({k: TensorInfo.from_proto(k, v) for k, v in sorted(sig.outputs.items())}))


def read_signature_defs(folder: Path) -> dict[str, Any]:
    """The ``SignatureDef`` protos of the ``serve`` MetaGraph of the SavedModel in ``folder``.

    Raises:
        ModelLoadError: no ``saved_model.pb``/``.pbtxt`` (NOT_FOUND), unparsable (DATA_LOSS), or no
            MetaGraph tagged ``serve`` (NOT_FOUND).
    """
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    pb, pbtxt = folder / "saved_model.pb", folder / "saved_model.pbtxt"
    try:
        if pb.is_file():
            saved.ParseFromString(pb.read_bytes())
        elif pbtxt.is_file():
            text_format.Parse(pbtxt.read_text(encoding="utf-8"), saved)
        else:
            raise ModelLoadError(f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
                                 f"{folder}", "NOT_FOUND")
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{folder}: saved_model.pb is not a SavedModel ({exc})", "DATA_LOSS") from None
    for graph in saved.meta_graphs:
        if SERVE_TAG in graph.meta_info_def.tags:
            return dict(graph.signature_def)
    tags = [list(g.meta_info_def.tags) for g in saved.meta_graphs]
    raise ModelLoadError(f"Could not find meta graph def matching supplied tags: {{ {SERVE_TAG} }} in {folder}; "
                         f"its MetaGraphs are tagged {tags}", "NOT_FOUND")


def signature_def_map(protos: Mapping[str, Any]) -> Any:
    """``tensorflow.serving.SignatureDefMap`` of ``protos`` (name -> SignatureDef)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    out = get_model_metadata_pb2.SignatureDefMap()
    for name, sig in protos.items():
        out.signature_def[name].CopyFrom(sig)
    return out


def proto_json(message: Any, snake_case: bool = True) -> dict[str, Any]:
    """A proto as TF Serving's REST API writes it (every field, proto field names)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=snake_case)


def client_signatures(signatures: Mapping[str, Signature]) -> list[str]:
    """The names a client may call (TF2's ``__saved_model_init_op`` left out), sorted."""
    return sorted(n for n in signatures if not n.startswith(_INTERNAL_PREFIX))


def tfpilot_signature(name: str, inputs: Mapping[str, tuple[str, Shape]],
                      outputs: Mapping[str, tuple[str, Shape]]) -> Signature:
    """A predict signature named as a tfpilot export names its tensors.

    Args:
        name: the signature's name.
        inputs, outputs: alias -> (dtype enum name, shape).

    Example:
        >>> sig = tfpilot_signature("serving_default", {"x": ("DT_FLOAT", (None,))}, {"y": ("DT_FLOAT", (None,))})
        >>> sig.inputs["x"].name, sig.outputs["y"].name
        ('serving_default_x:0', 'StatefulPartitionedCall:0')
    """
    ins = {k: TensorInfo(k, DTYPES[d], s, f"{name}_{k}:0") for k, (d, s) in inputs.items()}
    outs = {k: TensorInfo(k, DTYPES[d], s, f"StatefulPartitionedCall:{i}")
            for i, (k, (d, s)) in enumerate(outputs.items())}
    return Signature(name, PREDICT_METHOD, MappingProxyType(ins), MappingProxyType(outs))


def table_signatures(spec: Any) -> dict[str, Signature]:
    """The signatures of a model of named inputs and heads (a :class:`~tfpilot.spec.TableSpec`).

    ``serving_default`` takes images as encoded files (DT_STRING), texts and categories as
    strings, numbers as DT_FLOAT; ``serving_pixels`` (models with image inputs) takes the
    images as uint8 pixels. Out: each head by its key (category: probabilities (N, C);
    binary: P(classes[1]); number: the value) and ``<key>_label`` (the top class) for class heads.
    """
    outputs: dict[str, tuple[str, Shape]] = {}
    for o in spec.outputs:
        outputs[o.key] = ("DT_FLOAT", (None, len(o.classes)) if o.kind == "category" else (None,))
        if o.classes:
            outputs[f"{o.key}_label"] = ("DT_STRING", (None,))
    images = any(c.kind == "image" for c in spec.inputs)
    return {name: tfpilot_signature(name, {c.key: _table_input(c, name) for c in spec.inputs}, outputs)
            for name in ((DEFAULT_SIGNATURE, PIXELS_SIGNATURE) if images else (DEFAULT_SIGNATURE,))}


def _table_input(c: Any, signature: str) -> tuple[str, Shape]:
    if c.kind == "image" and signature == PIXELS_SIGNATURE:
        return "DT_UINT8", (None, *c.shape)
    return ("DT_FLOAT" if c.kind == "number" else "DT_STRING"), (None,)
