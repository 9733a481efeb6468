"""Serving a table model (named inputs, a head per output) with TF Serving's multi-input answers.

A tfpilot table run directory (or one of its exports: keras, saved_model, tflite) is served
as a :class:`TableServable`: a :class:`~tfpilot.serving.servable.Servable` whose signatures
name every input column and every head, so the generic TF Serving REST path (and gRPC,
KServe V2) answers it as TF Serving answers a multi-input, multi-output SavedModel:

* ``serving_default`` -- images as encoded files (DT_STRING; ``{"b64": "..."}`` in JSON),
  texts and categories as strings, numbers as DT_FLOAT; out: each head by its key
  (category: probabilities (N, C); binary: P(classes[1]); number: the value) and
  ``<key>_label`` (the top class name) for class heads;
* ``serving_pixels`` -- the same, images as uint8 pixels (N, H, W, C) of the model's size.

Row format ``{"instances": [{"image": {"b64": "..."}, "title": "...", "year": 2012}]}`` is
answered ``{"predictions": [{"articleType": [...], "articleType_label": "Shirts", "year": 2012.4}]}``;
columnar ``{"inputs": {"image": [...], "title": [...], "year": [...]}}`` as
``{"outputs": {"articleType": [[...]], ...}}``. Requests of all protocols share the micro-batcher.

Example:
    >>> from tfpilot.serving.servable import BatchOptions
    >>> servable = TableServable("fashion", 1, "runs/multitask-fashion", BatchOptions())  # doctest: +SKIP
    >>> servable.load(); sorted(servable.signatures)  # doctest: +SKIP
    ['serving_default', 'serving_pixels']
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from tfpilot.serving.errors import BadRequest
from tfpilot.serving.servable import Servable, load_predictor
from tfpilot.serving.signatures import DEFAULT_SIGNATURE, PREDICT_METHOD, Signature, TensorInfo
from tfpilot.serving.tensors import DTYPES

log = logging.getLogger("tfpilot.serving")

PIXELS_SIGNATURE = "serving_pixels"


def is_table_model(path: str | Path) -> bool:
    """Whether ``path`` is a table run directory or an export of one (its bundle holds a TableSpec)."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    labels = folder / "labels.json"
    if labels.is_file():
        return json.loads(labels.read_text(encoding="utf-8")).get("task") == "table"
    for bundle in (folder / "assets" / "bundle.json", folder / "bundle.json"):
        if bundle.is_file():
            spec = json.loads(bundle.read_text(encoding="utf-8")).get("input_spec") or {}
            return spec.get("kind") == "table"
    return False


def table_signatures(spec: Any) -> dict[str, Signature]:
    """``serving_default`` (images as encoded files) and ``serving_pixels`` (uint8 images) of a table spec."""
    outputs: dict[str, TensorInfo] = {}
    for o in spec.outputs:
        shape = (None, len(o.classes)) if o.kind == "category" else (None,)
        outputs[o.key] = TensorInfo(o.key, DTYPES["DT_FLOAT"], shape, f"StatefulPartitionedCall:{len(outputs)}")
        if o.classes:
            label = f"{o.key}_label"
            outputs[label] = TensorInfo(label, DTYPES["DT_STRING"], (None,), f"StatefulPartitionedCall:{len(outputs)}")
    out: dict[str, Signature] = {}
    has_images = any(c.kind == "image" for c in spec.inputs)
    for name in (DEFAULT_SIGNATURE, PIXELS_SIGNATURE) if has_images else (DEFAULT_SIGNATURE,):
        inputs = {}
        for c in spec.inputs:
            if c.kind == "image" and name == PIXELS_SIGNATURE:
                info = TensorInfo(c.key, DTYPES["DT_UINT8"], (None, *c.shape), f"{name}_{c.key}:0")
            elif c.kind == "number":
                info = TensorInfo(c.key, DTYPES["DT_FLOAT"], (None,), f"{name}_{c.key}:0")
            else:
                info = TensorInfo(c.key, DTYPES["DT_STRING"], (None,), f"{name}_{c.key}:0")
            inputs[c.key] = info
        out[name] = Signature(name, PREDICT_METHOD, MappingProxyType(inputs), MappingProxyType(outputs))
    return out


def _texts(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values], dtype=object)


class TableServable(Servable):
    """A table model behind its :class:`~tfpilot.inference.table_predictor.TablePredictor`.

    Args:
        name, version, path, options, metrics: as for :class:`~tfpilot.serving.servable.Servable`.
        backend: keras, saved_model or tflite (None: detected from the path).
    """

    kind = "tfpilot-table"
    legacy_rest = False

    def __init__(self, name: str, version: int, path: str | Path, options: Any, metrics: Any = None,
                 backend: str | None = None) -> None:
        super().__init__(name, version, path, options, metrics)
        self.requested_backend = backend
        self.predictor: Any = None

    def load(self) -> None:
        t0 = time.perf_counter()
        predictor = load_predictor(self.path, self.requested_backend)
        self.predictor = predictor
        self.signatures = MappingProxyType(table_signatures(predictor.spec))
        self._run_signature(PIXELS_SIGNATURE if PIXELS_SIGNATURE in self.signatures else DEFAULT_SIGNATURE,
                            self._warm_up_batch())
        self.load_seconds = time.perf_counter() - t0
        log.info("table model %s ready (%s) in %.1fs", self.name, self.path, self.load_seconds)

    def unload(self) -> None:
        self.predictor = None

    @property
    def input_spec(self) -> Any:
        return self.predictor.spec if self.predictor is not None else None

    def extras(self) -> dict[str, Any]:
        return {"input_spec": self.input_spec.to_dict(), "task": "table"}

    def _warm_up_batch(self) -> dict[str, np.ndarray]:
        batch: dict[str, np.ndarray] = {}
        for c in self.predictor.spec.inputs:
            if c.kind == "image":
                batch[c.key] = np.zeros((1, *c.shape), np.uint8)
            elif c.kind == "number":
                batch[c.key] = np.zeros(1, np.float32)
            else:
                batch[c.key] = np.array([c.classes[0] if c.classes else "warm up"], dtype=object)
        return batch

    def _model_batch(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Signature inputs -> what the model takes: images decoded and resized, strings as str."""
        from tfpilot.inference.predictor import InputError, Predictor
        from tfpilot.spec import InputSpec

        batch: dict[str, np.ndarray] = {}
        for c in self.predictor.spec.inputs:
            v = inputs[c.key]
            if c.kind == "image" and name != PIXELS_SIGNATURE:
                images = Predictor(None, [], InputSpec.image(*c.shape))
                try:
                    batch[c.key] = np.stack([images._image(bytes(b), f"instance {i}, input {c.key!r}")
                                             for i, b in enumerate(v)])
                except InputError as exc:
                    raise BadRequest(str(exc)) from None
            elif c.kind == "number":
                batch[c.key] = np.asarray(v, np.float32)
            elif c.kind == "image":
                batch[c.key] = np.asarray(v, np.uint8)
            else:
                batch[c.key] = _texts(v)
        return batch

    def _run_signature(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        spec = self.predictor.spec
        raw = self.predictor.runner(self._model_batch(name, inputs))
        out: dict[str, np.ndarray] = {}
        for o in spec.outputs:
            v = np.asarray(raw[o.key], np.float32)
            out[o.key] = v
            if o.kind == "category":
                out[f"{o.key}_label"] = np.array([o.classes[i] for i in v.argmax(axis=1)], dtype=object)
            elif o.kind == "binary":
                out[f"{o.key}_label"] = np.array([o.classes[int(p > 0.5)] for p in v], dtype=object)
        return out

    def _call_raw(self, batch: Any) -> Any:
        return self._run_signature(DEFAULT_SIGNATURE, batch)
