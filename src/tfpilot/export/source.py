"""What is exported: a Keras model with its class names and input, plus the data the
int8 exporter calibrates on and the int8 gate checks on.

Two transformations every converter needs live here:

* :func:`float32_model` -- models trained under ``mixed_bfloat16`` / ``mixed_float16``
  compute in 16 bits, which neither the TFLite converter (bf16 ``Conv2D`` is "neither a
  custom op nor a flex op") nor ONNX Runtime (``Mul`` bound to float16 and bfloat16)
  accept. The model is rebuilt with float32 layers and the same (float32) weights, so
  every non-Keras artifact computes in float32.
* :func:`split_text_model` -- TFLite's builtin ops and ONNX cannot hold
  ``TextVectorization`` (string ops and a hash table). A text model is cut where the
  strings end: the string part is saved beside the artifact as ``preprocess.keras`` (plus
  ``vocab.txt``) and applied by tfpilot's loader; the artifact takes token ids.

Example:
    >>> from tfpilot.export.source import ExportSource
    >>> source = ExportSource.from_run("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> source.float32_model().dtype_policy.name  # doctest: +SKIP
    'float32'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.spec import InputSpec


def inference_model(model: Any) -> Any:
    """The same layers as an uncompiled functional model, so saving it skips the optimizer
    state (which triples a trained ``.keras`` file). Shares every layer, vocabularies included.
    """
    import keras

    if getattr(model, "optimizer", None) is None or not hasattr(model, "inputs"):
        return model
    try:
        return keras.Model(model.input, model.output, name=model.name)
    except Exception:  # a subclassed model has no graph to rewrap; keep it as it is
        return model


def float32_model(model: Any) -> Any:
    """``model`` with every layer computing in float32 (the model itself if it already does).

    Layers with a mixed policy are rebuilt from their config with ``dtype="float32"``;
    the others (e.g. ``TextVectorization`` with its vocabulary) are shared. Weights are
    copied, so the result computes the same function at full precision.
    """
    import keras

    if all(_policy(layer) == "float32" for layer in _all_layers(model)):
        return model

    def clone(layer: Any) -> Any:
        if _policy(layer) == "float32":
            return layer
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    try:
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except Exception as exc:  # subclassed models without get_config cannot be cloned
        raise ValueError(
            f"cannot rebuild {model.name!r} in float32 for export ({type(exc).__name__}: {exc}). "
            "Train it with precision: float32, or give its layers get_config()."
        ) from exc
    copy.set_weights(model.get_weights())
    return copy


def _policy(layer: Any) -> str:
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "name", "float32")


def _all_layers(model: Any):
    yield model
    for layer in getattr(model, "layers", []):
        yield from _all_layers(layer)


@dataclass
class TextSplit:
    """A text model cut where strings end.

    Attributes:
        preprocess: Keras model, raw strings -> token ids (holds the vocabulary).
        network: Keras model, token ids -> probabilities.
        vocabulary: the vectorizer's vocabulary (id = index), if it has one.
    """

    preprocess: Any
    network: Any
    vocabulary: list[str] = field(default_factory=list)


def split_text_model(model: Any) -> TextSplit:
    """Cut a functional text model into string preprocessing and numeric network.

    The cut is the one tensor where the graph stops carrying strings (the output of
    ``TextVectorization``, or of whatever string layers a model has).

    Raises:
        ValueError: if the model has no single such tensor (e.g. a subclassed model).
    """
    import keras

    if not hasattr(model, "operations") or not hasattr(model, "inputs") or len(model.inputs) != 1:
        raise ValueError(
            f"cannot split text model {model.name!r} into preprocessing and network: it is not a "
            "single-input functional model. Export it as keras or saved_model instead."
        )
    string_layers = []
    for layer in model.operations:
        try:
            ins = keras.tree.flatten(layer.input)
        except (AttributeError, ValueError):  # an Input layer, or a layer called more than once
            continue
        if ins and all(_is_string(t) for t in ins):
            string_layers.append(layer)
    boundary = []
    for layer in string_layers:
        for t in keras.tree.flatten(layer.output):
            if not _is_string(t):
                boundary.append((layer, t))
    if len(boundary) != 1:
        raise ValueError(
            f"cannot find where strings end in {model.name!r} (found {len(boundary)} places): export "
            "it as keras or saved_model, which take raw strings as they are"
        )
    layer, tensor = boundary[0]
    preprocess = keras.Model(model.input, tensor, name="preprocess")
    inner = keras.Model(tensor, model.output, name=f"{model.name}_network")
    name = "token_ids" if "int" in str(tensor.dtype) else "text_features"
    ids = keras.Input(shape=tuple(tensor.shape[1:]), dtype=tensor.dtype, name=name)
    network = keras.Model(ids, inner(ids), name=f"{model.name}_network")
    vocabulary = [str(t) for t in layer.get_vocabulary()] if hasattr(layer, "get_vocabulary") else []
    return TextSplit(preprocess, network, vocabulary)


def _is_string(tensor: Any) -> bool:
    return str(getattr(tensor, "dtype", "")) in ("string", "<dtype: 'string'>")


def _output_description(model: Any, class_names: Sequence[str]) -> dict[str, Any]:
    units = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else len(class_names)
    if units == 1 and len(class_names) == 2:
        return {"dtype": "float32", "shape": [None, 1],
                "meaning": f"sigmoid probability of {class_names[1]!r} (that of {class_names[0]!r} is 1 - p)"}
    return {"dtype": "float32", "shape": [None, units],
            "meaning": "class probabilities (softmax), one column per class_names entry"}


@dataclass
class ExportSource:
    """A model to export, with what the exporters need besides it.

    Args:
        model: the Keras model (raw input -> probabilities).
        class_names: output class names, in order.
        input_spec: the raw input the model takes.
        calibration: raw inputs for int8 calibration (a class-balanced training sample),
            or a callable returning them (called once, when int8 is exported).
        evaluation: ``(x, y)`` the int8 gate checks accuracy on (default: none, no gate).
        run_path: the run directory the model comes from, if any.
        model_name: the registered model name, if known.

    Example:
        >>> import numpy as np
        >>> from tfpilot.models import create_model
        >>> spec = InputSpec.image(8, 8, 1)
        >>> src = ExportSource(create_model("mlp", spec, 2), ["a", "b"], spec)
        >>> src.float32_model() is src.model
        True
    """

    model: Any
    class_names: Sequence[str]
    input_spec: InputSpec
    calibration: np.ndarray | Callable[[], np.ndarray] | None = None
    evaluation: tuple[np.ndarray, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    run_path: Path | None = None
    model_name: str | None = None

    @classmethod
    def from_run(
        cls, run_dir: str | Path, calibration_size: int = 500, gate_split: str = "test", gate_limit: int | None = None
    ) -> ExportSource:
        """The trained model of a run directory; its data is loaded only when needed.

        Args:
            run_dir: a finished run.
            calibration_size: training examples (class-balanced) int8 calibrates on.
            gate_split: split the int8 accuracy gate checks on.
            gate_limit: at most this many gate examples (class-balanced); default all.
        """
        from tfpilot.export.data import calibration_sample, load_split
        from tfpilot.runs import Run

        run = Run(run_dir)
        if not run.model_path.is_file():
            raise FileNotFoundError(
                f"{run.path} has no {run.model_path.name}: give a finished tfpilot run directory "
                "(train one with `tfpilot train`)"
            )
        labels = run.labels
        return cls(
            model=run.load_model(),
            class_names=list(labels["class_names"]),
            input_spec=InputSpec.from_dict(labels["input"]),
            calibration=lambda: calibration_sample(run.path, calibration_size),
            evaluation=lambda: load_split(run.path, gate_split, limit=gate_limit),
            run_path=run.path.resolve(),
            model_name=labels.get("model"),
        )

    def bundle(self, format: str, file: str, **fields: Any) -> Any:
        """A :class:`~tfpilot.export.bundle.Bundle` for this model's ``format`` artifact.

        Defaults: the raw input as the artifact input, probabilities as output, and the
        model's preprocessing running inside the artifact.
        """
        from tfpilot.export.bundle import Bundle, describe_preprocessing

        spec = self.input_spec
        shape = [None, *spec.shape]
        note = (f"raw uint8 pixels (N, {', '.join(map(str, spec.shape))}); resize other sizes first "
                "(tfpilot.load() does)" if spec.kind == "image" else "raw strings (N,)")
        where = fields.pop("preprocessing_where", "inside the artifact")
        defaults = dict(
            input={"name": self.model.inputs[0].name if self.model.inputs else "input", "dtype": spec.dtype,
                   "shape": shape, "note": note},
            output=_output_description(self.model, self.class_names),
            preprocessing=[{**step, "where": where} for step in describe_preprocessing(self.model)],
            source_run=str(self.run_path) if self.run_path else None,
            model=self.model_name or self.model.name,
        )
        return Bundle(format=format, file=file, class_names=list(self.class_names), input_spec=spec,
                      **{**defaults, **fields})

    def float32_model(self) -> Any:
        return self._float32

    @cached_property
    def _float32(self) -> Any:
        return float32_model(self.inference_model())

    def inference_model(self) -> Any:
        """The model without its optimizer (see :func:`inference_model`)."""
        return self._inference

    @cached_property
    def _inference(self) -> Any:
        return inference_model(self.model)

    def text_split(self) -> TextSplit:
        """The float32 model cut into string preprocessing and numeric network (text only)."""
        return self._text_split

    @cached_property
    def _text_split(self) -> TextSplit:
        if self.input_spec.kind != "text":
            raise ValueError("only text models are split into preprocessing and network")
        # Cut first, then rebuild the numeric part in float32: cloning the whole model would
        # share its (float32) string layers between two graphs and leave no single cut.
        split = split_text_model(self.inference_model())
        return replace(split, network=float32_model(split.network))

    def calibration_data(self) -> np.ndarray:
        return self._calibration

    @cached_property
    def _calibration(self) -> np.ndarray:
        data = self.calibration() if callable(self.calibration) else self.calibration
        if data is None or len(data) == 0:
            raise ValueError(
                "tflite-int8 needs calibration data (a sample of the training inputs): export from a "
                "run directory, or pass ExportSource(calibration=...)"
            )
        return data

    def evaluation_data(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self._evaluation

    @cached_property
    def _evaluation(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.evaluation() if callable(self.evaluation) else self.evaluation
