"""The table model: zoo models as headless encoders, the combiner, the heads, save/load with raw inputs."""

from __future__ import annotations

import numpy as np
import pytest

from tfpilot.models.multitask import adapt_table_model, multitask
from tfpilot.runs import load_model
from tfpilot.spec import FeatureSpec, TableSpec

SPEC = TableSpec(
    (FeatureSpec("photo", "image", shape=(32, 32, 3)), FeatureSpec("title", "text"),
     FeatureSpec("year", "number"), FeatureSpec("colour", "category", classes=tuple(f"c{i}" for i in range(12)))),
    (FeatureSpec("kind", "category", classes=("a", "b", "c")), FeatureSpec("sold", "binary", classes=("no", "yes")),
     FeatureSpec("price", "number")))


def _batch(n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"photo": rng.integers(0, 255, (n, 32, 32, 3)).astype(np.uint8),
            "title": np.array(["red shirt", "blue shoe", "a hat", ""][:n], dtype=object),
            "year": np.array([2011.0, np.nan, 2015.0, 2018.0][:n], np.float32),
            "colour": np.array(["c1", "c11", "unseen", "c3"][:n], dtype=object)}


@pytest.mark.parametrize("image, text", [("mobilenet_v2", "transformer"), ("fast_cnn", "ngram_mlp")])
def test_any_zoo_model_is_a_headless_encoder(image, text, tmp_path):
    import tensorflow as tf

    encoders = {"photo": {"model": image, "params": {"weights": "none", "alpha": 0.35} if image == "mobilenet_v2" else {}},
                "title": {"model": text, "params": {"vocab_size": 200, "sequence_length": 8, "d_model": 16,
                                                     "num_heads": 2, "dff": 16} if text == "transformer" else
                          {"vocab_size": 200}},
                "colour": {"mode": "embedding", "embedding_dim": 3}}
    model = multitask(SPEC, encoders=encoders, hidden_units=[16], norm="layer")
    batch = _batch()
    targets = {"price": np.array([10.0, 20.0, 30.0, 40.0], np.float32)}
    adapt_table_model(model, SPEC, batch, targets, {"price": True})
    assert model.get_layer("price").statistics == pytest.approx((25.0, np.std([10.0, 20.0, 30.0, 40.0])))
    assert model.get_layer("colour_embedding").output.shape == (None, 3)
    x = {k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in batch.items()}
    out = {k: np.asarray(v) for k, v in model(x, training=False).items()}
    assert out["kind"].shape == (4, 3) and np.allclose(out["kind"].sum(1), 1.0, atol=1e-5)
    assert out["sold"].shape == (4,) and ((0 <= out["sold"]) & (out["sold"] <= 1)).all()
    assert out["price"].shape == (4,) and np.isfinite(out["price"]).all()  # a NaN year is imputed
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")  # safe_mode: every layer is a registered class
    back = {k: np.asarray(v) for k, v in again(x, training=False).items()}
    for k in out:
        np.testing.assert_allclose(back[k], out[k], rtol=1e-5, atol=1e-6)


def test_number_columns_are_imputed_normalised_and_flagged():
    model = multitask(SPEC, encoders={"photo": {"model": "small_cnn"}}, hidden_units=[])
    batch = _batch()
    adapt_table_model(model, SPEC, batch, {"price": np.ones(4, np.float32)}, {"price": False})
    impute = model.get_layer("year_impute")
    got = np.asarray(impute(batch["year"]))
    mean = np.nanmean(batch["year"])
    np.testing.assert_allclose(got[:, 0], [2011.0, mean, 2015.0, 2018.0], rtol=1e-6)
    assert got[:, 1].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert model.get_layer("price").statistics == (0.0, 1.0)  # normalize: false keeps the column's units
