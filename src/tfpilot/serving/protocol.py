"""TF Serving's request and response protos (``tensorflow_serving.apis``) over :mod:`.inference`.

The gRPC services and the warm-up replay (``assets.extra/tf_serving_warmup_requests``) both
turn a ``PredictRequest``, ``ClassificationRequest``, ``RegressionRequest`` or
``MultiInferenceRequest`` into arrays, run it on a :class:`~tfpilot.serving.servable.Servable`
and build the response proto, whose ``model_spec`` names the version and signature that
answered.

Example:
    >>> from tensorflow_serving.apis import predict_pb2  # doctest: +SKIP
    >>> request = predict_pb2.PredictRequest()  # doctest: +SKIP
    >>> request.inputs["x"].CopyFrom(array_to_proto(np.ones((1, 2), "float32")))  # doctest: +SKIP
    >>> response = await predict(servable, request)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from tfpilot.serving import inference
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.examples import serialized_from_input
from tfpilot.serving.servable import Servable
from tfpilot.serving.signatures import CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD, Signature
from tfpilot.serving.tensors import array_from_proto, array_to_proto

SIGNATURE_DEF_FIELD = "signature_def"


def fill_model_spec(spec: Any, servable: Servable, signature_name: str) -> None:
    """``spec``: the model name, version and signature that answered."""
    spec.name = servable.name
    spec.version.value = servable.version
    spec.signature_name = signature_name


async def predict(servable: Servable, request: Any) -> Any:
    """``PredictRequest`` -> ``PredictResponse``."""
    answer = await inference.predict(servable, request.model_spec.signature_name, _predict_inputs(request),
                                     list(request.output_filter))
    return _predict_response(servable, *answer)


def predict_blocking(servable: Servable, request: Any) -> Any:
    """:func:`predict` from a thread of its own (the gRPC server's): an idle model runs in that thread."""
    answer = inference.predict_blocking(servable, request.model_spec.signature_name, _predict_inputs(request),
                                        list(request.output_filter))
    return _predict_response(servable, *answer)


def _predict_inputs(request: Any) -> dict[str, Any]:
    return {name: array_from_proto(tensor) for name, tensor in request.inputs.items()}


def _predict_response(servable: Servable, sig: Signature, outputs: dict[str, Any]) -> Any:
    from tensorflow_serving.apis import predict_pb2

    response = predict_pb2.PredictResponse()
    fill_model_spec(response.model_spec, servable, sig.name)
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(array_to_proto(value))
    return response


def _classification_result(result: Any, classifications: list[inference.Classification]) -> None:
    for item in classifications:
        out = result.classifications.add()
        for label, score in item.classes:
            out.classes.add(label=label, score=score)


async def classify(servable: Servable, request: Any) -> Any:
    """``ClassificationRequest`` -> ``ClassificationResponse``."""
    from tensorflow_serving.apis import classification_pb2

    sig, result = await inference.classify(servable, request.model_spec.signature_name,
                                           serialized_from_input(request.input))
    response = classification_pb2.ClassificationResponse()
    fill_model_spec(response.model_spec, servable, sig.name)
    _classification_result(response.result, result)
    return response


async def regress(servable: Servable, request: Any) -> Any:
    """``RegressionRequest`` -> ``RegressionResponse``."""
    from tensorflow_serving.apis import regression_pb2

    sig, values = await inference.regress(servable, request.model_spec.signature_name,
                                          serialized_from_input(request.input))
    response = regression_pb2.RegressionResponse()
    fill_model_spec(response.model_spec, servable, sig.name)
    for value in values:
        response.result.regressions.add(value=value)
    return response


def check_multi_inference(request: Any) -> None:
    """TF Serving's rules: at least one task, all on one model, distinct signatures."""
    tasks = list(request.tasks)
    if not tasks:
        raise BadRequest("MultiInferenceRequest must have at least one task")
    names = {t.model_spec.name for t in tasks}
    if len(names) != 1:
        raise BadRequest(f"All ModelSpecs in a MultiInferenceRequest must access the same model name; "
                         f"got {sorted(names)}")
    signatures = [t.model_spec.signature_name or DEFAULT_SIGNATURE for t in tasks]
    if len(set(signatures)) != len(signatures):
        raise BadRequest(f"Duplicate evaluation of signature: {signatures}")
    for task in tasks:
        if task.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
            raise BadRequest(f"Unsupported signature method_name: {task.method_name!r}; MultiInference runs "
                             f"{CLASSIFY_METHOD} and {REGRESS_METHOD} tasks")


async def multi_inference(servable: Servable, request: Any) -> Any:
    """``MultiInferenceRequest`` -> ``MultiInferenceResponse`` (every task on the same examples)."""
    from tensorflow_serving.apis import inference_pb2

    check_multi_inference(request)
    serialized = serialized_from_input(request.input)
    response = inference_pb2.MultiInferenceResponse()
    for task in request.tasks:
        out = response.results.add()
        if task.method_name == CLASSIFY_METHOD:
            sig, result = await inference.classify(servable, task.model_spec.signature_name, serialized)
            _classification_result(out.classification_result, result)
        else:
            sig, values = await inference.regress(servable, task.model_spec.signature_name, serialized)
            for value in values:
                out.regression_result.regressions.add(value=value)
        fill_model_spec(out.model_spec, servable, sig.name)
    return response


def metadata(servable: Servable, fields: list[str]) -> Any:
    """``GetModelMetadataResponse`` with the ``signature_def`` field (the only one TF Serving has)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    if not fields:
        raise BadRequest("GetModelMetadataRequest must specify at least one metadata_field")
    for field in fields:
        if field != SIGNATURE_DEF_FIELD:
            raise BadRequest(f"Metadata field {field} is not supported (only {SIGNATURE_DEF_FIELD!r})")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map())
    return response
