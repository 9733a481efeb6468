"""``tfpilot benchmark``: size, latency (p50/p99), batch throughput and accuracy per format.

Example:
    $ tfpilot benchmark runs/mnist
    $ tfpilot benchmark runs/mnist/export/tflite runs/mnist/export/onnx --json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import console, print_table, setup_logging, user_errors


@user_errors
def benchmark_command(
    targets: Annotated[list[Path], typer.Argument(help="Run directories and/or artifacts.")],
    runs: Annotated[int, typer.Option("--runs", min=1, help="Timed single-sample calls per format.")] = 200,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed calls first.")] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Throughput batch size.")] = 32,
    data: Annotated[str, typer.Option("--data", help="Split accuracy is measured on.")] = "test",
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Accuracy on at most N examples.")] = 2000,
    no_keras: Annotated[bool, typer.Option("--no-keras", help="Skip the model.predict and direct Keras rows.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of the table.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Also write the JSON here.")] = None,
) -> None:
    """Benchmark inference; the first row is the seeds' way (model.predict on one sample)."""
    from tfpilot.export.benchmark import benchmark

    setup_logging()
    report = benchmark(targets, runs=runs, warmup=warmup, batch_size=batch_size, split=data, limit=limit,
                       include_keras=not no_keras)
    payload = json.dumps(report.to_dict(), indent=2)
    if out:
        out.write_text(payload + "\n", encoding="utf-8")
    if as_json:
        console.print_json(payload)
    else:
        print_table(report.table())
