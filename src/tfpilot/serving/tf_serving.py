"""TF Serving's REST API, so a client written for TF Serving works unchanged.

* ``GET  /v1/models/{name}[/versions/1]`` -- model status
* ``GET  /v1/models/{name}[/versions/1]/metadata`` -- signature, input spec, class names
* ``POST /v1/models/{name}[/versions/1]:predict`` -- ``{"instances"|"inputs": ...}`` ->
  ``{"predictions"|"outputs": [[p_0, ..., p_k], ...]}``
* ``POST /v1/models/{name}[/versions/1]:classify`` -- ``{"examples"|"instances"|"inputs": ...}`` ->
  ``{"result": [[[class name, score], ...], ...]}``

Example:
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> app.include_router(tf_serving_router())
    >>> sorted({r.path for r in app.routes if r.path.startswith("/v1")})[:2]
    ['/v1/models/{name}', '/v1/models/{name}/metadata']
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from tfpilot.serving.decode import parse_json, request_instances
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.lookup import INLINE_BODY_BYTES, check_top_k, find_servable, json_answer, off_loop
from tfpilot.serving.schemas import (
    ERRORS,
    ClassifyRequest,
    ClassifyResponse,
    PredictRequest,
    PredictResponse,
    json_body,
)

NAME = Path(description="The model's name (see GET /v1/models).")
VERSION = Path(description="The model version; tfpilot serves version 1.")


def _servable(request: Request, name: str, version: str | None = None) -> Any:
    return find_servable(request.app.state.servables, name, version)


async def _decoded(servable: Any, request: Request, verb: str) -> tuple[np.ndarray, str]:
    """Read, parse and decode the body while the batcher knows the request is coming."""
    servable.require_ready()
    with servable.batcher.arriving():
        body = await request.body()

        def decode() -> tuple[np.ndarray, str]:
            raw, form = request_instances(parse_json(body), verb)
            return servable.decoder.decode(raw), form

        heavy = len(body) > INLINE_BODY_BYTES or (servable.input_spec.kind == "image" and b'"b64"' in body)
        return await off_loop(decode, heavy=heavy)


async def _predict(request: Request, name: str, version: str | None) -> Response:
    servable = _servable(request, name, version)
    batch, form = await _decoded(servable, request, "predict")
    probs = await servable.predict(batch)
    key = "predictions" if form == "row" else "outputs"
    return await json_answer(lambda: {key: probs.tolist()}, probs.size)


async def _classify(request: Request, name: str, version: str | None, top_k: int | None) -> Response:
    servable = _servable(request, name, version)
    batch, _ = await _decoded(servable, request, "classify")
    probs = await servable.predict(batch)
    k = check_top_k(top_k, probs.shape[1])
    names = servable.class_names

    def content() -> dict[str, Any]:
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return {"result": [[[names[j], float(row[j])] for j in idx] for row, idx in zip(probs, order, strict=True)]}

    return await json_answer(content, probs.size)


def tf_serving_router() -> APIRouter:
    """The TF Serving routes (servables are looked up in ``app.state.servables``)."""
    router = APIRouter(tags=["TF Serving API"], responses=ERRORS)

    @router.get("/v1/models/{name}", summary="Model status")
    async def model_status(request: Request, name: str = NAME) -> dict[str, Any]:
        """TF Serving's model status (state LOADING, AVAILABLE, or END with the error)."""
        return _servable(request, name).status()

    @router.get("/v1/models/{name}/versions/{version}", summary="Model status (one version)")
    async def model_version_status(request: Request, name: str = NAME, version: str = VERSION) -> dict[str, Any]:
        """TF Serving's model status for one version."""
        return _servable(request, name, version).status()

    @router.get("/v1/models/{name}/metadata", summary="Model metadata")
    async def model_metadata(request: Request, name: str = NAME) -> dict[str, Any]:
        """The serving signature (input name, dtype, shape; output shape), input spec and class names."""
        return _servable(request, name).metadata()

    @router.get("/v1/models/{name}/versions/{version}/metadata", summary="Model metadata (one version)")
    async def model_version_metadata(request: Request, name: str = NAME, version: str = VERSION) -> dict[str, Any]:
        """The metadata of one version."""
        return _servable(request, name, version).metadata()

    predict_doc = dict(openapi_extra=json_body(PredictRequest), response_model=None,
                       responses={200: {"model": PredictResponse, "description": "Class probabilities."}})

    @router.post("/v1/models/{name}:predict", summary="Predict", **predict_doc)
    async def predict(request: Request, name: str = NAME) -> Response:
        """Class probabilities for ``instances`` (answered as ``predictions``) or ``inputs`` (``outputs``)."""
        return await _predict(request, name, None)

    @router.post("/v1/models/{name}/versions/{version}:predict", summary="Predict (one version)", **predict_doc)
    async def predict_version(request: Request, name: str = NAME, version: str = VERSION) -> Response:
        """Predict with one version."""
        return await _predict(request, name, version)

    top_k = Query(None, ge=1, le=100_000, description="Only the best k classes (default: all).")
    classify_doc = dict(openapi_extra=json_body(ClassifyRequest), response_model=None,
                        responses={200: {"model": ClassifyResponse, "description": "Class names with scores."}})

    @router.post("/v1/models/{name}:classify", summary="Classify", **classify_doc)
    async def classify(request: Request, name: str = NAME, top_k: int | None = top_k) -> Response:
        """[class name, score] pairs per example, best first."""
        return await _classify(request, name, None, top_k)

    @router.post("/v1/models/{name}/versions/{version}:classify", summary="Classify (one version)", **classify_doc)
    async def classify_version(request: Request, name: str = NAME, version: str = VERSION,
                               top_k: int | None = top_k) -> Response:
        """Classify with one version."""
        return await _classify(request, name, version, top_k)

    @router.post("/v1/models/{name}:regress", include_in_schema=False)
    async def regress(request: Request, name: str) -> JSONResponse:
        _servable(request, name)
        raise BadRequest("tfpilot models are classifiers: use :predict (probabilities) or :classify (class names)")

    return router
