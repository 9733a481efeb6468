"""One loaded version of a model: its signatures, how to run them, and what describes it.

:class:`Servable` is what every protocol (TF Serving REST and gRPC, KServe V2) calls:
``await servable.run(signature_name, {input: array})`` checks the inputs against the
signature and sends them through the servable's micro-batcher, so requests of all
protocols share model calls. Two kinds exist:

* :class:`PredictorServable` -- a tfpilot run directory or artifact (Keras, SavedModel,
  TFLite, ONNX) behind ``tfpilot.inference.load``: a classifier's one signature
  ``serving_default`` (raw images or texts in, class probabilities ``output_0`` out) plus
  tfpilot's extras (class names, ``{"b64": ...}`` image decoding, the upload route and the
  web page); a model of named inputs and heads with a signature input per input and an
  output per head (and ``serving_pixels`` for uint8 images);
* :class:`~tfpilot.serving.saved_model.SavedModelServable` -- any SavedModel, TF1 or TF2,
  with all its signatures (see that module).

Example:
    >>> from tfpilot.serving.servable import BatchOptions, PredictorServable
    >>> servable = PredictorServable("mnist", 1, "runs/mnist", BatchOptions())  # doctest: +SKIP
    >>> servable.load()  # doctest: +SKIP
    >>> sorted(servable.signatures)  # doctest: +SKIP
    ['serving_default']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from tfpilot.inference.predictor import InputError, load
from tfpilot.registry import did_you_mean
from tfpilot.serving.batcher import MicroBatcher, QueueFull, batch_size
from tfpilot.serving.decode import InstanceDecoder
from tfpilot.serving.errors import BadRequest, Unavailable
from tfpilot.serving.metrics import ServingMetrics
from tfpilot.serving.runner import example_instance
from tfpilot.serving.signatures import (
    DEFAULT_SIGNATURE,
    PIXELS_SIGNATURE,
    Signature,
    client_signatures,
    signature_def_map,
    table_signatures,
    tfpilot_signature,
)

log = logging.getLogger("tfpilot.serving")

_TF_DTYPES = {"uint8": "DT_UINT8", "string": "DT_STRING", "float32": "DT_FLOAT", "int32": "DT_INT32"}
#: tfpilot's single output name (class probabilities) on its Predictor-based models.
PROBABILITIES = "output_0"


@dataclass(frozen=True)
class BatchOptions:
    """How a servable batches (TF Serving's ``BatchingParameters`` in tfpilot's terms).

    Args:
        max_batch: most instances per model call (``max_batch_size``).
        timeout_ms: longest a forming batch waits for requests already arriving
            (``batch_timeout_micros`` / 1000).
        max_queue: most instances waiting (``max_enqueued_batches`` x ``max_batch_size``).
        allowed_batch_sizes: batches are padded up to the next of these (empty: tfpilot's
            power-of-two buckets for Keras models, no padding otherwise).
        threads: model calls that may run at once (``num_batch_threads``).
        max_instances: most instances in one request (a 400 beyond).
        enabled: whether requests are batched together at all (TF Serving's ``--enable_batching``);
            None: each kind of servable's default (tfpilot's models: on; other SavedModels: off,
            as in TF Serving). Off, one request is one model call, whatever its size.
    """

    max_batch: int = 32
    timeout_ms: float = 5.0
    max_queue: int = 4096
    allowed_batch_sizes: tuple[int, ...] = ()
    threads: int = 1
    max_instances: int = 256
    enabled: bool | None = None


def pad_size(n: int, allowed: tuple[int, ...]) -> int:
    """The batch size ``n`` instances are padded to: the next allowed size (n when none fits).

    Example:
        >>> pad_size(3, (1, 2, 4, 8)), pad_size(9, (1, 2, 4, 8)), pad_size(3, ())
        (4, 9, 3)
    """
    return next((s for s in allowed if s >= n), n)


class Servable:
    """One loaded model version (the base of both kinds).

    Args:
        name: the model's name.
        version: its version number.
        path: the folder or file it loads from.
        options: batching and limits.
        metrics: where batch sizes and queue depth are recorded.
    """

    kind = "base"
    #: True for tfpilot's Predictor-based servables, which answer REST in tfpilot's shapes.
    legacy_rest = False
    #: Whether requests are batched when ``--enable_batching`` is not given (tfpilot's models,
    #: whose rows are independent: yes).
    batches_by_default = True

    def __init__(self, name: str, version: int, path: str | Path, options: BatchOptions,
                 metrics: ServingMetrics | None = None) -> None:
        self.name = name
        self.version = version
        self.path = Path(path)
        self.options = options
        self.metrics = metrics
        self.signatures: Mapping[str, Signature] = MappingProxyType({})
        self.signature_protos: Mapping[str, Any] = MappingProxyType({})
        self.load_seconds = 0.0
        self.batcher = MicroBatcher(
            self._call, max_batch=options.max_batch, timeout_ms=options.timeout_ms, max_queue=options.max_queue,
            on_batch=self._on_batch, on_depth=self._on_depth, name=f"{name}-v{version}", threads=options.threads,
        )

    # -- tfpilot's extras (None/empty unless the model is tfpilot's) ----------------------------
    @property
    def class_names(self) -> list[str]:
        return []

    @property
    def input_spec(self) -> Any:
        return None

    @property
    def decoder(self) -> InstanceDecoder | None:
        return None

    @property
    def is_tfpilot(self) -> bool:
        """Whether the tfpilot extras work: class names, raw-input decoding, uploads, web page."""
        return self.decoder is not None and bool(self.class_names)

    async def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) of a decoded raw batch (tfpilot models only)."""
        raise BadRequest(f"model {self.name!r} is not a tfpilot classifier: it has no class names")

    def extras(self) -> dict[str, Any]:
        """tfpilot's additions to the metadata answer."""
        return {}

    # -- lifecycle ------------------------------------------------------------------------------
    def load(self) -> None:
        """Load and warm up (blocking: call it in a thread); raises when the model cannot load."""
        raise NotImplementedError

    def unload(self) -> None:
        """Drop the model (after :meth:`stop`)."""

    async def start(self) -> None:
        await self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()

    @property
    def batching(self) -> bool:
        """Whether requests share model calls (else one request is one model call)."""
        enabled = self.options.enabled
        return self.batches_by_default if enabled is None else enabled

    @property
    def strict_shapes(self) -> bool:
        """Whether input shapes are checked against the signature before the model is called
        (tfpilot's models, which know their input contract); else the graph decides, as in TF Serving."""
        return True

    # -- signatures -----------------------------------------------------------------------------
    def signature(self, name: str | None) -> Signature:
        """The signature ``name`` ('' or None: serving_default), or a 400 naming the ones there are."""
        key = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            names = client_signatures(self.signatures)
            raise BadRequest(f"Serving signature name: \"{key}\" not found in signature def of model "
                             f"{self.name!r}.{did_you_mean(key, names)} Its signatures: {', '.join(names)}")
        return sig

    def signature_def_map(self) -> Any:
        """``SignatureDefMap`` of every signature (as read from the model when it has protos)."""
        protos = self.signature_protos or {n: s.to_proto() for n, s in self.signatures.items()}
        return signature_def_map(protos)

    def check_inputs(self, sig: Signature, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``inputs`` if they are exactly the signature's, with fitting dtypes and shapes; else a 400."""
        want, got = set(sig.inputs), set(inputs)
        if want != got:
            extra, missing = sorted(got - want), sorted(want - got)
            raise BadRequest(f"input size does not match signature {sig.name!r} of model {self.name!r}: "
                             f"{len(got)}!={len(want)} len({sorted(got)}) != len({sorted(want)}). "
                             f"Sent extra: {extra}. Missing but required: {missing}.")
        return {k: sig.inputs[k].check(np.asarray(v) if not isinstance(v, np.ndarray) else v, f"input {k!r}",
                                       shape=self.strict_shapes)
                for k, v in inputs.items()}

    async def run(self, signature_name: str | None, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs (by alias) of one signature for ``inputs``, through the micro-batcher."""
        batch, key, splittable = self._batch_job(signature_name, inputs)
        return self._outputs(await self._submit(batch, key, splittable))

    def run_blocking(self, signature_name: str | None, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`run` from a thread of its own (the gRPC server's), blocking until the outputs are there.

        An idle model runs in the calling thread; a busy one batches the request with the others
        (:meth:`MicroBatcher.call <tfpilot.serving.batcher.MicroBatcher.call>`).
        """
        batch, key, splittable = self._batch_job(signature_name, inputs)
        try:
            out = self.batcher.call(batch, key, splittable)
        except QueueFull as exc:
            raise self._overloaded(exc) from None
        return self._outputs(out)

    def _batch_job(self, signature_name: str | None, inputs: Mapping[str, np.ndarray]) -> tuple[Any, Any, bool]:
        """``(batch, key, splittable)`` for the batcher: the checked inputs of one signature."""
        sig = self.signature(signature_name)
        checked = self.check_inputs(sig, inputs)
        rows = {np.shape(v)[0] if np.ndim(v) else -1 for v in checked.values()}
        batchable = self.batching and sig.batchable and len(rows) == 1 and rows != {0} and -1 not in rows
        if batchable:
            n = batch_size(checked)
            if n > self.options.max_instances:
                raise BadRequest(f"too many instances: {n} in one request (limit {self.options.max_instances}, "
                                 "--max-instances); split the request")
        key = (sig.name, tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(checked.items())))
        return checked, key, batchable

    def _outputs(self, out: Any) -> dict[str, np.ndarray]:
        """The batcher's outputs as :meth:`run` answers them (by alias)."""
        return out

    async def _submit(self, batch: Any, key: Any = None, splittable: bool = True) -> Any:
        try:
            return await self.batcher.submit(batch, key, splittable)
        except QueueFull as exc:
            raise self._overloaded(exc) from None

    def _overloaded(self, exc: QueueFull) -> Unavailable:
        return Unavailable(f"model {self.name!r} is overloaded: {exc}; retry shortly")

    # -- the model call (worker thread) ---------------------------------------------------------
    def _call(self, batch: Any, key: Any = None) -> Any:
        if key is None:
            return self._call_raw(batch)
        allowed = self.options.allowed_batch_sizes
        n = batch_size(batch)
        size = pad_size(n, allowed) if allowed and self.signatures[key[0]].batchable else n
        if size > n:
            batch = {k: np.concatenate([v, np.repeat(v[:1], size - n, axis=0)]) for k, v in batch.items()}
        out = self._run_signature(key[0], batch)
        if size > n:
            out = {k: v[:n] if np.ndim(v) and len(v) == size else v for k, v in out.items()}
        return out

    def _call_raw(self, batch: Any) -> Any:
        raise NotImplementedError

    def _run_signature(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _on_batch(self, size: int, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_batch(self.name, size, seconds)

    def _on_depth(self, depth: int) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels(self.name).set(depth)


def backend_name(predictor: Any, requested: str | None, path: Path) -> str:
    """The backend a loaded predictor runs on: the requested one, else keras or the detected artifact kind."""
    if requested:
        return requested
    import keras

    if isinstance(getattr(predictor, "model", None), keras.Model):
        return "keras"
    from tfpilot.export.backends import detect

    try:
        return detect(path)[0]
    except FileNotFoundError:
        return type(getattr(predictor, "model", predictor)).__name__


class PredictorServable(Servable):
    """A tfpilot run directory or artifact, served through its :class:`~tfpilot.inference.Predictor`.

    A classifier has one signature, ``serving_default`` (raw images or texts in, class
    probabilities ``output_0`` out), and tfpilot's extras; its batches are shared with REST's
    raw-instance requests. A model of named inputs and heads has
    :func:`~tfpilot.serving.signatures.table_signatures`, each head answered by name.

    Args:
        name, version, path, options, metrics: as for :class:`Servable`.
        backend: keras, saved_model, tflite or onnx (None: detected from the path).
    """

    kind = "tfpilot"

    def __init__(self, name: str, version: int, path: str | Path, options: BatchOptions,
                 metrics: ServingMetrics | None = None, backend: str | None = None) -> None:
        super().__init__(name, version, path, options, metrics)
        self.requested_backend = backend
        self.backend = backend or "auto"
        self.predictor: Any = None
        self.runner: Any = None
        self._decoder: InstanceDecoder | None = None
        self.input_name = "input"

    @property
    def legacy_rest(self) -> bool:  # type: ignore[override]
        """A classifier answers REST in tfpilot's shapes; other models as TF Serving answers a SavedModel."""
        return self.predictor is not None and self.predictor.is_classifier

    def load(self) -> None:
        t0 = time.perf_counter()
        predictor = load(self.path, backend=self.requested_backend)
        self.backend = backend_name(predictor, self.requested_backend, self.path)
        if predictor.is_classifier:
            self._load_classifier(predictor)
        else:
            self.signatures = MappingProxyType(table_signatures(predictor.spec))
            self.predictor = predictor
            warm = {c.key: [example_instance(c)[()]] for c in predictor.spec.inputs}
            predictor.runner(predictor.prepare_columns(warm))
        self.load_seconds = time.perf_counter() - t0
        log.info("model %s ready (%s, %s) in %.1fs", self.name, self.path, self.backend, self.load_seconds)

    def _load_classifier(self, predictor: Any) -> None:
        from tfpilot.serving.runner import make_runner

        runner = make_runner(predictor, self.options.max_batch, self.options.allowed_batch_sizes)
        runner.warm_up()
        inputs = getattr(predictor.model, "inputs", None)
        if inputs and len(inputs) == 1 and getattr(inputs[0], "name", None):
            self.input_name = str(inputs[0].name)
        self.predictor, self.runner = predictor, runner
        self._decoder = InstanceDecoder(predictor.input_spec, max_instances=self.options.max_instances)
        spec = predictor.input_spec
        self.signatures = MappingProxyType({DEFAULT_SIGNATURE: tfpilot_signature(
            DEFAULT_SIGNATURE, {self.input_name: (_TF_DTYPES.get(spec.dtype, "DT_STRING"), (None, *spec.shape))},
            {PROBABILITIES: ("DT_FLOAT", (None, len(predictor.class_names)))})})

    def unload(self) -> None:
        self.predictor = self.runner = self._decoder = None

    @property
    def class_names(self) -> list[str]:
        return list(self.predictor.class_names) if self.legacy_rest else []

    @property
    def input_spec(self) -> Any:
        return self.predictor.input_spec if self.predictor is not None else None

    @property
    def decoder(self) -> InstanceDecoder | None:
        return self._decoder

    async def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return await self._submit(batch, None, self.batching)

    def _batch_job(self, signature_name: str | None, inputs: Mapping[str, np.ndarray]) -> tuple[Any, Any, bool]:
        """A classifier's one signature: its batches are shared with REST's raw-instance requests (no key)."""
        if not self.legacy_rest:
            return super()._batch_job(signature_name, inputs)
        sig = self.signature(signature_name)
        batch = self.check_inputs(sig, inputs)[self.input_name]
        if self.input_spec.kind == "text":
            batch = np.array([x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in batch],
                             dtype=object)
        if len(batch) == 0:
            raise BadRequest(f"input {self.input_name!r} is empty: send at least one instance")
        self.decoder.check_count(len(batch))
        return batch, None, self.batching

    def _outputs(self, out: Any) -> dict[str, np.ndarray]:
        return {PROBABILITIES: out} if self.legacy_rest else out

    def _call_raw(self, batch: Any) -> np.ndarray:
        return self.runner(batch)

    def _run_signature(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every head by key, and ``<key>_label`` (the top class) of class heads."""
        spec = self.predictor.spec
        columns: dict[str, Any] = dict(inputs)
        for c in spec.inputs:
            if c.kind == "image" and name != PIXELS_SIGNATURE:  # encoded files, never paths on this machine
                columns[c.key] = [bytes(v) if isinstance(v, bytes) else b"" for v in inputs[c.key]]
        try:
            raw = self.predictor.runner(self.predictor.prepare_columns(columns, where=_instance_input))
        except InputError as exc:
            raise BadRequest(str(exc)) from None
        out: dict[str, np.ndarray] = {}
        for o in spec.outputs:
            out[o.key] = v = np.asarray(raw[o.key], np.float32)
            if o.classes:
                top = v.argmax(axis=1) if o.kind == "category" else (v > 0.5).astype(int)
                out[f"{o.key}_label"] = np.array([o.classes[i] for i in top], dtype=object)
        return out

    def extras(self) -> dict[str, Any]:
        if not self.legacy_rest:
            return {"input_spec": self.input_spec.to_dict(), "task": "table", "backend": self.backend}
        return {"input_spec": self.input_spec.to_dict(), "class_names": self.class_names,
                "backend": self.backend, "runner": self.runner.kind}


def _instance_input(i: int, name: str) -> str:
    return f"instance {i}, input {name!r}"
