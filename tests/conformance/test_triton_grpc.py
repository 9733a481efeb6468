"""The Open Inference Protocol over gRPC (Triton's ``inference.GRPCInferenceService``) with
``tritonclient.grpc`` against a real ``tfpilot serve``: health, metadata, configuration, infer
with raw and typed tensor contents, BYTES, statistics, and Triton's errors and status codes."""

from __future__ import annotations

import numpy as np
import pytest

X0 = np.arange(16, dtype=np.int32).reshape(1, 16)
X1 = np.ones((1, 16), dtype=np.int32)


@pytest.fixture(scope="module")
def client(triton_server):
    import tritonclient.grpc as grpcclient

    c = grpcclient.InferenceServerClient(f"127.0.0.1:{triton_server.grpc_port}")
    yield c
    c.close()


@pytest.fixture(scope="module")
def stub(triton_server):
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{triton_server.grpc_port}") as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def tensor(name: str, value: np.ndarray, datatype: str):
    import tritonclient.grpc as grpcclient

    t = grpcclient.InferInput(name, list(value.shape), datatype)
    t.set_data_from_numpy(value)
    return t


def failure(call) -> tuple[str, str]:
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.status(), info.value.message()


def test_health_metadata_and_config(client) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("simple") and client.is_model_ready("simple", "1")
    assert not client.is_model_ready("simple", "9")
    assert not client.is_model_ready("wrong_model_name")
    server = client.get_server_metadata()
    assert server.name == "tfpilot" and "statistics" in server.extensions
    meta = client.get_model_metadata("simple", as_json=True)
    assert meta["platform"] == "tensorflow_savedmodel" and meta["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("INPUT0", "INT32", ["-1", "16"]), ("INPUT1", "INT32", ["-1", "16"])]  # int64: strings
    config = client.get_model_config("simple").config
    assert config.name == "simple" and config.platform == "tensorflow_savedmodel"
    dims = [16] if config.max_batch_size > 0 else [-1, 16]
    assert [(i.name, list(i.dims)) for i in config.input] == [("INPUT0", dims), ("INPUT1", dims)]
    from tritonclient.grpc import model_config_pb2

    assert config.input[0].data_type == model_config_pb2.TYPE_INT32
    string_config = client.get_model_config("simple_string").config
    assert string_config.output[0].data_type == model_config_pb2.TYPE_STRING


def test_infer_raw_contents_and_requested_outputs(client) -> None:
    import tritonclient.grpc as grpcclient

    inputs = [tensor("INPUT0", X0, "INT32"), tensor("INPUT1", X1, "INT32")]
    result = client.infer("simple", inputs, request_id="42",
                          outputs=[grpcclient.InferRequestedOutput("OUTPUT1")])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), X0 - X1)
    assert result.as_numpy("OUTPUT0") is None
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("simple", "1", "42")
    every = client.infer("simple", inputs)
    np.testing.assert_array_equal(every.as_numpy("OUTPUT0"), X0 + X1)
    np.testing.assert_array_equal(every.as_numpy("OUTPUT1"), X0 - X1)


def test_infer_typed_contents(stub) -> None:
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name="simple")
    for name, value in (("INPUT0", X0), ("INPUT1", X1)):
        t = request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        t.contents.int_contents.extend(value.reshape(-1).tolist())
    response = stub.ModelInfer(request)
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        ("OUTPUT0", "INT32", [1, 16]), ("OUTPUT1", "INT32", [1, 16])]
    total = np.frombuffer(response.raw_output_contents[0], "<i4")
    assert total.tolist() == (X0 + X1).reshape(-1).tolist()
    request = service_pb2.ModelInferRequest(model_name="simple_identity")
    t = request.inputs.add(name="INPUT0", datatype="BYTES", shape=[1, 2])
    t.contents.bytes_contents.extend([b"he\x00llo", b"\x00\x01"])
    raw = stub.ModelInfer(request).raw_output_contents[0]
    assert raw == b"\x06\x00\x00\x00he\x00llo\x02\x00\x00\x00\x00\x01"  # little-endian lengths


def test_bytes_tensors(client) -> None:
    as_bytes = np.vectorize(lambda v: str(v).encode(), otypes=[object])
    result = client.infer("simple_string", [tensor("INPUT0", as_bytes(X0), "BYTES"),
                                            tensor("INPUT1", as_bytes(X1), "BYTES")])
    assert [int(v) for v in result.as_numpy("OUTPUT0").reshape(-1)] == (X0 + X1).ravel().tolist()
    assert [int(v) for v in result.as_numpy("OUTPUT1").reshape(-1)] == (X0 - X1).ravel().tolist()


def test_statistics(client) -> None:
    before = client.get_inference_statistics("simple", as_json=True)["model_stats"][0]
    client.infer("simple", [tensor("INPUT0", X0, "INT32"), tensor("INPUT1", X1, "INT32")])
    stats = client.get_inference_statistics("simple", "1").model_stats
    assert [(s.name, s.version) for s in stats] == [("simple", "1")]
    count = int(before.get("inference_stats", {}).get("success", {}).get("count", 0))
    assert stats[0].inference_stats.success.count == count + 1
    assert stats[0].inference_stats.compute_infer.ns > 0 and stats[0].execution_count >= 1


def test_errors_as_triton_answers_them(client) -> None:
    import tritonclient.grpc as grpcclient

    inputs = [tensor("INPUT0", X0, "INT32"), tensor("INPUT1", X1, "INT32")]
    unknown = ("StatusCode.INVALID_ARGUMENT",
               "Request for unknown model: 'wrong_model_name' is not found")
    assert failure(lambda: client.get_model_metadata("wrong_model_name")) == unknown
    assert failure(lambda: client.infer("wrong_model_name", inputs)) == unknown
    assert failure(lambda: client.get_model_config("wrong_model_name")) == unknown
    version = ("StatusCode.NOT_FOUND", "Request for unknown model: 'simple' version 9 is not found")
    assert failure(lambda: client.get_model_metadata("simple", "9")) == version
    assert failure(lambda: client.infer("simple", inputs, model_version="9")) == version
    status, message = failure(lambda: client.infer("simple", inputs[:1]))
    assert status == "StatusCode.INVALID_ARGUMENT" and "INPUT1" in message
    nine = [grpcclient.InferRequestedOutput("OUTPUT9")]
    status, message = failure(lambda: client.infer("simple", inputs, outputs=nine))
    assert status == "StatusCode.INVALID_ARGUMENT" and "OUTPUT9" in message
