"""TF Serving's gRPC API with ``tensorflow_serving.apis`` stubs, against a real ``tfpilot serve`` started
with TF Serving's flags: outputs equal calling the SavedModel signature directly."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from tests.serving.savedmodels import TF1_CLASSES, example_proto, tf1_expected, tf2_weights

TIMEOUT = 30


@pytest.fixture(scope="module")
def stubs(grpc_channel):
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    return (prediction_service_pb2_grpc.PredictionServiceStub(grpc_channel),
            model_service_pb2_grpc.ModelServiceStub(grpc_channel))


@pytest.fixture(scope="module")
def direct(tf_models: dict[str, Path]):
    """The SavedModels loaded in this process: the reference for every answer."""
    import tensorflow as tf

    return {name: tf.saved_model.load(str(next(p.iterdir()))) for name, p in tf_models.items()}


def predict_request(model: str, signature: str = "", version: int | None = None, label: str | None = None,
                    **inputs: np.ndarray):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_predict_tf2_both_signatures_match_the_signature(stubs, direct) -> None:
    import tensorflow as tf

    prediction, _ = stubs
    x = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]], np.float32)
    response = prediction.Predict(predict_request("two", x=x), timeout=TIMEOUT)
    want = direct["two"].signatures["serving_default"](x=tf.constant(x))["y"].numpy()
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), want, rtol=1e-6)
    np.testing.assert_allclose(want, x @ tf2_weights(), rtol=1e-6)
    assert (response.model_spec.name, response.model_spec.version.value,
            response.model_spec.signature_name) == ("two", 1, "serving_default")

    text, n = np.array([b"ab", b"xyz"], dtype=object), np.array([2, 1], np.int32)
    response = prediction.Predict(predict_request("two", "words", label="stable", text=text, n=n), timeout=TIMEOUT)
    want = direct["two"].signatures["words"](text=tf.constant(text), n=tf.constant(n))
    assert tf.make_ndarray(response.outputs["length"]).tolist() == want["length"].numpy().tolist() == [4, 3]
    assert tf.make_ndarray(response.outputs["upper_bytes"]).tolist() == [b"AB", b"XYZ"]
    filtered = predict_request("two", "words", text=text, n=n)
    filtered.output_filter.append("length")
    assert list(prediction.Predict(filtered, timeout=TIMEOUT).outputs) == ["length"]


def batch_stats(tf_client, model: str) -> tuple[float, float]:
    """``(model calls, instances)`` of ``model`` so far, from the server's metrics."""
    import re

    text = tf_client.get("/metrics").text
    found = dict(re.findall(r'^tfpilot_batch_size_(count|sum)\{model="%s"\} (\S+)$' % model, text, re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def test_concurrent_grpc_and_rest_requests_are_batched_and_each_gets_its_own_rows(stubs, direct, tf_client) -> None:
    """gRPC calls run in threads of their own; under load they join the batcher's calls with REST's."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import tensorflow as tf

    prediction, _ = stubs
    xs = [np.array([[i, -i / 2]], np.float32) for i in range(40)]
    start = threading.Barrier(len(xs))
    calls0, instances0 = batch_stats(tf_client, "two")

    def send(i: int) -> np.ndarray:
        start.wait(TIMEOUT)
        if i % 4 == 3:  # one in four over REST
            r = tf_client.post("/v1/models/two:predict", json={"instances": xs[i].tolist()})
            assert r.status_code == 200, r.text
            return np.array(r.json()["predictions"], np.float32)
        response = prediction.Predict(predict_request("two", x=xs[i]), timeout=TIMEOUT)
        return tf.make_ndarray(response.outputs["y"])

    with ThreadPoolExecutor(len(xs)) as pool:
        answers = list(pool.map(send, range(len(xs))))
    for x, answer in zip(xs, answers):
        want = direct["two"].signatures["serving_default"](x=tf.constant(x))["y"].numpy()
        np.testing.assert_allclose(answer.reshape(want.shape), want, rtol=1e-6)
    calls, instances = (b - a for a, b in zip((calls0, instances0), batch_stats(tf_client, "two")))
    assert instances == len(xs) and calls < len(xs), (calls, instances)  # some calls answered several requests


def test_predict_tf1_graph(stubs, direct) -> None:
    import tensorflow as tf

    prediction, _ = stubs
    x = np.array([[1.0], [4.0], [-2.0]], np.float32)
    response = prediction.Predict(predict_request("hpt", version=123, x=x), timeout=TIMEOUT)
    got = tf.make_ndarray(response.outputs["y"])
    np.testing.assert_allclose(got, direct["hpt"].signatures["serving_default"](x=tf.constant(x))["y"].numpy())
    np.testing.assert_allclose(got, tf1_expected(x))
    assert response.model_spec.version.value == 123


def test_classify_regress_and_multi_inference_on_tf_examples(stubs, direct) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, inference_pb2, regression_pb2

    prediction, _ = stubs
    examples = [example_proto(x=3.0), example_proto(x=0.0), example_proto(x=1.0, bias=2.0)]
    serialized = tf.constant([e.SerializeToString() for e in examples])

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "hpt", "classify_x_to_y"
    request.input.example_list.examples.extend(examples)
    result = prediction.Classify(request, timeout=TIMEOUT).result
    want = direct["hpt"].signatures["classify_x_to_y"](inputs=serialized)
    for classes, scores, got in zip(want["classes"].numpy(), want["scores"].numpy(), result.classifications):
        assert [c.label for c in got.classes] == [c.decode() for c in classes] == list(TF1_CLASSES)
        np.testing.assert_allclose([c.score for c in got.classes], scores, rtol=1e-6)

    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "hpt", "regress_x_to_y"
    request.input.example_list_with_context.context.CopyFrom(example_proto(bias=1.0))
    request.input.example_list_with_context.examples.extend([example_proto(x=3.0), example_proto(x=1.0, bias=0.0)])
    response = prediction.Regress(request, timeout=TIMEOUT)
    # The context's bias (1.0) applies unless the example sets its own (the example's wins).
    np.testing.assert_allclose([r.value for r in response.result.regressions], [4.5, 2.5])
    assert response.model_spec.signature_name == "regress_x_to_y" and response.model_spec.version.value == 123

    multi = inference_pb2.MultiInferenceRequest()
    multi.input.example_list.examples.extend(examples[:2])
    for signature, method in (("classify_x_to_y", "tensorflow/serving/classify"),
                              ("regress_x_to_y", "tensorflow/serving/regress")):
        task = multi.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = "hpt", signature
    results = prediction.MultiInference(multi, timeout=TIMEOUT).results
    assert [r.model_spec.signature_name for r in results] == ["classify_x_to_y", "regress_x_to_y"]
    np.testing.assert_allclose([r.value for r in results[1].regression_result.regressions], tf1_expected([3.0, 0.0]))
    assert len(results[0].classification_result.classifications) == 2


def test_get_model_metadata_is_the_saved_model_signature_def_map(stubs, tf_models) -> None:
    from tensorflow_serving.apis import get_model_metadata_pb2

    from tfpilot.serving.signatures import read_signature_defs

    prediction, _ = stubs
    for name in ("hpt", "two"):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = name
        response = prediction.GetModelMetadata(request, timeout=TIMEOUT)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        assert response.metadata["signature_def"].Unpack(signatures)
        on_disk = read_signature_defs(next(tf_models[name].iterdir()))
        assert dict(signatures.signature_def) == on_disk
    assert set(signatures.signature_def) == {"serving_default", "words", "__saved_model_init_op"}


def test_get_model_status(stubs) -> None:
    from tensorflow_serving.apis import get_model_status_pb2

    _, models = stubs
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "hpt"
    (status,) = models.GetModelStatus(request, timeout=TIMEOUT).model_version_status
    assert (status.version, get_model_status_pb2.ModelVersionStatus.State.Name(status.state)) == (123, "AVAILABLE")
    assert status.status.error_code == 0 and status.status.error_message == ""
    request.model_spec.version_label = "stable"
    request.model_spec.name = "two"
    assert [s.version for s in models.GetModelStatus(request, timeout=TIMEOUT).model_version_status] == [1]


def test_the_tfpilot_export_over_grpc(stubs, direct, predictor, shape_images) -> None:
    import tensorflow as tf

    prediction, _ = stubs
    response = prediction.Predict(predict_request("shapes", images=shape_images), timeout=TIMEOUT)
    probs = tf.make_ndarray(response.outputs["probabilities"])
    want = direct["shapes"].signatures["serving_default"](images=tf.constant(shape_images))
    np.testing.assert_allclose(probs, want["probabilities"].numpy(), atol=1e-5)
    assert tf.make_ndarray(response.outputs["classes"]).tolist() == want["classes"].numpy().tolist()
    np.testing.assert_allclose(probs, predictor.predict_proba(shape_images), atol=5e-3)


@pytest.mark.parametrize("request_args, code, fragment", [
    ({"model": "nope", "x": np.ones((1, 2), np.float32)}, grpc.StatusCode.NOT_FOUND, "Latest(nope)"),
    ({"model": "two", "version": 7, "x": np.ones((1, 2), np.float32)}, grpc.StatusCode.NOT_FOUND, "Specific(two, 7)"),
    ({"model": "two", "label": "canary", "x": np.ones((1, 2), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT,
     "Unrecognized servable version label: canary"),
    ({"model": "two", "signature": "nosuch", "x": np.ones((1, 2), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT,
     "not found in signature def"),
    ({"model": "two", "x": np.ones((1, 3), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT,
     "Matrix size-incompatible: In[0]: [1,3]"),
    ({"model": "two", "x": np.ones((1, 2), np.float64)}, grpc.StatusCode.INVALID_ARGUMENT,
     "expects float32 (DT_FLOAT) but float64"),
    ({"model": "two", "z": np.ones((1, 2), np.float32)}, grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: ['x']"),
], ids=["model", "version", "label", "signature", "shape", "dtype", "input name"])
def test_errors_have_tf_serving_codes(stubs, request_args, code, fragment) -> None:
    prediction, _ = stubs
    args = dict(request_args)
    request = predict_request(args.pop("model"), args.pop("signature", ""), args.pop("version", None),
                              args.pop("label", None), **args)
    with pytest.raises(grpc.RpcError) as caught:
        prediction.Predict(request, timeout=TIMEOUT)
    assert caught.value.code() == code and fragment in caught.value.details(), caught.value.details()


def test_classify_on_a_predict_signature_is_refused(stubs) -> None:
    from tensorflow_serving.apis import classification_pb2

    prediction, _ = stubs
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "hpt"  # serving_default is a predict signature
    request.input.example_list.examples.append(example_proto(x=1.0))
    with pytest.raises(grpc.RpcError) as caught:
        prediction.Classify(request, timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "classify_x_to_y" in caught.value.details()  # it names the signature to use
