"""The train/inference-mode gap check on hand-made models: a broken BatchNorm is caught, dropout
alone is not, and measuring changes nothing."""

import keras
import pytest
import numpy as np

from tfpilot.training.mode_gap import measure_mode_gap


def _data(n=64, seed=0, steps=None):
    """``(x, y)``: class = the sign of the first feature (of its mean over ``steps`` time steps)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4) if steps is None else (n, steps, 4)).astype("float32")
    first = x[..., 0] if steps is None else x[..., 0].mean(axis=1)
    return x, (first > 0).astype("int64")


def _model(dropout=0.0):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(name="bn")]
    layers += [keras.layers.Dropout(dropout)] if dropout else []
    model = keras.Sequential(layers + [keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = _data()
    model.fit(x, y, batch_size=16, epochs=30, verbose=0)
    return model


def _batches(batch=16, **kw):
    x, y = _data(seed=1, **kw)
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)]


def test_wrong_batch_norm_statistics_are_a_large_gap():
    model = _model()
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full(8, 50.0, "float32"))  # statistics of no weights the model had
    state = [np.array(keras.ops.convert_to_numpy(v)) for v in model.non_trainable_variables]
    gap = measure_mode_gap(model, _batches(), threshold=0.05)
    assert gap.examples == 64 and gap.large and gap.gap > 0.3
    assert gap.training_mode_accuracy > 0.9 and gap.inference_mode_loss > gap.training_mode_loss
    assert "1 BatchNormalization layer(s)" in gap.message() and gap.to_dict()["message"] == gap.message()
    for v, before in zip(model.non_trainable_variables, state):  # nothing of the model moved
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), before, err_msg=v.path)


def test_right_statistics_and_dropout_are_no_warning():
    model = _model(dropout=0.5)
    gap = measure_mode_gap(model, _batches(), threshold=0.05)
    assert not gap.large and gap.inference_mode_accuracy > 0.9
    assert "message" not in gap.to_dict()


def _random_layer_model(batch_norm=False):
    """Every kind of random layer, some in a nested model, one an LSTM's own dropout."""
    keras.utils.set_random_seed(0)
    bn = [keras.layers.BatchNormalization(name="bn")] if batch_norm else []
    inner = keras.Sequential([keras.Input((6, 4)), keras.layers.GaussianNoise(1.0), keras.layers.SpatialDropout1D(0.5),
                              keras.layers.LSTM(8, dropout=0.5, recurrent_dropout=0.5), *bn], name="inner")
    model = keras.Sequential([keras.Input((6, 4)), inner, keras.layers.Dropout(0.7), keras.layers.GaussianDropout(0.5),
                              keras.layers.AlphaDropout(0.5), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*_data(48, steps=6), batch_size=16, epochs=3, verbose=0)
    return model


def test_random_layers_are_off_in_training_mode_and_the_model_is_unchanged():
    model = _random_layer_model()
    x = _batches(steps=6)[0][0]
    gap = measure_mode_gap(model, _batches(steps=6), threshold=0.05)
    # No BatchNorm: with dropout, noise and the LSTM's dropout off, both modes are the same network.
    assert gap.gap == 0.0 and gap.training_mode_loss == pytest.approx(gap.inference_mode_loss, rel=1e-5)
    assert gap.random_layers == 4 and gap.batch_norm_layers == 0  # the nested model is switched off whole
    assert all("call" not in vars(layer) for layer in model._flatten_layers())  # nothing left patched
    a, b = (keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(2))
    assert not np.allclose(a, b)  # the model's own training mode is random again


def test_batch_norm_stays_in_training_mode_beside_random_layers():
    model = _random_layer_model(batch_norm=True)
    model.get_layer("inner").get_layer("bn").moving_mean.assign(np.full(8, 50.0, "float32"))
    gap = measure_mode_gap(model, _batches(steps=6), threshold=0.05)
    assert gap.random_layers == 6 and gap.batch_norm_layers == 1  # the nested model's three, not the model
    assert gap.large and gap.inference_mode_loss > gap.training_mode_loss
