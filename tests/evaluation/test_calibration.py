"""Calibration math on hand-made predictions with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from tfpilot.evaluation.calibration import binary_curves, expected_calibration_error, reliability_bins


def test_ece_of_hand_made_predictions():
    # confidences 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (right), each alone in its bin
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    assert expected_calibration_error(y, probs, n_bins=10) == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)


def test_reliability_bins_group_and_average():
    # two bins: (0, 0.5] and (0.5, 1]
    probs = np.array([[0.6, 0.4], [0.7, 0.3], [0.9, 0.1], [0.2, 0.8], [0.55, 0.45]])
    y = np.array([0, 1, 0, 1, 1])  # right, wrong, right, right, wrong
    bins = reliability_bins(y, probs, n_bins=2)
    assert bins.edges.tolist() == [0.0, 0.5, 1.0]
    assert bins.counts.tolist() == [0, 5]
    assert np.isnan(bins.accuracy[0]) and np.isnan(bins.confidence[0])
    assert bins.accuracy[1] == pytest.approx(3 / 5)
    assert bins.confidence[1] == pytest.approx((0.6 + 0.7 + 0.9 + 0.8 + 0.55) / 5)
    assert bins.ece == pytest.approx(abs(0.6 - 0.71))
    assert bins.mce == pytest.approx(abs(0.6 - 0.71))


def test_bins_are_right_closed_and_cover_zero_and_one():
    # three classes so a top confidence of 1/3 is possible; 0.5 sits exactly on an edge
    probs = np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    bins = reliability_bins(np.array([0, 0, 0]), probs, n_bins=4)
    assert bins.counts.tolist() == [0, 2, 0, 1]  # 1/3 and 0.5 -> (0.25, 0.5]; 1.0 -> (0.75, 1]
    # a confidence of exactly 0 (degenerate sigmoid output 0.5 is not 0, so build it directly)
    zero = reliability_bins(np.array([0]), np.array([[0.0, 0.0]]), n_bins=4)
    assert zero.counts.tolist() == [1, 0, 0, 0]


def test_perfect_calibration_has_zero_ece():
    # in the 0.75 bin three of four are right; in the 1.0 bin all are right
    probs = np.array([[0.75, 0.25]] * 4 + [[1.0, 0.0]] * 2)
    y = np.array([0, 0, 0, 1, 0, 0])
    assert expected_calibration_error(y, probs, n_bins=10) == pytest.approx(0.0)


def test_overconfident_model_has_large_ece():
    probs = np.tile([0.99, 0.01], (100, 1))
    y = np.r_[np.zeros(50, int), np.ones(50, int)]  # right half the time
    assert expected_calibration_error(y, probs) == pytest.approx(0.49)


def test_sigmoid_outputs_are_two_class_probabilities():
    y = np.array([1, 0, 1])
    bins_sig = reliability_bins(y, np.array([0.9, 0.2, 0.4]), n_bins=5)
    bins_two = reliability_bins(y, np.array([[0.1, 0.9], [0.8, 0.2], [0.6, 0.4]]), n_bins=5)
    assert bins_sig.counts.tolist() == bins_two.counts.tolist()
    assert bins_sig.ece == pytest.approx(bins_two.ece)


def test_matches_scikit_learn_calibration_curve():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=500)
    y = rng.integers(0, 3, size=500)
    bins = reliability_bins(y, probs, n_bins=10)
    correct = (probs.argmax(1) == y).astype(int)
    frac, mean = calibration_curve(correct, probs.max(1), n_bins=10)
    filled = bins.counts > 0
    np.testing.assert_allclose(bins.accuracy[filled], frac)
    np.testing.assert_allclose(bins.confidence[filled], mean)
    assert bins.counts.sum() == 500


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="3 labels but 2 rows"):
        reliability_bins(np.array([0, 1, 0]), np.array([[0.5, 0.5], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins(np.array([0]), np.array([[1.0, 0.0]]), n_bins=0)


def test_binary_curves_known_auc():
    curves = binary_curves(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert curves["roc"]["auc"] == pytest.approx(0.75)
    assert curves["pr"]["average_precision"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert curves["prevalence"] == 0.5
    assert curves["roc"]["fpr"][0] == 0.0 and curves["roc"]["tpr"][-1] == 1.0
    perfect = binary_curves(np.array([0, 1, 0, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]))
    assert perfect["roc"]["auc"] == 1.0 and perfect["pr"]["average_precision"] == 1.0
    flipped = binary_curves(np.array([0, 1, 0, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]),
                            positive=0)
    assert flipped["roc"]["auc"] == 1.0 and flipped["positive"] == 0


def test_binary_curves_need_two_classes_of_both_kinds():
    with pytest.raises(ValueError, match="two-class"):
        binary_curves(np.array([0, 1, 2]), np.eye(3))
    with pytest.raises(ValueError, match="both classes"):
        binary_curves(np.array([1, 1]), np.array([0.2, 0.9]))
