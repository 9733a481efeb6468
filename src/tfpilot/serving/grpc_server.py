"""TF Serving's gRPC API: ``PredictionService`` and ``ModelService``, with ``tensorflow_serving.apis``' protos.

The services run on gRPC's threaded server beside the REST app's event loop, and a gRPC
request goes through the same :class:`~tfpilot.serving.core.ServerCore` lookup, version lease
and micro-batcher as a REST one -- the two protocols share model calls. ``Predict`` runs in the
call's own thread: when the model is idle it is called right there (no hand-off to the event
loop and back, which on a small model is a large part of a call's time); when it is busy, the
request joins the batch that forms for the next call. The other methods run on the event loop.

* ``PredictionService``: ``Predict``, ``Classify``, ``Regress``, ``MultiInference``,
  ``GetModelMetadata``;
* ``ModelService``: ``GetModelStatus``, ``HandleReloadConfigRequest`` (serve exactly the
  ``ModelServerConfig`` sent, as ``--model_config_file`` would).

Errors are TF Serving's status codes (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, ...) with the
same messages as REST. With ``--api-key`` the metadata must carry ``x-api-key: KEY`` or
``authorization: Bearer KEY``.

Example:
    >>> import grpc  # doctest: +SKIP
    >>> from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # doctest: +SKIP
    >>> stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel("127.0.0.1:8500"))  # doctest: +SKIP
    >>> request = predict_pb2.PredictRequest()  # doctest: +SKIP
    >>> request.model_spec.name = "half_plus_two"  # doctest: +SKIP
    >>> request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0]]))  # doctest: +SKIP
    >>> stub.Predict(request, timeout=10).outputs["y"]  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import grpc
import orjson
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc, prediction_service_pb2_grpc

from tfpilot.errors import UserError
from tfpilot.serving import protocol
from tfpilot.serving.core import ServerCore
from tfpilot.serving.errors import BadRequest, ServingError, Unauthorized, error_for_code
from tfpilot.serving.kserve_grpc import add_inference_service
from tfpilot.serving.metrics import ServingMetrics
from tfpilot.serving.model_config import ConfigError, from_proto

log = logging.getLogger("tfpilot.serving")
access_log = logging.getLogger("tfpilot.serving.access")


def spec_version(spec: Any) -> tuple[int | None, str | None]:
    """``(version, label)`` a ``ModelSpec`` asks for (both None: the latest)."""
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return spec.version.value, None
    if choice == "version_label":
        return None, spec.version_label
    return None, None


class _Guard:
    """Checks the API key, times the call, records metrics and the access log line."""

    def __init__(self, api_key: str | None, metrics: ServingMetrics | None, access: bool) -> None:
        self.want = api_key.encode() if api_key else None
        self.metrics = metrics
        self.access = access

    def check_key(self, context: Any) -> None:
        if self.want is None:
            return
        metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        given = metadata.get("x-api-key")
        if given is None and str(metadata.get("authorization", "")).startswith("Bearer "):
            given = str(metadata["authorization"])[len("Bearer "):]
        if given is None:
            raise Unauthorized("this server needs an API key: send the metadata 'x-api-key: KEY' or "
                               "'authorization: Bearer KEY'")
        if not hmac.compare_digest(str(given).encode("utf-8", "surrogateescape"), self.want):
            raise Unauthorized("wrong API key")

    def run(self, method: str, context: Any, call: Callable[[], Any]) -> Any:
        """``call()``'s answer; a :class:`ServingError` aborts the call with its status code."""
        t0 = time.perf_counter()
        code = "OK"
        try:
            self.check_key(context)
            return call()
        except ServingError as exc:
            code = exc.code
            context.abort(grpc.StatusCode[exc.code], str(exc.detail))
        except Exception:
            code = "INTERNAL"
            raise
        finally:
            seconds = time.perf_counter() - t0
            if self.metrics is not None:
                self.metrics.observe_request("GRPC", method, code, seconds)
            if self.access:
                access_log.info(orjson.dumps({
                    "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": "access",
                    "protocol": "grpc", "client": context.peer(), "method": "POST", "path": method, "route": method,
                    "status": code, "duration_ms": round(seconds * 1000, 3),
                }).decode())


class _OnLoop:
    """Runs a coroutine on the server's event loop from a gRPC thread and waits for its answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def __call__(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService``.

    Args:
        core: the server's models.
        guard: API key, metrics and access log.
        on_loop: runs a coroutine on the server's event loop.
    """

    SERVICE = "/tensorflow.serving.PredictionService/"

    def __init__(self, core: ServerCore, guard: _Guard, on_loop: _OnLoop) -> None:
        self.core = core
        self.guard = guard
        self.on_loop = on_loop

    def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802 -- gRPC method names
        def call() -> Any:  # in this thread: an idle model is called right here
            version, label = spec_version(request.model_spec)
            with self.core.lease(request.model_spec.name, version, label) as servable:
                return protocol.predict_blocking(servable, request)

        return self.guard.run(self.SERVICE + "Predict", context, call)

    def Classify(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._on_model("Classify", request, context, protocol.classify)

    def Regress(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._on_model("Regress", request, context, protocol.regress)

    def _on_model(self, name: str, request: Any, context: Any,
                  fn: Callable[[Any, Any], Coroutine[Any, Any, Any]]) -> Any:
        async def call() -> Any:
            version, label = spec_version(request.model_spec)
            with self.core.lease(request.model_spec.name, version, label) as servable:
                return await fn(servable, request)

        return self.guard.run(self.SERVICE + name, context, lambda: self.on_loop(call()))

    def MultiInference(self, request: Any, context: Any) -> Any:  # noqa: N802
        async def call() -> Any:
            protocol.check_multi_inference(request)
            spec = request.tasks[0].model_spec
            version, label = spec_version(spec)
            with self.core.lease(spec.name, version, label) as servable:
                return await protocol.multi_inference(servable, request)

        return self.guard.run(self.SERVICE + "MultiInference", context, lambda: self.on_loop(call()))

    def GetModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        async def call() -> Any:
            version, label = spec_version(request.model_spec)
            servable = self.core.resolve(request.model_spec.name, version, label).servable
            return protocol.metadata(servable, list(request.metadata_field))

        return self.guard.run(self.SERVICE + "GetModelMetadata", context, lambda: self.on_loop(call()))


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService`` (on the event loop, where the versions change).

    Args:
        core: the server's models.
        guard: API key, metrics and access log.
        on_loop: runs a coroutine on the server's event loop.
        reload_wait_s: longest ``HandleReloadConfigRequest`` waits for new models' first load.
    """

    SERVICE = "/tensorflow.serving.ModelService/"

    def __init__(self, core: ServerCore, guard: _Guard, on_loop: _OnLoop, reload_wait_s: float = 300.0) -> None:
        self.core = core
        self.guard = guard
        self.on_loop = on_loop
        self.reload_wait_s = reload_wait_s

    def GetModelStatus(self, request: Any, context: Any) -> Any:  # noqa: N802
        async def call() -> Any:
            if not request.HasField("model_spec"):
                raise BadRequest("Missing ModelSpec")
            version, label = spec_version(request.model_spec)
            return self.core.manager(request.model_spec.name).status_proto(version, label)

        return self.guard.run(self.SERVICE + "GetModelStatus", context, lambda: self.on_loop(call()))

    def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:  # noqa: N802
        async def call() -> Any:
            if request.config.WhichOneof("config") != "model_config_list":
                raise BadRequest("ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                                 "ModelConfigList is currently supported")
            try:
                configs = from_proto(request.config, "the ReloadConfigRequest")
            except ConfigError as exc:
                raise BadRequest(str(exc)) from None
            before = {n: m for n, m in self.core.managers.items()}
            await self.core.apply(configs)
            new = [n for n, m in self.core.managers.items() if before.get(n) is not m]
            try:
                failure = await asyncio.wait_for(self.core.wait_available(new), self.reload_wait_s)
            except asyncio.TimeoutError:
                failure = f"{len(new)} model(s) did not become available in {self.reload_wait_s:.0f}s"
            if failure:  # TF Serving: ServerCore::ReloadConfig's status, UNKNOWN with the versions' errors
                log.error("ReloadConfig failed: %s", failure)
                raise error_for_code("UNKNOWN", failure)
            response = model_management_pb2.ReloadConfigResponse()
            response.status.error_code = 0
            return response

        return self.guard.run(self.SERVICE + "HandleReloadConfigRequest", context, lambda: self.on_loop(call()))


#: gRPC server options set unless ``--grpc_channel_arguments`` gives another value: no limit on
#: answers, and gRPC core tuned for latency (one request at a time is answered sooner; measured
#: in bench/serve_load.py: gRPC p50 at concurrency 1 below REST's only with it).
DEFAULT_CHANNEL_ARGUMENTS: tuple[tuple[str, int | str], ...] = (
    ("grpc.max_send_message_length", -1),
    ("grpc.optimization_target", "latency"),
)


def parse_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """TF Serving's ``--grpc_channel_arguments``: ``name=value,name=value`` (integers as integers).

    Example:
        >>> parse_channel_arguments("grpc.optimization_target=latency,grpc.max_concurrent_streams=100")
        [('grpc.optimization_target', 'latency'), ('grpc.max_concurrent_streams', 100)]
    """
    out: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UserError(f"--grpc_channel_arguments: {item!r} is not name=value")
        value = value.strip()
        out.append((name.strip(), int(value) if value.lstrip("-").isdigit() else value))
    return out


async def start_grpc_server(core: ServerCore, host: str, port: int, api_key: str | None = None,
                            metrics: ServingMetrics | None = None, access: bool = True,
                            max_message_bytes: int = 64 * 2**20,
                            channel_arguments: Sequence[tuple[str, int | str]] = (),
                            max_threads: int = 64) -> tuple[Any, int]:
    """Start both services on ``host:port`` beside the running event loop; ``(server, bound port)``.

    Stop it with :func:`stop_grpc_server`.

    Args:
        core: the server's models.
        host, port: where to listen (port 0: any free port).
        api_key: required in the call metadata when set.
        metrics: where calls are counted.
        access: one JSON access line per call.
        max_message_bytes: the largest request message.
        channel_arguments: more gRPC server options (TF Serving's ``--grpc_channel_arguments``);
            they override :data:`DEFAULT_CHANNEL_ARGUMENTS`.
        max_threads: calls handled at once (TF Serving's ``--grpc_max_threads``); more wait.
    """
    options = dict(DEFAULT_CHANNEL_ARGUMENTS)
    options["grpc.max_receive_message_length"] = max_message_bytes
    options.update(dict(channel_arguments))  # the user's arguments win
    server = grpc.server(ThreadPoolExecutor(max_threads, thread_name_prefix="tfpilot-grpc"),
                         options=list(options.items()))
    guard = _Guard(api_key, metrics, access)
    on_loop = _OnLoop(asyncio.get_running_loop())
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(core, guard, on_loop),
                                                                        server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core, guard, on_loop), server)
    add_inference_service(server, core, guard, on_loop)  # Triton's GRPCInferenceService
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {address} (is the port in use?)")
    server.start()
    log.info("gRPC (TF Serving's PredictionService and ModelService) on %s:%d", host, bound)
    return server, bound


async def stop_grpc_server(server: Any, grace_s: float) -> None:
    """Refuse new calls, let those under way finish for up to ``grace_s`` seconds, then stop.

    The event loop keeps running meanwhile: the calls still under way may need it.
    """
    await asyncio.to_thread(server.stop(grace_s).wait)
