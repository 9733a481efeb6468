"""``tf.Example``s for classify and regress signatures, from TF Serving's JSON or its ``Input`` proto.

JSON (TF Serving's REST ``:classify``/``:regress``): ``{"examples": [{"feature": value}, ...],
"context": {...}}``; a value is one element or a list of them: integers and booleans go to an
``int64_list``, numbers with a fraction to a ``float_list`` (a list mixing both becomes floats,
where TF Serving would refuse it), strings and ``{"b64": "..."}`` to a ``bytes_list``. The
context's features are merged into every example (the example's own win), exactly as
serialising the context and then the example does -- which is how TF Serving feeds
``ExampleListWithContext``.

Example:
    >>> from tfpilot.serving.examples import serialized_from_json
    >>> from tensorflow.core.example import example_pb2
    >>> raw = serialized_from_json([{"x": 1.5}], {"country": "NZ"})
    >>> e = example_pb2.Example.FromString(raw[0])
    >>> e.features.feature["x"].float_list.value[0], e.features.feature["country"].bytes_list.value[0]
    (1.5, b'NZ')
"""

from __future__ import annotations

import re
from typing import Any

from tfpilot.serving.errors import BadRequest
from tfpilot.serving.tensors import b64_decode

_INT64 = (-(2**63), 2**63 - 1)
#: tf.io.parse_example's refusal of a feature of another kind than the model parses.
_KIND_MISMATCH = re.compile(r"Key: (?P<key>[^,]+), Index: \d+\.\s+Data types don't match\. "
                            r"Data type: (?P<sent>int64|float|string) but expected type: (?P<want>int64|float|string)")
#: How a feature of each kind was sent (as a JSON value) ...
_SENT_AS = {"int64": "integers (an int64_list)", "float": "numbers with a fraction (a float_list)",
            "string": "strings (a bytes_list)"}
#: ... and what the model reads instead, with how to write it.
_READS = {"int64": "integers: write whole numbers (3, not 3.0)",
          "float": "floats: write them with a fraction (3.0, not 3)",
          "string": 'strings: write them as strings ("3") or {"b64": ...}'}


def _kind(x: Any, name: str) -> str:
    if isinstance(x, bool) or isinstance(x, int):
        return "int64"
    if isinstance(x, float):
        return "float"
    if isinstance(x, str) or (isinstance(x, dict) and "b64" in x):
        return "bytes"
    what = "null" if x is None else ("a list" if isinstance(x, list) else "an object")
    raise BadRequest(f"Feature: {name} has element with unexpected JSON type: {what} (features take numbers, "
                     "strings, booleans or {\"b64\": ...}, or a flat list of one of them)")


def feature_from_json(value: Any, name: str) -> Any:
    """One ``tf.train.Feature`` from a JSON value (an element or a flat list of elements)."""
    from tensorflow.core.example import feature_pb2

    items = value if isinstance(value, list) else [value]
    kinds = {_kind(x, name) for x in items}
    if kinds == {"int64", "float"}:
        kinds = {"float"}
    feature = feature_pb2.Feature()
    if not kinds:
        return feature
    if len(kinds) > 1:
        raise BadRequest(f"Unexpected element type in feature: {name}: it mixes {' and '.join(sorted(kinds))} "
                         "values; one feature holds one kind")
    kind = kinds.pop()
    if kind == "int64":
        ints = [int(x) for x in items]
        if any(not _INT64[0] <= x <= _INT64[1] for x in ints):
            raise BadRequest(f"Feature: {name} has an integer outside int64")
        feature.int64_list.value.extend(ints)
    elif kind == "float":
        feature.float_list.value.extend(float(x) for x in items)
    else:
        feature.bytes_list.value.extend(x.encode("utf-8") if isinstance(x, str) else b64_decode(x, f"feature {name}")
                                        for x in items)
    return feature


def example_from_json(obj: Any, where: str) -> Any:
    """A ``tf.train.Example`` from ``{"feature": value, ...}``."""
    from tensorflow.core.example import example_pb2

    if not isinstance(obj, dict):
        raise BadRequest(f"{where}: an example must be a JSON object of features, not "
                         f"{'a list' if isinstance(obj, list) else type(obj).__name__}")
    example = example_pb2.Example()
    for name, value in obj.items():
        example.features.feature[name].CopyFrom(feature_from_json(value, name))
    return example


def serialized_from_json(examples: Any, context: Any = None) -> list[bytes]:
    """Serialized examples (context merged in) of a REST classify/regress body's parts."""
    if not isinstance(examples, list):
        raise BadRequest("Expecting 'examples' value to be an list/array")
    if not examples:
        raise BadRequest("'examples' value is an empty array")
    prefix = b""
    if context is not None:
        prefix = example_from_json(context, "context").SerializeToString()
    return [prefix + example_from_json(e, f"example {i}").SerializeToString() for i, e in enumerate(examples)]


def serialized_from_input(input_proto: Any) -> list[bytes]:
    """Serialized examples of a ``tensorflow.serving.Input`` (``example_list`` or ``..._with_context``)."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        out = [e.SerializeToString() for e in input_proto.example_list.examples]
    elif kind == "example_list_with_context":
        prefix = input_proto.example_list_with_context.context.SerializeToString()
        out = [prefix + e.SerializeToString() for e in input_proto.example_list_with_context.examples]
    else:
        raise BadRequest("Input is empty: give example_list or example_list_with_context")
    if not out:
        raise BadRequest("Input is empty: the example list has no examples")
    return out


def feature_type_hint(message: str) -> str:
    """How to mend a ``tf.Example`` feature of another kind than the model parses ('' for other errors).

    A JSON integer (``3``) becomes an ``int64_list`` feature, as in TF Serving, and the model's
    ``parse_example`` refuses it where it reads floats: the answer is to send ``3.0``.

    Example:
        >>> print(feature_type_hint("Key: x, Index: 1.  Data types don't match. "
        ...                         "Data type: int64 but expected type: float"))
        ; feature 'x' was sent as integers (an int64_list) and the model reads floats: write them with a fraction (3.0, not 3)
        >>> feature_type_hint("something else")
        ''
    """
    found = _KIND_MISMATCH.search(message)
    if found is None:
        return ""
    sent, reads = _SENT_AS[found["sent"]], _READS[found["want"]]
    return f"; feature '{found['key']}' was sent as {sent} and the model reads {reads}"
