"""Calibration error: does a confidence of 0.8 mean right 80% of the time?

The reliability diagram bins the top-label confidence (the highest probability) into
equal-width bins ``(0, 1/B], (1/B, 2/B], ...`` (right-closed, as scikit-learn's
``calibration_curve``; a confidence of exactly 0 falls in the first bin) and compares
each bin's accuracy with its mean confidence. The expected calibration error is the
bin-size-weighted mean gap ``sum_b n_b / N * |acc_b - conf_b|``. Pure NumPy: training
records it before and after fitting a temperature, the report draws it.

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> round(expected_calibration_error(np.array([0, 1, 1, 1]), probs, n_bins=10), 4)
    0.4
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfpilot.metrics.classification import to_probabilities


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
