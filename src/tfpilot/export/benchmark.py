"""Inference benchmark: size, single-sample latency, batch throughput and accuracy per format.

The first row is the seeds' way -- ``model.predict`` on one sample, as seed 001's
``benchmark_inference`` does -- and every other row's ``speedup`` is measured against it
in the same process, on the same samples. Latencies are p50/p99 over ``runs`` calls after
``warmup`` calls; throughput is examples per second at batch 32.

Example:
    >>> from tfpilot.export.benchmark import benchmark
    >>> report = benchmark(["runs/mnist"], runs=200)  # doctest: +SKIP
    >>> print(report.table())  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.errors import NotFoundError, UserError

PREDICT_ROW = "keras model.predict"
DIRECT_ROW = "keras direct call"


def time_calls(fn: Callable[[], Any], runs: int, warmup: int) -> np.ndarray:
    """Seconds of each of ``runs`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out


@dataclass
class BenchRow:
    """One format's measurements."""

    name: str
    format: str
    path: str
    size_bytes: int
    p50_ms: float
    p99_ms: float
    throughput: float  # examples per second at batch_size
    accuracy: float | None
    speedup: float | None = None  # model.predict p50 / this p50


@dataclass
class BenchmarkReport:
    """All rows of one :func:`benchmark` call, plus its settings."""

    rows: list[BenchRow] = field(default_factory=list)
    runs: int = 200
    warmup: int = 20
    batch_size: int = 32
    num_examples: int = 0
    split: str = "test"

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "warmup": self.warmup, "batch_size": self.batch_size,
                "num_examples": self.num_examples, "split": self.split, "rows": [asdict(r) for r in self.rows]}

    def table(self) -> Any:
        """A rich table of the rows."""
        from rich.table import Table

        table = Table(title=f"inference: single sample p50/p99 over {self.runs} calls, batch {self.batch_size} "
                            f"throughput, accuracy on {self.num_examples} {self.split} examples")
        table.add_column("format", no_wrap=True, min_width=14)
        for col in ("size", "p50 ms", "p99 ms", f"batch-{self.batch_size} /s", "accuracy", "vs model.predict"):
            table.add_column(col, justify="right")
        for r in self.rows:
            table.add_row(
                r.name, _size(r.size_bytes), f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.throughput:,.0f}",
                "-" if r.accuracy is None else f"{r.accuracy:.4f}",
                "-" if r.speedup is None else f"{r.speedup:,.1f}x",
            )
        return table


def _size(n: int) -> str:
    if n <= 0:
        return "-"
    return f"{n / 1024:,.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.2f} MB"


def measure(
    name: str, fmt: str, path: str, size: int, single: Callable[[np.ndarray], Any], batch: Callable[[np.ndarray], Any],
    samples: np.ndarray, runs: int, warmup: int, batch_size: int, accuracy: float | None,
) -> BenchRow:
    """Time ``single`` on one-example batches and ``batch`` on ``batch_size`` batches."""
    n = len(samples)
    counter = iter(range(10**12))

    def one() -> Any:
        i = next(counter) % n
        return single(samples[i : i + 1])

    lat = time_calls(one, runs, warmup)
    reps = max(5, runs // 10)
    batches = [samples[(i * batch_size) % n :][:batch_size] for i in range(reps)]
    batches = [b if len(b) == batch_size else samples[:batch_size] for b in batches]
    it = iter(range(10**12))
    bt = time_calls(lambda: batch(batches[next(it) % reps]), reps, 2)
    return BenchRow(name, fmt, path, size, float(np.percentile(lat, 50) * 1e3), float(np.percentile(lat, 99) * 1e3),
                    float(len(batches[0]) / np.median(bt)), accuracy)


def _targets(targets: Sequence[str | Path]) -> tuple[Path | None, list[Path]]:
    """The run to take the Keras baseline and data from, and the artifacts to time."""
    from tfpilot.export.backends import read_bundle
    from tfpilot.export.verify import find_artifacts

    run: Path | None = None
    artifacts: list[Path] = []
    for t in map(Path, targets):
        if (t / "labels.json").is_file():
            run = run or t
            artifacts += find_artifacts(t)
        else:
            artifacts.append(t)
            source = read_bundle(t).source_run
            if run is None and source and (Path(source) / "labels.json").is_file():
                run = Path(source)
    return run, artifacts


def benchmark(
    targets: Sequence[str | Path],
    runs: int = 200,
    warmup: int = 20,
    batch_size: int = 32,
    split: str = "test",
    limit: int | None = 2000,
    include_keras: bool = True,
) -> BenchmarkReport:
    """Benchmark the Keras model and artifacts of ``targets`` (run directories or artifacts).

    Args:
        targets: run directories (their model and everything under ``RUN/export``) and/or artifacts.
        runs: timed single-sample calls per format (after ``warmup``).
        warmup: untimed calls first.
        batch_size: batch of the throughput measurement.
        split: the split accuracy is measured on (from the run the targets come from).
        limit: accuracy on at most this many examples (class-balanced; None = all).
        include_keras: add the ``model.predict`` and direct-call rows (needs the run).
    """
    from tfpilot.export.backends import resolve
    from tfpilot.export.data import load_split
    from tfpilot.export.formats import artifact_size
    from tfpilot.export.runtime import KerasModel
    from tfpilot.export.verify import predict_all
    from tfpilot.runs import Run

    if runs < 1 or warmup < 0:
        raise UserError(f"runs must be >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    run_dir, artifacts = _targets(targets)
    if run_dir is None:
        raise NotFoundError(
            "benchmark needs the run the artifacts were exported from (for the Keras baseline and the "
            "test data); give the run directory, or artifacts whose bundle names an existing run"
        )
    x, y = load_split(run_dir, split, limit=limit)
    report = BenchmarkReport(runs=runs, warmup=warmup, batch_size=batch_size, num_examples=int(len(y)), split=split)

    def accuracy(probs: np.ndarray) -> float:
        return float(np.mean(probs.argmax(1) == y))

    if include_keras:
        run = Run(run_dir)
        model = run.load_model()
        keras_model = KerasModel(model)
        size = run.model_path.stat().st_size
        acc = accuracy(predict_all(keras_model, x))

        def predict(batch: np.ndarray) -> Any:
            if keras_model._string_input:
                import tensorflow as tf

                from tfpilot.export.runtime import text_batch

                batch = tf.constant(text_batch(batch, model.inputs[0].shape).astype(str))
            return model.predict(batch, verbose=0)

        report.rows.append(measure(PREDICT_ROW, "keras", str(run.model_path), size, predict, predict, x, runs,
                                   warmup, batch_size, acc))
        report.rows.append(measure(DIRECT_ROW, "keras", str(run.model_path), size, keras_model, keras_model, x,
                                   runs, warmup, batch_size, acc))
    for path in artifacts:
        found = resolve(path)
        runner = found.open()
        acc = accuracy(predict_all(runner, x))
        report.rows.append(measure(found.format, found.format, str(found.path), artifact_size(found.path), runner,
                                   runner, x, runs, warmup, batch_size, acc))
    if report.rows and report.rows[0].name == PREDICT_ROW:
        base = report.rows[0].p50_ms
        for r in report.rows:
            r.speedup = base / r.p50_ms if r.p50_ms > 0 else None
    return report
