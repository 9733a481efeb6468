"""What a server serves and how: :class:`ModelSource` and :class:`ServeSettings`.

Settings are plain pydantic models, so they validate once (a bad port or a duplicate
model name fails before anything loads) and travel to ``--workers`` processes as JSON.

Example:
    >>> from tfpilot.serving.settings import ServeSettings, model_sources
    >>> settings = ServeSettings(models=[{"path": "runs/mnist", "name": "mnist"}])
    >>> settings.host, settings.port, settings.max_batch, settings.grpc_port
    ('127.0.0.1', 8501, 32, None)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tfpilot.errors import NotFoundError, UserError

#: Inference backends ``tfpilot.inference.load`` knows (``None``: chosen from the path).
Backend = Literal["keras", "saved_model", "tflite", "onnx"]
BACKENDS: tuple[str, ...] = ("keras", "saved_model", "tflite", "onnx")

#: Environment variable that carries the settings to ``--workers`` processes.
SETTINGS_ENV = "TFPILOT_SERVE_SETTINGS"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_GENERIC_STEMS = frozenset({"model", "saved_model", "savedmodel", "export", "artifact"})


class ModelSource(BaseModel):
    """One model to serve.

    Args:
        path: a run directory or an exported artifact.
        name: the name in URLs (``/v1/models/{name}``).
        backend: inference backend, or None to pick from the path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    name: str
    backend: Backend | None = None

    @model_validator(mode="after")
    def _check_name(self) -> ModelSource:
        if not _NAME.match(self.name):
            raise ValueError(
                f"model name {self.name!r} cannot be used in a URL: use letters, digits, '.', '_' "
                "or '-' (at most 128), starting with a letter or digit; pass --name to choose one"
            )
        return self


#: Which versions of a model are served (TF Serving's ``model_version_policy``).
Policy = Literal["latest", "all", "specific"]


class ModelConfig(BaseModel):
    """One model the server manages (a ``ModelConfig`` entry, or a ``tfpilot serve PATH``).

    Args:
        name: the model's name in URLs and ``model_spec.name``.
        base_path: the folder of numbered version folders (``base_path/123/saved_model.pb``);
            with ``single``, the one artifact to serve as version 1.
        policy: which versions are served: the ``latest`` ``num_versions``, ``all``, or the
            ``specific`` ``versions``.
        num_versions: for ``latest``.
        versions: for ``specific``.
        labels: version labels (``stable`` -> 1).
        single: serve ``base_path`` itself (a tfpilot run or artifact) as version 1, unpolled.
        backend: tfpilot's inference backend for ``single`` models (None: detected).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base_path: Path
    policy: Policy = "latest"
    num_versions: int = Field(1, ge=1)
    versions: tuple[int, ...] = ()
    labels: dict[str, int] = Field(default_factory=dict)
    single: bool = False
    backend: Backend | None = None

    @model_validator(mode="after")
    def _check_name(self) -> ModelConfig:
        if not _NAME.match(self.name):
            raise ValueError(f"model name {self.name!r} cannot be used in a URL: use letters, digits, '.', '_' "
                             "or '-' (at most 128), starting with a letter or digit")
        return self


class ServeSettings(BaseModel):
    """Everything ``tfpilot serve`` is told.

    Args:
        models: tfpilot runs or artifacts, each served as one model (version 1); a path that
            holds numbered version folders is served as a TF Serving base path instead.
        model_configs: TF Serving-style models (``--model_name``/``--model_base_path``).
        model_config_file: a text-format ``ModelServerConfig`` with the models (TF Serving's
            ``--model_config_file``), re-read every ``model_config_file_poll_wait_seconds``
            (0: read once).
        file_system_poll_wait_seconds: how often base paths are polled for new versions
            (0: once, at start).
        host, port: where REST listens (loopback unless told otherwise); ``rest``: False
            for no REST server (TF Serving's ``--rest_api_port 0``).
        grpc_port: where the gRPC services listen (None: no gRPC).
        grpc_channel_arguments: more gRPC server options, e.g. ``("grpc.optimization_target", "latency")``.
        grpc_max_threads: gRPC calls handled at once (TF Serving's ``--grpc_max_threads``); more wait.
        max_batch: most instances in one model call.
        batch_timeout_ms: longest a batch waits for requests that have already arrived.
        allowed_batch_sizes: batch sizes to pad to (TF Serving's; default: tfpilot's buckets).
        batch_threads: model calls per model version that may run at once.
        enable_batching: whether requests share model calls (TF Serving's ``--enable_batching``);
            None: tfpilot's own models batch (their rows are independent), other SavedModels do
            not (TF Serving's default). Off, one request is one model call.
        api_key: when set, /v1/*, /v2/*, /metrics and gRPC need ``X-API-Key: KEY`` or
            ``Authorization: Bearer KEY`` (gRPC: metadata ``x-api-key`` or ``authorization``).
        max_body_bytes: larger request bodies get a 413 (and larger gRPC messages RESOURCE_EXHAUSTED).
        max_instances: more instances in one request get a 400.
        max_queue: more instances waiting for one model get a 503 (overload).
        enable_model_warmup: replay ``assets.extra/tf_serving_warmup_requests`` before a version serves.
        prometheus_path: where the Prometheus metrics are also served (TF Serving's path).
        workers: server processes (each loads every model).
        model_control_mode: Triton's ``--model-control-mode``: ``none`` refuses the model repository's
            load and unload; ``explicit`` allows them (one worker only).
        access_log: one JSON line per request on stdout.
        graceful_timeout_s: how long shutdown waits for in-flight requests.
        threads: TensorFlow intra-op threads per process; None: one less than the CPU count
            (one core stays free for HTTP, JSON and decoding), 0: TensorFlow's default (all).
        wait_for_models: open the ports only once every initial model has a version AVAILABLE,
            and stop when one fails to load (``tensorflow_model_server``'s start-up; set by TF
            Serving's flags); otherwise the ports open at once and ``/readyz`` says when ready.
        freeze_gc: once the models are warm, freeze the objects alive so far out of Python's
            garbage collector (``gc.freeze()``), whose full collections would stall requests;
            leave it on in a server process, turn it off when embedding the app in a process
            that keeps creating and dropping long-lived objects (e.g. tests).
    """

    model_config = ConfigDict(extra="forbid")

    models: list[ModelSource] = Field(default_factory=list)
    model_configs: list[ModelConfig] = Field(default_factory=list)
    model_config_file: Path | None = None
    model_config_file_poll_wait_seconds: float = Field(0.0, ge=0)
    file_system_poll_wait_seconds: float = Field(1.0, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(8501, ge=0, le=65535)
    rest: bool = True
    grpc_port: int | None = Field(None, ge=0, le=65535)
    grpc_channel_arguments: list[tuple[str, int | str]] = Field(default_factory=list)
    grpc_max_threads: int = Field(64, ge=1, le=4096)
    max_batch: int = Field(32, ge=1, le=4096)
    batch_timeout_ms: float = Field(5.0, ge=0, le=10_000)
    allowed_batch_sizes: tuple[int, ...] = ()
    batch_threads: int = Field(1, ge=1, le=64)
    enable_batching: bool | None = None
    api_key: str | None = Field(None, min_length=1, repr=False)
    max_body_bytes: int = Field(10 * 2**20, ge=1024)
    max_instances: int = Field(256, ge=1)
    max_queue: int = Field(4096, ge=1)
    enable_model_warmup: bool = True
    prometheus_path: str = "/monitoring/prometheus/metrics"
    workers: int = Field(1, ge=1, le=64)
    model_control_mode: Literal["none", "explicit"] = "none"
    access_log: bool = True
    graceful_timeout_s: int = Field(30, ge=1)
    threads: int | None = Field(None, ge=0, le=1024)
    freeze_gc: bool = True
    wait_for_models: bool = False

    @model_validator(mode="after")
    def _check_names(self) -> ServeSettings:
        if self.model_control_mode == "explicit" and self.workers > 1:
            raise ValueError("--model-control-mode explicit needs one worker: a load or unload would "
                             "reach only the worker that answered it")
        if not (self.models or self.model_configs or self.model_config_file):
            raise ValueError("nothing to serve: give run directories or exported models, --model_name with "
                             "--model_base_path, or --model_config_file")
        if self.model_config_file and (self.models or self.model_configs):
            raise ValueError("--model_config_file lists every model: give no other models with it "
                             "(as in TF Serving, --model_name/--model_base_path are ignored then)")
        seen: dict[str, Path] = {}
        for name, path in [(m.name, m.path) for m in self.models] + [(c.name, c.base_path) for c in self.model_configs]:
            if name in seen:
                raise ValueError(
                    f"two models are named {name!r} ({seen[name]} and {path}); "
                    "give each a distinct --name"
                )
            seen[name] = path
        if self.allowed_batch_sizes and self.allowed_batch_sizes[-1] != self.max_batch:
            raise ValueError(f"the last allowed batch size ({self.allowed_batch_sizes[-1]}) must equal the "
                             f"max batch size ({self.max_batch})")
        if not self.rest and self.grpc_port is None:
            raise ValueError("with REST off (--rest_api_port 0) give a gRPC --port")
        return self

    def batch_options(self) -> Any:
        """The :class:`~tfpilot.serving.servable.BatchOptions` every model version gets."""
        from tfpilot.serving.servable import BatchOptions

        return BatchOptions(max_batch=self.max_batch, timeout_ms=self.batch_timeout_ms, max_queue=self.max_queue,
                            allowed_batch_sizes=self.allowed_batch_sizes, threads=self.batch_threads,
                            max_instances=self.max_instances, enabled=self.enable_batching)

    def to_env(self) -> str:
        """JSON for :data:`SETTINGS_ENV` (includes the API key: keep the environment private)."""
        return self.model_dump_json()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeSettings:
        """The settings a parent ``tfpilot serve`` put in :data:`SETTINGS_ENV`."""
        env = os.environ if environ is None else environ
        if SETTINGS_ENV not in env:
            raise RuntimeError(f"{SETTINGS_ENV} is not set; start the server with `tfpilot serve`")
        return cls.model_validate_json(env[SETTINGS_ENV])


def default_name(path: str | Path) -> str:
    """The URL name of a run folder or artifact: its folder name, or the file's stem.

    A generic stem ("model", "saved_model") falls back to the parent folder's name.

    Example:
        >>> default_name("runs/mnist_cnn-mnist-20260101-120000")
        'mnist_cnn-mnist-20260101-120000'
        >>> default_name("exports/mnist/model.tflite")
        'mnist'
    """
    p = Path(path)
    if p.name in ("", ".", ".."):
        p = p.resolve()
    stem = p.stem if p.suffix in (".keras", ".tflite", ".onnx") else p.name
    if stem.lower() in _GENERIC_STEMS and p.parent.name not in ("", "."):
        stem = p.parent.name
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip("._-") or "model"


def model_sources(
    paths: Sequence[str | Path],
    names: Sequence[str] | None = None,
    backends: Sequence[str] | str | None = None,
) -> list[ModelSource]:
    """One :class:`ModelSource` per path.

    Args:
        paths: run directories or exported models.
        names: URL names, one per path in order (default: :func:`default_name`).
        backends: one backend for every model, or one per path in order (default: detected).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: the number of names or backends does not fit, or one is unknown.
    """
    names = list(names or [])
    backends = [backends] if isinstance(backends, str) else list(backends or [])
    if not paths:
        raise UserError("give at least one run directory or exported model to serve")
    if names and len(names) != len(paths):
        raise UserError(
            f"{len(names)} --name given for {len(paths)} models: give one --name per model, "
            "in the same order, or none to use the folder names"
        )
    if len(backends) not in (0, 1, len(paths)):
        raise UserError(f"{len(backends)} --backend given for {len(paths)} models: give one for all models, "
                        "or one per model in the same order")
    for backend in backends:
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    out = []
    for i, path in enumerate(paths):
        p = Path(path)
        if not p.exists():
            raise NotFoundError(f"{p} does not exist: give a run directory (with model.keras and "
                                "labels.json) or an exported model")
        backend = backends[i] if len(backends) > 1 else (backends[0] if backends else None)
        out.append(ModelSource(path=p.resolve(), name=names[i] if names else default_name(p), backend=backend))
    return out
