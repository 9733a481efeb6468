"""Regression metrics against scikit-learn, and per-head metrics with their baselines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, mean_squared_error, r2_score

from tfpilot.metrics import head_metrics, regression_metrics
from tfpilot.spec import FeatureSpec, TableSpec


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.uniform(5, 50, 200)
    p = y + rng.normal(0, 3, 200)
    m = regression_metrics(y, p, baseline=float(y.mean()))
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert m["r2"] == pytest.approx(r2_score(y, p))
    assert m["mape"] == pytest.approx(100 * mean_absolute_percentage_error(y, p))
    assert m["baseline_rmse"] == pytest.approx(np.std(y))


def test_head_metrics_per_kind():
    spec = TableSpec((FeatureSpec("x", "number"),),
                     (FeatureSpec("y", "number"), FeatureSpec("c", "binary", classes=("no", "yes"))))
    targets = {"y": np.array([1.0, 2.0, 3.0, 4.0]), "c": np.array([0.0, 1.0, 1.0, 1.0])}
    outputs = {"y": np.array([1.0, 2.0, 3.0, 5.0]), "c": np.array([0.2, 0.9, 0.4, 0.8])}
    m = head_metrics(spec, targets, outputs, {"y": 2.5, "c": 1.0})
    assert m["heads"]["y"]["mae"] == pytest.approx(0.25) and m["heads"]["y"]["baseline_mae"] == pytest.approx(1.0)
    assert m["heads"]["c"]["accuracy"] == pytest.approx(0.75) and m["heads"]["c"]["baseline_accuracy"] == 0.75
