"""TF Serving's start-up and model config cases (``tensorflow_model_server_test.py``: testGoodModelConfig,
testBadModelConfig, testModelConfigReload, the bad model, HandleReloadConfigRequest), against
``tfpilot serve`` processes started with ``tensorflow_model_server``'s flags.

Start-up is ``ServerCore::Create``'s: the ports open once the initial models are AVAILABLE, a base
path with no version yet is waited for (with TF Serving's log line), and a model that fails to load
stops the server with a non-zero exit.
"""

from __future__ import annotations

import shutil
import time

import grpc
import httpx
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from tests.conformance.conftest import TFServer, model_config_text
from tests.serving.savedmodels import corrupt_version

NO_VERSION = "No versions of servable late found under base path"


def predict(server: TFServer, model: str, x: float = 2.0) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}:predict", json={"instances": [x]}, timeout=30)


def wait_for(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def started(tf_models, tmp_path_factory):
    """A server whose config names ``default`` and ``late``, a base path with no version yet: it
    waits, ports closed, until version 7 of ``late`` appears. Yields the server and what was seen."""
    folder = tmp_path_factory.mktemp("config")
    late = folder / "late"
    late.mkdir()
    config = folder / "models.config"
    config.write_text(model_config_text({"default": tf_models["half_plus_two"], "late": late}))
    server = TFServer(["--model_config_file", str(config), "--model_config_file_poll_wait_seconds", "1",
                       "--file_system_poll_wait_seconds", "1"], folder)
    corrupt_version(folder / "bad" / "123")  # meanwhile, a server whose initial load fails
    failing = TFServer(["--model_name", "default", "--model_base_path", str(folder / "bad")], folder)
    try:
        server.wait_log(NO_VERSION)
        seen = {"listening_before_version": server.listening(), "config": config, "failing": failing}
        shutil.copytree(tf_models["half_plus_three"] / "00000123", late / "7")
        yield server.wait_listening(), seen
    finally:
        failing.stop()
        server.stop()


def test_waits_for_a_base_path_with_no_version(started):
    server, seen = started
    assert not seen["listening_before_version"]
    assert predict(server, "late").json() == {"predictions": [4.0]}
    assert predict(server, "default").json() == {"predictions": [3.0]}
    status = httpx.get(f"{server.url}/v1/models/late").json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [("7", "AVAILABLE")]


def test_model_config_file_reload(started, tf_models):
    """testModelConfigReload: the polled config file now names half_plus_three only."""
    server, seen = started
    seen["config"].write_text(model_config_text({"half_plus_three": tf_models["half_plus_three"]}))
    wait_for(lambda: predict(server, "half_plus_three").status_code == 200)
    assert predict(server, "half_plus_three").json() == {"predictions": [4.0]}
    wait_for(lambda: predict(server, "late").status_code == 404)


def test_handle_reload_config_request(started, tf_models, tmp_path):
    """HandleReloadConfigRequest: serve exactly the config sent; a model that fails is reported with
    TF Serving's code (UNKNOWN, "did not become available") and its reason."""
    server, _ = started
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)

        def reload(text: str):
            request = model_management_pb2.ReloadConfigRequest()
            text_format.Parse(text, request.config)
            return stub.HandleReloadConfigRequest(request, 120)

        answer = reload(model_config_text({"half_plus_two": tf_models["half_plus_two"]}))
        assert answer.status.error_code == 0
        assert predict(server, "half_plus_two").json() == {"predictions": [3.0]}
        assert predict(server, "half_plus_three").status_code == 404
        corrupt_version(tmp_path / "broken" / "1")
        with pytest.raises(grpc.RpcError) as err:
            reload(model_config_text({"half_plus_two": tf_models["half_plus_two"], "broken": tmp_path / "broken"}))
        assert err.value.code() == grpc.StatusCode.UNKNOWN
        assert "1 model(s) did not become available: {{{name: broken version: 1} due to error: DATA_LOSS" in \
            err.value.details()
        assert predict(server, "half_plus_two").json() == {"predictions": [3.0]}
        request = model_management_pb2.ReloadConfigRequest(
            config=model_server_config_pb2.ModelServerConfig(custom_model_config={}))
        with pytest.raises(grpc.RpcError) as err:
            stub.HandleReloadConfigRequest(request, 30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Only ModelConfigList is currently supported" in err.value.details()


def test_failed_initial_load_exits(started):
    """A model whose initial load fails: reported, and the server exits non-zero, never listening."""
    failing = started[1]["failing"]
    assert failing.proc.wait(180) != 0
    assert "1 model(s) did not become available: {{{name: default version: 123} due to error: DATA_LOSS" in \
        failing.stderr()
    assert "Uvicorn running" not in failing.stderr()


def test_bad_model_config_file(tmp_path):
    """testBadModelConfig: ``tfpilot serve`` refuses the file with the parser's message, before
    anything starts (run in this process: the command stops before it would serve)."""
    from typer.testing import CliRunner

    from tfpilot.cli.main import app

    bad = tmp_path / "bad_model_config.txt"
    bad.write_text("improperly formatted file")
    result = CliRunner().invoke(app, ["serve", "--model_config_file", str(bad)], env={"COLUMNS": "300"})
    assert result.exit_code != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in " ".join(result.output.split())
