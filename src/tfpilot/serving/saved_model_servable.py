"""Any SavedModel -- TF2 (``tf.saved_model.save``) or TF1 (``tf.compat.v1.saved_model.Builder``).

The signatures are read from the ``serve`` MetaGraph of ``saved_model.pb`` (so metadata is
exactly what TF Serving reports, ``__saved_model_init_op`` included) and called through
``tf.saved_model.load(...).signatures``, which runs TF1 graphs too (``classify_x_to_y``
signatures that parse serialized ``tf.Example``s, for instance). Each call gets the inputs
as tensors by alias and returns the outputs by alias.

A SavedModel written by ``tfpilot export`` (``assets/bundle.json``) keeps tfpilot's extras:
class names, ``{"b64": ...}`` images for its uint8 input, the upload route and the web page;
its batches are padded to power-of-two sizes (as tfpilot's Keras runner does), each warmed
up when the version loads.

Example:
    >>> from tfpilot.serving.saved_model_servable import SavedModelServable
    >>> from tfpilot.serving.servable import BatchOptions
    >>> servable = SavedModelServable("half_plus_two", 123, "models/half_plus_two/123", BatchOptions())  # doctest: +SKIP
    >>> servable.load()  # doctest: +SKIP
    >>> sorted(servable.signatures)  # doctest: +SKIP
    ['classify_x_to_y', 'regress_x_to_y', 'serving_default']
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from tfpilot.models.ydf_ops import ensure_ops
from tfpilot.serving.decode import InstanceDecoder
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.examples import feature_type_hint
from tfpilot.serving.metrics import ServingMetrics
from tfpilot.serving.servable import BatchOptions, Servable
from tfpilot.serving.signatures import DEFAULT_SIGNATURE, ModelLoadError, Signature, read_signature_defs

log = logging.getLogger("tfpilot.serving")

BUNDLE_PATH = Path("assets") / "bundle.json"
PROBABILITIES = "probabilities"


def tf_message(message: str) -> str:
    r"""TensorFlow's error message without its graph trace ("Detected at node ... File ...") and node names.

    Example:
        >>> tf_message("Graph execution error:\n\nDetected at node P defined at (most recent call last):\n"
        ...            '  File "x.py", line 1, in f\n\nKey: x.  Data types do not match.\n\t [[{{node P}}]]')
        'Key: x.  Data types do not match.'
    """
    lines = []
    for line in message.splitlines():
        text = line.strip()
        if not text or line.startswith("    ") or text.startswith(
                ("File ", "Detected at node", "Graph execution error", "[[{{node", "[Op:")):
            continue
        lines.append(text.split(" [Op:")[0].replace("<stack traces unavailable>", "").strip())
    return " ".join(line for line in lines if line) or message.strip()


def tf_error_code(exc: BaseException) -> str:
    """TF Serving's canonical code for an exception raised while loading (UNKNOWN if not a TF error)."""
    import tensorflow as tf

    if isinstance(exc, ModelLoadError):
        return exc.code
    if isinstance(exc, tf.errors.OpError):
        from tensorflow.core.protobuf import error_codes_pb2

        return error_codes_pb2.Code.Name(exc.error_code)
    if isinstance(exc, FileNotFoundError):
        return "NOT_FOUND"
    return "UNKNOWN"


class SavedModelServable(Servable):
    """One version of a SavedModel, with all its signatures.

    Args:
        name, version, path, options, metrics: as for :class:`~tfpilot.serving.servable.Servable`.
    """

    kind = "saved_model"

    def __init__(self, name: str, version: int, path: str | Path, options: BatchOptions,
                 metrics: ServingMetrics | None = None) -> None:
        super().__init__(name, version, path, options, metrics)
        self.loaded: Any = None
        self._functions: dict[str, Any] = {}
        self.bundle: Any = None
        self._decoder: InstanceDecoder | None = None
        self._input_key = ""

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> None:
        import tensorflow as tf

        t0 = time.perf_counter()
        protos = read_signature_defs(self.path)
        ensure_ops()  # a SavedModel with decision forests calls YDF's ops
        loaded = tf.saved_model.load(str(self.path), tags=["serve"])
        functions = dict(loaded.signatures)
        signatures = {name: Signature.from_proto(name, proto) for name, proto in sorted(protos.items())
                      if name in functions}
        if not signatures:
            raise ModelLoadError(f"{self.path}: the SavedModel has no callable signatures "
                                 f"(found {sorted(protos) or 'none'})", "FAILED_PRECONDITION")
        self.loaded, self._functions = loaded, functions
        self.signature_protos = MappingProxyType(protos)
        self.signatures = MappingProxyType(signatures)
        self._read_bundle()
        self.load_seconds = time.perf_counter() - t0
        log.info("model %s version %d loaded from %s in %.1fs (signatures: %s)", self.name, self.version,
                 self.path, self.load_seconds, ", ".join(signatures))

    def _read_bundle(self) -> None:
        """tfpilot's extras when the SavedModel is a ``tfpilot export`` with one raw input."""
        bundle_file = self.path / BUNDLE_PATH
        sig = self.signatures.get(DEFAULT_SIGNATURE)
        if not bundle_file.is_file() or sig is None or len(sig.inputs) != 1 or PROBABILITIES not in sig.outputs:
            return
        from tfpilot.export.bundle import Bundle
        from tfpilot.serving.runner import buckets, example_instance

        self.bundle = Bundle.from_json(bundle_file.read_text(encoding="utf-8"))
        self._decoder = InstanceDecoder(self.bundle.input_spec, max_instances=self.options.max_instances)
        self._input_key = next(iter(sig.inputs))
        if not self.options.allowed_batch_sizes:
            self.options = replace(self.options, allowed_batch_sizes=buckets(self.options.max_batch))
        example = example_instance(self.bundle.input_spec)
        if self.bundle.input_spec.kind == "text":
            example = np.array(str(example), dtype=object)
        key = (DEFAULT_SIGNATURE, ())
        for n in self.options.allowed_batch_sizes:  # no request pays for a first-time batch shape
            self._call({self._input_key: np.stack([example] * n)}, key)

    def unload(self) -> None:
        self.loaded, self._functions = None, {}

    @property
    def batches_by_default(self) -> bool:  # type: ignore[override]
        """A tfpilot export batches unless told not to; another SavedModel only with ``--enable_batching``
        (its outputs may depend on the other rows of a batch), as in TF Serving."""
        return self.bundle is not None

    @property
    def strict_shapes(self) -> bool:  # type: ignore[override]
        """A tfpilot export checks shapes with its friendly messages; another SavedModel gets the
        tensors as sent, and its graph decides (TF Serving feeds ``[3]`` to an ``x`` declared ``[-1, 1]``)."""
        return self.bundle is not None

    # -- tfpilot's extras -----------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(self.bundle.class_names) if self.bundle is not None else []

    @property
    def input_spec(self) -> Any:
        return self.bundle.input_spec if self.bundle is not None else None

    @property
    def decoder(self) -> InstanceDecoder | None:
        return self._decoder

    @property
    def raw_input(self) -> str:
        """The input a tfpilot export's raw images or texts go to ('' for other models)."""
        return self._input_key

    async def probabilities(self, batch: np.ndarray) -> np.ndarray:
        if self.bundle is None:
            return await super().probabilities(batch)
        if len(batch) == 0:
            raise BadRequest("send at least one instance")
        outputs = await self.run(DEFAULT_SIGNATURE, {self._input_key: batch})
        return outputs[PROBABILITIES]

    def extras(self) -> dict[str, Any]:
        if self.bundle is None:
            return {}
        return {"input_spec": self.bundle.input_spec.to_dict(), "class_names": self.class_names,
                "backend": "saved_model", "runner": "saved_model"}

    # -- the model call (worker thread) ---------------------------------------------------------
    def _run_signature(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        fn = self._functions[name]
        sig = self.signatures[name]
        tensors = {k: tf.constant(v, dtype=tf.as_dtype(sig.inputs[k].dtype.enum)) for k, v in inputs.items()}
        try:
            out = fn(**tensors)
        except tf.errors.InvalidArgumentError as exc:
            message = tf_message(exc.message)
            raise BadRequest(f"the model rejected the input: {message}{feature_type_hint(message)}") from None
        except (TypeError, ValueError) as exc:  # a TF2 function refusing the tensors it is given
            if self.strict_shapes:
                raise
            raise BadRequest(f"the model rejected the input: {tf_message(str(exc))}") from None
        return {k: v.numpy() for k, v in out.items()}
