"""Per-input dropout of the table model (models/multitask_layers.py): whole inputs, dense or
sparse, are dropped per example while training only; the layer saves and loads."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfpilot.models.multitask import adapt_table_model, multitask
from tfpilot.models.multitask_layers import InputDropout
from tfpilot.spec import FeatureSpec, TableSpec

TEXT = {"model": "ngram_mlp", "params": {"hidden_units": [], "tokenize": "char_wb", "ngrams": 3, "vocab_size": 300,
                                         "input_scale": 20.0}}


def test_a_dense_input_is_dropped_whole_per_example_and_kept_inputs_are_rescaled():
    x = np.ones((2000, 3), "float32")
    out = InputDropout(0.25, seed=1)(x, training=True).numpy()
    rows = out[:, 0]
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.75], rtol=1e-6)
    assert (out == rows[:, None]).all()  # a row is dropped whole
    assert abs((rows == 0).mean() - 0.25) < 0.04
    np.testing.assert_array_equal(InputDropout(0.25)(x, training=False).numpy(), x)


def test_a_sparse_input_is_dropped_by_rows():
    x = tf.sparse.from_dense(np.tile(np.array([[0.0, 2.0, 0.0, 1.0]], "float32"), (1000, 1)))
    out = tf.sparse.to_dense(InputDropout(0.5, seed=3)(x, training=True)).numpy()
    dropped = (out == 0).all(axis=1)
    assert 0.4 < dropped.mean() < 0.6
    np.testing.assert_allclose(out[~dropped], np.tile([[0.0, 4.0, 0.0, 2.0]], ((~dropped).sum(), 1)))


def test_the_table_model_drops_each_input_and_round_trips(tmp_path):
    spec = TableSpec((FeatureSpec("size", "number"), FeatureSpec("title", "text")),
                     (FeatureSpec("kind", "category", classes=("a", "b")),))
    model = multitask(spec, encoders={"title": TEXT}, hidden_units=[8], input_dropout=0.2)
    assert {"size_input_dropout", "title_input_dropout"} <= {layer.name for layer in model.layers}
    cols = {"size": np.arange(6, dtype="float32"),
            "title": np.array(["red shirt", "blue jeans", "tshirt", "jeans", "shirts", "jean"], dtype=object)}
    y = {"kind": np.array([0, 1, 0, 1, 0, 1])}
    adapt_table_model(model, spec, cols, y, {})
    model.compile("adam", {"kind": "sparse_categorical_crossentropy"})
    model.fit(cols, y, epochs=2, verbose=0)
    before = model.predict(cols, verbose=0)["kind"]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(cols, verbose=0)["kind"], before, rtol=1e-6)
    assert loaded.get_layer("title_input_dropout").rate == 0.2
    single = multitask(TableSpec((spec.inputs[0],), spec.outputs), input_dropout=0.2)
    assert not any(isinstance(layer, InputDropout) for layer in single.layers)  # one input: nothing to drop
