"""``tfpilot serve``: serve models over TF Serving's REST and gRPC APIs and KServe V2.

Two ways to say what to serve:

* tfpilot's: ``tfpilot serve RUN|ARTIFACT|BASE_PATH... [--name NAME]... [--port 8501]``;
* TF Serving's flags, as ``tensorflow_model_server`` takes them: ``--model_name NAME
  --model_base_path DIR`` or ``--model_config_file FILE``, ``--port`` (gRPC, 8500),
  ``--rest_api_port`` (REST, 8501), ``--enable_batching``, ``--batching_parameters_file``,
  ``--file_system_poll_wait_seconds``, ...

**The --port rule**: ``--port`` is TF Serving's gRPC port as soon as any TF Serving flag (one
spelled with underscores: ``--model_name``, ``--model_base_path``, ``--model_config_file``,
``--rest_api_port``, ...) is given; otherwise it is tfpilot's REST port. ``--grpc-port`` and
``--rest_api_port`` always mean what they say.

Example:
    $ tfpilot serve runs/mnist_cnn-mnist-20260101-120000 --name mnist
    $ tfpilot serve --model_name half_plus_two --model_base_path /models/half_plus_two \\
        --port 8500 --rest_api_port 8501
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tfpilot.cli.common import error_message, say, user_errors
from tfpilot.errors import UserError

BACKEND_HELP = ("keras, saved_model, tflite or onnx: once for every model, or once per model in order "
                "(default: detected from each path; for a run directory, RUN/export/<backend>).")
#: TF Serving's boolean flags, which it also takes as --flag=true / --flag=false.
BOOL_FLAGS = ("enable_batching", "enable_model_warmup")
#: Options that switch --port to TF Serving's meaning (the gRPC port).
TF_SERVING_OPTIONS = ("model_name", "model_base_path", "model_config_file", "model_config_file_poll_wait_seconds",
                      "rest_api_port", "enable_batching", "batching_parameters_file",
                      "file_system_poll_wait_seconds", "enable_model_warmup", "monitoring_config_file", "intra_op",
                      "inter_op", "grpc_channel_arguments", "grpc_max_threads")
TF_GRPC_PORT, TF_REST_PORT = 8500, 8501


def _model_control_mode(value: str) -> str:
    if value not in ("none", "explicit"):
        raise typer.BadParameter(f"{value!r}: use none or explicit")
    return value


def tf_serving_argv(argv: list[str]) -> list[str]:
    """``--enable_batching=true|false`` (TF Serving's form) as ``--enable_batching`` / ``--no_enable_batching``.

    Example:
        >>> tf_serving_argv(["serve", "--enable_batching=false", "--port=8500"])
        ['serve', '--no_enable_batching', '--port=8500']
    """
    if not argv or argv[0] != "serve":
        return argv
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if eq and name[2:] in BOOL_FLAGS and name.startswith("--"):
            if value.lower() in ("true", "1", "yes"):
                arg = name
            elif value.lower() in ("false", "0", "no"):
                arg = f"--no_{name[2:]}"
        out.append(arg)
    return out


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given (on the command line or by its environment variable)."""
    source = ctx.get_parameter_source(name)  # typer's own ParameterSource enum: compare by name
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _tf_mode(ctx: typer.Context) -> bool:
    """Whether a TF Serving flag was given (then --port is the gRPC port)."""
    return any(_given(ctx, n) for n in TF_SERVING_OPTIONS)


def _ports(ctx: typer.Context, port: Optional[int], rest_api_port: Optional[int],
           grpc_port: Optional[int]) -> tuple[int, bool, Optional[int]]:
    """``(REST port, REST on, gRPC port)`` under the --port rule (module docstring)."""
    if _tf_mode(ctx):
        if grpc_port is not None and port is not None:
            raise UserError("with TF Serving's flags --port is the gRPC port: give --port or --grpc-port, not both")
        rest = TF_REST_PORT if rest_api_port is None else rest_api_port
        return rest, rest != 0, grpc_port if grpc_port is not None else (TF_GRPC_PORT if port is None else port)
    if rest_api_port is not None and port is not None:
        raise UserError("--port and --rest_api_port both set the REST port here: give one")
    rest = rest_api_port if rest_api_port is not None else (TF_REST_PORT if port is None else port)
    return rest, True, grpc_port


def _batching(enable: Optional[bool], params_file: Optional[Path], max_batch: int,
              timeout_ms: float) -> dict[str, Any]:
    """Batch settings from tfpilot's flags and TF Serving's file (the file wins where it sets a value)."""
    from tfpilot.serving.model_config import read_batching_parameters

    out: dict[str, Any] = {"max_batch": max_batch, "batch_timeout_ms": timeout_ms, "enable_batching": enable}
    if params_file is None:
        return out
    if not enable:
        say(("warning:", "yellow"), " --batching_parameters_file is ignored without --enable_batching, as in "
            "TF Serving", err=True)
        return out
    found = read_batching_parameters(params_file)
    if found.max_batch is not None:
        out["max_batch"] = found.max_batch
    if found.timeout_ms is not None:
        out["batch_timeout_ms"] = found.timeout_ms
    if found.threads is not None:
        out["batch_threads"] = found.threads
    if found.max_enqueued_batches is not None:
        out["max_queue"] = found.max_enqueued_batches * out["max_batch"]
    if found.allowed_batch_sizes:
        out["allowed_batch_sizes"] = found.allowed_batch_sizes
    return out


@user_errors
def serve_command(
    ctx: typer.Context,
    models: Annotated[Optional[list[Path]], typer.Argument(
        help="Run directories, exported models, or TF Serving base paths (folders of numbered versions).",
        show_default=False)] = None,
    name: Annotated[Optional[list[str]], typer.Option("--name", "-n", help="Name per model, in order "
                    "(default: the folder's name).")] = None,
    model_name: Annotated[Optional[list[str]], typer.Option("--model_name", help="TF Serving: the name of "
                          "--model_base_path's model (default 'default'); like --name otherwise.")] = None,
    model_base_path: Annotated[Optional[Path], typer.Option("--model_base_path", help="TF Serving: a folder of "
                               "numbered version folders (DIR/1/saved_model.pb), polled for new versions.")] = None,
    model_config_file: Annotated[Optional[Path], typer.Option("--model_config_file", help="TF Serving: a "
                                 "text-format ModelServerConfig listing every model.")] = None,
    model_config_file_poll_wait_seconds: Annotated[float, typer.Option(
        "--model_config_file_poll_wait_seconds", min=0, help="Re-read --model_config_file this often (0: once).")] = 0,
    file_system_poll_wait_seconds: Annotated[float, typer.Option(
        "--file_system_poll_wait_seconds", min=0, help="Poll base paths for new versions this often (0: once).")] = 1,
    host: Annotated[str, typer.Option("--host", help="Address to bind; loopback unless told otherwise.")] = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option("--port", "-p", min=0, max=65535, help="REST port (8501); with "
                    "TF Serving's flags, the gRPC port (8500), as in TF Serving.", show_default=False)] = None,
    rest_api_port: Annotated[Optional[int], typer.Option("--rest_api_port", min=0, max=65535,
                             help="REST port (0: no REST).", show_default=False)] = None,
    grpc_port: Annotated[Optional[int], typer.Option("--grpc-port", min=0, max=65535,
                         help="gRPC port (default: none; with TF Serving's flags 8500).", show_default=False)] = None,
    grpc_channel_arguments: Annotated[str, typer.Option("--grpc_channel_arguments", help="TF Serving: gRPC "
                                      "server options, name=value,... (e.g. grpc.optimization_target=latency).")] = "",
    grpc_max_threads: Annotated[int, typer.Option("--grpc_max_threads", min=1, max=4096, help="TF Serving: gRPC "
                                "calls handled at once (each in a thread of its own); more wait.")] = 64,
    model_control_mode: Annotated[str, typer.Option("--model-control-mode", help="Triton's: none refuses the "
                                  "model repository's load/unload (/v2/repository/...), explicit allows them.",
                                  callback=_model_control_mode)] = "none",
    backend: Annotated[Optional[list[str]], typer.Option("--backend", help=BACKEND_HELP)] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Most instances per model call.")] = 32,
    batch_timeout_ms: Annotated[float, typer.Option("--batch-timeout-ms", min=0,
                                help="Longest a batch waits for requests already arriving.")] = 5.0,
    enable_batching: Annotated[Optional[bool], typer.Option("--enable_batching/--no_enable_batching",
                               help="TF Serving's flag: batch requests together (default: only tfpilot's own "
                               "models; off: one request is one model call).",
                               show_default=False)] = None,
    batching_parameters_file: Annotated[Optional[Path], typer.Option("--batching_parameters_file", help="TF "
                                        "Serving's text-format BatchingParameters (max_batch_size, "
                                        "batch_timeout_micros, allowed_batch_sizes, ...).")] = None,
    enable_model_warmup: Annotated[bool, typer.Option("--enable_model_warmup/--no_enable_model_warmup",
                                   help="Replay assets.extra/tf_serving_warmup_requests before serving.")] = True,
    monitoring_config_file: Annotated[Optional[Path], typer.Option("--monitoring_config_file", help="TF "
                                      "Serving's MonitoringConfig (the Prometheus path).")] = None,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="TFPILOT_API_KEY",
                       help="Require 'X-API-Key: KEY' or 'Authorization: Bearer KEY' (REST) / metadata x-api-key "
                            "(gRPC) on the model APIs and /metrics.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server processes.")] = 1,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001, help="Larger bodies get a 413.")] = 10.0,
    max_instances: Annotated[int, typer.Option("--max-instances", min=1,
                             help="More instances in one request get a 400.")] = 256,
    threads: Annotated[Optional[int], typer.Option("--threads", min=0, help="TensorFlow threads per process "
                       "(default: CPU count - 1, leaving a core for HTTP; 0: all cores).")] = None,
    intra_op: Annotated[Optional[int], typer.Option("--tensorflow_intra_op_parallelism", min=0,
                        help="TF Serving's name for --threads.")] = None,
    inter_op: Annotated[Optional[int], typer.Option("--tensorflow_inter_op_parallelism", min=0,
                        help="TensorFlow inter-op threads (default: TensorFlow's).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log",
                          help="One JSON line per request on stdout.")] = True,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve models with TF Serving's REST and gRPC APIs, KServe V2, micro-batching, /metrics and a web page."""
    from tfpilot.serving.model_config import read_model_config_file, read_monitoring_config, require_serving_api
    from tfpilot.serving.server import is_loopback, serve
    from tfpilot.serving.settings import ModelConfig, ServeSettings, model_sources

    try:
        require_serving_api()
    except RuntimeError as exc:
        say(("error:", "bold red"), f" {error_message(exc)}", err=True)
        raise typer.Exit(2) from None
    from tfpilot.serving.grpc_server import parse_channel_arguments

    if log_level not in ("debug", "info", "warning", "error"):
        raise UserError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    rest_port, rest_on, grpc = _ports(ctx, port, rest_api_port, grpc_port)
    if name and model_name:
        raise UserError("give the names with --name or with --model_name, not both")
    if threads is not None and intra_op is not None:
        raise UserError("--threads and --tensorflow_intra_op_parallelism are the same setting: give one")
    threads = threads if threads is not None else intra_op
    paths, names = list(models or []), list(name or model_name or [])
    configs: list[ModelConfig] = []
    if model_base_path is not None:
        base_name = names.pop() if len(names) == len(paths) + 1 else "default"
        configs.append(ModelConfig(name=base_name, base_path=model_base_path.resolve()))
        if not model_base_path.is_dir():
            say(("warning:", "yellow"), f" {model_base_path} does not exist yet; it is polled for versions", err=True)
    elif names and not paths and model_config_file is None:
        raise UserError("--model_name needs --model_base_path (or a path to serve)")
    sources = model_sources(paths, names or None, backend) if paths else []
    if model_config_file is not None:
        read_model_config_file(model_config_file)  # a bad file fails here, before anything starts
    prometheus = read_monitoring_config(monitoring_config_file) if monitoring_config_file is not None else None
    if inter_op is not None:
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    settings = ServeSettings(
        models=sources, model_configs=configs, model_config_file=model_config_file,
        model_config_file_poll_wait_seconds=model_config_file_poll_wait_seconds,
        file_system_poll_wait_seconds=file_system_poll_wait_seconds,
        host=host, port=rest_port, rest=rest_on, grpc_port=grpc, api_key=api_key, workers=workers,
        grpc_channel_arguments=parse_channel_arguments(grpc_channel_arguments), grpc_max_threads=grpc_max_threads,
        max_body_bytes=max(1024, int(max_body_mb * 2**20)), max_instances=max_instances, access_log=access_log,
        threads=threads, enable_model_warmup=enable_model_warmup, model_control_mode=model_control_mode,
        wait_for_models=_tf_mode(ctx),
        **({"prometheus_path": prometheus} if prometheus else {}),
        **_batching(enable_batching, batching_parameters_file, max_batch, batch_timeout_ms),
    )
    if not is_loopback(host):
        say(("warning:", "yellow"), f" listening on {host}: other machines can reach this server"
            + ("" if api_key else "; consider --api-key"), err=True)
    listing = [(m.name, str(m.path)) for m in settings.models] + [(c.name, str(c.base_path)) for c in configs]
    for model, where in listing:
        say("serving ", (model, "bold"), f" from {where}", err=True)
    if model_config_file is not None:
        say(f"serving the models of {model_config_file}", err=True)
    if rest_on:
        say(f"REST (TF Serving /v1, KServe /v2, web page /) on http://{host}:{rest_port}", err=True)
    if grpc is not None:
        say(f"gRPC (tensorflow.serving.PredictionService, ModelService) on {host}:{grpc}", err=True)
    serve(settings, log_level=log_level)
