"""Verifying a table model's artifacts against its Keras model, head by head, on the run's rows.

Per artifact and head: category / binary heads -- top-1 agreement with Keras and the
largest probability difference; number heads -- the largest and mean absolute difference,
also as a fraction of the training targets' standard deviation. An artifact passes when
every class head agrees on at least ``min_agreement`` of the rows and every number head's
largest difference is within ``max_number_diff`` standard deviations.

The reference is the Keras model as trained: a model trained under mixed precision
computes in 16 bits there and in float32 in the artifacts, so a near-tie row may flip --
train with ``precision: float32`` when the artifacts must match it exactly.

Example:
    >>> from tfpilot.export.table_verify import verify_table
    >>> report = verify_table("runs/multitask-table")  # doctest: +SKIP
    >>> report.passed, report.checks[0].heads["price"]["max_abs_diff"]  # doctest: +SKIP
    (True, 4.1e-06)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.export.formats import FORMAT_ORDER, artifact_size

#: Defaults of the pass criteria, per format (16-bit weights move outputs more), and for a
#: model trained in mixed precision (16-bit in Keras, float32 in its artifacts).
MIN_AGREEMENT = {"tflite-fp16": 0.97, "tflite-dynamic": 0.95, "mixed": 0.98}
MAX_NUMBER_DIFF = {"tflite-fp16": 0.05, "tflite-dynamic": 0.1, "mixed": 0.05}


@dataclass
class TableCheck:
    """One artifact's comparison with Keras: per-head figures, and whether it passed."""

    format: str
    path: str
    size_bytes: int
    heads: dict[str, dict[str, Any]]
    passed: bool
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "path": self.path, "size_bytes": self.size_bytes, "heads": self.heads,
                "passed": self.passed, "message": self.message}


@dataclass
class TableVerifyReport:
    """Every check of one :func:`verify_table` call."""

    run: str
    split: str
    num_examples: int
    checks: list[TableCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "split": self.split, "num_examples": self.num_examples, "passed": self.passed,
                "checks": [c.to_dict() for c in self.checks]}


def compare_heads(spec: Any, reference: dict[str, np.ndarray], got: dict[str, np.ndarray],
                  scales: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per head: agreement and max probability difference, or max/mean absolute difference."""
    out: dict[str, dict[str, Any]] = {}
    for o in spec.outputs:
        a, b = np.asarray(reference[o.key], np.float64), np.asarray(got[o.key], np.float64)
        if o.kind == "number":
            diff = np.abs(a - b)
            scale = scales.get(o.key, 1.0) or 1.0
            out[o.name] = {"kind": "number", "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                           "max_diff_in_std": float(diff.max() / scale)}
        else:
            top_a = a.argmax(1) if a.ndim == 2 else (a > 0.5).astype(int)
            top_b = b.argmax(1) if b.ndim == 2 else (b > 0.5).astype(int)
            out[o.name] = {"kind": o.kind, "agreement": float(np.mean(top_a == top_b)),
                           "max_prob_diff": float(np.abs(a - b).max())}
    return out


def _artifacts(run_dir: Path) -> list[Path]:
    root = run_dir / "export"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name != "keras" and (p / "bundle.json").is_file()]
    order = {f: i for i, f in enumerate(FORMAT_ORDER)}
    return sorted(found, key=lambda p: (order.get(p.name, len(order)), p.name))


def verify_table(run_dir: str | Path, split: str = "test", min_agreement: float | None = None,
                 max_number_diff: float | None = None, limit: int | None = None,
                 artifacts: list[str | Path] | None = None) -> TableVerifyReport:
    """Check every artifact under ``RUN/export`` (or ``artifacts``) against the Keras model.

    Args:
        run_dir: the table run.
        split: the rows compared on: "test", "val" or "train".
        min_agreement: the smallest top-1 agreement a class head may have (default 0.99;
            0.97 for tflite-fp16, 0.95 for tflite-dynamic, 0.98 for a mixed-precision model).
        max_number_diff: the largest difference of a number head, in training-target
            standard deviations (default 0.01; 0.05 fp16 or a mixed-precision model, 0.1 dynamic).
        limit: compare at most this many rows (the first ones of the split).
        artifacts: these artifact folders instead of everything under ``RUN/export``.
    """
    from tfpilot.config import load_config
    from tfpilot.data.table import prepare_table
    from tfpilot.data.table_pipeline import predict_heads
    from tfpilot.export.backends import resolve
    from tfpilot.export.runtime import table_runner
    from tfpilot.runs import Run
    from tfpilot.spec import TableSpec

    run = Run(run_dir)
    paths = [Path(a) for a in artifacts] if artifacts else _artifacts(run.path)
    if not paths:
        raise FileNotFoundError(f"{run.path} has no exports: run `tfpilot export {run.path}` first")
    spec = TableSpec.from_dict(run.labels["input"])
    data = prepare_table(load_config(run.config_file))
    if split not in data.splits:
        raise ValueError(f"the table has no {split!r} rows; it has {sorted(data.splits)}")
    part = data.splits[split]
    if limit:
        part = part.take(np.arange(min(limit, len(part))))
    model = run.load_model()
    reference = predict_heads(model, part, spec)
    scales = {o.key: float(np.std(data.splits["train"].targets[o.key])) for o in spec.outputs if o.kind == "number"}
    batch = {c.key: part.inputs[c.key] for c in spec.inputs}
    report = TableVerifyReport(str(run.path), split, len(part))
    mixed = "mixed" in str(run.metrics.get("precision", ""))
    for path in paths:
        found = resolve(path)
        runner = table_runner(found.backend, found.path, found.bundle)
        got: dict[str, list[np.ndarray]] = {}
        for i in range(0, len(part), 256):
            for k, v in runner({k: v[i : i + 256] for k, v in batch.items()}).items():
                got.setdefault(k, []).append(v)
        heads = compare_heads(spec, reference, {k: np.concatenate(v) for k, v in got.items()}, scales)
        key = found.format if found.format in MIN_AGREEMENT else ("mixed" if mixed else "")
        need = min_agreement if min_agreement is not None else MIN_AGREEMENT.get(key, 0.99)
        tol = max_number_diff if max_number_diff is not None else MAX_NUMBER_DIFF.get(key, 0.01)
        bad = [f"{h}: agreement {m['agreement']:.2%} < {need:.0%}" for h, m in heads.items()
               if m["kind"] != "number" and m["agreement"] < need]
        bad += [f"{h}: max difference {m['max_abs_diff']:.4g} = {m['max_diff_in_std']:.3f} std > {tol}"
                for h, m in heads.items() if m["kind"] == "number" and m["max_diff_in_std"] > tol]
        message = f"{found.format} differs from the Keras model: " + "; ".join(bad) if bad else ""
        report.checks.append(TableCheck(found.format, str(found.path), artifact_size(found.path), heads,
                                        not bad, message))
    return report
