"""Request and response shapes, for the OpenAPI document at ``/docs`` and ``/openapi.json``.

The predict and classify bodies are parsed by hand (TF Serving clients send them with any
Content-Type, and a malformed body must get a precise 400), so their request schemas
are declared through ``openapi_extra`` with :func:`json_body`.

Example:
    >>> json_body(PredictRequest)["requestBody"]["required"]
    True
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_INSTANCE = ("One instance: the signature input's value (nested lists of numbers, a string, {\"b64\": ...}), or an "
             "object {\"<input name>\": value, ...} naming every input. tfpilot image models also take "
             "{\"b64\": \"<base64 PNG/JPEG>\"} images of any size.")


class PredictRequest(BaseModel):
    """TF Serving's predict request: ``instances`` (row form) or ``inputs`` (columnar form), not both."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"instances": [{"b64": "iVBORw0KGgo..."}]}]})

    signature_name: str | None = Field(None, description="The signature to run (default 'serving_default').")
    instances: list[Any] | None = Field(None, description="Row form: a list of instances. " + _INSTANCE)
    inputs: Any = Field(None, description="Columnar form: the input's whole tensor, or {\"<input name>\": tensor, ...}.")


class ClassifyRequest(PredictRequest):
    """TF Serving's classify request: ``examples`` (with an optional ``context``), or ``instances``/``inputs``."""

    examples: list[dict[str, Any]] | None = Field(
        None, description="A list of {\"<feature>\": instance} objects (one feature: the model's input).")
    context: dict[str, Any] | None = Field(None, description="Features shared by all examples.")


class RegressRequest(BaseModel):
    """TF Serving's regress request: ``examples`` (tf.Example features) and an optional shared ``context``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"examples": [{"x": 1.0}, {"x": 2.0}]}]})

    signature_name: str | None = Field(None, description="A regress signature (e.g. 'regress_x_to_y').")
    examples: list[dict[str, Any]] = Field(description="One {\"<feature>\": value or [values]} object per example.")
    context: dict[str, Any] | None = Field(None, description="Features shared by all examples.")


class PredictResponse(BaseModel):
    predictions: Any = Field(None, description="Row form: per instance, the output (or an object of outputs).")
    outputs: Any = Field(None, description="Columnar form: the output tensor (or an object of them).")


class ClassifyResponse(BaseModel):
    result: list[list[tuple[str, float]]] = Field(
        description="Per example: [label, score] pairs (tfpilot models: class names, best first).")


class RegressResponse(BaseModel):
    result: list[float] = Field(description="One regressed value per example.")


class ErrorResponse(BaseModel):
    error: str = Field(description="What was wrong, and how to fix it.")


class Score(BaseModel):
    label: str
    score: float


class FilePrediction(BaseModel):
    file: str = Field(description="The uploaded file's name (with ':line' for --lines text files).")
    label: str
    score: float
    top_k: list[Score]


class PredictFileResponse(BaseModel):
    model: str
    predictions: list[FilePrediction]


class ModelSummary(BaseModel):
    name: str
    version: str = Field(description="The latest available version ('' while none is).")
    versions: list[str] = Field(description="Every available version.")
    state: str
    error: str
    kind: str | None = Field(description="image or text for tfpilot classifiers, else null.")
    input_shape: list[int] | None
    num_classes: int
    backend: str
    signatures: list[str]


class ModelList(BaseModel):
    models: list[ModelSummary]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the (hand-parsed) JSON request body."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


#: Error responses every model route may give.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad request: the message says what was wrong."},
    404: {"model": ErrorResponse, "description": "No such model, version or label."},
    503: {"model": ErrorResponse, "description": "The model is loading, failed to load, or is overloaded."},
}
