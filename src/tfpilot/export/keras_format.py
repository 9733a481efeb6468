"""The ``keras`` format: the ``.keras`` file (loads with ``safe_mode=True``) + bundle.json.

The model is saved as trained (same dtype policy, preprocessing inside), without the
optimizer state only training needs; it is the reference every other format is verified
against.

Example:
    >>> from tfpilot.export import export
    >>> export("runs/mnist", ["keras"])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfpilot.export.backends import Backend, bundle_beside, register_backend
from tfpilot.export.bundle import BUNDLE_FILE, Bundle
from tfpilot.export.formats import register_exporter
from tfpilot.export.runtime import KerasModel

FILENAME = "model.keras"


@register_exporter("keras", backend="keras", description="Keras 3 .keras file (the trained model, as is)")
def export_keras(source: Any, folder: Path) -> Bundle:
    """Save the model (without optimizer state) to ``folder/model.keras`` with its bundle."""
    source.inference_model().save(folder / FILENAME)
    bundle = source.bundle("keras", FILENAME, precision=_precision(source.model))
    bundle.write(folder)
    return bundle


def _precision(model: Any) -> str:
    """The dtype policy the model's layers compute in (mixed policies as trained)."""
    policies = {getattr(getattr(layer, "dtype_policy", None), "name", "float32") for layer in model.layers}
    mixed = sorted(p for p in policies if p != "float32")
    return f"{mixed[0]} (as trained; head in float32)" if mixed else "float32"


def read_bundle(path: Path) -> Bundle:
    """bundle.json beside the file; for a run directory's model, its labels.json."""
    folder = path.parent if path.is_file() else path
    if (folder / BUNDLE_FILE).is_file() or not (folder / "labels.json").is_file():
        return bundle_beside(path)
    from tfpilot.runs import Run
    from tfpilot.spec import spec_from_dict

    labels = Run(folder).labels
    spec = spec_from_dict(labels["input"])
    return Bundle(format="keras", file=FILENAME, class_names=labels["class_names"] if spec.kind != "table" else [],
                  input_spec=spec, source_run=str(folder.resolve()),
                  model=labels.get("model"))


def open_keras(path: Path, bundle: Bundle) -> KerasModel:
    """Load the ``.keras`` file with ``safe_mode=True`` (no arbitrary code runs)."""
    from tfpilot.runs import load_model  # with tfpilot's serializable classes

    file = path if path.is_file() else path / FILENAME
    return KerasModel(load_model(file, safe_mode=True), bundle.format, file, bundle)


register_backend("keras", Backend(FILENAME, (".keras",), open_keras, read_bundle),
                 description="Keras 3 (.keras, safe_mode=True)")
