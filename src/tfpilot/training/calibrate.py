"""``train.calibration``: the trainer's post-fit step -- a temperature per class head, fitted on val.

After training (and any ensembling), the final model's outputs on the validation split fit one
temperature per category or binary head (:func:`~tfpilot.metrics.calibration.fit_heads`:
the NLL minimised over ``log T``), and the model gets a
:class:`~tfpilot.models.calibration.TemperatureScaling` layer on each, so every export and
every served answer uses it. The record, kept in ``metrics.json`` under ``calibration``, has
per head the temperature and the ECE, NLL and accuracy before and after, on val and on test.

Example:
    >>> from tfpilot.training.calibrate import calibrate
    >>> model, record = calibrate(trainer.model_, trainer.data_)  # doctest: +SKIP
    >>> record["label"]["test"]["ece_after"] < record["label"]["test"]["ece_before"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tfpilot.config.schema import EVAL_BATCH
from tfpilot.metrics.calibration import class_heads, fit_heads
from tfpilot.models.calibration import with_temperatures
from tfpilot.spec import CLASSIFIER_HEAD

log = logging.getLogger(__name__)


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


def calibrate(model: Any, data: Any, batch_size: int = EVAL_BATCH) -> tuple[Any, dict[str, Any] | None]:
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
