"""Metrics from labels and model outputs: pure NumPy/scikit-learn, shared by training,
evaluation, export verification and serving."""

from tfpilot.metrics.classification import (
    classification_metrics,
    cross_entropy,
    predict_probabilities,
    to_probabilities,
    top_k_accuracy,
)

__all__ = ["classification_metrics", "cross_entropy", "predict_probabilities", "to_probabilities", "top_k_accuracy"]
