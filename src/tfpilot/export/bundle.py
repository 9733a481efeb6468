"""The metadata every exported artifact carries: class names, input, preprocessing.

A :class:`Bundle` is written as ``bundle.json`` beside every artifact, and also *inside*
the formats that can hold it: the SavedModel's ``assets/`` folder, a metadata entry
``tfpilot_bundle`` in the TFLite flatbuffer, and ``metadata_props`` of the ONNX model.
So a bare file still says which class each output column is and what to feed it.

Example:
    >>> from tfpilot.export.bundle import Bundle
    >>> from tfpilot.spec import InputSpec
    >>> b = Bundle(format="tflite", file="model.tflite", class_names=["cat", "dog"],
    ...            input_spec=InputSpec.image(28, 28, 1))
    >>> Bundle.from_json(b.to_json()).class_names
    ['cat', 'dog']
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfpilot.errors import NotFoundError, UserError
from tfpilot.spec import InputSpec, TableSpec, spec_from_dict

BUNDLE_FILE = "bundle.json"
#: Name of the metadata entry (TFLite) / key (ONNX) that holds the bundle's JSON.
METADATA_KEY = "tfpilot_bundle"
SCHEMA_VERSION = 1


@dataclass
class Bundle:
    """What an artifact is and how to use it.

    Args:
        format: the export format ("saved_model", "tflite-int8", ...).
        file: the artifact's file or folder name, relative to the bundle.
        class_names: names of the output columns, in order.
        input_spec: the raw input users have (uint8 pixels HxWxC, or strings).
        input: the artifact's own input tensor: name, dtype, shape and a note.
        output: the artifact's output tensor: name, dtype, shape, meaning (and quantization).
        preprocessing: the steps between raw input and network, each with ``where`` it runs.
        loader_files: files beside the artifact that tfpilot's loader needs (e.g.
            ``{"preprocess": "preprocess.keras", "vocabulary": "vocab.txt"}``).
        precision: what the numbers are ("float32", "float16 weights", ...).
        source_run: the run directory it was exported from.
        model: the registered model name.
        verification: the last ``verify`` result (agreement, accuracy, ...), if any.
    """

    format: str
    file: str
    class_names: list[str]
    input_spec: InputSpec | TableSpec
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    preprocessing: list[dict[str, Any]] = field(default_factory=list)
    loader_files: dict[str, str] = field(default_factory=dict)
    precision: str = "float32"
    source_run: str | None = None
    model: str | None = None
    verification: dict[str, Any] | None = None
    tfpilot_version: str = ""
    created: str = ""

    def __post_init__(self) -> None:
        from tfpilot import __version__

        self.class_names = [str(c) for c in self.class_names]
        self.tfpilot_version = self.tfpilot_version or __version__
        self.created = self.created or datetime.now(timezone.utc).isoformat(timespec="seconds")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_spec"] = self.input_spec.to_dict()
        return {"schema": SCHEMA_VERSION, **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bundle:
        d = dict(d)
        d.pop("schema", None)
        missing = [k for k in ("format", "file", "class_names", "input_spec") if k not in d]
        if missing:
            raise UserError(f"not a tfpilot bundle: it lacks {', '.join(missing)}")
        known = set(cls.__dataclass_fields__)
        d = {k: v for k, v in d.items() if k in known}
        d["input_spec"] = spec_from_dict(d["input_spec"])  # an InputSpec, or a table model's TableSpec
        return cls(**d)

    @classmethod
    def from_json(cls, text: str | bytes) -> Bundle:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"the tfpilot bundle is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def write(self, folder: str | Path) -> Path:
        """Write ``bundle.json`` into ``folder``; returns its path."""
        path = Path(folder) / BUNDLE_FILE
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: str | Path) -> Bundle:
        """Read ``folder/bundle.json``."""
        path = Path(folder) / BUNDLE_FILE
        if not path.is_file():
            raise NotFoundError(
                f"{path.parent} has no {BUNDLE_FILE}: export the model with `tfpilot export RUN`, "
                "which writes one beside every artifact"
            )
        return cls.from_json(path.read_text(encoding="utf-8"))


def describe_preprocessing(model: Any) -> list[dict[str, Any]]:
    """The preprocessing layers inside a Keras model, as plain dicts.

    Reports tfpilot's ``ImagePreprocessing`` (cast, channels, resize, scale, offset), text
    layers with a vocabulary (Keras' ``TextVectorization``, tfpilot's ``TextEncoder``: their
    config and vocabulary size) and Keras' Normalization/Rescaling/Resizing/CenterCrop.

    Example:
        >>> from tfpilot.models import create_model
        >>> from tfpilot.spec import InputSpec
        >>> model = create_model("mlp", InputSpec.image(8, 8, 1), 2)
        >>> describe_preprocessing(model)[0]["step"]
        'ImagePreprocessing'
    """
    steps: list[dict[str, Any]] = []
    for layer in _walk_layers(model):
        name = type(layer).__name__
        if name == "ImagePreprocessing":
            steps.append({
                "step": name,
                "does": "cast uint8 pixels to float, convert channels, resize, then x * scale + offset",
                "target_size": list(layer.target_size) if layer.target_size else None,
                "channels": layer.channels,
                "scale": layer.scale,
                "offset": layer.offset,
                "interpolation": layer.interpolation,
            })
        elif callable(getattr(layer, "get_vocabulary", None)):  # TextVectorization, tfpilot's TextEncoder
            cfg = {k: _plain(v) for k, v in layer.get_config().items()
                   if k not in ("name", "dtype", "trainable", "vocabulary", "idf_weights")}
            steps.append({
                "step": name,
                "does": "standardize, split into tokens (n-grams), look them up in the vocabulary",
                **cfg,
                "vocabulary_size": int(layer.vocabulary_size()),
            })
        elif name in ("Normalization", "Rescaling", "Resizing", "CenterCrop"):
            cfg = layer.get_config()
            skip = ("name", "dtype", "trainable")
            steps.append({"step": name, **{k: _plain(v) for k, v in cfg.items() if k not in skip}})
    return steps


def _plain(value: Any) -> Any:
    """JSON-safe form of a config value (callables become their name)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return getattr(value, "__name__", None) or str(value)


def _walk_layers(model: Any):
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk_layers(layer)
