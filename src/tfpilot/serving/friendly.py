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
from tfpilot.serving.lookup import find_servable, off_loop
from tfpilot.serving.schemas import ERRORS, ModelList, PredictFileResponse

STATIC_DIR = Path(__file__).parent / "static"


def friendly_router() -> APIRouter:
    """The model list and the upload route (servables are looked up in ``app.state.servables``)."""
    router = APIRouter(tags=["Friendly API"])

    @router.get("/v1/models", summary="List models", response_model=ModelList)
    async def list_models(request: Request) -> dict[str, Any]:
        """Every served model: name, state (LOADING, AVAILABLE, END), input kind and shape, class count."""
        return {"models": [s.summary() for s in request.app.state.servables.values()]}

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
        servable = find_servable(request.app.state.servables, name)
        servable.require_ready()
        with servable.batcher.arriving():
            uploads = [(f.filename or f"file {i}", await f.read()) for i, f in enumerate(files)]
            if not uploads:
                raise BadRequest("no files uploaded: send multipart/form-data with one or more 'files' parts")
            batch, sources = await off_loop(servable.decoder.decode_files, uploads, lines, heavy=True)
        probs = await servable.predict(batch)
        results = servable.predictor.format(probs, top_k)
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
