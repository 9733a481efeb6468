"""tfpilot benchmark: the seeds' model.predict row first, then every format, same samples."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.export.benchmark import PREDICT_ROW, benchmark, measure, time_calls

bench_module = importlib.import_module("tfpilot.export.benchmark")


def test_time_calls_counts_only_timed_calls(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench_module.time, "perf_counter", clock)
    calls = []

    def call():
        calls.append(1)
        clock.now += 0.001 * len(calls)  # the k-th call takes k ms

    times = time_calls(call, runs=7, warmup=3)
    assert len(calls) == 10
    np.testing.assert_allclose(times, [0.001 * k for k in range(4, 11)])  # calls 4..10: the timed ones


class FakeClock:
    """A perf_counter that moves only when the code under test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_measure_computes_percentiles_and_throughput_from_the_timings(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench_module.time, "perf_counter", clock)
    samples = np.zeros((40, 2), np.float32)
    seen = []

    def single(batch):
        seen.append(len(batch))
        clock.now += 0.002 if len(seen) % 10 else 0.012  # every 10th call is slow

    def batch(b):
        assert len(b) == 8
        clock.now += 0.004  # 8 examples in 4 ms: 2000 examples/s

    row = measure("x", "keras", "p", 123, single, batch, samples, runs=100, warmup=5, batch_size=8, accuracy=0.5)
    assert seen == [1] * 105  # one-example calls: 5 warm-up + 100 timed
    slow = np.array([0.002 if k % 10 else 0.012 for k in range(6, 106)])  # the timed calls are calls 6..105
    assert row.p50_ms == pytest.approx(np.percentile(slow, 50) * 1e3) == pytest.approx(2.0)
    assert row.p99_ms == pytest.approx(np.percentile(slow, 99) * 1e3) and row.p99_ms > 11.0
    assert row.throughput == pytest.approx(2000.0)
    assert (row.size_bytes, row.accuracy, row.name) == (123, 0.5, "x")


def test_benchmark_rows_start_with_model_predict(image_run, image_export):
    import tfpilot
    from tfpilot.export.data import load_split
    from tfpilot.export.formats import artifact_size

    report = benchmark([image_run], runs=5, warmup=1, limit=30)
    names = [r.name for r in report.rows]
    assert names[:2] == [PREDICT_ROW, "keras direct call"]
    assert set(names[2:]) == {"saved_model", "tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx"}
    x, y = load_split(image_run, "test", limit=30)
    assert report.num_examples == len(y) == 30 and report.runs == 5
    base = report.rows[0].p50_ms
    for r in report.rows:
        assert r.p50_ms > 0 and r.p99_ms >= r.p50_ms and r.throughput > 0
        assert r.speedup == pytest.approx(base / r.p50_ms)  # every row against the model.predict row
        # size and accuracy: this artifact's, recomputed here on the same examples
        size = (image_run / "model.keras").stat().st_size if r.format == "keras" else artifact_size(Path(r.path))
        assert r.size_bytes == size > 0
        predictor = tfpilot.load(image_run) if r.format == "keras" else tfpilot.load(r.path)
        assert r.accuracy == pytest.approx(float(np.mean(predictor.predict_proba(x).argmax(1) == y))), r.name
    by = {r.name: r for r in report.rows}
    assert by["tflite"].speedup > 1.0  # the interpreter beats model.predict's per-call overhead


def test_benchmark_cli_prints_json(image_run, image_export, tmp_path):
    artifact = next(a.path for a in image_export.artifacts if a.format == "tflite-int8")
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["benchmark", str(artifact), "--runs", "3", "--warmup", "1",
                                      "--limit", "12", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [r["name"] for r in data["rows"]] == [PREDICT_ROW, "keras direct call", "tflite-int8"]
    assert data["runs"] == 3
