"""``tfpilot export``: a run to SavedModel, TFLite (fp32/fp16/dynamic/int8), ONNX and Keras.

Example:
    $ tfpilot export runs/mnist --format all
    $ tfpilot export runs/mnist --format tflite-int8 --format onnx --out deploy/
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tfpilot.cli.common import print_table, say, setup_logging, user_errors

FORMAT_HELP = ("keras, saved_model, tflite, tflite-fp16, tflite-dynamic, tflite-int8, onnx, or all. "
               "Repeat for several.")


@user_errors
def export_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    formats: Annotated[list[str], typer.Option("--format", "-f", help=FORMAT_HELP)] = ["all"],  # noqa: B006
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default RUN/export).")] = None,
    max_drop: Annotated[float, typer.Option(
        "--max-drop", min=0.0, help="tflite-int8 fails if a head loses more accuracy points than this.")] = 1.0,
    calibration_size: Annotated[int, typer.Option(
        "--calibration-size", min=1, help="Class-balanced training examples int8 calibrates on.")] = 500,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Export a trained run; every artifact takes raw inputs and carries its class names."""
    from tfpilot.export import ExportError, ExportSource, export

    setup_logging(verbose)
    try:
        result = export(ExportSource.from_run(run, calibration_size=calibration_size), formats, out, max_drop=max_drop)
    except ExportError as exc:
        partial = exc.result
        if partial is None:
            raise
        if partial.artifacts:
            print_table(_table(partial))
        for name, message in {**partial.failed, **partial.rejected}.items():
            say(("export failed:", "bold red"), f" {name}: {message}", err=True)
        raise typer.Exit(1) from None
    print_table(_table(result))
    for reason in dict.fromkeys(result.skipped.values()):
        names = ", ".join(n for n, r in result.skipped.items() if r == reason)
        say(("skipped", "yellow"), f" {names}: {reason}")
    for name, check in result.checks.items():
        for head, h in check["heads"].items():
            what = f"{name}{f' {head}' if len(check['heads']) > 1 else ''}"
            say(f"{what}: max |diff| {h['max_abs_diff']:.4g} ({h['max_diff_in_std']:.3f} std) - passed"
                if h["kind"] == "number" else f"{what}: accuracy {h['accuracy']:.4f} vs Keras "
                f"{h['keras_accuracy']:.4f} ({h['accuracy_change']:+.2f} points, agreement {h['agreement']:.2%})"
                " - passed")
    say(f"check every artifact with: tfpilot verify {run}")


def _table(result: Any) -> Any:
    """The artifacts of an export as a rich table."""
    from rich.table import Table

    table = Table(title=f"exported to {result.out_dir}", show_header=True)
    table.add_column("format", no_wrap=True, min_width=14)
    for col in ("file", "size", "seconds", "precision"):
        table.add_column(col, justify="right" if col in ("size", "seconds") else "left")
    for a in result.artifacts:
        file = str(a.path.relative_to(result.out_dir)) if a.path.is_relative_to(result.out_dir) else str(a.path)
        table.add_row(a.format, file, f"{a.size_bytes / 1024:,.0f} KB", f"{a.seconds:.1f}", a.bundle.precision)
    return table
