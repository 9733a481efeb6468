"""TF Serving's JSON predict format for any signature (``util/json_tensor.cc``'s rules).

Request:

* row format ``{"instances": [...]}``: one entry per instance; with several inputs each entry
  is an object ``{"<input>": value, ...}`` naming all of them; the instances are stacked into
  one tensor per input (dimension 0 is the batch);
* columnar format ``{"inputs": value}`` (one input) or ``{"inputs": {"<input>": value, ...}}``:
  each value is the whole tensor, batch dimension included (or a scalar);
* ``"signature_name"`` picks the signature (default ``serving_default``).

Response: row format ``{"predictions": [...]}`` -- per instance the output's value, or an
object of every output when there are several (all must have the batch dimension);
columnar format ``{"outputs": value}`` or ``{"outputs": {"<output>": value, ...}}``.

Example:
    >>> from tfpilot.serving.signatures import Signature, TensorInfo
    >>> from tfpilot.serving.tensors import DTYPES
    >>> sig = Signature("serving_default", "tensorflow/serving/predict",
    ...                 {"x": TensorInfo("x", DTYPES["DT_FLOAT"], (None, 2))}, {})
    >>> inputs, form = json_inputs({"instances": [[1, 2], [3, 4]]}, sig)
    >>> inputs["x"].shape, form
    ((2, 2), 'row')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from tfpilot.registry import did_you_mean
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.signatures import Signature
from tfpilot.serving.tensors import BYTES_SUFFIX, json_to_array

Form = Literal["row", "column"]
#: Decodes one input's instances itself (tfpilot's ``{"b64": image}`` extra), or returns None.
InstanceHook = Callable[[str, list[Any]], "np.ndarray | None"]


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def signature_name(payload: Mapping[str, Any]) -> str | None:
    """The request's ``signature_name`` (None when absent); a 400 when it is not a string."""
    name = payload.get("signature_name")
    if name is not None and not isinstance(name, str):
        raise BadRequest("'signature_name' key must be a string value")
    return name


def _stack(name: str, values: list[Any], sig: Signature, hook: InstanceHook | None) -> np.ndarray:
    if hook is not None:
        decoded = hook(name, values)
        if decoded is not None:
            return decoded
    return json_to_array(values, sig.inputs[name].dtype, f"input {name!r}")


def _rows(instances: Any, sig: Signature, hook: InstanceHook | None) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise BadRequest("Expecting 'instances' to be an list/array (one entry per instance)")
    if not instances:
        raise BadRequest("No values in 'instances' array: send at least one instance")
    names = list(sig.inputs)
    named = _is_named(instances[0])
    if not named and len(names) > 1:
        raise BadRequest(f"instances is a plain list, but expecting list of objects as multiple input tensors "
                         f"required as per tensorinfo_map: each instance needs {sorted(names)}")
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for i, inst in enumerate(instances):
        if named != _is_named(inst):
            raise BadRequest(f"Expecting {'object' if named else 'value/list'} but got "
                             f"{'object' if _is_named(inst) else 'list'} at item {i} of input list")
        if named:
            if set(inst) != set(names):
                extra = sorted(set(inst) - set(names))
                hint = "".join(did_you_mean(k, names) for k in extra)[:200]
                raise BadRequest(f"Failed to process element: {i} of 'instances' list: its keys {sorted(inst)} "
                                 f"must be equal to the signature's inputs {sorted(names)}.{hint}")
            for n in names:
                columns[n].append(inst[n])
        else:
            columns[names[0]].append(inst)
    return {n: _stack(n, v, sig, hook) for n, v in columns.items()}


def _columns(inputs: Any, sig: Signature, hook: InstanceHook | None) -> dict[str, np.ndarray]:
    names = list(sig.inputs)
    if not _is_named(inputs):
        if len(names) > 1:
            raise BadRequest(f"inputs is a plain value/list, but expecting an object as multiple input tensors "
                             f"required as per tensorinfo_map: {{{', '.join(repr(n) for n in names)}: ...}}")
        if isinstance(inputs, list) and hook is not None:
            decoded = hook(names[0], inputs)
            if decoded is not None:
                return {names[0]: decoded}
        return {names[0]: json_to_array(inputs, sig.inputs[names[0]].dtype, f"input {names[0]!r}")}
    out = {}
    for n in names:
        if n not in inputs:
            hint = "".join(did_you_mean(k, names) for k in inputs if k not in names)[:200]
            raise BadRequest(f"Missing named input: {n} in 'inputs' object.{hint}")
        value = inputs[n]
        decoded = hook(n, value) if hook is not None and isinstance(value, list) else None
        out[n] = decoded if decoded is not None else json_to_array(value, sig.inputs[n].dtype, f"input {n!r}")
    return out


def json_inputs(payload: Mapping[str, Any], sig: Signature,
                hook: InstanceHook | None = None) -> tuple[dict[str, np.ndarray], Form]:
    """The input arrays of a predict body and its form.

    Args:
        payload: the parsed JSON object.
        sig: the signature it goes to.
        hook: decodes an input's instances itself when it returns an array (tfpilot's images).
    """
    has_rows, has_cols = "instances" in payload, "inputs" in payload
    if has_rows and has_cols:
        raise BadRequest("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist: "
                         "\"instances\" is the row format, \"inputs\" the columnar format")
    if has_rows:
        return _rows(payload["instances"], sig, hook), "row"
    if has_cols:
        return _columns(payload["inputs"], sig, hook), "column"
    hint = "".join(did_you_mean(k, ["instances", "inputs"]) for k in payload if isinstance(k, str))[:200]
    raise BadRequest(f"Missing 'inputs' or 'instances' key: send {{\"instances\": [...]}} (row format) or "
                     f"{{\"inputs\": ...}} (columnar format); got keys {sorted(payload)[:10]}.{hint}")


def json_outputs(outputs: Mapping[str, np.ndarray], form: Form, to_json: Callable[[np.ndarray, bool], Any]) -> dict:
    """``{"predictions": ...}`` or ``{"outputs": ...}`` for the output arrays.

    Args:
        outputs: by alias.
        form: the request's form.
        to_json: array (and whether its strings are bytes) -> JSON value.
    """
    if not outputs:
        raise BadRequest("Cannot convert empty tensor map to JSON: the request's output_filter left no output")
    as_bytes = {k: k.endswith(BYTES_SUFFIX) and v.dtype.kind in "OSU" for k, v in outputs.items()}
    if form == "column":
        if len(outputs) == 1:
            (name, value), = outputs.items()
            return {"outputs": to_json(value, as_bytes[name])}
        return {"outputs": {k: to_json(v, as_bytes[k]) for k, v in outputs.items()}}
    size = -1
    for name, value in outputs.items():
        if np.ndim(value) == 0:
            raise BadRequest(f"Tensor name: {name} has no shape information (a scalar output): use the columnar "
                             "format ({\"inputs\": ...}) for this signature")
        if size >= 0 and len(value) != size:
            raise BadRequest(f"Tensor name: {name} has inconsistent batch size: {len(value)} expecting: {size}; "
                             "use the columnar format ({\"inputs\": ...}) for this signature")
        size = len(value)
    if len(outputs) == 1:
        (name, value), = outputs.items()
        return {"predictions": to_json(value, as_bytes[name])}
    columns = {k: to_json(v, as_bytes[k]) for k, v in outputs.items()}
    return {"predictions": [{k: columns[k][i] for k in outputs} for i in range(size)]}
