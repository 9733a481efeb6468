"""tfpilot benchmark: the seeds' model.predict row first, then every format, same samples."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.export.benchmark import PREDICT_ROW, benchmark, time_calls


def test_time_calls_counts_only_timed_calls():
    calls = []
    times = time_calls(lambda: calls.append(1), runs=7, warmup=3)
    assert len(calls) == 10 and times.shape == (7,) and np.all(times >= 0)


def test_benchmark_rows_start_with_model_predict(image_run, image_export):
    report = benchmark([image_run], runs=5, warmup=1, limit=30)
    names = [r.name for r in report.rows]
    assert names[:2] == [PREDICT_ROW, "keras direct call"]
    assert set(names[2:]) == {"saved_model", "tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx"}
    assert report.rows[0].speedup == 1.0
    for r in report.rows:
        assert r.p50_ms > 0 and r.p99_ms >= r.p50_ms and r.throughput > 0 and r.size_bytes > 0
        assert 0.0 <= r.accuracy <= 1.0
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
