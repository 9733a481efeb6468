"""The Open Inference Protocol over gRPC: Triton's ``inference.GRPCInferenceService``.

The service uses the protos ``tritonclient`` ships (``tritonclient.grpc.service_pb2``) and runs
on the same gRPC server as TF Serving's services, on the same models, version leases and
micro-batcher as every other protocol (:func:`add_inference_service` registers it):

* ``ServerLive``, ``ServerReady``, ``ModelReady``, ``ServerMetadata`` (named ``tfpilot``),
  ``ModelMetadata``, ``ModelConfig``, ``ModelStatistics``;
* ``ModelInfer``: tensors in ``raw_input_contents`` (as ``tritonclient`` sends them) or in the
  typed ``contents`` fields; outputs are answered in ``raw_output_contents``, as Triton does.
  It runs in the call's own thread (an idle model is called right there, a busy one batches);
* ``RepositoryIndex``, ``RepositoryModelLoad``, ``RepositoryModelUnload``.

Errors carry Triton's wording and gRPC codes (see :mod:`tfpilot.serving.kserve_models`).

Example:
    >>> import tritonclient.grpc as triton  # doctest: +SKIP
    >>> client = triton.InferenceServerClient("127.0.0.1:8500")  # doctest: +SKIP
    >>> client.get_model_metadata("simple").inputs[0].name  # doctest: +SKIP
    'INPUT0'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from tfpilot.serving.core import ServerCore
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.kserve_models import EXTENSIONS, InferTimer, OipModels
from tfpilot.serving.kserve_tensors import from_binary, kserve_dtype, to_binary
from tfpilot.serving.servable import Servable
from tfpilot.serving.signatures import Signature
from tfpilot.serving.tensors import dtype_of_array, numpy_dtype

log = logging.getLogger("tfpilot.serving")

SERVICE = "/inference.GRPCInferenceService/"
#: The typed ``InferTensorContents`` field of each datatype.
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
            "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
            "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
            "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def input_arrays(request: Any) -> dict[str, np.ndarray]:
    """The named input arrays of a ``ModelInferRequest`` (raw contents or typed contents)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise BadRequest(f"raw_input_contents has {len(raw)} entries but the request has "
                         f"{len(request.inputs)} inputs: give one per input")
    out: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(request.inputs):
        where = f"input {tensor.name!r}"
        if tensor.name in out:
            raise BadRequest(f"{where} is given twice")
        shape = [int(d) for d in tensor.shape]
        if raw:
            out[tensor.name] = from_binary(raw[i], tensor.datatype, shape, where)
            continue
        dtype = kserve_dtype(tensor.datatype, where)
        field = CONTENTS.get(tensor.datatype)
        if field is None:
            raise BadRequest(f"{where}: {tensor.datatype} tensors must be sent in "
                             "raw_input_contents")
        values = list(getattr(tensor.contents, field))
        count = int(np.prod(shape)) if shape else 1
        if len(values) != count:
            raise BadRequest(f"{where}: {len(values)} values in contents.{field} do not fill "
                             f"shape {shape} ({count})")
        if dtype.is_string:
            arr = np.empty(count, dtype=object)
            arr[:] = values
        else:
            arr = np.asarray(values, dtype=numpy_dtype(dtype))
        out[tensor.name] = arr.reshape(shape)
    return out


def _requested(request: Any, sig: Signature) -> list[str]:
    if not request.outputs:
        return list(sig.outputs)
    names = []
    for output in request.outputs:
        if output.name not in sig.outputs:
            raise BadRequest(f"unknown output {output.name!r}: signature {sig.name!r} has "
                             f"{list(sig.outputs)}")
        names.append(output.name)
    return names


def infer_response(pb: Any, servable: Servable, request: Any, sig: Signature,
                   outputs: dict[str, np.ndarray]) -> Any:
    """The ``ModelInferResponse``: every requested output in ``raw_output_contents``."""
    response = pb.ModelInferResponse(model_name=servable.name, model_version=str(servable.version),
                                     id=request.id)
    for name in _requested(request, sig):
        arr = np.asarray(outputs[name])
        response.outputs.add(name=name, datatype=dtype_of_array(arr).kserve, shape=list(arr.shape))
        response.raw_output_contents.append(to_binary(arr))
    return response


class InferenceServicer:
    """``inference.GRPCInferenceService`` (built by :func:`add_inference_service`).

    Args:
        pb: ``tritonclient.grpc.service_pb2``.
        config_pb: ``tritonclient.grpc.model_config_pb2``.
        core: the server's models.
        guard: API key, metrics and access log (``guard.run(method, context, call)``).
        on_loop: runs a coroutine on the server's event loop and returns its result.
    """

    def __init__(self, pb: Any, config_pb: Any, core: ServerCore, guard: Any,
                 on_loop: Callable[[Any], Any]) -> None:
        self.pb = pb
        self.config_pb = config_pb
        self.core = core
        self.models = OipModels.of(core)
        self.guard = guard
        self.on_loop = on_loop

    def _run(self, method: str, context: Any, call: Callable[[], Any]) -> Any:
        return self.guard.run(SERVICE + method, context, call)

    def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802 -- gRPC method names
        return self._run("ServerLive", context, lambda: self.pb.ServerLiveResponse(live=True))

    def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._run("ServerReady", context,
                         lambda: self.pb.ServerReadyResponse(ready=self.core.ready))

    def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._run("ModelReady", context, lambda: self.pb.ModelReadyResponse(
            ready=self.models.is_ready(request.name, request.version)))

    def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        from tfpilot import __version__

        return self._run("ServerMetadata", context, lambda: self.pb.ServerMetadataResponse(
            name="tfpilot", version=__version__, extensions=list(EXTENSIONS)))

    def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        def call() -> Any:
            from google.protobuf import json_format

            meta = self.models.metadata(request.name, request.version)
            return json_format.ParseDict(meta, self.pb.ModelMetadataResponse())

        return self._run("ModelMetadata", context, call)

    def ModelConfig(self, request: Any, context: Any) -> Any:  # noqa: N802
        def call() -> Any:
            from google.protobuf import json_format

            config = json_format.ParseDict(self.models.config(request.name, request.version),
                                           self.config_pb.ModelConfig())
            return self.pb.ModelConfigResponse(config=config)

        return self._run("ModelConfig", context, call)

    def ModelStatistics(self, request: Any, context: Any) -> Any:  # noqa: N802
        def call() -> Any:
            from google.protobuf import json_format

            stats = self.models.statistics(request.name, request.version)
            return json_format.ParseDict(stats, self.pb.ModelStatisticsResponse())

        return self._run("ModelStatistics", context, call)

    def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        def call() -> Any:  # in this thread: an idle model is called right here
            for _ in range(3):  # a version being unloaded refuses the lease: resolve again
                record = self.models.resolve(request.model_name, request.model_version)
                if record.acquire():
                    break
            else:
                raise record.refusal()
            try:
                return self._infer(record.servable, request)
            finally:
                record.release()

        return self._run("ModelInfer", context, call)

    def _infer(self, servable: Servable, request: Any) -> Any:
        timer = InferTimer(self.models.stats(servable))
        try:
            params = request.parameters
            sig = servable.signature(params["signature_name"].string_param
                                     if "signature_name" in params else None)
            inputs = input_arrays(request)
            timer.decoded()
            outputs = servable.run_blocking(sig.name, inputs)
            timer.inferred()
            response = infer_response(self.pb, servable, request, sig, outputs)
        except Exception:
            timer.failed()
            raise
        first = next(iter(inputs.values()), None)
        timer.done(int(first.shape[0]) if first is not None and first.ndim else 1)
        return response

    def RepositoryIndex(self, request: Any, context: Any) -> Any:  # noqa: N802
        def call() -> Any:
            response = self.pb.RepositoryIndexResponse()
            for row in self.models.index(request.ready):
                response.models.add(**row)
            return response

        return self._run("RepositoryIndex", context, call)

    def RepositoryModelLoad(self, request: Any, context: Any) -> Any:  # noqa: N802
        def call() -> Any:
            _no_parameters(request, "load")
            self.on_loop(self.models.load(request.model_name))
            return self.pb.RepositoryModelLoadResponse()

        return self._run("RepositoryModelLoad", context, call)

    def RepositoryModelUnload(self, request: Any, context: Any) -> Any:  # noqa: N802
        def call() -> Any:
            _no_parameters(request, "unload")
            self.on_loop(self.models.unload(request.model_name))
            return self.pb.RepositoryModelUnloadResponse()

        return self._run("RepositoryModelUnload", context, call)


def _no_parameters(request: Any, what: str) -> None:
    from tfpilot.serving.errors import Unimplemented

    names = sorted(k for k in request.parameters if k != "unload_dependents")
    if names:
        raise Unimplemented(f"{what}: parameters {names} are not supported; tfpilot loads models "
                            "from their configured base path")


def add_inference_service(server: Any, core: ServerCore, guard: Any,
                          on_loop: Callable[[Any], Any]) -> bool:
    """Register ``inference.GRPCInferenceService`` on ``server`` (False: no tritonclient).

    Args:
        server: a ``grpc.Server`` not started yet.
        core: the server's models.
        guard: API key, metrics and access log (``guard.run(method, context, call)``).
        on_loop: runs a coroutine on the server's event loop and returns its result.
    """
    try:
        from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc
    except ImportError:
        log.info("the Open Inference Protocol over gRPC is off: "
                 "pip install 'tritonclient[grpc]' for it")
        return False

    bases = (InferenceServicer, service_pb2_grpc.GRPCInferenceServiceServicer)
    servicer = type("GRPCInferenceServicer", bases, {})
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        servicer(service_pb2, model_config_pb2, core, guard, on_loop), server)
    return True
