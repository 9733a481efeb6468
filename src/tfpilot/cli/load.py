"""``tfpilot load``: what an artifact is (format, classes, input) and, given inputs, its predictions.

Example:
    $ tfpilot load runs/mnist/export/tflite-int8
    $ tfpilot load runs/mnist/export/onnx digit.png
    $ tfpilot load runs/imdb/export/tflite --text "a wonderful film"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import console, say, setup_logging, user_errors


@user_errors
def load_command(
    artifact: Annotated[Path, typer.Argument(help="Artifact file/folder, or a run directory.")],
    inputs: Annotated[Optional[list[Path]], typer.Argument(help="Image files or folders to predict.")] = None,
    text: Annotated[Optional[list[str]], typer.Option(
        "--text", "-t", help="A string to classify (text models).")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", help="keras, saved_model, tflite or onnx.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1)] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Load an artifact with the runtime its format needs and describe it."""
    from tfpilot.export.backends import resolve
    from tfpilot.inference import load

    setup_logging()
    found = resolve(artifact, backend)
    predictor = load(artifact, backend=backend)
    bundle = found.bundle
    info = {
        "artifact": str(found.path), "format": found.format, "backend": found.backend,
        "classes": predictor.class_names, "input_spec": predictor.input_spec.to_dict(),
        "input": bundle.input.get("note") or None, "output": bundle.output.get("meaning") or None,
        "precision": bundle.precision,
        "preprocessing": [f"{s['step']} ({s.get('where', 'inside the model')})" for s in bundle.preprocessing] or None,
    }
    results = []
    if inputs:
        from tfpilot.cli.predict import expand_inputs

        files = expand_inputs(inputs)
        results = [{"input": str(f), **r} for f, r in zip(files, predictor.predict([str(f) for f in files], top_k))]
    if text:
        results += [{"input": t, **r} for t, r in zip(text, predictor.predict(list(text), top_k))]
    if as_json:
        console.print_json(json.dumps({**info, "predictions": results}))
        return
    for key, value in info.items():
        if value is not None:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            say((key, "bold"), f": {shown}")
    for r in results:
        top = ", ".join(f"{t['label']} {t['score']:.3f}" for t in r["top_k"])
        say(f"{r['input']}: ", (r["label"], "bold"), f" ({r['score']:.3f})  [{top}]")
