"""Checking every head of every artifact against the Keras model it came from, on real data.

Per artifact and head: class heads (a classifier's one head among them) -- top-1 agreement
with Keras, the largest probability difference and, with labels, accuracy and its change
(in points); number heads -- the largest and mean absolute difference, also in standard
deviations of the targets. ``tflite-int8`` is gated per head: a class head whose accuracy
drops by more than ``max_drop`` points fails, with a message that suggests fp16 or
dynamic-range instead. ``verify`` also holds the other artifacts to a top-1 agreement and a
number-head tolerance (stricter for float32 artifacts than for 16-bit or int8 weights).

The reference is the Keras model as trained: a model trained under mixed precision computes
in 16 bits there and in float32 in the artifacts, so a near-tie row may flip -- train with
``precision: float32`` when the artifacts must match it exactly.

Example:
    >>> from tfpilot.export import verify
    >>> report = verify("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> {c.format: round(c.agreement, 4) for c in report.checks}  # doctest: +SKIP
    {'saved_model': 1.0, 'tflite': 1.0, 'tflite-int8': 0.9987, 'onnx': 1.0}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config.schema import EVAL_BATCH
from tfpilot.errors import NotFoundError
from tfpilot.export.formats import FORMAT_ORDER, GATED_FORMATS, artifact_size

#: Defaults of ``verify``'s pass criteria per format (16-bit weights move outputs more), and for a
#: model trained in mixed precision (16-bit in Keras, float32 in its artifacts).
MIN_AGREEMENT = {"tflite-fp16": 0.97, "tflite-dynamic": 0.95, "mixed": 0.98, "": 0.99}
MAX_NUMBER_DIFF = {"tflite-fp16": 0.05, "tflite-dynamic": 0.1, "tflite-int8": 0.25, "mixed": 0.05, "": 0.01}
#: The figures of a classifier's one head that its check shows at the top level.
CLASS_FIGURES = ("agreement", "accuracy", "keras_accuracy", "accuracy_change", "max_prob_diff")


def predict_all(model: Any, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Probabilities of a backend callable (or Keras model wrapper) over ``x``, batched."""
    from tfpilot.metrics import to_probabilities

    parts = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return to_probabilities(np.concatenate(parts)) if parts else np.zeros((0, 0))


@dataclass
class FormatCheck:
    """One artifact compared with the Keras model on the same examples, head by head.

    A classifier's figures (``agreement``, ``accuracy``, ...) are those of its one head.
    """

    format: str
    path: str
    num_examples: int
    heads: dict[str, dict[str, Any]]
    size_bytes: int = 0
    gated: bool = False
    passed: bool = True
    message: str = ""

    def __getattr__(self, name: str) -> Any:
        """``agreement``, ``accuracy``, ...: the first class head's figure."""
        if name in CLASS_FIGURES:
            first = next((h for h in self.__dict__.get("heads", {}).values() if h["kind"] != "number"), {})
            return first.get(name, 0.0)
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        flat = {k: getattr(self, k) for k in CLASS_FIGURES} if len(self.heads) == 1 else {}
        return {"format": self.format, "path": self.path, "num_examples": self.num_examples, **flat,
                "size_bytes": self.size_bytes, "gated": self.gated, "passed": self.passed, "message": self.message,
                "heads": self.heads}


def compare_heads(spec: Any, reference: dict[str, np.ndarray], got: dict[str, np.ndarray],
                  y: dict[str, np.ndarray] | None = None) -> dict[str, dict[str, Any]]:
    """Per head (by name): agreement, max probability difference and, with labels ``y``, accuracy
    against Keras'; or a number head's max / mean absolute difference (and in target std).
    """
    y = y or {}
    out: dict[str, dict[str, Any]] = {}
    for o in spec.outputs:
        a, b = np.asarray(reference[o.key], np.float64), np.asarray(got[o.key], np.float64)
        if o.kind == "number":
            diff = np.abs(a - b)
            scale = float(np.std(y[o.key])) if o.key in y and len(y[o.key]) else 1.0
            out[o.name] = {"kind": "number", "max_abs_diff": float(diff.max(initial=0.0)),
                           "mean_abs_diff": float(diff.mean()) if len(diff) else 0.0,
                           "max_diff_in_std": float(diff.max(initial=0.0) / (scale or 1.0))}
            continue
        top_a, top_b = (a.argmax(1), b.argmax(1)) if a.ndim == 2 else (a > 0.5, b > 0.5)
        head = {"kind": o.kind, "agreement": float(np.mean(top_a == top_b)) if len(a) else 0.0,
                "max_prob_diff": float(np.abs(a - b).max(initial=0.0))}
        if o.key in y:
            acc, ref_acc = float(np.mean(top_b == y[o.key])), float(np.mean(top_a == y[o.key]))
            head.update(accuracy=acc, keras_accuracy=ref_acc, accuracy_change=round((acc - ref_acc) * 100.0, 4))
        out[o.name] = head
    return out


def judge(fmt: str, path: str, heads: dict[str, dict[str, Any]], num_examples: int, max_drop: float = 1.0,
          min_agreement: float | None = None, max_number_diff: float | None = None, size_bytes: int = 0) -> FormatCheck:
    """A :class:`FormatCheck` of ``heads`` (see :func:`compare_heads`): a gated format fails a class head
    losing more than ``max_drop`` accuracy points; any format fails a class head agreeing less than
    ``min_agreement`` and a number head off by more than ``max_number_diff`` std (None: not checked)."""
    problems = []
    for name, h in heads.items():
        on = f" on head {name!r}" if len(heads) > 1 else ""
        if h["kind"] == "number":
            if max_number_diff is not None and h["max_diff_in_std"] > max_number_diff:
                problems.append(f"{fmt} differs from the Keras model{on} by up to {h['max_abs_diff']:.4g} "
                                f"({h['max_diff_in_std']:.3f} std, more than {max_number_diff:g}).")
            continue
        drop = -h.get("accuracy_change", 0.0)
        if fmt in GATED_FORMATS and drop > max_drop:
            problems.append(
                f"{fmt} loses {drop:.2f} accuracy points{on} against the Keras model ({h['keras_accuracy']:.4f} -> "
                f"{h['accuracy']:.4f}), more than --max-drop {max_drop:g}: int8 quantization does not suit this "
                "model. Use tflite-fp16 (half the size, no measurable loss) or tflite-dynamic (int8 weights, float "
                "activations) instead."
            )
        if min_agreement is not None and h["agreement"] < min_agreement:
            problems.append(f"{fmt} agrees with the Keras model{on} on {h['agreement']:.2%} of examples, below "
                            f"--min-agreement {min_agreement:.2%}.")
    return FormatCheck(fmt, path, num_examples, heads, size_bytes, fmt in GATED_FORMATS, not problems,
                       " ".join(problems))


def compare(
    fmt: str, path: str, probs: np.ndarray, reference: np.ndarray, y: np.ndarray, max_drop: float = 1.0,
    min_agreement: float | None = None, size_bytes: int = 0,
) -> FormatCheck:
    """A classifier's :class:`FormatCheck` from an artifact's and the Keras model's probabilities.

    Example:
        >>> import numpy as np
        >>> ref = np.array([[0.9, 0.1], [0.2, 0.8]]); y = np.array([0, 1])
        >>> c = compare("tflite-int8", "m.tflite", np.array([[0.6, 0.4], [0.7, 0.3]]), ref, y)
        >>> c.agreement, c.accuracy_change, c.passed
        (0.5, -50.0, False)
    """
    from tfpilot.spec import InputSpec, classifier_spec

    spec = classifier_spec(InputSpec.text(), [str(i) for i in range(probs.shape[-1])])
    heads = compare_heads(spec, {"label": reference}, {"label": probs}, {"label": y})
    return judge(fmt, path, heads, len(y), max_drop, min_agreement, None, size_bytes)


def check_artifact(path: str | Path, x: dict[str, np.ndarray], y: dict[str, np.ndarray],
                   reference: dict[str, np.ndarray], max_drop: float = 1.0, min_agreement: float | None = None,
                   max_number_diff: float | None = None, batch_size: int = EVAL_BATCH) -> FormatCheck:
    """Run the artifact at ``path`` over the named inputs ``x``, ``batch_size`` rows a call; compare
    every head with ``reference`` (the Keras model's outputs over ``x``) and the labels ``y``."""
    from tfpilot.export.backends import resolve
    from tfpilot.export.runtime import named_runner, run_batched
    from tfpilot.spec import as_table_spec

    found = resolve(path)
    spec = as_table_spec(found.bundle.input_spec, found.bundle.class_names)
    got = run_batched(named_runner(found.backend, found.path, found.bundle), x, batch_size)
    heads = compare_heads(spec, reference, got, y)
    return judge(found.format, str(found.path), heads, len(next(iter(x.values()))), max_drop, min_agreement,
                 max_number_diff, artifact_size(found.path))


@dataclass
class VerifyReport:
    """Every check of one :func:`verify` call (``keras_accuracy``: its first class head's, with labels)."""

    run: str
    split: str
    num_examples: int
    keras_accuracy: float | None
    checks: list[FormatCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "split": self.split, "num_examples": self.num_examples,
                "keras_accuracy": self.keras_accuracy, "passed": self.passed,
                "checks": [c.to_dict() for c in self.checks]}


def find_artifacts(run_dir: Path) -> list[Path]:
    """The artifact folders under ``RUN/export``, in format order (keras excluded, and the hidden
    ``.FORMAT.new-*`` folder of an export killed before it was swapped in)."""
    root = Path(run_dir) / "export"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and p.name != "keras" and not p.name.startswith(".") and (p / "bundle.json").is_file()]
    order = {f: i for i, f in enumerate(FORMAT_ORDER)}
    return sorted(found, key=lambda p: (order.get(p.name, len(order)), p.name))


def _targets(target: Path, artifacts: list[str | Path] | None) -> tuple[Path, list[Path]]:
    """The run to compare with and the artifacts to check."""
    from tfpilot.export.backends import read_bundle

    if (target / "labels.json").is_file():
        paths = [Path(a) for a in artifacts] if artifacts else find_artifacts(target)
        if not paths:
            raise NotFoundError(f"{target} has no exports: run `tfpilot export {target} --format all` first")
        return target, paths
    source_run = read_bundle(target).source_run
    if not source_run or not (Path(source_run) / "labels.json").is_file():
        raise NotFoundError(
            f"{target} was not exported from a run directory that still exists ({source_run}): verify "
            "needs the run's Keras model and data"
        )
    return Path(source_run), [target]


def verify(
    target: str | Path,
    split: str = "test",
    max_drop: float = 1.0,
    min_agreement: float | None = None,
    limit: int | None = None,
    artifacts: list[str | Path] | None = None,
    max_number_diff: float | None = None,
) -> VerifyReport:
    """Verify every head of a run's exported artifacts (or one artifact) on ``split`` of the run's data.

    Args:
        target: a run directory (checks everything under ``RUN/export``) or an artifact
            (checked against the run it was exported from, named in its bundle).
        split: "test", "val" or "train".
        max_drop: the largest accuracy drop, in points, a class head of a gated format (tflite-int8) may have.
        min_agreement: the smallest top-1 agreement a class head may have (default 0.99; 0.97 for
            tflite-fp16, 0.95 for tflite-dynamic, 0.98 for a mixed-precision model; none for tflite-int8,
            which ``max_drop`` gates).
        limit: check at most this many examples (class-balanced for a classifier, the first rows of a table).
        artifacts: check these instead of everything under ``RUN/export``.
        max_number_diff: the largest difference of a number head, in standard deviations of its targets
            (default 0.01; 0.05 fp16 or a mixed-precision model, 0.1 dynamic, 0.25 int8).
    """
    from tfpilot.config import evaluation_batch
    from tfpilot.export.backends import read_bundle
    from tfpilot.export.data import named_split
    from tfpilot.export.runtime import keras_runner, run_batched
    from tfpilot.runs import Run
    from tfpilot.spec import as_table_spec, spec_from_dict

    run_dir, paths = _targets(Path(target), artifacts)
    run = Run(run_dir)
    spec = as_table_spec(spec_from_dict(run.labels["input"]), run.labels.get("class_names") or [])
    x, y = named_split(run_dir, split, limit=limit)
    batch = evaluation_batch(run.config_file)  # the memory plan's, for large images
    reference = run_batched(keras_runner(run.load_model(), spec), x, batch)
    keras = compare_heads(spec, reference, reference, y)
    first = next((h for h in keras.values() if "keras_accuracy" in h), {})
    report = VerifyReport(str(run_dir), split, len(next(iter(x.values()))), first.get("keras_accuracy"))
    mixed = "mixed" in str(run.metrics.get("precision", ""))
    for path in paths:
        fmt = read_bundle(path).format
        key = fmt if fmt in MIN_AGREEMENT else ("mixed" if mixed else "")
        need = min_agreement if min_agreement is not None or fmt in GATED_FORMATS else MIN_AGREEMENT[key]
        tol = max_number_diff if max_number_diff is not None else MAX_NUMBER_DIFF.get(fmt, MAX_NUMBER_DIFF[key])
        report.checks.append(check_artifact(path, x, y, reference, max_drop, need, tol, batch))
    return report
