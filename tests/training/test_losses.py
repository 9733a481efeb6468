"""Head losses: the registry, seed 001's losses and its custom loss, target normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from tfpilot.registry import LOSSES
from tfpilot.training.losses import HeadLoss


def test_seed_001_regression_losses_are_registered():
    assert {"mse", "mae", "huber", "log_cosh", "mse_mae"} <= set(LOSSES.list(tag="regression"))
    assert LOSSES.list(tag="classification") == ["crossentropy"]


def test_the_custom_loss_is_seed_001s_formula():
    y, p = np.array([[1.0], [2.0], [4.0]], "float32"), np.array([[2.0], [2.0], [1.0]], "float32")
    err = p - y
    want = 0.7 * np.mean(err ** 2) + 0.3 * np.mean(np.abs(err))
    got = HeadLoss("mse_mae", kind="number")(y.ravel(), p.ravel())
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_normalised_targets_put_the_loss_in_standard_units():
    y, p = np.array([100.0, 120.0], "float32"), np.array([110.0, 120.0], "float32")
    raw = float(HeadLoss("mse", kind="number")(y, p))
    scaled = float(HeadLoss("mse", kind="number", mean=110.0, std=10.0)(y, p))
    assert raw == pytest.approx(50.0) and scaled == pytest.approx(0.5)
