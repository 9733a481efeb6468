"""``train.calibration``: after training, one temperature per class head, fitted on validation.

Temperature scaling (Guo et al. 2017) divides a head's logits by ``T``, chosen to minimise the
negative log-likelihood of the validation split -- a 1-D optimisation over ``log T``
(scipy's bounded Brent). Argmax and the 0.5 threshold never move, so accuracy is unchanged;
only how confident the model says it is changes. The temperature goes into the model as a
:class:`~tfpilot.models.calibration.TemperatureScaling` layer per head, so every export and
every served answer uses it.

:func:`fit_heads` works on outputs already computed (the trainer's, or those of an older run
that ``tfpilot evaluate --calibrate`` refits); :func:`calibrate` is the trainer's post-fit step.
The record, kept in ``metrics.json`` under ``calibration``, has per head the temperature and
the ECE, NLL and accuracy before and after, on val and on test.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000)
    >>> logits = np.where(y[:, None] == np.arange(2), 1.0, -1.0) + rng.normal(0, 1, (2000, 2))
    >>> probs = np.exp(4 * logits) / np.exp(4 * logits).sum(1, keepdims=True)  # calibrated: 2 * logits
    >>> 1.8 < fit_temperature(y, probs, "category") < 2.2  # twice as confident as it should be
    True
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.metrics.calibration import expected_calibration_error
from tfpilot.metrics.classification import cross_entropy
from tfpilot.metrics.heads import as_probabilities
from tfpilot.models.calibration import scale_probabilities, with_temperatures
from tfpilot.spec import CLASSIFIER_HEAD

log = logging.getLogger(__name__)

#: The temperatures searched: a head softened or sharpened at most 20-fold.
BOUNDS = (0.05, 20.0)
N_BINS = 15


def head_kind(kind: str, outputs: np.ndarray) -> str:
    """"binary" for a sigmoid output (a binary head, or a classifier's one sigmoid unit), else "category"."""
    out = np.asarray(outputs)
    return "binary" if kind == "binary" or out.ndim == 1 or out.shape[-1] == 1 else "category"


def _probs(kind: str, outputs: np.ndarray) -> np.ndarray:
    return as_probabilities(kind, np.reshape(outputs, -1) if kind == "binary" else outputs)


def fit_temperature(y: np.ndarray, outputs: np.ndarray, kind: str) -> float:
    """The temperature minimising the NLL of ``y`` under ``outputs`` scaled by it.

    Args:
        y: integer labels (N,).
        outputs: a category head's (N, C) probabilities, or a binary head's P(positive) (N,).
        kind: "category" or "binary".
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, np.int64)

    def nll(log_t: float) -> float:
        return cross_entropy(y, _probs(kind, scale_probabilities(outputs, math.exp(log_t), kind)))

    lo, hi = (math.log(b) for b in BOUNDS)
    best = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return float(math.exp(best.x))


def figures(y: np.ndarray, outputs: np.ndarray, kind: str, temperature: float) -> dict[str, float]:
    """ECE, NLL and accuracy of ``outputs`` before and after scaling by ``temperature``."""
    y = np.asarray(y, np.int64)
    before = _probs(kind, outputs)
    after = _probs(kind, scale_probabilities(outputs, temperature, kind))
    out = {}
    for name, p in (("before", before), ("after", after)):
        out[f"ece_{name}"] = expected_calibration_error(y, p, N_BINS)
        out[f"nll_{name}"] = cross_entropy(y, p)
        out[f"accuracy_{name}"] = float(np.mean(p.argmax(axis=1) == y))
    return out


def fit_heads(kinds: Mapping[str, str], val: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
              test: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]] | None = None
              ) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit a temperature per head on ``val``; measure before and after on val (and test).

    Args:
        kinds: head key -> "category" or "binary" (see :func:`head_kind`).
        val: ``(targets, outputs)`` of the validation split, each head key -> array; the outputs
            are the uncalibrated model's.
        test: the same for the test split, or None.

    Returns:
        ``(temperatures, record)``: head key -> T, and head key -> ``{"temperature", "method",
        "fitted_on", "val": figures, "test": figures}`` (:func:`figures`).
    """
    temps: dict[str, float] = {}
    record: dict[str, Any] = {}
    for key, kind in kinds.items():
        y, out = val[0][key], val[1][key]
        t = fit_temperature(y, out, kind)
        temps[key] = t
        entry: dict[str, Any] = {"temperature": round(t, 6), "method": "temperature",
                                 "fitted_on": f"val ({len(y):,} examples)", "val": figures(y, out, kind, t)}
        if test is not None:
            entry["test"] = figures(test[0][key], test[1][key], kind, t)
        record[key] = entry
        shown = entry.get("test", entry["val"])
        log.info("calibration of %s: temperature %.3f, %s ECE %.4f -> %.4f", key, t,
                 "test" if "test" in entry else "val", shown["ece_before"], shown["ece_after"])
    return temps, record


def split_outputs(model: Any, data: Any, split: str, batch_size: int) -> tuple[dict[str, np.ndarray],
                                                                               dict[str, np.ndarray]]:
    """``(targets, outputs)`` of ``model`` on ``split`` of prepared data, by head key (a
    classifier's one head is ``label``)."""
    ys: dict[str, list[np.ndarray]] = {}
    outs: dict[str, list[np.ndarray]] = {}
    for x, y in data.pipeline(split, batch_size, training=False):
        out = model(x, training=False)
        if not isinstance(out, dict):
            out, y = {CLASSIFIER_HEAD: out}, {CLASSIFIER_HEAD: y}
        for k, v in out.items():
            outs.setdefault(k, []).append(np.asarray(v, np.float32))
            ys.setdefault(k, []).append(np.asarray(y[k]))
    return ({k: np.concatenate(v) for k, v in ys.items()}, {k: np.concatenate(v) for k, v in outs.items()})


def class_heads(spec: Any, outputs: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Head key -> kind ("category" / "binary") of every class head of ``spec`` in ``outputs``."""
    return {o.key: head_kind(o.kind, outputs[o.key]) for o in spec.outputs
            if o.kind in ("category", "binary") and o.key in outputs}


def unscaled(outputs: Mapping[str, np.ndarray], current: Mapping[str, float],
             kinds: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The outputs a calibrated model gave, with its temperatures ``current`` taken back out
    (scaling by ``1 / T`` inverts scaling by ``T``); heads without a temperature as they are."""
    return {k: scale_probabilities(v, 1.0 / current[k], kinds.get(k, "category")) if k in current else v
            for k, v in outputs.items()}


def save_model_atomically(model: Any, path: Path) -> Path:
    """``model.save`` to a temporary file beside ``path``, then renamed over it: a crash
    leaves the old model or the new one, never half a file."""
    tmp = path.with_name(f".{path.stem}.calibrating{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def calibrate(model: Any, data: Any, batch_size: int = 256) -> tuple[Any, dict[str, Any] | None]:
    """The trainer's post-fit step: ``model`` with a fitted temperature on each class head.

    Args:
        model: the final trained model (after any ensembling), uncalibrated.
        data: the run's prepared data (its val split fits, its test split is measured).
        batch_size: examples per model call.

    Returns:
        ``(model, record)``: the calibrated model (a new functional model over the same layers)
        and :func:`fit_heads`'s record; ``(model, None)`` unchanged when there is no class head
        or no validation split to fit on.
    """
    if not len(data.splits.get("val", ())):
        log.warning("train.calibration: no validation split to fit a temperature on; the model is left "
                    "uncalibrated (set data.val_split, or train.calibration: none)")
        return model, None
    val = split_outputs(model, data, "val", batch_size)
    kinds = class_heads(data.spec, val[1])
    if not kinds:
        return model, None
    test = split_outputs(model, data, "test", batch_size) if len(data.splits.get("test", ())) else None
    temps, record = fit_heads(kinds, val, test)
    return with_temperatures(model, temps, kinds), record
