"""The Open Inference Protocol (KServe V2, Triton's HTTP API), so KServe and Triton clients work.

* ``GET  /v2/health/live``, ``/v2/health/ready``, ``/v2`` (server metadata)
* ``GET  /v2/models/{name}[/versions/{version}]`` -- inputs and outputs of ``serving_default``
* ``GET  /v2/models/{name}[/versions/{version}]/ready``
* ``POST /v2/models/{name}[/versions/{version}]/infer`` -- JSON tensors, or the binary tensor
  extension (``Inference-Header-Content-Length``) as ``tritonclient`` sends by default;
  ``gzip``/``deflate`` request bodies. ``parameters.signature_name`` picks another signature.
* Triton's extensions (see :mod:`tfpilot.serving.kserve_models`): statistics
  (``GET /v2/models[/{name}[/versions/{version}]]/stats``), model configuration
  (``GET /v2/models/{name}[/versions/{version}]/config``) and the model repository
  (``POST /v2/repository/index``, ``/v2/repository/models/{name}/load`` and ``/unload``).

Errors are ``{"error": "..."}``; unknown models and versions are worded as Triton words them
("Request for unknown model: 'm' is not found").

Example:
    >>> import tritonclient.http as triton  # doctest: +SKIP
    >>> client = triton.InferenceServerClient("127.0.0.1:8501")  # doctest: +SKIP
    >>> x = triton.InferInput("x", [1, 2], "FP32"); x.set_data_from_numpy(np.ones((1, 2), "float32"))  # doctest: +SKIP
    >>> client.infer("two_signatures", [x]).as_numpy("y")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response

from tfpilot.serving.decode import parse_json
from tfpilot.serving.errors import BadRequest, PayloadTooLarge, ServingError, Unimplemented
from tfpilot.serving.kserve_models import EXTENSIONS, InferTimer, OipModels
from tfpilot.serving.kserve_tensors import HEADER_LENGTH, from_binary, from_json, to_binary, to_json
from tfpilot.serving.lookup import INLINE_BODY_BYTES, off_loop
from tfpilot.serving.servable import Servable
from tfpilot.serving.signatures import Signature
from tfpilot.serving.tensors import dtype_of_array

NAME = Path(description="The model's name.")
VERSION = Path(description="A version number.")


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise BadRequest(f"unsupported Content-Encoding {encoding!r}: send gzip, deflate or none")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the decompressed request body is larger than the limit of {limit} bytes")
    return out


def parse_infer_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """``(JSON header, binary tail)`` of an infer body."""
    if header_length is None:
        return parse_json(body), b""
    try:
        n = int(header_length)
    except ValueError:
        raise BadRequest(f"Inference-Header-Content-Length must be an integer; got {header_length!r}") from None
    if not 0 < n <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {n} does not fit the {len(body)}-byte body")
    return parse_json(body[:n]), body[n:]


def infer_inputs(header: dict[str, Any], binary: bytes) -> dict[str, np.ndarray]:
    """The named input arrays of an infer request (JSON ``data`` or binary chunks, in order)."""
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("an infer request needs \"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}, ...]")
    out: dict[str, np.ndarray] = {}
    offset = 0
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise BadRequest(f"input {i}: must be an object with a \"name\"")
        name = tensor["name"]
        where = f"input {name!r}"
        if name in out:
            raise BadRequest(f"{where} is given twice")
        params = tensor.get("parameters") or {}
        if not isinstance(params, dict):
            raise BadRequest(f"{where}: \"parameters\" must be an object")
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise BadRequest(f"{where}: binary_data_size {size!r} does not fit the {len(binary) - offset} "
                                 "binary bytes left")
            out[name] = from_binary(binary[offset : offset + size], tensor.get("datatype"), tensor.get("shape"), where)
            offset += size
        elif "data" in tensor:
            out[name] = from_json(tensor["data"], tensor.get("datatype"), tensor.get("shape"), where)
        else:
            raise BadRequest(f"{where}: give \"data\", or parameters.binary_data_size with binary data")
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    return out


def requested_outputs(header: dict[str, Any], sig: Signature) -> tuple[list[str], set[str]]:
    """The outputs asked for (all by default) and which of them go back as binary."""
    all_binary = bool((header.get("parameters") or {}).get("binary_data_output", False))
    outputs = header.get("outputs")
    if outputs is None:
        names = list(sig.outputs)
        return names, set(names) if all_binary else set()
    if not isinstance(outputs, list):
        raise BadRequest("\"outputs\" must be a list of {\"name\": ...} objects")
    names, binary = [], set()
    for o in outputs:
        name = o.get("name") if isinstance(o, dict) else None
        if name not in sig.outputs:
            raise BadRequest(f"unknown output {name!r}: signature {sig.name!r} has {list(sig.outputs)}")
        names.append(name)
        if (o.get("parameters") or {}).get("binary_data", all_binary):
            binary.add(name)
    return names, binary


def infer_response(servable: Servable, header: dict[str, Any], sig: Signature,
                   outputs: dict[str, np.ndarray]) -> Response:
    """The V2 response: JSON, or JSON header + binary tensors when asked for."""
    names, binary = requested_outputs(header, sig)
    tensors, chunks = [], []
    for name in names:
        arr = np.asarray(outputs[name])
        entry: dict[str, Any] = {"name": name, "datatype": dtype_of_array(arr).kserve, "shape": list(arr.shape)}
        if name in binary:
            raw = to_binary(arr)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = to_json(arr)
        tensors.append(entry)
    body: dict[str, Any] = {"model_name": servable.name, "model_version": str(servable.version), "outputs": tensors}
    if isinstance(header.get("id"), str):
        body["id"] = header["id"]
    text = json.dumps(body, allow_nan=True).encode()
    if not chunks:
        return Response(text, media_type="application/json")
    return Response(text + b"".join(chunks), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(text))})


def rows_of(inputs: dict[str, np.ndarray]) -> int:
    """Instances in a request: the first dimension of its inputs (1 for scalars)."""
    first = next(iter(inputs.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


async def infer(request: Request, name: str, version: str | None) -> Response:
    models = OipModels.of(request.app.state.core)
    record = models.resolve(name, version)
    with record.lease() as servable:
        timer = InferTimer(models.stats(servable))
        try:
            with servable.batcher.arriving():
                raw = await request.body()
                limit = request.app.state.settings.max_body_bytes

                def decode() -> tuple[dict[str, Any], Signature, dict[str, np.ndarray]]:
                    body = _decompress(raw, request.headers.get("content-encoding", "").strip().lower(), limit)
                    header, binary = parse_infer_body(body, request.headers.get(HEADER_LENGTH))
                    params = header.get("parameters") or {}
                    sig = servable.signature(params.get("signature_name") if isinstance(params, dict) else None)
                    return header, sig, infer_inputs(header, binary)

                header, sig, inputs = await off_loop(decode, heavy=len(raw) > INLINE_BODY_BYTES)
            timer.decoded()
            outputs = await servable.run(sig.name, inputs)
            timer.inferred()
            response = infer_response(servable, header, sig, outputs)
        except Exception:
            timer.failed()
            raise
        timer.done(rows_of(inputs))
        return response


async def _no_parameters(request: Request, what: str) -> None:
    """Refuse the repository parameters this server does not honour (``config``, ``file:...``)."""
    raw = await request.body()
    body = parse_json(raw) if raw.strip() else {}
    params = body.get("parameters") if isinstance(body, dict) else None
    if params is not None and not isinstance(params, dict):
        raise BadRequest(f"{what}: \"parameters\" must be an object")
    names = sorted(set(params or {}) - {"unload_dependents"})  # no model here depends on another
    if names:
        raise Unimplemented(f"{what}: parameters {names} are not supported; tfpilot loads "
                            "models from their configured base path")


def kserve_router(model_dependencies: Sequence[Any] = ()) -> APIRouter:
    """The V2 routes (models are looked up in ``app.state.core``).

    Args:
        model_dependencies: guard the model routes (the API key); health and server
            metadata stay open, as probes need them.
    """
    router = APIRouter(tags=["Open Inference Protocol (KServe V2)"])
    guard = list(model_dependencies)

    @router.get("/v2/health/live", summary="Server live")
    async def live() -> dict[str, bool]:
        """200 while the server answers."""
        return {"live": True}

    @router.get("/v2/health/ready", summary="Server ready", responses={503: {"description": "Not ready."}})
    async def ready(request: Request) -> JSONResponse:
        """200 once every model has a version available."""
        if request.app.state.core.ready:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "error": "not every model has a version available yet"}, 503)

    @router.get("/v2", summary="Server metadata")
    async def server_metadata() -> dict[str, Any]:
        """The server's name, version and protocol extensions."""
        from tfpilot import __version__

        return {"name": "tfpilot", "version": __version__, "extensions": list(EXTENSIONS)}

    def models(request: Request) -> OipModels:
        return OipModels.of(request.app.state.core)

    def is_ready(request: Request, name: str, version: str | None) -> JSONResponse:
        try:
            models(request).resolve(name, version)
        except ServingError as exc:
            return JSONResponse({"name": name, "ready": False, "error": str(exc.detail)}, exc.status_code)
        return JSONResponse({"name": name, "ready": True})

    @router.get("/v2/models/stats", summary="Statistics of every model", dependencies=guard)
    async def all_stats(request: Request) -> dict[str, Any]:
        """Triton's statistics extension: every available version of every model."""
        return models(request).statistics(None, None)

    @router.get("/v2/models/{name}", summary="Model metadata (V2)", dependencies=guard)
    async def model(request: Request, name: str = NAME) -> dict[str, Any]:
        """Name, versions, platform, and the default signature's inputs and outputs."""
        return models(request).metadata(name, None)

    @router.get("/v2/models/{name}/versions/{version}", summary="Model metadata (V2, one version)", dependencies=guard)
    async def model_version(request: Request, name: str = NAME, version: str = VERSION) -> dict[str, Any]:
        """The metadata of one version."""
        return models(request).metadata(name, version)

    @router.get("/v2/models/{name}/ready", summary="Model ready (V2)", dependencies=guard)
    async def model_ready(request: Request, name: str = NAME) -> JSONResponse:
        """200 when a version is available, 503 while loading."""
        return is_ready(request, name, None)

    @router.get("/v2/models/{name}/versions/{version}/ready", summary="Model ready (V2, one version)", dependencies=guard)
    async def model_version_ready(request: Request, name: str = NAME, version: str = VERSION) -> JSONResponse:
        """200 when that version is available."""
        return is_ready(request, name, version)

    @router.get("/v2/models/{name}/stats", summary="Model statistics", dependencies=guard)
    async def model_stats(request: Request, name: str = NAME) -> dict[str, Any]:
        """Triton's statistics extension: every available version of the model."""
        return models(request).statistics(name, None)

    @router.get("/v2/models/{name}/versions/{version}/stats", summary="Model statistics (one version)",
                dependencies=guard)
    async def model_version_stats(request: Request, name: str = NAME, version: str = VERSION) -> dict[str, Any]:
        """The statistics of one version."""
        return models(request).statistics(name, version)

    @router.get("/v2/models/{name}/config", summary="Model configuration", dependencies=guard)
    async def model_config(request: Request, name: str = NAME) -> dict[str, Any]:
        """Triton's model configuration extension: the servable as a Triton ``ModelConfig``."""
        return models(request).config(name, None)

    @router.get("/v2/models/{name}/versions/{version}/config", summary="Model configuration (one version)",
                dependencies=guard)
    async def model_version_config(request: Request, name: str = NAME, version: str = VERSION) -> dict[str, Any]:
        """The configuration of one version."""
        return models(request).config(name, version)

    @router.post("/v2/repository/index", summary="Model repository index", dependencies=guard)
    async def repository_index(request: Request) -> list[dict[str, Any]]:
        """Every configured model and version, with Triton's state (``{"ready": true}``: READY ones)."""
        raw = await request.body()
        body = parse_json(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise BadRequest("the index request must be a JSON object such as {\"ready\": true}")
        return models(request).index(bool(body.get("ready", False)))

    @router.post("/v2/repository/models/{name}/load", summary="Load a model", dependencies=guard)
    async def repository_load(request: Request, name: str = NAME) -> JSONResponse:
        """Serve an unloaded model again, or poll a served one's base path now (new versions load)."""
        await _no_parameters(request, "load")
        await models(request).load(name)
        return JSONResponse({})

    @router.post("/v2/repository/models/{name}/unload", summary="Unload a model", dependencies=guard)
    async def repository_unload(request: Request, name: str = NAME) -> JSONResponse:
        """Stop serving a model (after the requests under way); it stays in the index."""
        await _no_parameters(request, "unload")
        await models(request).unload(name)
        return JSONResponse({})

    infer_doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"type": "object", "required": ["name", "shape", "datatype"],
                                                  "properties": {"name": {"type": "string"},
                                                                 "shape": {"type": "array", "items": {"type": "integer"}},
                                                                 "datatype": {"type": "string"},
                                                                 "data": {"type": "array"}}}},
            "outputs": {"type": "array", "items": {"type": "object"}}}}}}}}

    @router.post("/v2/models/{name}/infer", summary="Infer (V2)", dependencies=guard, openapi_extra=infer_doc)
    async def model_infer(request: Request, name: str = NAME) -> Response:
        """Run the model on named tensors (JSON or the binary tensor extension)."""
        return await infer(request, name, None)

    @router.post("/v2/models/{name}/versions/{version}/infer", summary="Infer (V2, one version)", dependencies=guard,
                 openapi_extra=infer_doc)
    async def model_version_infer(request: Request, name: str = NAME, version: str = VERSION) -> Response:
        """Infer with one version."""
        return await infer(request, name, version)

    return router
