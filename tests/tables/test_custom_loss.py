"""Seed 001 §5.1's custom loss (0.7 MSE + 0.3 MAE, built in as ``mse_mae``) and a loss registered
with ``register_loss`` both train a table model through the one ``model.fit`` path."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from tests.tables.conftest import table_config
from tfpilot.registry import LOSSES
from tfpilot.training.losses import register_loss


@pytest.fixture(scope="module")
def registered_loss() -> str:
    name = "test_mse_mae_08"
    if name not in LOSSES:
        @register_loss(name)
        def mse_mae_08(mse_weight=0.8):
            def loss(y_true, y_pred):
                err = y_pred - y_true
                return mse_weight * ops.mean(ops.square(err), -1) + (1 - mse_weight) * ops.mean(ops.abs(err), -1)
            return loss
    return name


@pytest.mark.parametrize("loss", ["mse_mae", "registered"])
def test_a_custom_loss_trains_a_table_model(loss, registered_loss, table_csv, tmp_path):
    import tfpilot

    name = registered_loss if loss == "registered" else loss
    cfg = table_config(table_csv, tmp_path / "run", epochs=3)
    cfg["features"] = {"inputs": ["size", "colour"], "outputs": [{"name": "price", "loss": name},
                                                                 {"name": "kind", "loss_weight": 0.2}]}
    run = tfpilot.train(cfg, report=False)
    history = run.history
    assert history[-1]["price_loss"] < history[0]["price_loss"]
    heads = run.metrics["test"]["heads"]
    assert heads["price"]["mae"] < heads["price"]["baseline_mae"]  # size and colour give the price
    model = run.load_model()  # the saved model loads back, its compiled per-head loss included
    assert model.loss["price"].loss == name


def test_batch_norm_in_the_combiner_trains_with_precise_bn(table_csv, tmp_path):
    import keras

    import tfpilot
    from tfpilot.config import load_config
    from tfpilot.data.table import prepare_table
    from tfpilot.data.table_pipeline import table_pipeline

    cfg = table_config(table_csv, tmp_path / "run", epochs=2)
    cfg["features"] = {"inputs": ["size", "colour"], "outputs": ["price"]}  # nothing random before the BN
    cfg["model"]["params"] = {"hidden_units": [16], "norm": "batch"}
    run = tfpilot.train(cfg, report=False)
    model = run.load_model()
    bn = model.get_layer("combiner_bn_0")
    assert isinstance(bn, keras.layers.BatchNormalization)
    # Precise BN (on by default) set the moving statistics to the example-weighted average of
    # the batch statistics of the training rows, in batches of the training batch size.
    data = prepare_table(load_config(run.config_file))
    dense = keras.Model(model.input, model.get_layer("combiner_dense_0").output)
    means, variances, sizes = [], [], []
    for x in table_pipeline(data.splits["train"], data.spec, 16, training=False, with_targets=False):
        h = np.asarray(dense(x, training=True), np.float64)
        means.append(h.mean(0))
        variances.append(h.var(0))
        sizes.append(len(h))
    w = np.array(sizes, np.float64)[:, None] / sum(sizes)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), (w * np.array(means)).sum(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), (w * np.array(variances)).sum(0), rtol=1e-3,
                               atol=1e-4)
