"""One served model: loaded through ``tfpilot.inference.load``, warmed up, batched, described.

States follow TF Serving's model status: ``LOADING`` -> ``AVAILABLE``, or ``END`` with an
error when loading failed.

Example:
    >>> from tfpilot.serving.settings import ModelSource, ServeSettings
    >>> source = ModelSource(path="runs/mnist", name="mnist")  # doctest: +SKIP
    >>> servable = Servable(source, ServeSettings(models=[source]))  # doctest: +SKIP
    >>> servable.load(); servable.state  # doctest: +SKIP
    'AVAILABLE'
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.serving.batcher import MicroBatcher, QueueFull
from tfpilot.serving.decode import InstanceDecoder
from tfpilot.serving.errors import Unavailable
from tfpilot.serving.metrics import ServingMetrics
from tfpilot.serving.settings import ModelSource, ServeSettings

log = logging.getLogger("tfpilot.serving")

VERSION = "1"
_TF_DTYPES = {"uint8": "DT_UINT8", "string": "DT_STRING", "float32": "DT_FLOAT", "int32": "DT_INT32"}


def load_predictor(path: str | Path, backend: str | None = None) -> Any:
    """``tfpilot.inference.load(path, backend=backend)``: a run directory or an exported artifact."""
    from tfpilot.inference import load

    return load(path, backend=backend)


def backend_name(predictor: Any, requested: str | None, path: Path) -> str:
    """The backend a loaded predictor runs on: the requested one, else keras or the detected artifact kind."""
    if requested:
        return requested
    import keras

    if isinstance(getattr(predictor, "model", None), keras.Model):
        return "keras"
    try:
        from tfpilot.export.backends import detect

        return detect(path)[0]
    except Exception:  # noqa: BLE001 -- descriptive only
        return type(getattr(predictor, "model", predictor)).__name__


def _dims(shape: tuple[Any, ...]) -> dict[str, Any]:
    return {"dim": [{"size": str(-1 if d is None else int(d)), "name": ""} for d in shape], "unknown_rank": False}


class Servable:
    """A model the server answers for.

    Args:
        source: where the model is and its name.
        settings: the server's settings (batching and limits).
        metrics: where batch sizes, queue depth and readiness are recorded.
    """

    def __init__(self, source: ModelSource, settings: ServeSettings, metrics: ServingMetrics | None = None) -> None:
        self.source = source
        self.name = source.name
        self.settings = settings
        self.metrics = metrics
        self.state = "LOADING"
        self.error = ""
        self.predictor: Any = None
        self.runner: Any = None
        self.decoder: InstanceDecoder | None = None
        self.input_name = "input"
        self.backend = source.backend or "auto"
        self.load_seconds = 0.0
        self.batcher = MicroBatcher(
            self._call, max_batch=settings.max_batch, timeout_ms=settings.batch_timeout_ms,
            max_queue=settings.max_queue, on_batch=self._on_batch, on_depth=self._on_depth, name=self.name,
        )
        if metrics is not None:
            metrics.ready.labels(self.name).set(0)

    # -- lifecycle ------------------------------------------------------------------------------
    def load(self) -> Servable:
        """Load and warm up (blocking: call it in a thread). Failures set state END, never raise."""
        from tfpilot.serving.runner import make_runner

        t0 = time.perf_counter()
        try:
            predictor = load_predictor(self.source.path, self.source.backend)
            runner = make_runner(predictor, self.settings.max_batch)
            runner.warm_up()
        except Exception as exc:  # noqa: BLE001 -- reported through /readyz and the model status
            self.state, self.error = "END", f"could not load {self.source.path}: {type(exc).__name__}: {exc}"
            log.error("model %s: %s", self.name, self.error)
            return self
        model = getattr(predictor, "model", None)
        inputs = getattr(model, "inputs", None)
        if inputs and len(inputs) == 1 and getattr(inputs[0], "name", None):
            self.input_name = str(inputs[0].name)
        self.predictor, self.runner = predictor, runner
        self.backend = backend_name(predictor, self.source.backend, self.source.path)
        self.decoder = InstanceDecoder(predictor.input_spec, max_instances=self.settings.max_instances)
        self.load_seconds = time.perf_counter() - t0
        self.state = "AVAILABLE"
        if self.metrics is not None:
            self.metrics.ready.labels(self.name).set(1)
        log.info("model %s ready (%s, %s runner) in %.1fs", self.name, self.source.path, runner.kind, self.load_seconds)
        return self

    async def start(self) -> None:
        await self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()

    @property
    def ready(self) -> bool:
        return self.state == "AVAILABLE"

    def require_ready(self) -> None:
        """A 503 unless the model is loaded and warmed up."""
        if self.state == "LOADING":
            raise Unavailable(f"model {self.name!r} is still loading; retry when /readyz answers 200", 2)
        if self.state != "AVAILABLE":
            raise Unavailable(f"model {self.name!r} is not available: {self.error}", 60)

    # -- prediction -----------------------------------------------------------------------------
    async def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, num_classes) for a decoded batch, through the micro-batcher."""
        self.require_ready()
        try:
            return await self.batcher.submit(batch)
        except QueueFull as exc:
            raise Unavailable(f"model {self.name!r} is overloaded: {exc}; retry shortly") from None

    def _call(self, batch: Any) -> np.ndarray:
        return self.runner(batch)

    def _on_batch(self, size: int, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_batch(self.name, size, seconds)

    def _on_depth(self, depth: int) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels(self.name).set(depth)

    # -- description ----------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(self.predictor.class_names) if self.predictor is not None else []

    @property
    def input_spec(self) -> Any:
        return self.predictor.input_spec if self.predictor is not None else None

    def status(self) -> dict[str, Any]:
        """TF Serving's ``GetModelStatusResponse``."""
        state = self.state
        code = "OK" if state != "END" else "UNKNOWN"
        return {"model_version_status": [
            {"version": VERSION, "state": state, "status": {"error_code": code, "error_message": self.error}}
        ]}

    def signature(self) -> dict[str, Any]:
        spec = self.input_spec
        dtype = _TF_DTYPES.get(spec.dtype, "DT_INVALID")
        return {
            "inputs": {self.input_name: {"dtype": dtype, "tensor_shape": _dims((None, *spec.shape)),
                                         "name": f"serving_default_{self.input_name}:0"}},
            "outputs": {"output_0": {"dtype": "DT_FLOAT", "tensor_shape": _dims((None, len(self.class_names))),
                                     "name": "StatefulPartitionedCall:0"}},
            "method_name": "tensorflow/serving/predict",
        }

    def metadata(self) -> dict[str, Any]:
        """TF Serving's ``GetModelMetadataResponse``, plus tfpilot's input spec and class names."""
        self.require_ready()
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": VERSION},
            "metadata": {
                "signature_def": {"signature_def": {"serving_default": self.signature()}},
                "input_spec": self.input_spec.to_dict(),
                "class_names": self.class_names,
                "backend": self.backend,
                "runner": self.runner.kind,
            },
        }

    def summary(self) -> dict[str, Any]:
        """One line of ``GET /v1/models``."""
        spec = self.input_spec
        return {
            "name": self.name,
            "version": VERSION,
            "state": self.state,
            "error": self.error,
            "kind": spec.kind if spec is not None else None,
            "input_shape": list(spec.shape) if spec is not None else None,
            "num_classes": len(self.class_names),
            "backend": self.backend,
        }
