"""``tfpilot train --check-determinism``: train two short twins and compare their weights.

Example:
    >>> from tfpilot.config import load_config
    >>> report = check_determinism(load_config(None, dataset="digits", model="mlp"))  # doctest: +SKIP
    >>> report.identical  # doctest: +SKIP
    True
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpilot.config import Config, load_config


@dataclass
class DeterminismReport:
    identical: bool
    max_abs_diff: float
    num_weights: int
    differing: list[str]
    steps: int


def _twin(cfg: Config, run_dir: Path, steps: int):
    from tfpilot.training.trainer import Trainer

    tree = cfg.model_dump(mode="json")
    tree["train"].update(deterministic=True, epochs=1, steps_per_epoch=steps)
    tree["train"]["callbacks"].update(tensorboard=False, progress="none", backup=False, checkpoint=False)
    tree["output"].update(run_dir=str(run_dir), overwrite=True)
    return Trainer(load_config(tree)).fit().model_


def check_determinism(cfg: Config, steps: int = 20, workdir: str | Path | None = None) -> DeterminismReport:
    """Train the configured model twice for ``steps`` steps (deterministic mode, same seed)
    and compare every weight bit for bit."""
    root = Path(workdir or tempfile.mkdtemp(prefix="tfpilot-determinism-"))
    a, b = _twin(cfg, root / "twin_a", steps), _twin(cfg, root / "twin_b", steps)
    diffs, max_diff = [], 0.0
    for va, vb in zip(a.weights, b.weights):
        x, y = np.asarray(va), np.asarray(vb)
        if not np.array_equal(x, y):
            diffs.append(va.path)
            max_diff = max(max_diff, float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))))
    return DeterminismReport(not diffs, max_diff, len(a.weights), diffs, steps)
