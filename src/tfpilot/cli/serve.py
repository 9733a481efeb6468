"""``tfpilot serve``: serve runs or exported models over TF Serving's REST API.

Example:
    $ tfpilot serve runs/mnist_cnn-mnist-20260101-120000 --name mnist
    $ curl -d '{"instances": [{"b64": "'$(base64 -w0 digit.png)'"}]}' \\
        localhost:8501/v1/models/mnist:predict
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import err_console, user_errors

BACKEND_HELP = ("keras, saved_model, tflite or onnx: once for every model, or once per model in order "
                "(default: detected from each path; for a run directory, RUN/export/<backend>).")


@user_errors
def serve_command(
    models: Annotated[list[Path], typer.Argument(help="Run directories or exported models (RUN|ARTIFACT…).",
                                                 show_default=False)],
    name: Annotated[Optional[list[str]], typer.Option("--name", "-n", help="URL name per model, in order "
                    "(default: the run folder's or artifact's name).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind; loopback unless told otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535)] = 8501,
    backend: Annotated[Optional[list[str]], typer.Option("--backend", help=BACKEND_HELP)] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Most instances per model call.")] = 32,
    batch_timeout_ms: Annotated[float, typer.Option("--batch-timeout-ms", min=0,
                                help="Longest a batch waits for requests already arriving.")] = 5.0,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="TFPILOT_API_KEY",
                       help="Require 'X-API-Key: KEY' or 'Authorization: Bearer KEY' on /v1 and /metrics.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server processes.")] = 1,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001, help="Larger bodies get a 413.")] = 10.0,
    max_instances: Annotated[int, typer.Option("--max-instances", min=1,
                             help="More instances in one request get a 400.")] = 256,
    threads: Annotated[Optional[int], typer.Option("--threads", min=0, help="TensorFlow threads per process "
                       "(default: CPU count - 1, leaving a core for HTTP; 0: all cores).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log",
                          help="One JSON line per request on stdout.")] = True,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve models with TF Serving's REST API, micro-batching, /metrics and a web page at /."""
    from tfpilot.serving.server import is_loopback, serve
    from tfpilot.serving.settings import ServeSettings, model_sources

    if log_level not in ("debug", "info", "warning", "error"):
        raise ValueError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    settings = ServeSettings(
        models=model_sources(models, name, backend), host=host, port=port, max_batch=max_batch,
        batch_timeout_ms=batch_timeout_ms, api_key=api_key, workers=workers,
        max_body_bytes=max(1024, int(max_body_mb * 2**20)), max_instances=max_instances, access_log=access_log,
        threads=threads,
    )
    if not is_loopback(host):
        err_console.print(f"[yellow]warning:[/] listening on {host}: other machines can reach this server"
                          + ("" if api_key else "; consider --api-key"))
    for m in settings.models:
        err_console.print(f"serving [bold]{m.name}[/] from {m.path} at http://{host}:{port}/v1/models/{m.name}",
                          highlight=False)
    serve(settings, log_level=log_level)
