"""TF Serving's gRPC cases (``model_servers/tensorflow_model_server_test.py``: Predict, Classify,
Regress, MultiInference, GetModelMetadata, GetModelStatus) with ``tensorflow_serving.apis``' stubs,
against ``tfpilot serve`` on TF Serving's test models (see conftest.py): answers fill the typed
fields (``float_val``, ...) as TF Serving's ``Tensor::AsProtoField`` does."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.serving.savedmodels import DTYPE_OUTPUTS

TIMEOUT = 30
#: The typed field TF Serving fills for each output of the ``dtypes`` signature.
FIELDS = {"float": "float_val", "double": "double_val", "int8": "int_val", "uint8": "int_val",
          "int16": "int_val", "uint16": "int_val", "int32": "int_val", "int64": "int64_val",
          "uint32": "uint32_val", "uint64": "uint64_val", "bool": "bool_val", "half": "half_val",
          "bfloat16": "half_val"}


@pytest.fixture(scope="module")
def channel(tf_server):
    with grpc.insecure_channel(tf_server.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def predict_stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


def x_request(model: str = "default", batch_input: bool = False, output_filter: bool = True,
              signature_name: str = "serving_default") -> predict_pb2.PredictRequest:
    """VerifyPredictRequest's request: x = float_val [2.0], shape [1] (or [1, 1])."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if output_filter:
        request.output_filter.append("y")
    return request


def check_spec(spec, name: str, signature_name: str, version: int) -> None:
    """_VerifyModelSpec."""
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature_name, version)


@pytest.mark.parametrize(("model", "batch_input", "output_filter", "want", "version"), [
    ("default", False, True, 3.0, 123), ("default", True, True, 3.0, 123), ("default", False, False, 3.0, 123),
    ("half_plus_three", False, True, 4.0, 123), ("half_plus_three", False, False, 4.0, 123),
    ("two_versions", False, True, 4.0, 124),
])
def test_predict(predict_stub, model, batch_input, output_filter, want, version):
    """testPredictSavedModel, testGoodModelConfig: shape [1] goes to x:0 declared [-1, 1]."""
    result = predict_stub.Predict(x_request(model, batch_input, output_filter), TIMEOUT)
    assert list(result.outputs) == ["y"]
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert list(result.outputs["y"].float_val) == [want]
    assert [d.size for d in result.outputs["y"].tensor_shape.dim] == ([1, 1] if batch_input else [1])
    check_spec(result.model_spec, model, "serving_default", version)


def test_predict_tensor_content_and_labels(predict_stub):
    """A request packed in tensor_content is taken; the answer is in float_val; labels pick versions."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "two_versions"
    request.model_spec.version_label = "stable"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[2.0], [4.0]], np.float32)))
    assert request.inputs["x"].tensor_content
    result = predict_stub.Predict(request, TIMEOUT)
    assert list(result.outputs["y"].float_val) == [3.0, 4.0]
    assert not result.outputs["y"].tensor_content
    check_spec(result.model_spec, "two_versions", "serving_default", 123)


def test_every_dtype_in_its_typed_field(predict_stub):
    """Tensor::AsProtoField: each dtype's values in its own repeated field, read back by tf.make_ndarray."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "strings"
    request.model_spec.signature_name = "dtypes"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.5], np.float32)))
    result = predict_stub.Predict(request, TIMEOUT)
    assert sorted(result.outputs) == sorted(DTYPE_OUTPUTS)
    for name, tensor in result.outputs.items():
        filled = [field.name for field, _ in tensor.ListFields() if field.name.endswith("_val")]
        assert filled == [FIELDS[name]], name
        want = tf.cast(tf.constant([1.0, 2.5]), tf.dtypes.as_dtype(tensor.dtype)).numpy()
        np.testing.assert_array_equal(tf.make_ndarray(tensor), want)


def test_strings(predict_stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "strings"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([b"ab", "\u00e9".encode()]))
    result = predict_stub.Predict(request, TIMEOUT)
    assert list(result.outputs["upper"].string_val) == [b"AB", "\u00e9".encode()]
    assert list(result.outputs["length"].int_val) == [2, 2]


def example_input(request) -> None:
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])


def test_classify(predict_stub):
    """testClassify."""
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    example_input(request)
    result = predict_stub.Classify(request, TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    check_spec(result.model_spec, "default", "classify_x_to_y", 123)


def test_regress(predict_stub):
    """testRegress."""
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    example_input(request)
    result = predict_stub.Regress(request, TIMEOUT)
    assert [r.value for r in result.result.regressions] == [3.0]
    check_spec(result.model_spec, "default", "regress_x_to_y", 123)


def test_multi_inference(predict_stub):
    """testMultiInference: a regress and a classify task on the same examples."""
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("regress_x_to_y", "tensorflow/serving/regress"),
                              ("classify_x_to_y", "tensorflow/serving/classify")):
        task = request.tasks.add()
        task.model_spec.name = "default"
        task.model_spec.signature_name = signature
        task.method_name = method
    example_input(request)
    result = predict_stub.MultiInference(request, TIMEOUT)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for i, task in enumerate(request.tasks):
        check_spec(result.results[i].model_spec, "default", task.model_spec.signature_name, 123)


def test_get_model_metadata(predict_stub):
    """testGetModelMetadata."""
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    result = predict_stub.GetModelMetadata(request, TIMEOUT)
    assert result.model_spec.name == "default" and result.model_spec.version.value == 123
    assert list(result.metadata) == ["signature_def"]
    signatures = get_model_metadata_pb2.SignatureDefMap()
    result.metadata["signature_def"].Unpack(signatures)
    assert signatures.signature_def["serving_default"].inputs["x"].name == "x:0"


def test_get_model_status(model_stub):
    """testGetModelStatus."""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    result = model_stub.GetModelStatus(request, TIMEOUT)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].status.error_code == 0


@pytest.mark.parametrize(("request_", "code", "says"), [
    (x_request("foo"), grpc.StatusCode.NOT_FOUND, "Servable not found"),
    (x_request(signature_name="nope"), grpc.StatusCode.INVALID_ARGUMENT, "nope"),
    (x_request(output_filter=False, signature_name="regress_x_to_y"), grpc.StatusCode.INVALID_ARGUMENT, "inputs"),
])
def test_errors(predict_stub, request_, code, says):
    with pytest.raises(grpc.RpcError) as err:
        predict_stub.Predict(request_, TIMEOUT)
    assert err.value.code() == code
    assert says in err.value.details()


def test_model_refuses_with_its_reason(predict_stub):
    """A tensor the graph cannot take is refused by the model, with the model's reason."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "strings"
    request.model_spec.signature_name = "dtypes"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.float32(1.0)))
    result = predict_stub.Predict(request, TIMEOUT)  # a scalar: the graph's cast takes it
    assert list(result.outputs["float"].float_val) == [1.0]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(["two"]))
    with pytest.raises(grpc.RpcError) as err:
        predict_stub.Predict(request, TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expects float" in err.value.details()
