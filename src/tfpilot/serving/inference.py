"""Predict, classify and regress on arrays: the protocol-neutral part of every request.

REST (TF Serving's and KServe's) and gRPC parse their bodies into numpy arrays, call these,
and write the answers in their own format; so a model answers the same whatever the wire.
The checks are TF Serving's (``predict_util.cc``, ``classifier.cc``, ``regressor.cc``), with
messages that also say what would be right.

Example:
    >>> import numpy as np
    >>> async def demo(servable):  # doctest: +SKIP
    ...     sig, out = await predict(servable, "serving_default", {"x": np.ones((2, 2), "float32")})
    ...     return out["y"].shape
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpilot.serving.errors import BadRequest
from tfpilot.serving.servable import Servable
from tfpilot.serving.signatures import CLASSIFY_METHOD, REGRESS_METHOD, Signature

INPUTS = "inputs"
CLASSES = "classes"
SCORES = "scores"
OUTPUTS = "outputs"


@dataclass(frozen=True)
class Classification:
    """One example's classes, best first as the model ordered them: ``(label, score)`` pairs."""

    classes: tuple[tuple[str, float], ...]


async def predict(servable: Servable, signature_name: str | None, inputs: Mapping[str, np.ndarray],
                  output_filter: Sequence[str] = ()) -> tuple[Signature, dict[str, np.ndarray]]:
    """The signature's outputs for ``inputs`` (only those in ``output_filter`` when given)."""
    sig = _predict_signature(servable, signature_name, output_filter)
    return sig, _filtered(await servable.run(sig.name, inputs), output_filter)


def predict_blocking(servable: Servable, signature_name: str | None, inputs: Mapping[str, np.ndarray],
                     output_filter: Sequence[str] = ()) -> tuple[Signature, dict[str, np.ndarray]]:
    """:func:`predict` from a thread of its own (the gRPC server's; see ``Servable.run_blocking``)."""
    sig = _predict_signature(servable, signature_name, output_filter)
    return sig, _filtered(servable.run_blocking(sig.name, inputs), output_filter)


def _predict_signature(servable: Servable, signature_name: str | None, output_filter: Sequence[str]) -> Signature:
    sig = servable.signature(signature_name)
    for name in output_filter:
        if name not in sig.outputs:
            raise BadRequest(f"output tensor alias not found in signature: {name}. Outputs expected to be in "
                             f"the set {{{','.join(sig.outputs)}}}.")
    return sig


def _filtered(out: dict[str, np.ndarray], output_filter: Sequence[str]) -> dict[str, np.ndarray]:
    return {k: out[k] for k in output_filter} if output_filter else out


def _method_signature(servable: Servable, signature_name: str | None, method: str, verb: str) -> Signature:
    sig = servable.signature(signature_name)
    if sig.method_name != method:
        kinds = [n for n, s in servable.signatures.items() if s.method_name == method]
        hint = f" This model's {verb} signatures: {', '.join(kinds)}." if kinds else ""
        raise BadRequest(f"Expected {verb} signature method_name to be {method}. Was: {sig.method_name} "
                         f"(signature {sig.name!r}).{hint}")
    if list(sig.inputs) != [INPUTS] or sig.inputs[INPUTS].dtype.name != "DT_STRING":
        raise BadRequest(f"signature {sig.name!r}: a {verb} signature takes one DT_STRING input named "
                         f"'inputs' (serialized tf.Examples); it has {list(sig.inputs)}")
    return sig


def _examples_tensor(serialized: Sequence[bytes]) -> np.ndarray:
    arr = np.empty(len(serialized), dtype=object)
    arr[:] = list(serialized)
    return arr


async def classify(servable: Servable, signature_name: str | None,
                   serialized: Sequence[bytes]) -> tuple[Signature, list[Classification]]:
    """Class labels and scores per serialized ``tf.Example`` (a classify signature)."""
    sig = _method_signature(servable, signature_name, CLASSIFY_METHOD, "classification")
    if CLASSES not in sig.outputs and SCORES not in sig.outputs:
        raise BadRequest(f"Expected classification signature outputs to contain at least one of \"classes\" "
                         f"or \"scores\"; signature {sig.name!r} has {list(sig.outputs)}")
    out = await servable.run(sig.name, {INPUTS: _examples_tensor(serialized)})
    n = len(serialized)
    classes, scores = out.get(CLASSES), out.get(SCORES)
    for name, tensor in ((CLASSES, classes), (SCORES, scores)):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise BadRequest(f"Expected Tensor shape: [batch_size num_classes] but got {list(tensor.shape)} "
                             f"({name})")
        if tensor.shape[0] != n:
            raise BadRequest(f"Expected {name} output batch size of {n}. Got: {tensor.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise BadRequest(f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. "
                         f"{scores.shape[1]}")
    k = (classes if classes is not None else scores).shape[1]
    result = []
    for i in range(n):
        pairs = []
        for c in range(k):
            label = classes[i, c] if classes is not None else b""
            label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            pairs.append((label, float(scores[i, c]) if scores is not None else 0.0))
        result.append(Classification(tuple(pairs)))
    return sig, result


async def regress(servable: Servable, signature_name: str | None,
                  serialized: Sequence[bytes]) -> tuple[Signature, list[float]]:
    """One value per serialized ``tf.Example`` (a regress signature)."""
    sig = _method_signature(servable, signature_name, REGRESS_METHOD, "regression")
    if OUTPUTS not in sig.outputs:
        raise BadRequest(f"No regression outputs found in signature {sig.name!r}: it needs an output named "
                         f"'outputs'; it has {list(sig.outputs)}")
    outputs = await servable.run(sig.name, {INPUTS: _examples_tensor(serialized)})
    out = np.asarray(outputs[OUTPUTS])
    n = len(serialized)
    if not (out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)):
        raise BadRequest(f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                         f"{list(out.shape)}")
    if out.shape[0] != n:
        raise BadRequest(f"Input batch size did not match output batch size: {n} vs. {out.shape[0]}")
    return sig, [float(v) for v in np.asarray(out, dtype=np.float64).reshape(-1)]


def classification_pairs(result: Classification) -> list[list[Any]]:
    """``[[label, score], ...]``: TF Serving's JSON of one example's classes."""
    return [[label, score] for label, score in result.classes]
