"""A run directory and what it holds.

Layout::

    RUN/
      config.yaml        the resolved config (``tfpilot train RUN/config.yaml`` reproduces it)
      model.keras        the trained model (raw input -> class probabilities)
      labels.json        class names and the input spec
      split.json         which examples went to train/val/test
      history.csv        per-epoch metrics and learning rate
      metrics.json       test/val metrics and training time
      data_report.json   skipped files, class balance, split sizes
      env.json           versions, hardware, precision, seed, git commit
      report.html        the evaluation report (``tfpilot report RUN``)
      ensemble.json      an ensemble's members (``tfpilot ensemble``)
      checkpoints/       best model by val_accuracy
      backup/            BackupAndRestore state (resume after a crash)
      logs/              TensorBoard
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tfpilot.registry import KERAS_OBJECTS

CONFIG = "config.yaml"
MODEL = "model.keras"
LABELS = "labels.json"
SPLIT = "split.json"
HISTORY = "history.csv"
METRICS = "metrics.json"
DATA_REPORT = "data_report.json"
ENV = "env.json"
REPORT = "report.html"
ENSEMBLE = "ensemble.json"


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (temp file + rename), so a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def load_model(path: str | Path, safe_mode: bool = True) -> Any:
    """Load a ``.keras`` file written by tfpilot (its preprocessing layers and schedules are
    tfpilot's registered serializable classes, found through :data:`KERAS_OBJECTS`)."""
    import keras

    custom = {e.name: e.obj for e in KERAS_OBJECTS.entries()}
    return keras.saving.load_model(path, custom_objects=custom, safe_mode=safe_mode)


class Run:
    """A handle on a run directory.

    Args:
        path: the run directory.

    Example:
        >>> run = Run("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
        >>> run.metrics["test"]["accuracy"]  # doctest: +SKIP
        0.9912
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def _json(self, name: str) -> dict[str, Any]:
        p = self.file(name)
        if not p.is_file():
            raise FileNotFoundError(f"{self.path} has no {name}: is it a tfpilot run directory of a finished run?")
        return json.loads(p.read_text(encoding="utf-8"))

    @property
    def exists(self) -> bool:
        return self.file(CONFIG).is_file()

    @property
    def finished(self) -> bool:
        return self.file(METRICS).is_file() and self.file(MODEL).is_file()

    @property
    def config_file(self) -> Path:
        """The resolved config (``tfpilot.load_config(run.config_file)`` parses it)."""
        return self.file(CONFIG)

    @property
    def metrics(self) -> dict[str, Any]:
        return self._json(METRICS)

    @property
    def labels(self) -> dict[str, Any]:
        return self._json(LABELS)

    @property
    def class_names(self) -> list[str]:
        return list(self.labels["class_names"])

    @property
    def data_report(self) -> dict[str, Any]:
        return self._json(DATA_REPORT)

    @property
    def env(self) -> dict[str, Any]:
        return self._json(ENV)

    @property
    def history(self) -> list[dict[str, float]]:
        p = self.file(HISTORY)
        if not p.is_file():
            return []
        with p.open(newline="") as f:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]

    @property
    def model_path(self) -> Path:
        return self.file(MODEL)

    def load_model(self, safe_mode: bool = True) -> Any:
        """The trained ``keras.Model``."""
        return load_model(self.model_path, safe_mode=safe_mode)

    def update_metrics(self, key: str, values: Any) -> None:
        """Set ``metrics.json[key]`` (creating the file if needed)."""
        p = self.file(METRICS)
        data = json.loads(p.read_text()) if p.is_file() else {}
        data[key] = values
        write_json(p, data)
