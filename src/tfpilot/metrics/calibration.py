"""Calibration: does a confidence of 0.8 mean right 80% of the time? And the temperature that makes it so.

The reliability diagram bins the top-label confidence (the highest probability) into
equal-width bins ``(0, 1/B], (1/B, 2/B], ...`` (right-closed, as scikit-learn's
``calibration_curve``; a confidence of exactly 0 falls in the first bin) and compares
each bin's accuracy with its mean confidence. The expected calibration error is the
bin-size-weighted mean gap ``sum_b n_b / N * |acc_b - conf_b|``.

Temperature scaling (Guo et al. 2017) divides a head's logits by ``T``, chosen to minimise the
negative log-likelihood of the validation split -- a 1-D optimisation over ``log T`` (scipy's
bounded Brent). Since ``log softmax(z) = z - logsumexp(z)``, ``softmax(log p / T) =
softmax(z / T)``: it needs only the head's probabilities (:func:`scale_probabilities`, the
NumPy twin of :class:`~tfpilot.models.calibration.TemperatureScaling`). Argmax and the 0.5
threshold never move. Pure NumPy / SciPy: training fits and records it, ``tfpilot evaluate
--calibrate`` refits it, the report draws the bins before and after.

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> round(expected_calibration_error(np.array([0, 1, 1, 1]), probs, n_bins=10), 4)
    0.4
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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpilot.metrics.classification import cross_entropy, to_probabilities
from tfpilot.metrics.heads import as_probabilities

#: Probabilities are clipped to [TINY, 1] (softmax) or [EPS, 1 - EPS] (sigmoid) before the log.
TINY = 1e-30
EPS = 1e-7
#: The temperatures searched: a head softened or sharpened at most 20-fold.
BOUNDS = (0.05, 20.0)
N_BINS = 15

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of a reliability diagram (arrays of length ``n_bins``).

    Attributes:
        edges: the ``n_bins + 1`` bin edges over [0, 1].
        counts: examples per bin.
        confidence: mean top-label confidence per bin (NaN for an empty bin).
        accuracy: fraction correct per bin (NaN for an empty bin).
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean |accuracy - confidence|."""
        total = self.counts.sum()
        if total == 0:
            return 0.0
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(self.counts[filled] * gaps) / total)

    @property
    def mce(self) -> float:
        """Maximum calibration error: the largest |accuracy - confidence| of a non-empty bin."""
        filled = self.counts > 0
        return float(np.max(np.abs(self.accuracy[filled] - self.confidence[filled]))) if filled.any() else 0.0


def _confidence_and_correct(y_true: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = to_probabilities(probs)
    if len(y_true) != len(probs):
        raise ValueError(f"{len(y_true)} labels but {len(probs)} rows of probabilities")
    return probs.max(axis=1), (probs.argmax(axis=1) == y_true).astype(np.float64)


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> ReliabilityBins:
    """Bin the top-label confidence and measure each bin's accuracy.

    Args:
        y_true: integer labels (N,).
        probs: probabilities (N, C), or sigmoid outputs (N,) / (N, 1).
        n_bins: number of equal-width bins over [0, 1].

    Example:
        >>> import numpy as np
        >>> bins = reliability_bins(np.array([0, 1]), np.array([[0.95, 0.05], [0.85, 0.15]]), n_bins=10)
        >>> bins.counts.tolist()[-2:], bins.accuracy[-2:].tolist()
        ([1, 1], [0.0, 1.0])
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidence, correct = _confidence_and_correct(y_true, probs)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins (a, b]: the index of the first inner edge >= the confidence
    index = np.searchsorted(edges[1:-1], confidence, side="left")
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=n_bins) / counts
        accuracy = np.bincount(index, weights=correct, minlength=n_bins) / counts
    return ReliabilityBins(edges, counts, mean_conf, accuracy)


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """The expected calibration error of the top-label confidence (see :func:`reliability_bins`)."""
    return reliability_bins(y_true, probs, n_bins).ece


# -- temperature scaling ----------------------------------------------------------------------
def mode_of(kind: str) -> str:
    """The layer mode of a head kind: "sigmoid" for a binary head, else "softmax"."""
    return "sigmoid" if kind == "binary" else "softmax"


def scale_probabilities(probs: np.ndarray, temperature: float, kind: str = "category") -> np.ndarray:
    """What :class:`TemperatureScaling` outputs, in NumPy (float64).

    Args:
        probs: a category head's (N, C) probabilities, or a binary head's (N,) P(positive).
        temperature: the temperature (1 leaves them as they are, up to clipping).
        kind: "category" or "binary" (a classifier's one sigmoid unit, shape (N, 1), is binary).

    Example:
        >>> np.round(scale_probabilities(np.array([0.9, 0.5]), 2.0, "binary"), 4).tolist()
        [0.75, 0.5]
    """
    p = np.asarray(probs, np.float64)
    if mode_of(kind) == "softmax":
        z = np.log(np.maximum(p, TINY)) / temperature
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
    p = np.clip(p, EPS, 1.0 - EPS)
    return 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p)) / temperature))


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
