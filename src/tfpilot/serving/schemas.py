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

_INSTANCE = ("One instance: an image as nested lists [H][W][C] of 0..255 numbers or {\"b64\": \"<base64 "
             "PNG/JPEG>\"}; a text as a string; or an object {\"<input name>\": instance}.")


class PredictRequest(BaseModel):
    """TF Serving's predict request: ``instances`` (row form) or ``inputs`` (columnar form), not both."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"instances": [{"b64": "iVBORw0KGgo..."}]}]})

    signature_name: str | None = Field(None, description="Optional; tfpilot models have 'serving_default'.")
    instances: list[Any] | None = Field(None, description="Row form: a list of instances. " + _INSTANCE)
    inputs: list[Any] | dict[str, list[Any]] | None = Field(
        None, description="Columnar form: the batch, or {\"<input name>\": batch}.")


class ClassifyRequest(PredictRequest):
    """TF Serving's classify request: ``examples`` (with an optional ``context``), or ``instances``/``inputs``."""

    examples: list[dict[str, Any]] | None = Field(
        None, description="A list of {\"<feature>\": instance} objects (one feature: the model's input).")
    context: dict[str, Any] | None = Field(None, description="Features shared by all examples.")


class PredictResponse(BaseModel):
    predictions: list[list[float]] | None = Field(None, description="Row form: class probabilities per instance.")
    outputs: list[list[float]] | None = Field(None, description="Columnar form: class probabilities per instance.")


class ClassifyResponse(BaseModel):
    result: list[list[tuple[str, float]]] = Field(
        description="Per example: [class name, score] pairs, best first.")


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
    version: str
    state: str
    error: str
    kind: str | None
    input_shape: list[int] | None
    num_classes: int
    backend: str


class ModelList(BaseModel):
    models: list[ModelSummary]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the (hand-parsed) JSON request body."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


#: Error responses every model route may give.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad request: the message says what was wrong."},
    404: {"model": ErrorResponse, "description": "No such model or version."},
    503: {"model": ErrorResponse, "description": "The model is loading, failed to load, or is overloaded."},
}
