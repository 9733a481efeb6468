"""``tfpilot serve`` argument checking and the settings it builds (no server started here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.serving.server import is_loopback, log_config
from tfpilot.serving.settings import ServeSettings, default_name, model_sources

runner = CliRunner()


def serve(*args: str):
    result = runner.invoke(app, ["serve", *args], env={"COLUMNS": "200"})
    result.text = " ".join(result.output.split())  # rich wraps long messages
    return result


def test_missing_path_is_a_clear_user_error(tmp_path: Path) -> None:
    r = serve(str(tmp_path / "nope"))
    assert r.exit_code == 2
    assert "does not exist" in r.text and "run directory" in r.text


def test_names_must_match_paths_and_be_distinct(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    r = serve(str(a), str(b), "--name", "x")
    assert r.exit_code == 2 and "one --name per model" in r.text
    r = serve(str(a), str(b), "--name", "x", "--name", "x")
    assert r.exit_code == 2 and "two models are named 'x'" in r.text
    r = serve(str(a), "--name", "bad/name")
    assert r.exit_code == 2 and "cannot be used in a URL" in r.text


def test_bad_options(tmp_path: Path) -> None:
    assert serve(str(tmp_path), "--backend", "pytorch").exit_code == 2
    assert "unknown backend 'pytorch'" in serve(str(tmp_path), "--backend", "pytorch").text
    r = serve(str(tmp_path), str(tmp_path), str(tmp_path), "--backend", "onnx", "--backend", "tflite")
    assert r.exit_code == 2 and "2 --backend given for 3 models" in r.text
    assert serve(str(tmp_path), "--max-batch", "0").exit_code == 2
    assert serve(str(tmp_path), "--port", "70000").exit_code == 2
    assert "--log-level" in serve(str(tmp_path), "--log-level", "loud").text


def test_help_lists_the_issue_options() -> None:
    r = serve("--help")
    assert r.exit_code == 0
    for option in ("--host", "--port", "--backend", "--max-batch", "--batch-timeout-ms", "--api-key",
                   "--workers", "--name"):
        assert option in r.text


def test_backends_once_for_all_or_one_per_model(tmp_path: Path) -> None:
    assert [s.backend for s in model_sources([tmp_path] * 2, ["a", "b"], "onnx")] == ["onnx", "onnx"]
    assert [s.backend for s in model_sources([tmp_path] * 2, ["a", "b"], ["onnx", "tflite"])] == ["onnx", "tflite"]
    assert [s.backend for s in model_sources([tmp_path], None, None)] == [None]


def test_default_names() -> None:
    assert default_name("runs/mnist_cnn-mnist-20260101-120000") == "mnist_cnn-mnist-20260101-120000"
    assert default_name("exports/mnist/model.tflite") == "mnist"
    assert default_name("exports/mnist/saved_model") == "mnist"
    assert default_name("exports/digits.onnx") == "digits"
    assert default_name("weird name!/") == "weird_name_"


def test_settings_defaults_and_env_round_trip(tmp_path: Path) -> None:
    settings = ServeSettings(models=model_sources([tmp_path]), api_key="s3cret-key")
    assert (settings.host, settings.port, settings.max_batch, settings.batch_timeout_ms) == ("127.0.0.1", 8501, 32, 5.0)
    assert "s3cret" not in repr(settings)  # the key never shows in logs
    again = ServeSettings.from_env({"TFPILOT_SERVE_SETTINGS": settings.to_env()})
    assert again == settings and again.api_key == "s3cret-key"
    with pytest.raises(RuntimeError, match="tfpilot serve"):
        ServeSettings.from_env({})
    with pytest.raises(ValidationError):
        ServeSettings(models=[])


def test_loopback_and_logging_config() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    config = log_config("warning")
    assert config["loggers"]["tfpilot.serving.access"]["handlers"] == ["access"]
    assert config["loggers"]["uvicorn"]["level"] == "WARNING"
