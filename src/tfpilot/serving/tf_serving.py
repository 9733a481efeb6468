"""TF Serving's REST API, so a client written for TF Serving works unchanged.

Every route exists three ways: ``/v1/models/{name}`` (the latest available version),
``/v1/models/{name}/versions/{version}`` and ``/v1/models/{name}/labels/{label}``:

* ``GET  ...`` -- ``GetModelStatusResponse`` (every version with its state and status)
* ``GET  .../metadata`` -- ``model_spec`` and the ``signature_def`` map
* ``POST ...:predict`` -- row (``instances``) or columnar (``inputs``) format, any signature
* ``POST ...:classify`` / ``...:regress`` -- ``examples`` (+ ``context``) for classify and
  regress signatures; ``{"results": [[[label, score], ...], ...]}`` / ``{"results": [value, ...]}``
  (the key TF Serving's server writes, ``kClassifyRegressResponseKey``, though its REST guide says
  ``result``)

tfpilot's own models answer predict and classify in tfpilot's shapes (see
:mod:`~tfpilot.serving.rest_tfpilot`); a SavedModel from ``tfpilot export`` answers as TF
Serving would, and also takes ``{"b64": ...}`` images and ``:classify`` with class names.

Example:
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> app.include_router(tf_serving_router())
    >>> sorted({r.path for r in app.routes if r.path.startswith("/v1")})[:2]
    ['/v1/models/{name}', '/v1/models/{name}/labels/{label}']
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from tfpilot.serving import inference, rest_tfpilot
from tfpilot.serving.decode import parse_json
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.examples import serialized_from_json
from tfpilot.serving.lookup import INLINE_BODY_BYTES, json_answer, off_loop
from tfpilot.serving.rest_json import json_inputs, json_outputs, signature_name
from tfpilot.serving.schemas import (
    ERRORS,
    ClassifyRequest,
    ClassifyResponse,
    PredictRequest,
    PredictResponse,
    RegressRequest,
    RegressResponse,
    json_body,
)
from tfpilot.serving.servable import Servable
from tfpilot.serving.signatures import CLASSIFY_METHOD, proto_json
from tfpilot.serving.tensors import array_to_json

NAME = Path(description="The model's name (see GET /v1/models).")
VERSION = Path(description="A version number (a numbered folder of the model's base path).")
LABEL = Path(description="A version label of the model config (e.g. stable).")
VERBS = ("predict", "classify", "regress")
INT64_MAX = 2**63 - 1
#: The key of classify and regress answers (TF Serving's ``util/json_tensor.cc``).
RESULTS = "results"
TOP_K = Query(None, ge=1, le=100_000, description="tfpilot models: only the best k classes (default: all).")


def parse_version(version: str | None) -> int | None:
    """A URL's version as a number; a 400 for anything else."""
    if version is None:
        return None
    if not version.isdigit() or int(version) > INT64_MAX:
        raise BadRequest(f"Failed to convert version: {version} to numeric.")
    return int(version)


def _core(request: Request) -> Any:
    return request.app.state.core


def _wrong_method(core: Any, name: str, tail: str | None) -> None:
    """A 405 for ``GET ...:predict`` (the status route matched it)."""
    text = tail if tail is not None else name
    verb = text.rpartition(":")[2] if ":" in text else ""
    base = name.partition(":")[0]
    if verb in VERBS and base in core.managers:
        raise HTTPException(405, f"Method Not Allowed: :{verb} takes POST with a JSON body")


def status(request: Request, name: str, version: str | None = None, label: str | None = None) -> JSONResponse:
    _wrong_method(_core(request), name, version or label)
    manager = _core(request).manager(name)
    return JSONResponse(proto_json(manager.status_proto(parse_version(version), label)))


def metadata(request: Request, name: str, version: str | None = None, label: str | None = None) -> JSONResponse:
    servable = _core(request).resolve(name, parse_version(version), label).servable
    spec = {"name": servable.name, "signature_name": "", "version": str(servable.version)}
    body = {"model_spec": spec, "metadata": {"signature_def": proto_json(servable.signature_def_map()),
                                              **servable.extras()}}
    return JSONResponse(body)


def _image_hook(servable: Servable) -> Any:
    """tfpilot's extra: ``{"b64": ...}`` images for a tfpilot SavedModel's uint8 input, decoded and resized."""
    spec = servable.input_spec
    if not servable.is_tfpilot or spec is None or spec.kind != "image":
        return None
    raw = getattr(servable, "raw_input", "")

    def hook(name: str, values: list[Any]) -> np.ndarray | None:
        if name != raw or not any(isinstance(v, dict) for v in values):
            return None
        return servable.decoder.decode(values)

    return hook


async def _generic_predict(servable: Servable, request: Request) -> Response:
    with servable.batcher.arriving():
        body = await request.body()

        def decode() -> tuple[Any, dict[str, np.ndarray], str]:
            payload = parse_json(body)
            sig = servable.signature(signature_name(payload))
            inputs, form = json_inputs(payload, sig, _image_hook(servable))
            return sig, inputs, form

        sig, inputs, form = await off_loop(decode, heavy=len(body) > INLINE_BODY_BYTES or b'"b64"' in body)
    outputs = await servable.run(sig.name, inputs)
    numbers = sum(int(np.size(v)) for v in outputs.values())
    return await json_answer(lambda: json_outputs(outputs, form, array_to_json), numbers)


async def predict(request: Request, name: str, version: str | None = None, label: str | None = None) -> Response:
    record = _core(request).resolve(name, parse_version(version), label)
    with record.lease() as servable:
        if servable.legacy_rest:
            return await rest_tfpilot.predict(servable, request)
        return await _generic_predict(servable, request)


def _serialized(payload: dict[str, Any], verb: str) -> list[bytes]:
    if "examples" not in payload:
        raise BadRequest(f"When method is {verb}, key 'examples' is expected and was not found: send "
                         "{\"examples\": [{\"<feature>\": value, ...}, ...], \"context\": {...}}")
    return serialized_from_json(payload["examples"], payload.get("context"))


async def _read_examples(servable: Servable, request: Request, verb: str) -> tuple[bytes, Any, list[bytes] | None]:
    """The body, its signature and -- unless tfpilot answers it with class names -- its serialized examples."""
    with servable.batcher.arriving():
        body = await request.body()
        heavy = len(body) > INLINE_BODY_BYTES
        payload = await off_loop(parse_json, body, heavy=heavy)
        sig = servable.signature(signature_name(payload))
        if verb == "classify" and servable.is_tfpilot and sig.method_name != CLASSIFY_METHOD:
            return body, sig, None
        return body, sig, await off_loop(_serialized, payload, verb, heavy=heavy)


async def classify(request: Request, name: str, version: str | None = None, label: str | None = None,
                   top_k: int | None = None) -> Response:
    record = _core(request).resolve(name, parse_version(version), label)
    with record.lease() as servable:
        if servable.legacy_rest:
            return await rest_tfpilot.classify(servable, request, top_k)
        body, sig, serialized = await _read_examples(servable, request, "classify")
        if serialized is None:  # a tfpilot export's predict signature: class names, as tfpilot answers
            return await rest_tfpilot.classify_body(servable, body, top_k)
        _, result = await inference.classify(servable, sig.name, serialized)
    return await json_answer(lambda: {RESULTS: [inference.classification_pairs(r) for r in result]},
                             sum(len(r.classes) for r in result))


async def regress(request: Request, name: str, version: str | None = None, label: str | None = None) -> Response:
    record = _core(request).resolve(name, parse_version(version), label)
    with record.lease() as servable:
        if servable.legacy_rest:
            raise BadRequest("tfpilot models are classifiers: use :predict (probabilities) or :classify (class names)")
        _, sig, serialized = await _read_examples(servable, request, "regress")
        _, values = await inference.regress(servable, sig.name, serialized or [])
    return JSONResponse({RESULTS: values})


def tf_serving_router() -> APIRouter:
    """The TF Serving routes (models are looked up in ``app.state.core``)."""
    router = APIRouter(tags=["TF Serving API"], responses=ERRORS)
    predict_doc = dict(openapi_extra=json_body(PredictRequest), response_model=None,
                       responses={200: {"model": PredictResponse, "description": "The signature's outputs."}})
    classify_doc = dict(openapi_extra=json_body(ClassifyRequest), response_model=None,
                        responses={200: {"model": ClassifyResponse, "description": "Labels with scores."}})
    regress_doc = dict(openapi_extra=json_body(RegressRequest), response_model=None,
                       responses={200: {"model": RegressResponse, "description": "One value per example."}})

    # POST routes first: a request path is matched against the routes in order
    # -- predict --------------------------------------------------------------------------------
    @router.post("/v1/models/{name}:predict", summary="Predict", **predict_doc)
    async def model_predict(request: Request, name: str = NAME) -> Response:
        """The outputs of a signature for ``instances`` (answered as ``predictions``) or ``inputs`` (``outputs``)."""
        return await predict(request, name)

    @router.post("/v1/models/{name}/versions/{version}:predict", summary="Predict (one version)", **predict_doc)
    async def version_predict(request: Request, name: str = NAME, version: str = VERSION) -> Response:
        """Predict with one version."""
        return await predict(request, name, version=version)

    @router.post("/v1/models/{name}/labels/{label}:predict", summary="Predict (one label)", **predict_doc)
    async def label_predict(request: Request, name: str = NAME, label: str = LABEL) -> Response:
        """Predict with the version a label names."""
        return await predict(request, name, label=label)

    # -- classify -------------------------------------------------------------------------------
    @router.post("/v1/models/{name}:classify", summary="Classify", **classify_doc)
    async def model_classify(request: Request, name: str = NAME, top_k: int | None = TOP_K) -> Response:
        """``[label, score]`` pairs per example (a classify signature; tfpilot models: class names, best first)."""
        return await classify(request, name, top_k=top_k)

    @router.post("/v1/models/{name}/versions/{version}:classify", summary="Classify (one version)", **classify_doc)
    async def version_classify(request: Request, name: str = NAME, version: str = VERSION,
                               top_k: int | None = TOP_K) -> Response:
        """Classify with one version."""
        return await classify(request, name, version=version, top_k=top_k)

    @router.post("/v1/models/{name}/labels/{label}:classify", summary="Classify (one label)", **classify_doc)
    async def label_classify(request: Request, name: str = NAME, label: str = LABEL,
                             top_k: int | None = TOP_K) -> Response:
        """Classify with the version a label names."""
        return await classify(request, name, label=label, top_k=top_k)

    # -- regress --------------------------------------------------------------------------------
    @router.post("/v1/models/{name}:regress", summary="Regress", **regress_doc)
    async def model_regress(request: Request, name: str = NAME) -> Response:
        """One value per example (a regress signature)."""
        return await regress(request, name)

    @router.post("/v1/models/{name}/versions/{version}:regress", summary="Regress (one version)", **regress_doc)
    async def version_regress(request: Request, name: str = NAME, version: str = VERSION) -> Response:
        """Regress with one version."""
        return await regress(request, name, version=version)

    @router.post("/v1/models/{name}/labels/{label}:regress", summary="Regress (one label)", **regress_doc)
    async def label_regress(request: Request, name: str = NAME, label: str = LABEL) -> Response:
        """Regress with the version a label names."""
        return await regress(request, name, label=label)

    # -- status ---------------------------------------------------------------------------------
    @router.get("/v1/models/{name}", summary="Model status")
    async def model_status(request: Request, name: str = NAME) -> JSONResponse:
        """TF Serving's model status: every version with its state (LOADING, AVAILABLE, UNLOADING, END)."""
        return status(request, name)

    @router.get("/v1/models/{name}/versions/{version}", summary="Model status (one version)")
    async def version_status(request: Request, name: str = NAME, version: str = VERSION) -> JSONResponse:
        """The status of one version."""
        return status(request, name, version=version)

    @router.get("/v1/models/{name}/labels/{label}", summary="Model status (one label)")
    async def label_status(request: Request, name: str = NAME, label: str = LABEL) -> JSONResponse:
        """The status of the version a label names."""
        return status(request, name, label=label)

    # -- metadata -------------------------------------------------------------------------------
    @router.get("/v1/models/{name}/metadata", summary="Model metadata")
    async def model_metadata(request: Request, name: str = NAME) -> JSONResponse:
        """``model_spec`` and every signature (inputs and outputs with dtype and shape, method)."""
        return metadata(request, name)

    @router.get("/v1/models/{name}/versions/{version}/metadata", summary="Model metadata (one version)")
    async def version_metadata(request: Request, name: str = NAME, version: str = VERSION) -> JSONResponse:
        """The metadata of one version."""
        return metadata(request, name, version=version)

    @router.get("/v1/models/{name}/labels/{label}/metadata", summary="Model metadata (one label)")
    async def label_metadata(request: Request, name: str = NAME, label: str = LABEL) -> JSONResponse:
        """The metadata of the version a label names."""
        return metadata(request, name, label=label)

    return router
