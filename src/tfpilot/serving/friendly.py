"""Friendlier routes: the model list, file uploads with top-k answers, and the web page.

* ``GET  /v1/models`` -- every served model with its state
* ``POST /v1/models/{name}/predict-file`` -- multipart upload of images (or text files) ->
  top-k class names with probabilities per file
* ``GET  /`` -- the web page (assets under ``/static``, all served from the package)

Example:
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> app.include_router(friendly_router())
    >>> [r.path for r in app.routes if r.path.startswith("/v1")]
    ['/v1/models', '/v1/models/{name}/predict-file']
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from tfpilot.serving.errors import BadRequest
from tfpilot.serving.lookup import off_loop
from tfpilot.serving.schemas import ERRORS, ModelList, PredictFileResponse
from tfpilot.inference.predictor import top_k_result
from tfpilot.serving.signatures import client_signatures

STATIC_DIR = Path(__file__).parent / "static"


def model_summary(core: Any, name: str) -> dict[str, Any]:
    """One line of ``GET /v1/models``: state, versions, and what a tfpilot classifier takes."""
    manager = core.managers[name]
    state, error = core.state(name)
    versions = manager.available()
    servable = manager.records[versions[-1]].servable if versions else None
    spec = servable.input_spec if servable is not None and servable.is_tfpilot else None
    backend = getattr(servable, "backend", servable.kind if servable is not None else "")
    return {
        "name": name,
        "version": str(versions[-1]) if versions else "",
        "versions": [str(v) for v in versions],
        "state": state,
        "error": error,
        "kind": spec.kind if spec is not None else None,
        "input_shape": list(spec.shape) if spec is not None else None,
        "num_classes": len(servable.class_names) if servable is not None else 0,
        "backend": backend if isinstance(backend, str) else "",
        "signatures": client_signatures(servable.signatures) if servable is not None else [],
    }


def friendly_router() -> APIRouter:
    """The model list and the upload route (servables are looked up in ``app.state.servables``)."""
    router = APIRouter(tags=["Friendly API"])

    @router.get("/v1/models", summary="List models", response_model=ModelList)
    async def list_models(request: Request) -> dict[str, Any]:
        """Every served model: name, state (LOADING, AVAILABLE, END), versions, signatures; for tfpilot
        classifiers also the input kind and shape and the class count."""
        core = request.app.state.core
        return {"models": [model_summary(core, name) for name in core.managers]}

    @router.post("/v1/models/{name}/predict-file", summary="Predict uploaded files",
                 response_model=PredictFileResponse, responses=ERRORS)
    async def predict_file(
        request: Request,
        name: str,
        files: Annotated[list[UploadFile], File(description="Images (PNG, JPEG, BMP, GIF), or UTF-8 text files "
                                                             "for a text model.")],
        top_k: Annotated[int, Query(ge=1, le=1000, description="How many classes to return per file.")] = 5,
        lines: Annotated[bool, Query(description="Text models: one prediction per non-empty line.")] = False,
    ) -> JSONResponse:
        """Top-k class names with probabilities for each uploaded file."""
        record = request.app.state.core.resolve(name)
        with record.lease() as servable:
            if not servable.is_tfpilot:
                raise BadRequest(f"model {name!r} is not a tfpilot classifier (no class names or raw-input "
                                 "decoding): use its :predict route")
            with servable.batcher.arriving():
                uploads = [(f.filename or f"file {i}", await f.read()) for i, f in enumerate(files)]
                if not uploads:
                    raise BadRequest("no files uploaded: send multipart/form-data with one or more 'files' parts")
                batch, sources = await off_loop(servable.decoder.decode_files, uploads, lines, heavy=True)
            probs = await servable.probabilities(batch)
            results = [top_k_result(p, servable.class_names, top_k) for p in probs]
        predictions = [{"file": src, **r} for src, r in zip(sources, results, strict=True)]
        return JSONResponse({"model": name, "predictions": predictions})

    return router


def web_router() -> APIRouter:
    """``GET /``: the web page."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return router
