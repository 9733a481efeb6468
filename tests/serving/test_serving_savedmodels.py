"""TF Serving's REST API on any SavedModel (a TF1 graph, a TF2 module, a tfpilot export), against a
real ``tfpilot serve`` started with TF Serving's flags; answers equal calling the signature directly."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.savedmodels import TF1_CLASSES, tf1_expected, tf2_weights


@pytest.fixture(scope="module")
def direct(tf_models: dict[str, Path]):
    import tensorflow as tf

    return {name: tf.saved_model.load(str(next(p.iterdir()))) for name, p in tf_models.items()}


def assert_error(r: httpx.Response, status: int, fragment: str) -> None:
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and fragment in r.json()["error"], r.json()


def test_status_has_the_real_version_numbers(tf_client: httpx.Client) -> None:
    assert tf_client.get("/v1/models/hpt").json() == {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert tf_client.get("/v1/models/hpt/versions/123").json() == tf_client.get("/v1/models/hpt").json()
    assert tf_client.get("/v1/models/two/labels/stable").json()["model_version_status"][0]["version"] == "1"
    assert_error(tf_client.get("/v1/models/hpt/versions/7"), 404, "Could not find version 7 of model hpt")
    assert_error(tf_client.get("/v1/models/two/labels/beta"), 400, "Unrecognized servable version label: beta")


def test_metadata_is_tf_serving_signature_def_json(tf_client: httpx.Client, tf_models) -> None:
    from tfpilot.serving.signatures import proto_json, read_signature_defs, signature_def_map

    meta = tf_client.get("/v1/models/hpt/metadata").json()
    assert meta["model_spec"] == {"name": "hpt", "signature_name": "", "version": "123"}
    on_disk = proto_json(signature_def_map(read_signature_defs(tf_models["hpt"] / "123")))
    assert meta["metadata"] == {"signature_def": on_disk}
    sigs = on_disk["signature_def"]
    assert sigs["classify_x_to_y"]["method_name"] == "tensorflow/serving/classify"
    assert sigs["serving_default"]["inputs"]["x"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""},
                                                                           {"size": "1", "name": ""}]
    shapes = tf_client.get("/v1/models/shapes/versions/1/metadata").json()["metadata"]
    assert shapes["class_names"] == ["circle", "square", "triangle"]  # tfpilot's extras on its export
    assert set(shapes["signature_def"]["signature_def"]) >= {"serving_default", "serving_bytes", "metadata"}


def test_predict_row_and_columnar_on_two_inputs_and_outputs(tf_client: httpx.Client, direct) -> None:
    import tensorflow as tf

    rows = tf_client.post("/v1/models/two:predict", json={
        "signature_name": "words", "instances": [{"text": "ab", "n": 2}, {"text": "xyz", "n": 1}]})
    assert rows.status_code == 200, rows.text
    want = direct["two"].signatures["words"](text=tf.constant(["ab", "xyz"]), n=tf.constant([2, 1]))
    assert rows.json() == {"predictions": [
        {"length": int(want["length"][0]), "upper_bytes": {"b64": base64.b64encode(b"AB").decode()}},
        {"length": int(want["length"][1]), "upper_bytes": {"b64": base64.b64encode(b"XYZ").decode()}}]}
    cols = tf_client.post("/v1/models/two/labels/stable:predict", json={
        "signature_name": "words", "inputs": {"text": [{"b64": base64.b64encode(b"q").decode()}], "n": [5]}})
    assert cols.json() == {"outputs": {"length": [5], "upper_bytes": [{"b64": "UQ=="}]}}
    x = [[1.0, 2.0], [3.0, -1.0]]
    single = tf_client.post("/v1/models/two/versions/1:predict", json={"inputs": x}).json()
    np.testing.assert_allclose(single["outputs"], np.array(x, np.float32) @ tf2_weights(), rtol=1e-6)
    row = tf_client.post("/v1/models/two:predict", json={"instances": x}).json()
    np.testing.assert_allclose(row["predictions"], single["outputs"], rtol=1e-6)


def test_tf1_predict_classify_regress(tf_client: httpx.Client, direct) -> None:
    r = tf_client.post("/v1/models/hpt:predict", json={"instances": [[1.0], [2.0], [5]]})
    np.testing.assert_allclose(r.json()["predictions"], tf1_expected([[1.0], [2.0], [5.0]]))
    body = {"signature_name": "classify_x_to_y", "context": {"bias": 0.5}, "examples": [{"x": 3.0}, {"x": [1.5]}]}
    result = tf_client.post("/v1/models/hpt:classify", json=body).json()["results"]
    assert [[label for label, _ in pairs] for pairs in result] == [list(TF1_CLASSES)] * 2
    p_high = 1 / (1 + np.exp(-(tf1_expected([3.0, 1.5], 0.5) - 2.5)))
    np.testing.assert_allclose([pairs[1][1] for pairs in result], p_high, rtol=1e-5)
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 3.0}, {"x": 1.0, "bias": 1.0}]}
    r = tf_client.post("/v1/models/hpt:regress", json=body)
    assert r.json() == {"results": pytest.approx([3.5, 3.5])}


def test_tfpilot_export_answers_as_tf_serving_plus_its_extras(tf_client: httpx.Client, direct, shape_images,
                                                              png) -> None:
    import tensorflow as tf

    want = direct["shapes"].signatures["serving_default"](images=tf.constant(shape_images[:2]))
    r = tf_client.post("/v1/models/shapes:predict", json={"instances": shape_images[:2].tolist()})
    assert r.status_code == 200, r.text
    first = r.json()["predictions"][0]
    assert set(first) == {"probabilities", "class_ids", "classes", "scores"}  # every output, as TF Serving
    np.testing.assert_allclose([p["probabilities"] for p in r.json()["predictions"]],
                               want["probabilities"].numpy(), atol=1e-5)
    b64 = [{"b64": base64.b64encode(png(img)).decode()} for img in shape_images[:2]]
    encoded = tf_client.post("/v1/models/shapes:predict", json={"instances": b64})  # tfpilot's extra
    np.testing.assert_allclose([p["probabilities"] for p in encoded.json()["predictions"]],
                               want["probabilities"].numpy(), atol=1e-5)
    classify = tf_client.post("/v1/models/shapes:classify?top_k=1", json={"examples": [{"images": b64[0]}]})
    assert classify.json()["result"][0][0][0] == want["classes"].numpy()[0].decode()
    upload = tf_client.post("/v1/models/shapes/predict-file", files={"files": ("a.png", png(shape_images[0]))})
    assert upload.json()["predictions"][0]["label"] == want["classes"].numpy()[0].decode()


@pytest.mark.parametrize("path, body, status, fragment", [
    ("/v1/models/two:predict", {"instances": [[1.0, 2.0, 3.0]]}, 400,  # the model refuses it, with its reason
     "the model rejected the input: Matrix size-incompatible: In[0]: [1,3], In[1]: [2,2]"),
    ("/v1/models/two:predict", {"instances": [["a", "b"]]}, 400, "DT_FLOAT tensor takes numbers"),
    ("/v1/models/two:predict", {"signature_name": "words", "instances": [[1]]}, 400, "list of objects"),
    ("/v1/models/two:predict", {"signature_name": "words", "instances": [{"text": "a"}]}, 400, "must be equal"),
    ("/v1/models/two:predict", {"signature_name": "words", "inputs": {"text": ["a"]}}, 400, "Missing named input: n"),
    ("/v1/models/two:predict", {"signature_name": "wrods", "inputs": [[1, 2]]}, 400, "Did you mean 'words'"),
    ("/v1/models/two:predict", {"signature_name": 3, "inputs": [[1, 2]]}, 400, "must be a string"),
    ("/v1/models/two:predict", {"instance": [[1, 2]]}, 400, "Did you mean 'instances'"),
    ("/v1/models/two:predict", {"inputs": [[1, 2]], "instances": [[1, 2]]}, 400, "only one of"),
    ("/v1/models/two:predict", {"signature_name": "words", "inputs": {"text": ["a"], "n": [1.5]}}, 400,
     "takes integers"),
    ("/v1/models/two/versions/9:predict", {"inputs": [[1, 2]]}, 404, "Specific(two, 9)"),
    ("/v1/models/two/versions/x:predict", {"inputs": [[1, 2]]}, 400, "Failed to convert version"),
    ("/v1/models/hpt:classify", {"examples": [{"x": 1.0}]}, 400, "classify_x_to_y"),
    ("/v1/models/hpt:classify", {"signature_name": "classify_x_to_y", "instances": [1]}, 400, "'examples' is expected"),
    ("/v1/models/hpt:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": None}]}, 400, "unexpected JSON"),
    ("/v1/models/hpt:regress", {"signature_name": "regress_x_to_y", "examples": []}, 400, "empty array"),
    ("/v1/models/hpt:regress", {"signature_name": "regress_x_to_y", "examples": [{"y": 1.0}]}, 400, "Feature: x"),
    ("/v1/models/hpt:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 3}]}, 400,
     "feature 'x' was sent as integers (an int64_list) and the model reads floats: write them with a fraction"),
])
def test_bad_requests_get_tf_serving_statuses(tf_client: httpx.Client, path, body, status, fragment) -> None:
    assert_error(tf_client.post(path, json=body), status, fragment)


def test_prometheus_metrics_at_tf_serving_path(tf_client: httpx.Client) -> None:
    tf_client.post("/v1/models/two:predict", json={"inputs": [[1, 2]]})
    r = tf_client.get("/monitoring/prometheus/metrics")
    assert r.status_code == 200 and "tfpilot_batch_size_count" in r.text and 'model="two"' in r.text
