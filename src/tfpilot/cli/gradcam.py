"""``tfpilot gradcam``: Grad-CAM overlays for given images with a run's model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import print_table, setup_logging, user_errors


@user_errors
def gradcam_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders of images.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default RUN/gradcam).")] = None,
    layer: Annotated[Optional[str], typer.Option("--layer", help="Layer to explain (default: last conv).")] = None,
    class_name: Annotated[Optional[str], typer.Option("--class", help="Explain this class instead.")] = None,
) -> None:
    """Write IMAGE_gradcam.png (input | Grad-CAM overlay) for each image.

    Example: tfpilot gradcam runs/cifar cat.jpg dog.jpg --out cams/
    """
    from rich.table import Table

    from tfpilot.cli.predict import expand_inputs
    from tfpilot.evaluation.gradcam import gradcam

    setup_logging()
    files = expand_inputs(inputs)
    results = gradcam(run, files, out_dir=out or run / "gradcam", layer=layer, class_name=class_name)
    table = Table(show_header=True)
    for col in ("input", "prediction", "explained", "overlay"):
        table.add_column(col)
    for r in results:
        table.add_row(r["input"], f"{r['label']} ({r['score']:.3f})", r["explained"], r["path"])
    print_table(table)
