"""Metrics from labels and model outputs: pure NumPy/scikit-learn, shared by training,
evaluation, export verification and serving."""

from tfpilot.metrics.classification import (
    classification_metrics,
    cross_entropy,
    predict_probabilities,
    to_probabilities,
    top_k_accuracy,
)
from tfpilot.metrics.heads import head_metrics
from tfpilot.metrics.regression import mape, regression_metrics

__all__ = ["classification_metrics", "cross_entropy", "head_metrics", "mape", "predict_probabilities",
           "regression_metrics", "to_probabilities", "top_k_accuracy"]
