"""TF Serving's configuration files: ``--model_config_file`` and ``--batching_parameters_file``.

``--model_config_file`` holds a text-format ``tensorflow.serving.ModelServerConfig``, parsed
with the real proto of ``tensorflow-serving-api`` and ``google.protobuf.text_format``::

    model_config_list {
      config {
        name: "half_plus_two"
        base_path: "/models/half_plus_two"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
      }
    }

Each entry becomes a :class:`ModelConfig`. ``--batching_parameters_file`` holds a text-format
``tensorflow.serving.BatchingParameters`` (``max_batch_size { value: 32 }``, ...). That
message (and ``MonitoringConfig``, for ``--monitoring_config_file``) is not in the
``tensorflow-serving-api`` package, so its schema is declared here with protobuf's descriptor
API -- same package, names and field numbers as TF Serving's ``session_bundle_config.proto``
and ``monitoring_config.proto`` -- and the files are parsed by ``text_format`` all the same.

Example:
    >>> configs = parse_model_server_config('''
    ...     model_config_list { config { name: "a" base_path: "/models/a"
    ...       model_version_policy { latest { num_versions: 2 } } } }''')
    >>> configs[0].name, configs[0].policy, configs[0].num_versions
    ('a', 'latest', 2)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tfpilot.errors import UserError
from tfpilot.serving.settings import ModelConfig

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ConfigError(UserError):
    """A configuration file is not valid; the message names the file and the problem."""


#: How to install TF Serving's protos next to tensorflow-cpu (pyproject.toml says why not a dependency).
SERVING_API_INSTALL = 'pip install --no-deps "tensorflow-serving-api==2.21.*"'


def require_serving_api() -> None:
    """A clear error when ``tensorflow-serving-api`` (TF Serving's protos) is not installed."""
    try:
        import tensorflow_serving.apis.prediction_service_pb2_grpc  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"tfpilot serve needs TF Serving's protos ({exc}): {SERVING_API_INSTALL} "
                           "(--no-deps: it would pull the full tensorflow wheel over tensorflow-cpu)") from None


def _check_names(configs: Sequence[ModelConfig], source: str) -> None:
    seen: set[str] = set()
    for c in configs:
        if not _NAME.match(c.name):
            raise ConfigError(f"{source}: model name {c.name!r} cannot be used in a URL (letters, digits, '.', '_', "
                              "'-'; at most 128)")
        if c.name in seen:
            raise ConfigError(f"{source}: two models are named {c.name!r}")
        seen.add(c.name)


def from_proto(proto: Any, source: str = "the model config") -> list[ModelConfig]:
    """The :class:`ModelConfig` entries of a ``ModelServerConfig`` proto."""
    which = proto.WhichOneof("config")
    if which == "custom_model_config":
        raise ConfigError(f"{source}: custom_model_config is not supported; use model_config_list")
    out = []
    for i, entry in enumerate(proto.model_config_list.config):
        where = f"{source}: config {i + 1} ({entry.name or 'no name'})"
        if not entry.name:
            raise ConfigError(f"{where}: every config needs a name")
        if not entry.base_path:
            raise ConfigError(f"{where}: every config needs a base_path (the folder of numbered versions)")
        if entry.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{where}: model_platform {entry.model_platform!r} is not served here; "
                              "only \"tensorflow\" (SavedModels)")
        kind = entry.model_version_policy.WhichOneof("policy_choice") or "latest"
        policy = entry.model_version_policy
        versions = tuple(sorted(policy.specific.versions)) if kind == "specific" else ()
        if kind == "specific" and not versions:
            raise ConfigError(f"{where}: a specific version policy needs at least one version")
        num = policy.latest.num_versions if kind == "latest" else 1
        labels = dict(entry.version_labels)
        out.append(ModelConfig(name=entry.name, base_path=Path(entry.base_path), policy=kind,
                               num_versions=max(1, num), versions=versions, labels=labels))
    _check_names(out, source)
    return out


def parse_model_server_config(text: str, source: str = "the model config") -> list[ModelConfig]:
    """Parse a text-format ``ModelServerConfig``; a :class:`ConfigError` that says where it is wrong."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as exc:
        raise ConfigError(f"{source}: not a text-format ModelServerConfig (Error parsing text-format "
                          f"tensorflow.serving.ModelServerConfig): {exc}") from None
    return from_proto(proto, source)


def read_model_config_file(path: Path) -> list[ModelConfig]:
    """:func:`parse_model_server_config` of the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read --model_config_file {path}: {exc.strerror}") from None
    return parse_model_server_config(text, str(path))


def to_proto(configs: Sequence[ModelConfig]) -> Any:
    """A ``ModelServerConfig`` proto of ``configs`` (the inverse of :func:`from_proto`)."""
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    for c in configs:
        entry = proto.model_config_list.config.add(name=c.name, base_path=str(c.base_path), model_platform="tensorflow")
        if c.policy == "latest":
            entry.model_version_policy.latest.num_versions = c.num_versions
        elif c.policy == "all":
            entry.model_version_policy.all.SetInParent()
        else:
            entry.model_version_policy.specific.versions.extend(c.versions)
        for label, version in c.labels.items():
            entry.version_labels[label] = version
    return proto


# -- BatchingParameters and MonitoringConfig ---------------------------------------------------
_WRAPPED = {"Int64Value": ".google.protobuf.Int64Value", "StringValue": ".google.protobuf.StringValue",
            "BoolValue": ".google.protobuf.BoolValue"}
#: (name, number, wrapper) of BatchingParameters' optional fields (session_bundle_config.proto).
_BATCHING_FIELDS = (
    ("max_batch_size", 1, "Int64Value"), ("batch_timeout_micros", 2, "Int64Value"),
    ("max_enqueued_batches", 3, "Int64Value"), ("num_batch_threads", 4, "Int64Value"),
    ("thread_pool_name", 5, "StringValue"), ("enable_large_batch_splitting", 8, "BoolValue"),
    ("max_execution_batch_size", 9, "Int64Value"),
)


def serving_config_classes() -> dict[str, type]:
    """``BatchingParameters``, ``MonitoringConfig`` and ``PrometheusConfig`` message classes."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    field = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file = descriptor_pb2.FileDescriptorProto(name="tfpilot/serving/tf_serving_configs.proto",
                                              package="tensorflow.serving", syntax="proto3",
                                              dependency=["google/protobuf/wrappers.proto"])
    batching = file.message_type.add(name="BatchingParameters")
    for name, number, wrapper in _BATCHING_FIELDS:
        batching.field.add(name=name, number=number, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                           type_name=_WRAPPED[wrapper])
    batching.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    batching.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL,
                       label=field.LABEL_OPTIONAL)
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    monitoring = file.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                         type_name=".tensorflow.serving.PrometheusConfig")
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
            for name in ("BatchingParameters", "MonitoringConfig", "PrometheusConfig")}


def _parse_file(path: Path, message: str, flag: str) -> Any:
    from google.protobuf import text_format

    proto = serving_config_classes()[message]()
    try:
        text_format.Parse(path.read_text(encoding="utf-8"), proto)
    except OSError as exc:
        raise ConfigError(f"cannot read {flag} {path}: {exc.strerror}") from None
    except text_format.ParseError as exc:
        raise ConfigError(f"{path}: not a text-format {message}: {exc}") from None
    return proto


class BatchingFile(BaseModel):
    """What a ``--batching_parameters_file`` sets (None: keep tfpilot's setting).

    Args:
        max_batch: ``max_batch_size``.
        timeout_ms: ``batch_timeout_micros`` / 1000.
        max_enqueued_batches: batches that may wait (times max_batch: the queue limit).
        threads: ``num_batch_threads``.
        allowed_batch_sizes: sizes batches are padded to (the last is ``max_batch_size``).
    """

    model_config = ConfigDict(frozen=True)

    max_batch: int | None = None
    timeout_ms: float | None = None
    max_enqueued_batches: int | None = None
    threads: int | None = None
    allowed_batch_sizes: tuple[int, ...] = ()


def read_batching_parameters(path: Path) -> BatchingFile:
    """The settings of a text-format ``BatchingParameters`` file, checked as TF Serving checks them."""
    proto = _parse_file(path, "BatchingParameters", "--batching_parameters_file")

    def value(name: str) -> int | None:
        return getattr(proto, name).value if proto.HasField(name) else None

    max_batch, timeout, queue, threads = (value(n) for n in ("max_batch_size", "batch_timeout_micros",
                                                              "max_enqueued_batches", "num_batch_threads"))
    allowed = tuple(proto.allowed_batch_sizes)
    for name, v in (("max_batch_size", max_batch), ("max_enqueued_batches", queue), ("num_batch_threads", threads)):
        if v is not None and v < 1:
            raise ConfigError(f"{path}: {name} must be at least 1; got {v}")
    if timeout is not None and timeout < 0:
        raise ConfigError(f"{path}: batch_timeout_micros must not be negative; got {timeout}")
    if allowed:
        if list(allowed) != sorted(set(allowed)) or allowed[0] < 1:
            raise ConfigError(f"{path}: allowed_batch_sizes must be positive and increasing; got {list(allowed)}")
        if max_batch is not None and allowed[-1] != max_batch:
            raise ConfigError(f"{path}: the last allowed_batch_sizes entry must equal max_batch_size "
                              f"({allowed[-1]} != {max_batch})")
        max_batch = max_batch or allowed[-1]
    return BatchingFile(max_batch=max_batch, timeout_ms=None if timeout is None else timeout / 1000.0,
                        max_enqueued_batches=queue, threads=threads, allowed_batch_sizes=allowed)


def read_monitoring_config(path: Path) -> str | None:
    """The Prometheus path of a text-format ``MonitoringConfig`` (None when not enabled)."""
    proto = _parse_file(path, "MonitoringConfig", "--monitoring_config_file")
    prometheus = proto.prometheus_config
    if not prometheus.enable:
        return None
    path_text = prometheus.path or "/monitoring/prometheus/metrics"
    if not path_text.startswith("/"):
        raise ConfigError(f"{path}: prometheus_config.path must start with '/'; got {path_text!r}")
    return path_text
