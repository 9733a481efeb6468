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


@pytest.fixture
def captured(monkeypatch) -> list[ServeSettings]:
    """Runs `tfpilot serve` up to starting the server, and keeps the settings it would serve."""
    import tfpilot.serving.server as server

    seen: list[ServeSettings] = []
    monkeypatch.setattr(server, "serve", lambda settings, log_level="info": seen.append(settings))
    return seen


def serve_tf(*args: str):
    from tfpilot.cli.serve import tf_serving_argv

    result = runner.invoke(app, tf_serving_argv(["serve", *args]), env={"COLUMNS": "200"})
    result.text = " ".join(result.output.split())
    return result


def test_tf_serving_flags_and_the_port_rule(tmp_path: Path, captured) -> None:
    base = tmp_path / "half_plus_two"
    (base / "1").mkdir(parents=True)
    r = serve_tf("--model_name", "hpt", "--model_base_path", str(base), "--port=9000", "--rest_api_port=9001")
    assert r.exit_code == 0, r.text
    s = captured[-1]
    assert (s.grpc_port, s.port, s.rest) == (9000, 9001, True)  # TF Serving's meaning of --port
    assert [(c.name, c.base_path, c.single) for c in s.model_configs] == [("hpt", base.resolve(), False)]
    assert serve_tf("--model_base_path", str(base)).exit_code == 0
    assert (captured[-1].grpc_port, captured[-1].port, captured[-1].model_configs[0].name) == (8500, 8501, "default")
    assert serve_tf("--model_base_path", str(base), "--rest_api_port", "0").exit_code == 0
    assert (captured[-1].rest, captured[-1].grpc_port) == (False, 8500)
    assert serve_tf(str(tmp_path), "--port", "9005").exit_code == 0  # no TF Serving flag: tfpilot's REST port
    assert (captured[-1].port, captured[-1].grpc_port) == (9005, None)
    assert serve_tf(str(tmp_path), "--grpc-port", "9006").exit_code == 0
    assert (captured[-1].port, captured[-1].grpc_port) == (8501, 9006)
    r = serve_tf("--model_base_path", str(base), "--port", "1", "--grpc-port", "2")
    assert r.exit_code == 2 and "--port is the gRPC port" in r.text
    r = serve_tf("--model_name", "x")
    assert r.exit_code == 2 and "--model_name needs --model_base_path" in r.text
    assert serve_tf("--model_base_path", str(base), "--grpc_channel_arguments",
                    "grpc.optimization_target=latency,grpc.max_concurrent_streams=64").exit_code == 0
    assert captured[-1].grpc_channel_arguments == [("grpc.optimization_target", "latency"),
                                                   ("grpc.max_concurrent_streams", 64)]
    r = serve_tf("--model_base_path", str(base), "--grpc_channel_arguments", "nonsense")
    assert r.exit_code == 2 and "is not name=value" in r.text
    assert captured[-1].grpc_max_threads == 64  # the default
    assert serve_tf("--model_base_path", str(base), "--grpc_max_threads", "8").exit_code == 0
    assert captured[-1].grpc_max_threads == 8
    assert serve_tf("--model_base_path", str(base), "--grpc_max_threads", "0").exit_code == 2


def test_batching_flags_and_files(tmp_path: Path, captured) -> None:
    params = tmp_path / "batching.config"
    params.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 500 }\n"
                      "max_enqueued_batches { value: 4 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 16\n")
    r = serve_tf(str(tmp_path), "--enable_batching", "--batching_parameters_file", str(params))
    assert r.exit_code == 0, r.text
    s = captured[-1]
    assert (s.max_batch, s.batch_timeout_ms, s.max_queue, s.allowed_batch_sizes) == (16, 0.5, 64, (8, 16))
    assert s.enable_batching is True
    assert serve_tf(str(tmp_path), "--enable_batching=false").exit_code == 0
    assert (captured[-1].enable_batching, captured[-1].batch_options().enabled) == (False, False)
    assert serve_tf(str(tmp_path), "--enable_batching=true", "--enable_model_warmup=false").exit_code == 0
    assert (captured[-1].max_batch, captured[-1].enable_model_warmup) == (32, False)
    r = serve_tf(str(tmp_path), "--batching_parameters_file", str(params))  # TF Serving ignores it then
    assert r.exit_code == 0 and "ignored without --enable_batching" in r.text
    assert (captured[-1].enable_batching, captured[-1].max_batch) == (None, 32)
    params.write_text("max_batch_size { value: 0 }\n")
    r = serve_tf(str(tmp_path), "--enable_batching", "--batching_parameters_file", str(params))
    assert r.exit_code == 2 and "max_batch_size must be at least 1" in r.text


def test_model_config_file_flag(tmp_path: Path, captured) -> None:
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "a" base_path: "/models/a" } }')
    r = serve_tf("--model_config_file", str(config), "--model_config_file_poll_wait_seconds", "5")
    assert r.exit_code == 0, r.text
    s = captured[-1]
    assert (s.model_config_file, s.model_config_file_poll_wait_seconds, s.grpc_port) == (config, 5.0, 8500)
    config.write_text('model_config_list { config { name: "a" } }')
    r = serve_tf("--model_config_file", str(config))
    assert r.exit_code == 2 and "needs a base_path" in r.text
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/prom" }')
    config.write_text('model_config_list { config { name: "a" base_path: "/models/a" } }')
    assert serve_tf("--model_config_file", str(config), "--monitoring_config_file", str(monitoring)).exit_code == 0
    assert captured[-1].prometheus_path == "/prom"
