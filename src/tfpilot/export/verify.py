"""Checking every artifact against the Keras model it came from, on real data.

For each artifact: top-1 agreement with the Keras model, accuracy, accuracy change (in
points) and the largest absolute probability difference. ``tflite-int8`` is gated: an
accuracy drop above ``max_drop`` points fails, with a message that suggests fp16 or
dynamic-range instead.

Example:
    >>> from tfpilot.export import verify
    >>> report = verify("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> {c.format: round(c.agreement, 4) for c in report.checks}  # doctest: +SKIP
    {'saved_model': 1.0, 'tflite': 1.0, 'tflite-int8': 0.9987, 'onnx': 1.0}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.export.formats import FORMAT_ORDER, GATED_FORMATS, artifact_size


def predict_all(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities of a backend callable (or Keras model wrapper) over ``x``, batched."""
    from tfpilot.metrics import to_probabilities

    parts = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return to_probabilities(np.concatenate(parts)) if parts else np.zeros((0, 0))


@dataclass
class FormatCheck:
    """One artifact compared with the Keras model on the same examples."""

    format: str
    path: str
    num_examples: int
    agreement: float
    accuracy: float
    keras_accuracy: float
    accuracy_change: float  # points (percent), negative = worse
    max_prob_diff: float
    size_bytes: int = 0
    gated: bool = False
    passed: bool = True
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    fmt: str, path: str, probs: np.ndarray, reference: np.ndarray, y: np.ndarray, max_drop: float = 1.0,
    min_agreement: float | None = None, size_bytes: int = 0,
) -> FormatCheck:
    """A :class:`FormatCheck` from an artifact's and the Keras model's probabilities.

    Example:
        >>> import numpy as np
        >>> ref = np.array([[0.9, 0.1], [0.2, 0.8]]); y = np.array([0, 1])
        >>> c = compare("tflite-int8", "m.tflite", np.array([[0.6, 0.4], [0.7, 0.3]]), ref, y)
        >>> c.agreement, c.accuracy_change, c.passed
        (0.5, -50.0, False)
    """
    pred, ref_pred = probs.argmax(1), reference.argmax(1)
    acc = float(np.mean(pred == y)) if len(y) else 0.0
    ref_acc = float(np.mean(ref_pred == y)) if len(y) else 0.0
    change = (acc - ref_acc) * 100.0
    check = FormatCheck(
        format=fmt, path=path, num_examples=int(len(y)),
        agreement=float(np.mean(pred == ref_pred)) if len(y) else 0.0,
        accuracy=acc, keras_accuracy=ref_acc, accuracy_change=round(change, 4),
        max_prob_diff=float(np.max(np.abs(probs - reference))) if len(y) else 0.0,
        size_bytes=size_bytes, gated=fmt in GATED_FORMATS,
    )
    problems = []
    if check.gated and -change > max_drop:
        problems.append(
            f"{fmt} loses {-change:.2f} accuracy points against the Keras model ({ref_acc:.4f} -> {acc:.4f}), "
            f"more than --max-drop {max_drop:g}: int8 quantization does not suit this model. Use tflite-fp16 "
            "(half the size, no measurable loss) or tflite-dynamic (int8 weights, float activations) instead."
        )
    if min_agreement is not None and check.agreement < min_agreement:
        problems.append(f"{fmt} agrees with the Keras model on {check.agreement:.2%} of examples, below "
                        f"--min-agreement {min_agreement:.2%}.")
    check.passed = not problems
    check.message = " ".join(problems)
    return check


def check_artifact(
    path: str | Path, reference_model: Any, x: np.ndarray, y: np.ndarray, max_drop: float = 1.0,
    min_agreement: float | None = None, reference_probs: np.ndarray | None = None,
) -> FormatCheck:
    """Run the artifact at ``path`` and the Keras model over ``x``; compare."""
    from tfpilot.export.backends import resolve
    from tfpilot.export.runtime import KerasModel

    found = resolve(path)
    if reference_probs is None:
        reference_probs = predict_all(KerasModel(reference_model), x)
    return compare(found.format, str(found.path), predict_all(found.open(), x), reference_probs, y, max_drop,
                   min_agreement, artifact_size(found.path))


@dataclass
class VerifyReport:
    """Every check of one :func:`verify` call."""

    run: str
    split: str
    num_examples: int
    keras_accuracy: float
    checks: list[FormatCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "split": self.split, "num_examples": self.num_examples,
                "keras_accuracy": self.keras_accuracy, "passed": self.passed,
                "checks": [c.to_dict() for c in self.checks]}


def find_artifacts(run_dir: Path) -> list[Path]:
    """The artifact folders under ``RUN/export``, in format order (keras excluded)."""
    root = Path(run_dir) / "export"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name != "keras" and (p / "bundle.json").is_file()]
    order = {f: i for i, f in enumerate(FORMAT_ORDER)}
    return sorted(found, key=lambda p: (order.get(p.name, len(order)), p.name))


def verify(
    target: str | Path,
    split: str = "test",
    max_drop: float = 1.0,
    min_agreement: float | None = None,
    limit: int | None = None,
    artifacts: list[str | Path] | None = None,
) -> VerifyReport:
    """Verify a run's exported artifacts (or one artifact) on ``split`` of the run's data.

    Args:
        target: a run directory (checks everything under ``RUN/export``) or an artifact
            (checked against the run it was exported from, named in its bundle).
        split: "test", "val" or "train".
        max_drop: the largest accuracy drop, in points, a gated format (tflite-int8) may have.
        min_agreement: optionally, the smallest top-1 agreement any artifact may have.
        limit: check at most this many examples (class-balanced).
        artifacts: check these instead of everything under ``RUN/export``.
    """
    from tfpilot.data.table_io import is_table_run
    from tfpilot.export.backends import read_bundle
    from tfpilot.export.data import load_split
    from tfpilot.export.runtime import KerasModel
    from tfpilot.runs import Run

    target = Path(target)
    if is_table_run(target) or (not (target / "labels.json").is_file() and read_bundle(target).input_spec.kind == "table"):
        from tfpilot.export.table_verify import verify_table  # every head of a table model

        run_dir = target if is_table_run(target) else Path(read_bundle(target).source_run or "")
        return verify_table(run_dir, split, min_agreement=min_agreement, limit=limit,
                            artifacts=artifacts if is_table_run(target) else [target])
    if (target / "labels.json").is_file():
        run_dir = target
        paths = [Path(a) for a in artifacts] if artifacts else find_artifacts(target)
        if not paths:
            raise FileNotFoundError(f"{target} has no exports: run `tfpilot export {target} --format all` first")
    else:
        source_run = read_bundle(target).source_run
        if not source_run or not (Path(source_run) / "labels.json").is_file():
            raise FileNotFoundError(
                f"{target} was not exported from a run directory that still exists ({source_run}): verify "
                "needs the run's Keras model and data"
            )
        run_dir, paths = Path(source_run), [target]
    run = Run(run_dir)
    x, y = load_split(run_dir, split, limit=limit)
    model = run.load_model()
    reference = predict_all(KerasModel(model), x)
    report = VerifyReport(str(run_dir), split, int(len(y)), float(np.mean(reference.argmax(1) == y)))
    for path in paths:
        report.checks.append(check_artifact(path, model, x, y, max_drop, min_agreement, reference))
    return report
