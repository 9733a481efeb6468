"""Crash-safe progress: after every epoch, the model (with optimizer state), the callbacks'
state and the run's progress are written to ``RUN/backup/epoch-NNNN/`` atomically.

The directory is written under a temporary name and renamed into place, and only then does
``RUN/backup/latest.json`` (itself replaced atomically) point at it. A kill at any moment
leaves the previous epoch's checkpoint complete and pointed to.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np

LATEST = "latest.json"

#: The attributes that make up each stateful callback's memory between epochs.
_STATE_ATTRS: dict[str, tuple[str, ...]] = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ModelCheckpoint": ("best",),
    "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
    "EpochTimer": ("train_seconds",),
}


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, default=float), encoding="utf-8")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _to_json(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        return v.item()
    return float(v) if hasattr(v, "__float__") and not isinstance(v, (int, float, bool)) else v


def callback_state(callbacks: list[Any]) -> dict[str, dict[str, Any]]:
    state = {}
    for i, cb in enumerate(callbacks):
        attrs = _STATE_ATTRS.get(type(cb).__name__)
        if attrs:
            state[f"{i}:{type(cb).__name__}"] = {a: _to_json(getattr(cb, a, None)) for a in attrs}
    return state


def rng_state(model: Any) -> dict[str, np.ndarray]:
    """The states of the model's random-number generators (dropout etc.).

    Keras does not save ``SeedGenerator`` states in ``.keras`` files; without them a resumed
    run would draw different dropout masks than the uninterrupted one.
    """
    return {v.path: np.asarray(v) for v in model.variables if v.path.endswith("seed_generator_state")}


def restore_rng_state(model: Any, checkpoint_dir: Path) -> None:
    path = checkpoint_dir / "rng.npz"
    if not path.is_file():
        return
    with np.load(path) as saved:
        for v in model.variables:
            if v.path in saved.files:
                v.assign(saved[v.path])


def restore_callback_state(callbacks: list[Any], state: dict[str, dict[str, Any]], backup: Path) -> None:
    for i, cb in enumerate(callbacks):
        saved = state.get(f"{i}:{type(cb).__name__}")
        if saved is None:
            continue
        for attr, value in saved.items():
            setattr(cb, attr, value)
        if type(cb).__name__ == "EarlyStopping" and (backup / "best.weights.npz").is_file():
            with np.load(backup / "best.weights.npz") as f:
                cb.best_weights = [f[f"w{j}"] for j in range(len(f.files))]


class ResumeCheckpoint(keras.callbacks.Callback):
    """Writes the resumable state of the run at the end of every epoch.

    Args:
        backup_dir: ``RUN/backup``.
        callbacks: the run's callbacks, whose state (best metric, patience counters, best
            weights) is saved alongside the model.
        stage: 1 or 2 (transfer-learning fine-tuning), stored for resume.
    """

    def __init__(self, backup_dir: str | Path, callbacks: list[Any], stage: int = 1) -> None:
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.callbacks = callbacks
        self.stage = stage

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1:04d}"
        tmp = self.backup_dir / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.model.save(tmp / "model.keras")
        np.savez(tmp / "rng.npz", **rng_state(self.model))
        for cb in self.callbacks:
            if type(cb).__name__ == "EarlyStopping" and getattr(cb, "best_weights", None) is not None:
                np.savez(tmp / "best.weights.npz", **{f"w{j}": w for j, w in enumerate(cb.best_weights)})
        (tmp / "state.json").write_text(json.dumps({
            "epochs_done": epoch + 1,
            "stage": self.stage,
            "callbacks": callback_state(self.callbacks),
        }, default=float))
        final = self.backup_dir / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _atomic_json(self.backup_dir / LATEST, {"dir": name})
        for old in self.backup_dir.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(backup_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """``(checkpoint dir, state)`` of the last completed epoch, or None."""
    backup_dir = Path(backup_dir)
    pointer = backup_dir / LATEST
    if not pointer.is_file():
        return None
    d = backup_dir / json.loads(pointer.read_text())["dir"]
    state = json.loads((d / "state.json").read_text())
    return d, state
