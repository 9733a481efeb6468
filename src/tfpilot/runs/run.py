"""A run directory and what it holds.

Layout::

    RUN/
      config.yaml        the resolved config (``tfpilot train RUN/config.yaml`` reproduces it)
      model.keras        the trained model (raw input -> class probabilities)
      labels.json        class names and the input spec
      split.json         which examples went to train/val/test
      history.csv        per-epoch metrics and learning rate
      metrics.json       test/val metrics and training time (as training measured them)
      evaluations/       later evaluations (``tfpilot evaluate``), one JSON file each
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
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from tfpilot.errors import NotFoundError
from tfpilot.plugins import HOW_TO_PROVIDE, PluginError, import_modules, load_entry_points
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
EVALUATIONS = "evaluations"
BACKUP = "backup"


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (temp file + rename), so a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def evaluation_name(dataset: str | None, split: str, recorded: bool) -> str:
    """The file name (without ``.json``) of an evaluation under ``RUN/evaluations/``.

    Args:
        dataset: the dataset evaluated (None: the run's own).
        split: the split evaluated.
        recorded: it was the run's recorded split (then the name is just the split's).

    Example:
        >>> evaluation_name(None, "test", True), evaluation_name("fashion_mnist", "test", False)
        ('test', 'fashion_mnist-test')
    """
    if recorded or not dataset:
        return split
    stem = Path(str(dataset).rstrip("/")).name or str(dataset)
    if stem != dataset:  # a path: two folders named alike must not share a file
        stem += "-" + hashlib.blake2b(str(Path(dataset).expanduser().resolve()).encode(), digest_size=3).hexdigest()
    return f"{stem}-{split}"


def run_of(path: str | Path) -> Path | None:
    """The run directory that holds ``path`` (``RUN/model.keras``, ``RUN/checkpoints/best.keras``,
    ``RUN/export/keras/model.keras``), or None."""
    for folder in list(Path(path).parents)[:3]:
        if (folder / CONFIG).is_file():
            return folder
    return None


def import_run_modules(run_dir: str | Path) -> list[str]:
    """Import what a run's code needs: the installed ``tfpilot.plugins`` entry points and the
    modules its ``config.yaml`` lists under ``imports`` (its own losses, models, layers).

    Args:
        run_dir: the run directory.

    Returns:
        The modules of ``imports``.

    Raises:
        tfpilot.plugins.PluginError: a module cannot be imported; the message names it and
            says how to make it importable.
    """
    load_entry_points()
    config = Path(run_dir) / CONFIG
    tree = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else None
    names = tree.get("imports") if isinstance(tree, dict) else None
    return import_modules([str(n) for n in names or []], f"{config} (imports)")


def load_model(path: str | Path, safe_mode: bool = True) -> Any:
    """Load a ``.keras`` file written by tfpilot (its preprocessing layers and schedules are
    tfpilot's registered serializable classes, found through :data:`KERAS_OBJECTS`); the
    modules its run imported are imported first (:func:`import_run_modules`)."""
    import keras

    run_dir = run_of(path)
    if run_dir is not None:
        import_run_modules(run_dir)
    else:
        load_entry_points()
    custom = {e.name: e.obj for e in KERAS_OBJECTS.entries()}
    try:
        return keras.saving.load_model(path, custom_objects=custom, safe_mode=safe_mode)
    except TypeError as exc:
        if "Could not locate" not in str(exc):
            raise
        raise PluginError(f"{path}: {str(exc).splitlines()[0]} It is defined by your own code. "
                          f"{HOW_TO_PROVIDE}") from exc


def beside(run_dir: str | Path) -> Path:
    """The first of ``RUN-2``, ``RUN-3``, ... that does not exist: a new run directory beside ``run_dir``.

    Example:
        >>> beside("runs/does-not-exist")
        PosixPath('runs/does-not-exist-2')
    """
    run_dir = Path(run_dir)
    n = 2
    while run_dir.with_name(f"{run_dir.name}-{n}").exists():
        n += 1
    return run_dir.with_name(f"{run_dir.name}-{n}")


def rerun_dir(config_file: str | Path, run_dir: str | Path | None) -> Path | None:
    """Where training from a run's own ``config.yaml`` goes: a new directory beside the run.

    A config file that lives in a run directory and names that directory as ``output.run_dir``
    (``tfpilot train RUN/config.yaml``) reproduces the run; it must not write into (and be
    refused by, or destroy) the run it was read from.

    Args:
        config_file: the YAML file the config was read from.
        run_dir: the config's ``output.run_dir``.

    Returns:
        ``RUN-2`` (or the next free name) when ``config_file`` is in ``run_dir`` and training
        already wrote there; None otherwise (train into ``run_dir`` as given).
    """
    if run_dir is None or Path(config_file).resolve().parent != Path(run_dir).resolve():
        return None
    return beside(run_dir) if Run(run_dir).started else None


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
            raise NotFoundError(f"{self.path} has no {name}: is it a tfpilot run directory of a finished run?")
        return json.loads(p.read_text(encoding="utf-8"))

    @property
    def exists(self) -> bool:
        return self.file(CONFIG).is_file()

    @property
    def finished(self) -> bool:
        return self.file(METRICS).is_file() and self.file(MODEL).is_file()

    @property
    def started(self) -> bool:
        """Training wrote here (a split, a history, a backup, a model): it holds a run, finished
        or not, and not just a config file put there to train into."""
        return any(self.file(name).exists() for name in (SPLIT, HISTORY, BACKUP, MODEL, METRICS))

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
        with p.open(newline="") as f:  # Keras' CSVLogger writes NA in the val_ columns of a run with no val split
            return [{k: float(v) for k, v in row.items() if v not in ("", None, "NA")} for row in csv.DictReader(f)]

    @property
    def model_path(self) -> Path:
        return self.file(MODEL)

    def load_model(self, safe_mode: bool = True) -> Any:
        """The trained ``keras.Model``."""
        return load_model(self.model_path, safe_mode=safe_mode)

    @property
    def evaluations(self) -> dict[str, dict[str, Any]]:
        """Later evaluations (``tfpilot evaluate``), by name; ``metrics.json`` keeps training's."""
        folder = self.file(EVALUATIONS)
        if not folder.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}

    def save_evaluation(self, name: str, record: Any) -> Path:
        """Write ``RUN/evaluations/<name>.json`` (beside ``metrics.json``, never over it).

        Args:
            name: the evaluation's name, e.g. ``test`` or ``fashion_mnist-test``; characters
                other than letters, digits, ``._-`` become ``_``.
            record: JSON-serialisable result.

        Example:
            >>> Run("runs/a").save_evaluation("test", {"accuracy": 0.99})  # doctest: +SKIP
            PosixPath('runs/a/evaluations/test.json')
        """
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip("._") or "evaluation"
        folder = self.file(EVALUATIONS)
        folder.mkdir(exist_ok=True)
        return write_json(folder / f"{safe}.json", record)

    def update_metrics(self, key: str, values: Any) -> None:
        """Set ``metrics.json[key]`` (creating the file if needed); for what training measured
        -- a later evaluation goes to :meth:`save_evaluation`."""
        p = self.file(METRICS)
        data = json.loads(p.read_text()) if p.is_file() else {}
        data[key] = values
        write_json(p, data)
