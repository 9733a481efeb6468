"""Triton's model repository extension (index, load, unload) over HTTP and gRPC, against a real
``tfpilot serve``: on ``simple_dyn`` (a copy of ``simple``; the other modules leave it alone)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conformance.triton_models import simple

X = np.arange(16, dtype=np.int32).reshape(1, 16)


@pytest.fixture(scope="module")
def http(triton_server):
    import tritonclient.http as httpclient

    c = httpclient.InferenceServerClient(f"127.0.0.1:{triton_server.port}", network_timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="module")
def grpc_client(triton_server):
    import tritonclient.grpc as grpcclient

    c = grpcclient.InferenceServerClient(f"127.0.0.1:{triton_server.grpc_port}")
    yield c
    c.close()


def infer_sum(client, version: str = "") -> tuple[str, list[int]]:
    import tritonclient.http as httpclient

    inputs = []
    for name in ("INPUT0", "INPUT1"):
        t = httpclient.InferInput(name, [1, 16], "INT32")
        t.set_data_from_numpy(X)
        inputs.append(t)
    result = client.infer("simple_dyn", inputs, model_version=version)
    return result.get_response()["model_version"], result.as_numpy("OUTPUT0").reshape(-1).tolist()


def failure(call) -> tuple[str | None, str]:
    """``(status, message)`` of the error ``call()`` raises."""
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.status(), info.value.message()


def rows(index: list[dict], name: str = "simple_dyn") -> list[tuple]:
    return [(r["name"], r.get("version"), r["state"], r["reason"])
            for r in index if r["name"] == name]


def test_index_lists_every_model_and_ready_filters(http, grpc_client) -> None:
    index = http.get_model_repository_index()
    assert [(r["name"], r["version"], r["state"]) for r in index] == [
        (m, "1", "READY") for m in ("simple", "simple_dyn", "simple_identity", "simple_string")]
    over_grpc = grpc_client.get_model_repository_index().models
    assert [(m.name, m.version, m.state) for m in over_grpc] == [
        (r["name"], r["version"], r["state"]) for r in index]


def test_unload_then_load_over_http(http) -> None:
    http.unload_model("simple_dyn")
    assert not http.is_model_ready("simple_dyn")
    index = http.get_model_repository_index()
    assert rows(index) == [("simple_dyn", None, "UNAVAILABLE", "unloaded")]
    assert rows(index, "simple")[0][2] == "READY"  # the others keep serving
    error = "Request for unknown model: 'simple_dyn' has no available versions"
    assert failure(lambda: infer_sum(http)) == ("404", error)
    http.unload_model("simple_dyn")  # unloading again is no error, as in Triton
    http.load_model("simple_dyn")
    assert http.is_model_ready("simple_dyn")
    assert infer_sum(http) == ("1", (2 * X).reshape(-1).tolist())


def test_load_picks_up_a_new_version(http, triton_repository) -> None:
    simple(triton_repository / "simple_dyn" / "2", offset=100)
    assert infer_sum(http)[0] == "1"  # base paths are polled only on demand in this server
    http.load_model("simple_dyn")
    assert infer_sum(http) == ("2", (2 * X + 100).reshape(-1).tolist())
    assert http.is_model_ready("simple_dyn", "2") and not http.is_model_ready("simple_dyn", "1")
    assert rows(http.get_model_repository_index()) == [
        ("simple_dyn", "1", "UNAVAILABLE", "unloaded"), ("simple_dyn", "2", "READY", "")]
    stats = http.get_inference_statistics("simple_dyn")["model_stats"]
    assert [(s["version"], s["inference_stats"]["success"]["count"]) for s in stats] == [("2", 1)]


def test_unload_and_load_over_grpc(grpc_client, http) -> None:
    grpc_client.unload_model("simple_dyn")
    assert not grpc_client.is_model_ready("simple_dyn")
    assert [(m.name, m.state, m.reason) for m in grpc_client.get_model_repository_index().models
            if m.name == "simple_dyn"] == [("simple_dyn", "UNAVAILABLE", "unloaded")]
    grpc_client.load_model("simple_dyn")
    assert grpc_client.is_model_ready("simple_dyn") and infer_sum(http)[0] == "2"


def test_repository_errors(http, grpc_client) -> None:
    status, message = failure(lambda: http.load_model("nope"))
    assert status == "400"
    assert message.startswith("failed to load 'nope', failed to poll from model repository")
    status, message = failure(lambda: grpc_client.load_model("nope"))
    assert status == "StatusCode.INVALID_ARGUMENT" and message.startswith("failed to load 'nope'")
    error = "Request for unknown model: 'nope' is not found"
    assert failure(lambda: http.unload_model("nope")) == ("400", error)
    status, message = failure(lambda: http.load_model("simple_dyn", config='{"max_batch_size": 4}'))
    assert status == "501" and "not supported" in message
