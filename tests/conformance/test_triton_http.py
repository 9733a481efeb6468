"""The Open Inference Protocol over HTTP as Triton answers it, with ``tritonclient.http`` against a
real ``tfpilot serve``: what Triton's example clients and its QA tests (``qa/L0_server_status``,
``qa/L0_infer``) check -- health, metadata, binary and JSON tensors, requested outputs, BYTES,
statistics, model configuration, and errors for unknown models and versions."""

from __future__ import annotations

import gzip
import json

import httpx
import numpy as np
import pytest

X0 = np.arange(16, dtype=np.int32).reshape(1, 16)
X1 = np.full((1, 16), -1, dtype=np.int32)


@pytest.fixture(scope="module")
def client(triton_server):
    import tritonclient.http as httpclient

    c = httpclient.InferenceServerClient(f"127.0.0.1:{triton_server.port}", network_timeout=60)
    yield c
    c.close()


@pytest.fixture(scope="module")
def rest(triton_server):
    with httpx.Client(base_url=f"http://127.0.0.1:{triton_server.port}", timeout=60) as c:
        yield c


def tensor(name: str, value: np.ndarray, datatype: str, binary: bool):
    import tritonclient.http as httpclient

    t = httpclient.InferInput(name, list(value.shape), datatype)
    t.set_data_from_numpy(value, binary_data=binary)
    return t


def wanted(name: str, binary: bool):
    import tritonclient.http as httpclient

    return httpclient.InferRequestedOutput(name, binary_data=binary)


def as_ints(values: np.ndarray) -> list[int]:
    """BYTES decimal strings as ints."""
    return [int(v) for v in values.reshape(-1)]


def unknown(call) -> str:
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.message()


def test_health_and_server_metadata(client) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("simple") and client.is_model_ready("simple", "1")
    assert not client.is_model_ready("simple", "9")
    assert not client.is_model_ready("wrong_model_name")
    meta = client.get_server_metadata()
    assert meta["name"] == "tfpilot"
    extensions = {"binary_tensor_data", "statistics", "model_configuration", "model_repository"}
    assert extensions <= set(meta["extensions"])


def test_model_metadata(client) -> None:
    tensors = [{"name": n, "datatype": "INT32", "shape": [-1, 16]} for n in ("INPUT0", "INPUT1")]
    outputs = [{"name": n, "datatype": "INT32", "shape": [-1, 16]} for n in ("OUTPUT0", "OUTPUT1")]
    assert client.get_model_metadata("simple") == {"name": "simple", "versions": ["1"],
                                                   "platform": "tensorflow_savedmodel",
                                                   "inputs": tensors, "outputs": outputs}
    assert client.get_model_metadata("simple", "1")["versions"] == ["1"]


@pytest.mark.parametrize(("in0", "in1", "out0", "out1"), [
    (True, True, True, True), (False, True, True, False), (False, False, False, False)])
def test_infer_binary_and_json_tensors(client, in0: bool, in1: bool, out0: bool,
                                       out1: bool) -> None:
    inputs = [tensor("INPUT0", X0, "INT32", in0), tensor("INPUT1", X1, "INT32", in1)]
    result = client.infer("simple", inputs, request_id="7",
                          outputs=[wanted("OUTPUT0", out0), wanted("OUTPUT1", out1)])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), X0 + X1)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), X0 - X1)
    response = result.get_response()
    assert [response[k] for k in ("model_name", "model_version", "id")] == ["simple", "1", "7"]
    for entry, binary in zip(response["outputs"], (out0, out1)):
        assert ("data" in entry) is not binary
        assert ("binary_data_size" in entry.get("parameters", {})) is binary


def test_infer_only_the_requested_output_and_every_output_by_default(client) -> None:
    inputs = [tensor("INPUT0", X0, "INT32", True), tensor("INPUT1", X1, "INT32", True)]
    result = client.infer("simple", inputs, outputs=[wanted("OUTPUT1", False)])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["OUTPUT1"]
    assert result.as_numpy("OUTPUT0") is None
    every = client.infer("simple", inputs)
    assert [o["name"] for o in every.get_response()["outputs"]] == ["OUTPUT0", "OUTPUT1"]
    np.testing.assert_array_equal(every.as_numpy("OUTPUT0"), X0 + X1)


def test_infer_gzip_request_and_several_rows(client) -> None:
    x0 = np.arange(48, dtype=np.int32).reshape(3, 16)
    inputs = [tensor("INPUT0", x0, "INT32", True), tensor("INPUT1", x0, "INT32", False)]
    result = client.infer("simple", inputs, request_compression_algorithm="gzip")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), 2 * x0)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), np.zeros_like(x0))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bytes_tensors(client, binary: bool) -> None:
    as_bytes = np.vectorize(lambda v: str(v).encode(), otypes=[object])
    result = client.infer("simple_string", [tensor("INPUT0", as_bytes(X0), "BYTES", binary),
                                            tensor("INPUT1", as_bytes(X1), "BYTES", not binary)],
                          outputs=[wanted("OUTPUT0", binary), wanted("OUTPUT1", not binary)])
    assert result.get_response()["outputs"][0]["datatype"] == "BYTES"
    assert as_ints(result.as_numpy("OUTPUT0")) == (X0 + X1).reshape(-1).tolist()
    assert as_ints(result.as_numpy("OUTPUT1")) == (X0 - X1).reshape(-1).tolist()
    nulls = np.array([[b"he\x00llo", b"\x00\x01\x02\x03"]], dtype=object)
    echoed = client.infer("simple_identity", [tensor("INPUT0", nulls, "BYTES", binary)],
                          outputs=[wanted("OUTPUT0", binary)]).as_numpy("OUTPUT0")
    as_sent = [v if isinstance(v, bytes) else v.encode() for v in echoed.reshape(-1)]
    assert as_sent == [b"he\x00llo", b"\x00\x01\x02\x03"]


def test_statistics_count_each_version_s_requests(client) -> None:
    before = client.get_inference_statistics("simple")["model_stats"]
    assert [(s["name"], s["version"]) for s in before] == [("simple", "1")]
    inputs = [tensor("INPUT0", X0, "INT32", True), tensor("INPUT1", X1, "INT32", True)]
    for _ in range(2):
        client.infer("simple", inputs)
    after = client.get_inference_statistics("simple", "1")["model_stats"][0]
    stats, old = after["inference_stats"], before[0]["inference_stats"]
    assert stats["success"]["count"] == old["success"]["count"] + 2
    assert after["inference_count"] == before[0]["inference_count"] + 2
    assert after["execution_count"] >= before[0]["execution_count"] + 1
    assert stats["success"]["ns"] > old["success"]["ns"]
    assert stats["compute_infer"]["count"] == stats["success"]["count"]
    assert after["last_inference"] >= before[0]["last_inference"] > 0
    every = {s["name"] for s in client.get_inference_statistics()["model_stats"]}
    assert {"simple", "simple_string", "simple_identity"} <= every


def test_a_failed_infer_is_counted_as_a_failure(client) -> None:
    from tritonclient.utils import InferenceServerException

    def failures() -> int:
        stats = client.get_inference_statistics("simple")["model_stats"][0]
        return stats["inference_stats"]["fail"]["count"]

    old = failures()
    with pytest.raises(InferenceServerException):
        client.infer("simple", [tensor("INPUT0", X0, "INT32", True)])  # INPUT1 is missing
    assert failures() == old + 1


def test_model_configuration(client) -> None:
    config = client.get_model_config("simple")
    assert config["name"] == "simple"
    assert (config["platform"], config["backend"]) == ("tensorflow_savedmodel", "tensorflow")
    assert config["version_policy"] == {"latest": {"num_versions": 1}}
    dims = [16] if config["max_batch_size"] > 0 else [-1, 16]  # Triton leaves out the batch dim

    def tensors(*names: str) -> list[dict]:
        return [{"name": n, "data_type": "TYPE_INT32", "dims": dims} for n in names]

    assert config["input"] == tensors("INPUT0", "INPUT1")
    assert config["output"] == tensors("OUTPUT0", "OUTPUT1")
    assert client.get_model_config("simple_string")["input"][0]["data_type"] == "TYPE_STRING"


def test_unknown_models_and_versions_as_triton_words_them(client) -> None:
    inputs = [tensor("INPUT0", X0, "INT32", True), tensor("INPUT1", X1, "INT32", True)]
    model = "Request for unknown model: 'wrong_model_name' is not found"
    assert unknown(lambda: client.infer("wrong_model_name", inputs)) == model
    assert unknown(lambda: client.get_model_metadata("wrong_model_name")) == model
    assert unknown(lambda: client.get_model_config("wrong_model_name")) == model
    assert unknown(lambda: client.get_inference_statistics("wrong_model_name")) == model
    version = "Request for unknown model: 'simple' version 9 is not found"
    assert unknown(lambda: client.infer("simple", inputs, model_version="9")) == version
    assert unknown(lambda: client.get_model_metadata("simple", "9")) == version
    assert unknown(lambda: client.get_inference_statistics("simple", "9")) == version


def test_error_statuses_and_bodies(rest: httpx.Client) -> None:
    r = rest.get("/v2/models/wrong_model_name")
    error = "Request for unknown model: 'wrong_model_name' is not found"
    assert (r.status_code, r.json()) == (400, {"error": error})  # Triton: INVALID_ARG
    assert rest.get("/v2/models/wrong_model_name/ready").status_code == 400
    assert rest.get("/v2/models/simple/versions/9").status_code == 404
    assert rest.get("/v2/models/simple/versions/x/config").status_code == 400
    body = json.dumps({"inputs": [
        {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": list(range(16))},
        {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": [1] * 16}]})
    r = rest.post("/v2/models/simple/infer", content=gzip.compress(body.encode()),
                  headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == list(range(1, 17))
