"""Evaluation: metrics (scikit-learn) and evaluating runs."""

from tfpilot.evaluation.evaluate import evaluate
from tfpilot.metrics import classification_metrics, to_probabilities

__all__ = ["classification_metrics", "evaluate", "to_probabilities"]
