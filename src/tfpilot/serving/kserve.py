"""The Open Inference Protocol (KServe V2, Triton's HTTP API), so KServe and Triton clients work.

* ``GET  /v2/health/live``, ``/v2/health/ready``, ``/v2`` (server metadata)
* ``GET  /v2/models/{name}[/versions/{version}]`` -- inputs and outputs of ``serving_default``
* ``GET  /v2/models/{name}[/versions/{version}]/ready``
* ``POST /v2/models/{name}[/versions/{version}]/infer`` -- JSON tensors, or the binary tensor
  extension (``Inference-Header-Content-Length``) as ``tritonclient`` sends by default;
  ``gzip``/``deflate`` request bodies. ``parameters.signature_name`` picks another signature.

Errors are ``{"error": "..."}`` with the same statuses as the TF Serving API.

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
from tfpilot.serving.errors import BadRequest, PayloadTooLarge, Unavailable
from tfpilot.serving.kserve_tensors import HEADER_LENGTH, from_binary, from_json, to_binary, to_json
from tfpilot.serving.lookup import INLINE_BODY_BYTES, off_loop
from tfpilot.serving.servable import Servable
from tfpilot.serving.signatures import DEFAULT_SIGNATURE, Signature
from tfpilot.serving.tensors import dtype_of_array
from tfpilot.serving.tf_serving import parse_version

NAME = Path(description="The model's name.")
VERSION = Path(description="A version number.")


def _tensor_meta(sig: Signature, which: str) -> list[dict[str, Any]]:
    infos = sig.inputs if which == "inputs" else sig.outputs
    return [{"name": k, "datatype": v.dtype.kserve, "shape": [-1 if d is None else d for d in (v.shape or ())]}
            for k, v in infos.items()]


def model_metadata(servable: Servable, versions: list[int]) -> dict[str, Any]:
    """V2 model metadata: the default signature's tensors (``platform`` says what serves it)."""
    sig = servable.signatures.get(DEFAULT_SIGNATURE) or next(iter(servable.signatures.values()))
    platform = "tensorflow_savedmodel" if servable.kind == "saved_model" else f"tfpilot_{getattr(servable, 'backend', '')}"
    return {"name": servable.name, "versions": [str(v) for v in versions], "platform": platform,
            "inputs": _tensor_meta(sig, "inputs"), "outputs": _tensor_meta(sig, "outputs")}


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


def _requested(header: dict[str, Any], sig: Signature) -> tuple[list[str], set[str]]:
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
    names, binary = _requested(header, sig)
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


async def infer(request: Request, name: str, version: str | None) -> Response:
    core = request.app.state.core
    record = core.resolve(name, parse_version(version))
    with record.lease() as servable:
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
        outputs = await servable.run(sig.name, inputs)
        return infer_response(servable, header, sig, outputs)


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

        return {"name": "tfpilot", "version": __version__, "extensions": ["binary_tensor_data"]}

    def meta(request: Request, name: str, version: str | None) -> dict[str, Any]:
        manager = request.app.state.core.manager(name)
        record = manager.resolve(parse_version(version))
        return model_metadata(record.servable, manager.available())

    def is_ready(request: Request, name: str, version: str | None) -> JSONResponse:
        manager = request.app.state.core.manager(name)
        try:
            manager.resolve(parse_version(version))
        except Unavailable as exc:
            return JSONResponse({"name": name, "ready": False, "error": str(exc.detail)}, 503)
        return JSONResponse({"name": name, "ready": True})

    @router.get("/v2/models/{name}", summary="Model metadata (V2)", dependencies=guard)
    async def model(request: Request, name: str = NAME) -> dict[str, Any]:
        """Name, versions, platform, and the default signature's inputs and outputs."""
        return meta(request, name, None)

    @router.get("/v2/models/{name}/versions/{version}", summary="Model metadata (V2, one version)", dependencies=guard)
    async def model_version(request: Request, name: str = NAME, version: str = VERSION) -> dict[str, Any]:
        """The metadata of one version."""
        return meta(request, name, version)

    @router.get("/v2/models/{name}/ready", summary="Model ready (V2)", dependencies=guard)
    async def model_ready(request: Request, name: str = NAME) -> JSONResponse:
        """200 when a version is available, 503 while loading."""
        return is_ready(request, name, None)

    @router.get("/v2/models/{name}/versions/{version}/ready", summary="Model ready (V2, one version)", dependencies=guard)
    async def model_version_ready(request: Request, name: str = NAME, version: str = VERSION) -> JSONResponse:
        """200 when that version is available."""
        return is_ready(request, name, version)

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
