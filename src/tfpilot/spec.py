"""What a model consumes: the contract between data, models, export and serving.

Example:
    >>> from tfpilot.spec import InputSpec
    >>> spec = InputSpec.image(28, 28, 1)
    >>> spec.shape, spec.dtype
    ((28, 28, 1), 'uint8')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Sequence
from typing import Any, Literal

from tfpilot.errors import UnknownNameError


@dataclass(frozen=True)
class InputSpec:
    """The raw input a tfpilot model takes.

    Args:
        kind: "image" (raw uint8 pixels, HxWxC) or "text" (raw strings).
        shape: per-example shape; () for a text string.
        dtype: "uint8" for images, "string" for text.
    """

    kind: Literal["image", "text"]
    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def image(cls, height: int, width: int, channels: int) -> InputSpec:
        return cls("image", (int(height), int(width), int(channels)), "uint8")

    @classmethod
    def text(cls) -> InputSpec:
        return cls("text", (), "string")

    @property
    def image_size(self) -> tuple[int, int]:
        if self.kind != "image":
            raise ValueError("a text input has no image size")
        return self.shape[0], self.shape[1]

    @property
    def channels(self) -> int:
        if self.kind != "image":
            raise ValueError("a text input has no channels")
        return self.shape[2]

    def decode_target(self) -> dict[str, Any]:
        """Keyword arguments telling a pipeline how to decode file examples for this input:
        ``{"image_size", "channels"}`` for images, nothing for text."""
        return {"image_size": self.image_size, "channels": self.channels} if self.kind == "image" else {}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        return cls(d["kind"], tuple(d["shape"]), d["dtype"])


def column_key(name: str) -> str:
    """A column name made a valid TensorFlow input/output name (letters, digits, ``_``).

    Example:
        >>> column_key("Fee (USD)"), column_key("2nd")
        ('Fee__USD_', 'f_2nd')
    """
    import re

    key = re.sub(r"[^A-Za-z0-9_]", "_", str(name)) or "feature"
    return key if key[0].isalpha() else f"f_{key}"


#: Kinds of table columns: what a model input or output holds.
FEATURE_KINDS = ("image", "text", "number", "category", "binary", "date")
_FEATURE_DTYPES = {"image": "uint8", "text": "string", "number": "float32", "category": "string", "binary": "string",
                   "date": "string"}


@dataclass(frozen=True)
class FeatureSpec:
    """One named input or output of a table model (a column of the table).

    Args:
        name: the column's name in the table.
        kind: "image" (uint8 pixels HxWxC, from a file path), "text" (raw string),
            "number" (float; NaN = missing), "category" (string, a label of a known set)
            or "binary" (a category with two values; a sigmoid head), "date" (a raw date string).
        key: the model's input/output name (``name`` made a valid TensorFlow name).
        shape: per-example shape: (H, W, C) for images, () otherwise.
        classes: category/binary outputs: the class names, in output order.
        format: date inputs: how the strings are written (``%d/%m/%Y``; see
            :mod:`tfpilot.data.dates`).

    Example:
        >>> FeatureSpec("price", "number").dtype
        'float32'
    """

    name: str
    kind: Literal["image", "text", "number", "category", "binary", "date"]
    key: str = ""
    shape: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    format: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature {self.name!r}: kind must be one of {', '.join(FEATURE_KINDS)}, not {self.kind!r}")
        if not self.key:
            object.__setattr__(self, "key", column_key(self.name))

    @property
    def dtype(self) -> str:
        """The raw dtype the model takes for this input (uint8, string or float32)."""
        return _FEATURE_DTYPES[self.kind]

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "kind": self.kind, "key": self.key, "shape": list(self.shape),
             "classes": list(self.classes)}
        return {**d, "format": self.format} if self.format else d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(d["name"], d["kind"], d.get("key", ""), tuple(d.get("shape", ())), tuple(d.get("classes", ())),
                   d.get("format", ""))


@dataclass(frozen=True)
class TableSpec:
    """What a table model takes and gives: named inputs and named outputs (heads).

    The ``kind`` is "table", so code that reads ``spec.kind`` tells it from an
    :class:`InputSpec` without a type check.

    Example:
        >>> spec = TableSpec((FeatureSpec("title", "text"),), (FeatureSpec("price", "number"),))
        >>> spec.input_keys, spec.output_keys
        (['title'], ['price'])
        >>> TableSpec.from_dict(spec.to_dict()) == spec
        True
    """

    inputs: tuple[FeatureSpec, ...]
    outputs: tuple[FeatureSpec, ...]
    kind: str = "table"

    @property
    def input_keys(self) -> list[str]:
        return [f.key for f in self.inputs]

    @property
    def output_keys(self) -> list[str]:
        return [f.key for f in self.outputs]

    def input(self, name: str) -> FeatureSpec:
        """The input called ``name`` (column name or key)."""
        return _find(self.inputs, name, "input")

    def output(self, name: str) -> FeatureSpec:
        """The output called ``name`` (column name or key)."""
        return _find(self.outputs, name, "output")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "table", "inputs": [f.to_dict() for f in self.inputs],
                "outputs": [f.to_dict() for f in self.outputs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableSpec:
        return cls(tuple(FeatureSpec.from_dict(f) for f in d["inputs"]),
                   tuple(FeatureSpec.from_dict(f) for f in d["outputs"]))


def _find(features: tuple[FeatureSpec, ...], name: str, role: str) -> FeatureSpec:
    for f in features:
        if name in (f.name, f.key):
            return f
    from tfpilot.registry import did_you_mean

    names = [f.name for f in features]
    raise UnknownNameError(f"no {role} {name!r}.{did_you_mean(name, names)} The {role}s: {', '.join(names)}.")


#: The names a classifier's one input and one head have in its :class:`TableSpec` view: the
#: input as its SavedModel signature names it, the head as the category target of a table.
CLASSIFIER_INPUT_KEYS = {"image": "images", "text": "text"}
CLASSIFIER_HEAD = "label"


def classifier_spec(spec: InputSpec, class_names: Sequence[str]) -> TableSpec:
    """A classifier as the one-input, one-head case of a table model.

    Args:
        spec: the classifier's raw input.
        class_names: its classes, in output order.

    Example:
        >>> view = classifier_spec(InputSpec.image(28, 28, 1), ["0", "1"])
        >>> view.input_keys, view.output_keys, view.outputs[0].kind, view.inputs[0].shape
        (['images'], ['label'], 'category', (28, 28, 1))
    """
    key = CLASSIFIER_INPUT_KEYS[spec.kind]
    head = FeatureSpec(CLASSIFIER_HEAD, "category", CLASSIFIER_HEAD, (), tuple(str(c) for c in class_names))
    return TableSpec((FeatureSpec(key, spec.kind, key, spec.shape),), (head,))


def as_table_spec(spec: InputSpec | TableSpec, class_names: Sequence[str] = ()) -> TableSpec:
    """Any model's named inputs and heads: a table spec as it is, a classifier's through
    :func:`classifier_spec`.

    Example:
        >>> as_table_spec(InputSpec.text(), ["neg", "pos"]).inputs[0].kind
        'text'
    """
    return spec if isinstance(spec, TableSpec) else classifier_spec(spec, class_names)


def spec_from_dict(d: dict[str, Any]) -> InputSpec | TableSpec:
    """An :class:`InputSpec` or a :class:`TableSpec` from its ``to_dict()``."""
    return TableSpec.from_dict(d) if d.get("kind") == "table" else InputSpec.from_dict(d)
