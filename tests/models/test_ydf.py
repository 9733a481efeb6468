"""Decision forests as table models: ``ydf_gbt`` / ``ydf_rf`` and their :class:`ForestHead` layer."""

from __future__ import annotations

import numpy as np
import pytest

from tfpilot.errors import UserError
from tfpilot.spec import FeatureSpec, TableSpec

ROWS = 240


def _columns(rows: int = ROWS, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """size (number, some missing), colour (category), title (text) -> kind (3 classes, "cat" absent
    from training), yes (binary) and price (number)."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0, 10, rows).astype(np.float32)
    size[::11] = np.nan
    colour = rng.choice(["red", "green", "blue"], rows).astype(object)
    kind = rng.integers(0, 2, rows)  # ant or bee: the title names it
    title = np.array([f"A {'Ant' if k == 0 else 'BEE'}, small!" for k in kind], dtype=object)
    price = (np.nan_to_num(size, nan=5.0) * 10 + (colour == "blue") * 20).astype(np.float32)
    yes = (np.nan_to_num(size, nan=5.0) > 5).astype(np.float32)
    return {"size": size, "colour": colour, "title": title}, {"kind": kind, "yes": yes, "price": price}


SPEC = TableSpec((FeatureSpec("size", "number"), FeatureSpec("colour", "category", classes=("blue", "green", "red")),
                  FeatureSpec("title", "text")),
                 (FeatureSpec("kind", "category", classes=("ant", "bee", "cat")),
                  FeatureSpec("yes", "binary", classes=("no", "yes")), FeatureSpec("price", "number")))


@pytest.fixture(scope="module")
def trained():
    """A ``ydf_gbt`` model over SPEC with every head's forest trained on _columns(), and the forests."""
    from tfpilot.data.table_split import TableSplit
    from tfpilot.models.ydf import ydf_gbt
    from tfpilot.models.ydf_layers import forest_heads
    from tfpilot.training.ydf_fit import forest_label, forest_table, learner

    x, y = _columns()
    split = TableSplit(x, y, np.arange(ROWS))
    model = ydf_gbt(SPEC, num_trees=20)
    forests = {}
    for layer in forest_heads(model):
        table = {**forest_table(layer, split), layer.head.key: forest_label(layer, split)}
        forest = learner(layer, seed=1).train(table)
        layer.set_forest(forest)
        forests[layer.head.key] = forest
    return model, forests


def _ydf_input(x: dict[str, np.ndarray]) -> dict[str, object]:
    from tfpilot.models.ydf_layers import training_values

    return {c.key: training_values(c.kind, x[c.key]) for c in SPEC.inputs}


def test_each_head_gives_its_forests_predictions_in_the_heads_class_order(trained):
    model, forests = trained
    x, _ = _columns(12, seed=5)
    out = {k: np.asarray(v) for k, v in model(x).items()}
    assert {k: v.shape for k, v in out.items()} == {"kind": (12, 3), "yes": (12,), "price": (12,)}
    raw = {k: np.asarray(f.predict(_ydf_input(x))) for k, f in forests.items()}
    np.testing.assert_allclose(out["price"], raw["price"], rtol=1e-6)
    # binary: YDF predicts P(label_classes()[1]); the head gives P(classes[1]) = P("yes")
    p_yes = raw["yes"] if forests["yes"].label_classes()[1] == "yes" else 1 - raw["yes"]
    np.testing.assert_allclose(out["yes"], p_yes, rtol=1e-5)
    # "cat" never occurs in training: its column is 0, the others are the forest's in head order
    assert forests["kind"].label_classes() == ["ant", "bee"]
    p_bee = raw["kind"]
    np.testing.assert_allclose(out["kind"], np.stack([1 - p_bee, p_bee, np.zeros(12)], axis=1), rtol=1e-5, atol=1e-7)


def test_text_goes_in_as_its_lower_cased_words(trained):
    from tfpilot.models.ydf_layers import word_set

    assert word_set(np.array(["A BEE, small!", "ant"], dtype=object)).to_list() == [[b"a", b"bee", b"small"],
                                                                                    [b"ant"]]
    model, _ = trained
    x, _ = _columns(2, seed=3)
    x["title"] = np.array(["an ant", "A BEE!!"], dtype=object)
    kind = np.asarray(model(x)["kind"])
    assert kind.argmax(1).tolist() == [0, 1]


def test_a_saved_model_keras_loads_with_its_forests(trained, tmp_path):
    from tfpilot.runs import load_model

    model, _ = trained
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    x, _ = _columns(8, seed=7)
    for key, value in model(x).items():
        np.testing.assert_allclose(np.asarray(loaded(x)[key]), np.asarray(value), rtol=1e-6)


def test_tflite_and_onnx_are_refused_with_the_reason(trained):
    from tfpilot.models.ydf_layers import refuse_conversion

    with pytest.raises(UserError, match="decision forests.*TFLite and ONNX have no such ops"):
        refuse_conversion(trained[0])


def test_params_are_checked_by_the_config_and_the_builder():
    from tfpilot.config import load_config
    from tfpilot.models.ydf import ydf_gbt, ydf_rf

    features = {"outputs": ["price"]}
    with pytest.raises(ValueError, match="num_tress"):
        load_config({"data": {"dataset": "t.csv"}, "features": features,
                     "model": {"name": "ydf_gbt", "params": {"num_tress": 10}}})
    with pytest.raises(ValueError, match="shrinkage"):  # a GBT parameter, not a random forest's
        load_config({"data": {"dataset": "t.csv"}, "features": features,
                     "model": {"name": "ydf_rf", "params": {"shrinkage": 0.1}}})
    with pytest.raises(UserError, match="num_trees"):
        ydf_gbt(SPEC, num_trees=0)
    with pytest.raises(UserError, match="early_stopping"):
        ydf_gbt(SPEC, early_stopping="SOMETIMES")
    rf = ydf_rf(SPEC, num_trees=7, winner_take_all=False)
    assert rf.get_layer("price").hyperparameters == {"num_trees": 7, "winner_take_all": False}


def test_image_columns_are_left_out_of_the_forests():
    from tfpilot.models.ydf import ydf_gbt

    spec = TableSpec((FeatureSpec("photo", "image", shape=(8, 8, 3)), FeatureSpec("size", "number")),
                     (FeatureSpec("price", "number"),))
    model = ydf_gbt(spec)
    assert sorted(model.input) == ["photo", "size"]  # the signature takes every column
    assert model.get_layer("price").features == {"size": "number"}
    with pytest.raises(UserError, match="photo \\(image\\)"):
        ydf_gbt(TableSpec(spec.inputs[:1], spec.outputs))


def test_options_of_the_neural_loop_are_refused_for_forests():
    from tfpilot.config import load_config
    from tfpilot.training.ydf_fit import check_config, refused_options

    base = {"data": {"dataset": "t.csv"}, "features": {"outputs": ["kind"]}, "model": {"name": "ydf_gbt"}}
    assert refused_options(load_config(base)) == []
    cfg = load_config({**base, "train": {"label_smoothing": 0.1, "class_weight": "auto"},
                       "data": {"dataset": "t.csv", "balanced_sampling": True}})
    assert refused_options(cfg) == ["train.class_weight", "train.label_smoothing", "data.balanced_sampling"]
    with pytest.raises(UserError, match="train.class_weight, train.label_smoothing, data.balanced_sampling"):
        check_config(cfg)


def test_history_rows_are_tree_counts_with_each_heads_losses_and_their_sum():
    from types import SimpleNamespace as NS

    from tfpilot.training.ydf_fit import history_table

    def entry(it: int, train: float, val: float) -> NS:
        return NS(iteration=it, training_evaluation=NS(loss=train), evaluation=NS(loss=val))

    table = history_table({"a": [entry(1, 0.9, 1.0), entry(2, 0.5, 0.8)], "b": [entry(1, 2.0, 3.0)]})
    assert table["epoch"] == [0.0, 1.0]
    assert table["loss"][0] == pytest.approx(2.9) and np.isnan(table["loss"][1])
    assert table["val_a_loss"] == [1.0, 0.8] and table["val_loss"][0] == pytest.approx(4.0)


def test_the_lr_range_test_is_refused_for_forests(tmp_path):
    from tfpilot.config import load_config
    from tfpilot.testing.table import make_table
    from tfpilot.training.lr_finder import find_lr

    table = make_table(tmp_path, rows=40, images=False)
    cfg = load_config({"data": {"dataset": str(table)}, "features": {"outputs": ["price"]},
                       "model": {"name": "ydf_rf"}})
    with pytest.raises(UserError, match="ydf_rf is trained by YDF's learner.*LR range test does not apply"):
        find_lr(cfg, out_dir=tmp_path / "lr")


def test_a_date_column_goes_in_as_its_year_month_weekday_and_days(tmp_path):
    """(Needs the date column kind of h/tsplit.) The forest reads a date as four numbers, the
    same ones in training (numpy) and in the model (TensorFlow ops), missing dates included."""
    from tfpilot.data.table_split import TableSplit
    from tfpilot.models.ydf import ydf_gbt
    from tfpilot.models.ydf_layers import forest_heads
    from tfpilot.runs import load_model
    from tfpilot.training.ydf_fit import forest_label, forest_table, learner

    rng = np.random.default_rng(0)
    days = rng.integers(0, 900, ROWS)
    dates = (np.datetime64("2016-01-01") + days).astype("datetime64[D]")
    text = np.array([f"{d.item().day}/{d.item().month:02d}/{d.item().year}" for d in dates], dtype=object)
    text[::17] = ""
    year = np.array([d.item().year for d in dates])
    spec = TableSpec((FeatureSpec("sold", "date", format="%d/%m/%Y"),), (FeatureSpec("price", "number"),))
    split = TableSplit({"sold": text}, {"price": ((year - 2016) * 10.0).astype(np.float32)}, np.arange(ROWS))
    model = ydf_gbt(spec, num_trees=30)
    layer = forest_heads(model)[0]
    forest = learner(layer, seed=1).train({**forest_table(layer, split), "price": forest_label(layer, split)})
    layer.set_forest(forest)
    assert forest.input_feature_names() == ["sold__year", "sold__month", "sold__day_of_week", "sold__days"]
    out = np.asarray(model({"sold": text[:40]})["price"])
    np.testing.assert_allclose(out, forest.predict(forest_table(layer, split.take(np.arange(40)))), rtol=1e-5)
    model.save(tmp_path / "model.keras")
    np.testing.assert_allclose(np.asarray(load_model(tmp_path / "model.keras")({"sold": text[:40]})["price"]), out,
                               rtol=1e-6)


def test_many_forests_log_no_retracing_warning_and_other_functions_still_do(caplog, tmp_path, monkeypatch):
    """A leaderboard builds a forest function per candidate and per refit. TensorFlow's retracing
    detector counts the traces of YDF's one ``CallableModule.__call__`` and warned from the fifth
    forest on (in every melbourne run's log); the filter drops that warning and no other."""
    import logging
    import weakref

    import tensorflow as tf
    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    from tfpilot.data.table_split import TableSplit
    from tfpilot.models.ydf import ydf_gbt
    from tfpilot.models.ydf_layers import ForestTracingFilter, forest_heads
    from tfpilot.training.ydf_fit import forest_label, forest_table, learner

    def fresh_detector() -> None:
        """TensorFlow warns at most twice per traced code object and process: forget what this
        worker's earlier tests traced, so that each phase below can warn."""
        monkeypatch.setattr(polymorphic_function._frequent_tracing_detector_manager, "_detectors",
                            weakref.WeakKeyDictionary())

    spec = TableSpec((FeatureSpec("size", "number"),), (FeatureSpec("price", "number"),))
    x, y = _columns()
    split = TableSplit({"size": x["size"]}, {"price": y["price"]}, np.arange(ROWS))
    sizes = x["size"][:4]
    tf_logger = logging.getLogger("tensorflow")
    forests = []
    fresh_detector()
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for _ in range(6):
            model = ydf_gbt(spec, num_trees=3)
            layer = forest_heads(model)[0]
            layer.set_forest(learner(layer, seed=1).train({**forest_table(layer, split),
                                                           "price": forest_label(layer, split)}))
            np.testing.assert_allclose(np.asarray(model({"size": sizes})["price"]),
                                       layer.forest.predict({"size": sizes}), rtol=1e-5)
            forests.append(layer.forest)
        assert not [r.getMessage() for r in caplog.records if "retracing" in r.getMessage()]

        @tf.function
        def doubled(v):
            return v * 2

        for n in range(6):  # another function traced as often still warns
            doubled(tf.constant(np.ones(n + 1)))
        assert any("retracing" in r.getMessage() and "doubled" in r.getMessage() for r in caplog.records)

        ours = [f for f in tf_logger.filters if isinstance(f, ForestTracingFilter)]
        assert len(ours) == 1
        tf_logger.removeFilter(ours[0])
        fresh_detector()
        caplog.clear()
        try:  # without it, the same forests' functions warn: what the filter removed
            for forest in forests:
                forest.to_tensorflow_function(temp_dir=str(tmp_path))({"size": tf.constant(sizes)})
        finally:
            tf_logger.addFilter(ours[0])
        assert any("retracing" in r.getMessage() and "ydf_model_to_tf_function" in r.getMessage()
                   for r in caplog.records)
