"""TF Serving's REST cases (``model_servers/tensorflow_model_server_test.py`` and the request errors
of ``http_rest_api_handler_test.cc``) as request -> expected answer, against ``tfpilot serve``
started with TF Serving's flags on TF Serving's own test models (see conftest.py)."""

from __future__ import annotations

import re

import httpx
import pytest

#: TF Serving's ``half_plus_two_model_metadata.json``: two of the five signatures, as its server writes them.
DIM = {"size": "-1", "name": ""}, {"size": "1", "name": ""}
SHAPE = {"dim": list(DIM), "unknown_rank": False}
SERVING_DEFAULT = {
    "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": SHAPE, "name": "x:0"}},
    "outputs": {"y": {"dtype": "DT_FLOAT", "tensor_shape": SHAPE, "name": "y:0"}},
    "method_name": "tensorflow/serving/predict", "defaults": {},
}
REGRESS_X2_TO_Y3 = {
    "inputs": {"inputs": {"dtype": "DT_FLOAT", "tensor_shape": SHAPE, "name": "x2:0"}},
    "outputs": {"outputs": {"dtype": "DT_FLOAT", "tensor_shape": SHAPE, "name": "y3:0"}},
    "method_name": "tensorflow/serving/regress", "defaults": {},
}


@pytest.fixture(scope="module")
def rest(tf_server):
    with httpx.Client(base_url=tf_server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(("path", "body", "answer"), [
    # testPredictREST, testPredictColumnarREST: x:0 is declared [-1, 1]; the graph takes [3]
    ("/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]}, {"predictions": [3.0, 3.5, 4.0]}),
    ("/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]}, {"outputs": [3.0, 3.5, 4.0]}),
    ("/v1/models/default:predict", {"instances": [[2.0], [4.0]]}, {"predictions": [[3.0], [4.0]]}),
    ("/v1/models/default:predict", {"inputs": {"x": [[2.0]]}}, {"outputs": [[3.0]]}),
    # testClassifyREST, testRegressREST: "results", TF Serving's server key
    ("/v1/models/default:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]},
     {"results": [[["", 3.0]]]}),
    ("/v1/models/default:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]},
     {"results": [3.0]}),
    ("/v1/models/default:regress", {"signature_name": "regress_x_to_y2", "examples": [{"x": 2.0}, {"x": 4.0}]},
     {"results": [4.0, 5.0]}),
    ("/v1/models/half_plus_three:predict", {"instances": [2.0]}, {"predictions": [4.0]}),
    # version labels and numbers (testGoodModelConfig's two models as two versions of one)
    ("/v1/models/two_versions:predict", {"instances": [2.0]}, {"predictions": [4.0]}),
    ("/v1/models/two_versions/versions/123:predict", {"instances": [2.0]}, {"predictions": [3.0]}),
    ("/v1/models/two_versions/labels/stable:predict", {"instances": [2.0]}, {"predictions": [3.0]}),
    ("/v1/models/two_versions/labels/canary:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]},
     {"results": [4.0]}),
    # a DT_STRING model: strings in, strings and numbers out, one object per instance
    ("/v1/models/strings:predict", {"instances": ["ab", "cde"]},
     {"predictions": [{"upper": "AB", "length": 2}, {"upper": "CDE", "length": 3}]}),
    ("/v1/models/strings:predict", {"inputs": ["ab"]}, {"outputs": {"upper": ["AB"], "length": [2]}}),
])
def test_request_answer(rest, path, body, answer):
    r = rest.post(path, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == answer


def test_status(rest):
    """testGetStatusREST, and every version of a model with two."""
    ok = {"error_code": "OK", "error_message": ""}
    assert rest.get("/v1/models/default").json() == {
        "model_version_status": [{"version": "123", "state": "AVAILABLE", "status": ok}]}
    both = rest.get("/v1/models/two_versions").json()["model_version_status"]
    assert sorted((s["version"], s["state"]) for s in both) == [("123", "AVAILABLE"), ("124", "AVAILABLE")]
    assert rest.get("/v1/models/two_versions/labels/stable").json() == {
        "model_version_status": [{"version": "123", "state": "AVAILABLE", "status": ok}]}


def test_metadata(rest):
    """testGetModelMetadataREST: model_spec and the SignatureDefMap, as TF Serving writes them."""
    r = rest.get("/v1/models/default/metadata").json()
    assert r["model_spec"] == {"name": "default", "signature_name": "", "version": "123"}
    assert list(r["metadata"]) == ["signature_def"]
    signatures = r["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["classify_x_to_y", "regress_x2_to_y3", "regress_x_to_y", "regress_x_to_y2",
                                  "serving_default"]
    assert signatures["serving_default"] == SERVING_DEFAULT
    assert signatures["regress_x2_to_y3"] == REGRESS_X2_TO_Y3
    assert rest.get("/v1/models/two_versions/versions/124/metadata").json()["model_spec"]["version"] == "124"


def test_prometheus(rest):
    """testPrometheusEndpoint: the path of --monitoring_config_file answers the text format."""
    r = rest.get("/monitoring/prometheus/metrics")
    assert r.status_code == 200 and "# TYPE" in r.text


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("POST", "/v1/models/foo:predict", {"instances": [1]}, 404, "Servable not found"),
    ("POST", "/v1/models/default/versions/50:predict", {"instances": [1]}, 404, "Servable not found"),
    ("POST", "/v1/models/default:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("POST", "/v1/models/default:predict", b"instances = [1, 2]", 400, "JSON Parse error: Invalid value"),
    ("POST", "/v1/models/default:predict", {"instances": ["x", "y"]}, 400, "not of expected type: float"),
    ("POST", "/v1/models/two_versions/labels/nope:predict", {"instances": [1.0]}, 400,
     "Unrecognized servable version label"),
    ("POST", "/v1/models/default:predict", {"signature_name": 100}, 400,
     "'signature_name' key must be a string value"),
    ("POST", "/v1/models/default/versions/HELLO:regress", {"examples": []}, 400, "Failed to convert version"),
    ("POST", f"/v1/models/default/versions/{2**64 - 1}:regress", {"examples": []}, 400, "Failed to convert version"),
    ("POST", "/v1/models/default:predict", {"instances": [[1.0]], "inputs": [[1.0]]}, 400, "only one of"),
    ("POST", "/v1/models/default:predict", {"signature_name": "nope", "instances": [1.0]}, 400, "nope"),
    ("POST", "/v1/models/default:classify", {"examples": [{"x": 2.0}]}, 400, "classification"),
    # the model refuses what it cannot take, and says why
    ("POST", "/v1/models/default:regress", {"signature_name": "regress_x_to_y", "examples": [{"x2": 2.0}]}, 400,
     "Feature: x (data type: float) is required but could not be found"),
    ("POST", "/v1/models/default:regress", {"signature_name": "regress_x2_to_y3", "examples": [{"x2": 4.0}]}, 400,
     "DT_STRING"),
    ("GET", "/v1/models/default:predict", None, 405, ":predict"),
])
def test_errors(rest, method, path, body, status, says):
    content = body if isinstance(body, bytes) or body is None else None
    r = rest.request(method, path, content=content, json=None if content is not None or body is None else body)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


def batches(metrics: str, model: str) -> float:
    """How many model calls ``model`` has made (the count of tfpilot_batch_size)."""
    found = re.search(rf'tfpilot_batch_size_count{{model="{model}"}} ([0-9.e+]+)', metrics)
    return float(found.group(1)) if found else 0.0


def test_batching_off_by_default(rest):
    """Without --enable_batching, one request of 8 instances is one model call, as in TF Serving."""
    before = batches(rest.get("/metrics").text, "half_plus_three")
    r = rest.post("/v1/models/half_plus_three:predict", json={"instances": [[float(i)] for i in range(8)]})
    assert r.json() == {"predictions": [[0.5 * i + 3.0] for i in range(8)]}
    assert batches(rest.get("/metrics").text, "half_plus_three") == before + 1
