"""What is exported: a Keras model with its class names and input, plus the data the
int8 exporter calibrates on and the int8 gate checks on.

Two transformations every converter needs live here:

* :func:`float32_model` -- models trained under ``mixed_bfloat16`` / ``mixed_float16``
  compute in 16 bits, which neither the TFLite converter (bf16 ``Conv2D`` is "neither a
  custom op nor a flex op") nor ONNX Runtime (``Mul`` bound to float16 and bfloat16)
  accept. The model is rebuilt with float32 layers and the same (float32) weights, so
  every non-Keras artifact computes in float32.
* :func:`split_strings` -- TFLite's builtin ops and ONNX hold no string ops (a text
  input's ``TextVectorization``, a category input's ``StringLookup``). The model is cut
  where each string input's strings end: the string part is saved beside the artifact as
  ``preprocess.keras`` (plus ``vocab.txt`` for a text classifier) and applied by tfpilot's
  loader; the artifact takes token ids / lookups for those inputs.

Example:
    >>> from tfpilot.export.source import ExportSource
    >>> source = ExportSource.from_run("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> source.float32_model().dtype_policy.name  # doctest: +SKIP
    'float32'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config.schema import EVAL_BATCH
from tfpilot.errors import NotFoundError, UserError
from tfpilot.export.runtime import PREPROCESS_FILE
from tfpilot.spec import InputSpec, TableSpec, as_table_spec, spec_from_dict


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
        raise UserError(
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
class Network:
    """What TFLite and ONNX convert: a float32 Keras model over numbers only, and the string
    layers cut off before it (``preprocess``, run by tfpilot's loader), for models with text or
    category inputs.

    Attributes:
        model: the numeric Keras model (its inputs: raw pixels and numbers, token ids / lookups).
        keys: the spec's input key of each of ``names``.
        preprocess: Keras model, raw strings -> what ``model`` takes for them (None: no strings).
        vocabulary: a one-text-input model's vocabulary (id = index), written as vocab.txt.
    """

    model: Any
    keys: list[str]
    preprocess: Any = None
    vocabulary: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The converted artifact's input names, in signature order."""
        m = self.model
        return list(m.input) if isinstance(m.input, dict) else [t.name for t in m.inputs]

    def signature(self, batch: int | None = None) -> list[Any]:
        """The artifact's input ``tf.TensorSpec`` s, by name, with a dynamic batch (or ``batch``)."""
        import tensorflow as tf

        tensors = self.model.input.values() if isinstance(self.model.input, dict) else self.model.inputs
        return [tf.TensorSpec([batch, *t.shape[1:]], t.dtype, name=n) for n, t in zip(self.names, tensors)]

    def __call__(self, *args: Any) -> Any:
        """The model on signature-ordered tensors: one output as it is, named heads as float32."""
        import tensorflow as tf

        m = self.model
        x = dict(zip(self.names, args)) if isinstance(m.input, dict) else args[0] if len(args) == 1 else list(args)
        out = m(x, training=False)
        return {k: tf.cast(v, tf.float32) for k, v in out.items()} if isinstance(out, dict) else out

    def feed(self, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw named inputs -> the artifact's inputs by name (the string columns through ``preprocess``)."""
        from tfpilot.export.runtime import KerasModel, raw_runner

        done = dict(x)
        if self.preprocess is not None and isinstance(self.preprocess.input, dict):
            done.update(raw_runner(self.preprocess)({k: x[k] for k in self.preprocess.input}))
        elif self.preprocess is not None:
            done[self.keys[0]] = KerasModel(self.preprocess, probabilities=False)(x[self.keys[0]])
        dtypes = [s.dtype.as_numpy_dtype for s in self.signature()]
        return {n: np.asarray(done[k]).astype(d, copy=False) for n, k, d in zip(self.names, self.keys, dtypes)}


def _string_ends(model: Any) -> dict[int, list[tuple[Any, Any]]]:
    """For each string input (by id): the ``(layer, tensor)`` pairs where its strings end."""
    import keras

    owner = {id(t): id(t) for t in model.inputs if _is_string(t)}
    ends: dict[int, list[tuple[Any, Any]]] = {}
    for layer in model.operations:
        try:
            ins = keras.tree.flatten(layer.input)
        except (AttributeError, ValueError):  # an Input layer, or a layer called more than once
            continue
        roots = {owner.get(id(t)) for t in ins}
        if len(roots) != 1 or None in roots:
            continue
        for t in keras.tree.flatten(layer.output):
            if _is_string(t):
                owner[id(t)] = next(iter(roots))
            else:
                ends.setdefault(next(iter(roots)), []).append((layer, t))
    return ends


def split_strings(model: Any, spec: Any) -> Network:
    """Cut a functional model where the strings of each text / category input end.

    Args:
        model: the model (raw inputs -> outputs), float32 or not.
        spec: its :class:`~tfpilot.spec.TableSpec` (a classifier's through ``as_table_spec``).

    Raises:
        ValueError: naming the input whose strings end in no single place (or a model with no graph).
    """
    import keras

    single = not isinstance(getattr(model, "input", None), dict)
    if not hasattr(model, "operations") or (single and len(model.inputs) != 1):
        raise UserError(f"cannot split {model.name!r} into preprocessing and network: it is not a functional "
                        "model. Export it as keras or saved_model instead.")
    inputs = dict(zip(spec.input_keys, model.inputs)) if single else dict(model.input)
    ends = _string_ends(model)
    strings = {k: ends.get(id(t), []) for k, t in inputs.items() if _is_string(t)}
    for key, found in strings.items():
        if len(found) != 1:
            raise UserError(f"input {key!r}: cannot find where its strings end in {model.name!r} (found "
                            f"{len(found)} places); TFLite and ONNX hold no string ops: export it as keras or "
                            "saved_model, which take raw strings as they are")
    if not strings:
        return Network(float32_model(model), list(inputs) if not single else spec.input_keys)
    bounds = {k: found[0][1] for k, found in strings.items()}
    pick = (lambda d: next(iter(d.values()))) if single else (lambda d: d)
    preprocess = keras.Model(pick({k: inputs[k] for k in bounds}), pick(bounds), name="preprocess")
    cut = [bounds.get(k, t) for k, t in inputs.items()]
    inner = keras.Model(cut, model.output, name=f"{model.name}_inner")
    token = "token_ids" if "int" in str(cut[0].dtype) else "text_features"
    fresh = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=token if single else k)
             for k, t in zip(inputs, cut)]
    network = keras.Model(fresh[0] if single else fresh, inner(fresh), name=f"{model.name}_network")
    layer = next(iter(strings.values()))[0][0]
    vocabulary = [str(t) for t in layer.get_vocabulary()] if single and hasattr(layer, "get_vocabulary") else []
    return Network(float32_model(network), list(inputs), preprocess, vocabulary)


def _is_string(tensor: Any) -> bool:
    return str(getattr(tensor, "dtype", "")) in ("string", "<dtype: 'string'>")


def _output_description(model: Any, class_names: Sequence[str]) -> dict[str, Any]:
    units = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else len(class_names)
    if units == 1 and len(class_names) == 2:
        return {"dtype": "float32", "shape": [None, 1],
                "meaning": f"sigmoid probability of {class_names[1]!r} (that of {class_names[0]!r} is 1 - p)"}
    return {"dtype": "float32", "shape": [None, units],
            "meaning": "class probabilities (softmax), one column per class_names entry"}


def _head_description(o: Any) -> dict[str, Any]:
    if o.kind == "number":
        return {"column": o.name, "kind": o.kind, "dtype": "float32", "shape": [None],
                "meaning": "the predicted value, in the column's units"}
    category = o.kind == "category"
    return {"column": o.name, "kind": o.kind, "dtype": "float32",
            "shape": [None, len(o.classes)] if category else [None], "classes": list(o.classes),
            "meaning": "class probabilities (softmax)" if category else f"P({o.classes[1]!r}) (sigmoid)"}


def _input_description(c: Any, network: Network | None) -> dict[str, Any]:
    """A named input as the SavedModel (``network`` None) or a converted network takes it."""
    if network is not None and network.preprocess is not None and c.kind in ("text", "category", "date"):
        t = network.model.inputs[network.keys.index(c.key)]
        return {"column": c.name, "kind": c.kind, "dtype": str(t.dtype), "shape": [None, *t.shape[1:]],
                "note": f"{PREPROCESS_FILE}'s output for this column (tfpilot's loader runs it)"}
    if c.kind == "image":
        return {"column": c.name, "kind": "image", "dtype": "uint8",
                "shape": [None, None, None, c.shape[2]] if network is None else [None, *c.shape],
                "note": "raw pixels" + (" of any size, resized inside" if network is None else "")}
    return {"column": c.name, "kind": c.kind, "dtype": c.dtype, "shape": [None],
            "note": "NaN = missing" if c.kind == "number" else "raw strings"}


@dataclass
class ExportSource:
    """A model to export, with what the exporters need besides it.

    Args:
        model: the Keras model (raw inputs -> probabilities, or named inputs -> named heads).
        class_names: a classifier's output class names, in order (a table model: none).
        input_spec: the classifier's raw input, or a table model's :class:`~tfpilot.spec.TableSpec`.
        calibration: raw inputs for int8 calibration (a training sample; named inputs for a table
            model), or a callable returning them (called once, when int8 is exported).
        evaluation: ``(x, y)`` the int8 gate checks accuracy on (default: none, no gate).
        run_path: the run directory the model comes from, if any.
        model_name: the registered model name, if known.
        batch_size: examples per model call when the gate runs the model and its artifacts (a
            run's ``train.evaluation_batch``: the memory plan lowers it for large images).

    Example:
        >>> import numpy as np
        >>> from tfpilot.models import create_model
        >>> spec = InputSpec.image(8, 8, 1)
        >>> src = ExportSource(create_model("mlp", spec, 2), ["a", "b"], spec)
        >>> src.float32_model() is src.model, src.spec.output_keys
        (True, ['label'])
    """

    model: Any
    class_names: Sequence[str]
    input_spec: InputSpec | TableSpec
    calibration: Any = None
    evaluation: Any = None
    run_path: Path | None = None
    model_name: str | None = None
    batch_size: int = EVAL_BATCH

    @property
    def spec(self) -> TableSpec:
        """The model's named inputs and heads (a classifier: one input, one category head)."""
        return as_table_spec(self.input_spec, self.class_names)

    @property
    def classifier(self) -> bool:
        """Whether the artifacts keep a classifier's signatures (``images``/``text`` -> ``probabilities``)."""
        return self.input_spec.kind != "table"

    @classmethod
    def from_run(
        cls, run_dir: str | Path, calibration_size: int = 500, gate_split: str = "test", gate_limit: int | None = None
    ) -> ExportSource:
        """The trained model of a run directory; its data is loaded only when needed.

        Args:
            run_dir: a finished run (a classifier or a table model).
            calibration_size: training examples (class-balanced) int8 calibrates on.
            gate_split: split the int8 accuracy gate checks on.
            gate_limit: at most this many gate examples (class-balanced); default all.
        """
        from tfpilot.config import evaluation_batch
        from tfpilot.export.data import named_split
        from tfpilot.runs import Run

        run = Run(run_dir)
        if not run.model_path.is_file():
            raise NotFoundError(
                f"{run.path} has no {run.model_path.name}: give a finished tfpilot run directory "
                "(train one with `tfpilot train`)"
            )
        labels = run.labels
        spec = spec_from_dict(labels["input"])
        unwrap = (lambda x: x) if spec.kind == "table" else (lambda x: next(iter(x.values())))
        return cls(
            model=run.load_model(),
            class_names=list(labels.get("class_names") or []),  # a table run's are []
            input_spec=spec,
            calibration=lambda: unwrap(named_split(run.path, "train", limit=calibration_size)[0]),
            evaluation=lambda: named_split(run.path, gate_split, limit=gate_limit),
            run_path=run.path.resolve(),
            model_name=labels.get("model"),
            batch_size=evaluation_batch(run.config_file),
        )

    def bundle(self, format: str, file: str, network: Network | None = None, **fields: Any) -> Any:
        """A :class:`~tfpilot.export.bundle.Bundle` for this model's ``format`` artifact.

        Defaults: the raw inputs as the artifact's inputs, probabilities (each head) as output, and
        the model's preprocessing running inside the artifact, or its string steps in
        ``network.preprocess`` beside it.
        """
        from tfpilot.export.bundle import Bundle, describe_preprocessing

        spec, beside = self.input_spec, network is not None and network.preprocess is not None
        where = f"tfpilot's loader, {PREPROCESS_FILE}" if beside else "inside the artifact"
        if self.classifier:
            note = (f"raw uint8 pixels (N, {', '.join(map(str, spec.shape))}); resize other sizes first "
                    "(tfpilot.load() does)" if spec.kind == "image" else "raw strings (N,)")
            io = dict(input={"name": self.model.inputs[0].name if self.model.inputs else "input", "dtype": spec.dtype,
                             "shape": [None, *spec.shape], "note": note},
                      output=_output_description(self.model, self.class_names))
        else:
            io = dict(input={"signature": "serving_default",
                             "inputs": {c.key: _input_description(c, network) for c in spec.inputs}},
                      output={"signature": "serving_default",
                              "outputs": {o.key: _head_description(o) for o in spec.outputs}})
        defaults = dict(
            **io,
            preprocessing=[{**step, "where": where if "vocabulary_size" in step else "inside the artifact"}
                           for step in describe_preprocessing(self.model)],
            loader_files={"preprocess": PREPROCESS_FILE} if beside else {},
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

    def network(self) -> Network:
        """The float32 network TFLite and ONNX convert, its string layers cut off (see :func:`split_strings`)."""
        return self._network

    @cached_property
    def _network(self) -> Network:
        from tfpilot.models.ydf_layers import refuse_conversion

        refuse_conversion(self.model)
        # Cut first, then rebuild the numeric part in float32: cloning the whole model would
        # share its (float32) string layers between two graphs and leave no single cut.
        return split_strings(self.inference_model(), self.spec)

    def calibration_data(self) -> dict[str, np.ndarray]:
        """The calibration sample, by input key."""
        return self._calibration

    @cached_property
    def _calibration(self) -> dict[str, np.ndarray]:
        data = self.calibration() if callable(self.calibration) else self.calibration
        if data is None or len(data) == 0:
            raise UserError(
                "tflite-int8 needs calibration data (a sample of the training inputs): export from a "
                "run directory, or pass ExportSource(calibration=...)"
            )
        return data if isinstance(data, dict) else {self.spec.input_keys[0]: data}

    def evaluation_data(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """The gate's ``(x, y)``, by input and head key (None: no gate)."""
        return self._evaluation

    @cached_property
    def _evaluation(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        data = self.evaluation() if callable(self.evaluation) else self.evaluation
        if data is None or isinstance(data[0], dict):
            return data
        return {self.spec.input_keys[0]: data[0]}, {self.spec.output_keys[0]: data[1]}
