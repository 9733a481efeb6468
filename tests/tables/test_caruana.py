"""Caruana's ensemble selection on synthetic validation outputs, and the weighted table ensemble as
one Keras model (weights in its config, named heads, saved and loaded)."""

from __future__ import annotations

import numpy as np
import pytest

from tfpilot.training.ensemble import caruana_weights, head_loss

RNG = np.random.default_rng(0)


def test_a_member_that_is_better_everywhere_takes_every_round():
    y = RNG.normal(size=200)
    good, bad = y + RNG.normal(scale=0.1, size=200), y + RNG.normal(scale=2.0, size=200)
    weights, losses = caruana_weights([{"v": bad}, {"v": good}], {"v": y}, {"v": "number"})
    assert weights.tolist() == [0.0, 1.0]
    assert losses == pytest.approx([1.0] * 25)  # the loss relative to the best single member's


def test_members_with_independent_errors_share_the_weight_and_beat_each_alone():
    y = RNG.normal(size=2000)
    a, b = y + RNG.normal(size=2000), y + RNG.normal(size=2000)
    weights, losses = caruana_weights([{"v": a}, {"v": b}], {"v": y}, {"v": "number"}, rounds=20)
    assert 0.35 <= weights[0] <= 0.65 and weights.sum() == pytest.approx(1.0)
    blended = weights[0] * a + weights[1] * b
    best = min(head_loss("number", y, a), head_loss("number", y, b))
    assert head_loss("number", y, blended) < 0.8 * best
    assert losses[-1] == pytest.approx(head_loss("number", y, blended) / best)
    assert losses[-1] <= losses[0]


def test_selection_is_with_replacement_so_weights_are_multiples_of_a_round():
    y = RNG.normal(size=500)
    a, b = y + RNG.normal(scale=0.5, size=500), y + RNG.normal(scale=1.0, size=500)
    weights, _ = caruana_weights([{"v": a}, {"v": b}], {"v": y}, {"v": "number"}, rounds=25)
    assert weights[0] > weights[1] > 0  # the better member is picked more often, the other still helps
    np.testing.assert_allclose(weights * 25, np.round(weights * 25))


def test_class_heads_are_weighed_by_log_loss():
    y = RNG.integers(0, 3, size=300)
    truth = np.eye(3)[y]
    sharp_right = 0.9 * truth + 0.1 / 3
    overconfident = np.where(RNG.random((300, 1)) < 0.7, truth, np.roll(truth, 1, axis=1)) * 0.998 + 0.001
    weights, _ = caruana_weights([{"c": overconfident}, {"c": sharp_right}], {"c": y}, {"c": "category"})
    assert weights[1] == 1.0
    p = RNG.random(100)
    yb = (RNG.random(100) < p).astype(int)
    assert head_loss("binary", yb, p) < head_loss("binary", yb, 1 - p)


def test_several_heads_count_alike_whatever_their_units():
    """A head in millions must not drown one in units: each head's loss is divided by the best member's."""
    y_big, y_small = RNG.normal(size=400) * 1e6, RNG.normal(size=400)
    a = {"big": y_big + RNG.normal(size=400) * 1e5, "small": y_small + RNG.normal(size=400) * 3}
    b = {"big": y_big + RNG.normal(size=400) * 1.2e5, "small": y_small + RNG.normal(size=400) * 0.1}
    weights, _ = caruana_weights([a, b], {"big": y_big, "small": y_small}, {"big": "number", "small": "number"})
    assert weights[1] > 0.5


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one member"):
        caruana_weights([], {"v": np.zeros(2)}, {"v": "number"})
    with pytest.raises(ValueError, match="rounds"):
        caruana_weights([{"v": np.zeros(2)}], {"v": np.zeros(2)}, {"v": "number"}, rounds=0)


def _table_model(scale: float, bias: float):
    import keras

    inputs = {"x": keras.Input(shape=(), dtype="float32", name="x")}
    x = keras.layers.Reshape((1,))(inputs["x"])
    value = keras.layers.Reshape((), name="y")(keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(
        scale), bias_initializer=keras.initializers.Constant(bias))(x))
    probs = keras.layers.Dense(2, activation="softmax", name="c", bias_initializer=keras.initializers.Constant(
        [bias, 0.0]))(x)
    return keras.Model(inputs, {"y": value, "c": probs})


def test_the_weighted_ensemble_is_one_model_with_the_members_heads(tmp_path):
    import keras

    from tfpilot.registry import KERAS_OBJECTS
    from tfpilot.training.ensemble import build_table_ensemble

    KERAS_OBJECTS.list()  # registers tfpilot's serializable layers
    members = [_table_model(2.0, 1.0), _table_model(-1.0, 0.0), _table_model(5.0, 5.0)]
    x = {"x": np.array([0.0, 1.0, 3.0], "float32")}
    outs = [{k: np.asarray(v) for k, v in m(x).items()} for m in members]
    model = build_table_ensemble(members, [0.75, 0.25, 0.0])
    assert sorted(model.output) == ["c", "y"] and [m.name for m in model.layers if isinstance(m, keras.Model)] == [
        "member_0", "member_1"]  # the zero-weight member is left out
    got = model(x)
    np.testing.assert_allclose(got["y"], 0.75 * outs[0]["y"] + 0.25 * outs[1]["y"], rtol=1e-6)
    np.testing.assert_allclose(got["c"], 0.75 * outs[0]["c"] + 0.25 * outs[1]["c"], rtol=1e-6)
    model.save(tmp_path / "ensemble.keras")
    loaded = keras.saving.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded(x)["y"], got["y"], rtol=1e-6)


def test_members_of_other_tables_and_bad_weights_are_refused():
    import keras

    from tfpilot.errors import UserError
    from tfpilot.models.ensemble_layers import WeightedAverage
    from tfpilot.training.ensemble import build_table_ensemble

    other = keras.Input(shape=(), dtype="float32", name="z")
    stranger = keras.Model({"z": other}, {"y": keras.layers.Reshape(())(keras.layers.Dense(1)(
        keras.layers.Reshape((1,))(other))), "c": keras.layers.Dense(2)(keras.layers.Reshape((1,))(other))})
    with pytest.raises(UserError, match="same table"):
        build_table_ensemble([_table_model(1.0, 0.0), stranger], [0.5, 0.5])
    with pytest.raises(UserError, match="every ensemble weight is 0"):
        build_table_ensemble([_table_model(1.0, 0.0)], [0.0])
    with pytest.raises(ValueError, match="non-negative"):
        WeightedAverage([0.5, -0.1])
