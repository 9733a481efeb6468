"""The options classifiers had and table models refused, now on a table model's image column
and category head: augmentation, balanced sampling, label smoothing / one-hot labels and class
weights -- each asserted by its effect on what the model receives or is trained with."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.tables.conftest import table_config
from tfpilot.config import load_config
from tfpilot.training.setup import Task


def _prepared(table: Path, tmp_path: Path, outputs: list, inputs: list | None = None, **sections: dict):
    tree = table_config(table, tmp_path / "run")
    tree["features"] = {"outputs": outputs, **({"inputs": inputs} if inputs else {})}
    for name, values in sections.items():
        tree[name] = {**tree.get(name, {}), **values}
    cfg = load_config(tree)
    task = Task()
    cfg, data = task.prepare(cfg)
    return cfg, data, task


def _stream(cfg, data, task, maps: bool = True, balanced: bool = False):
    return data.train_stream(8, (0, 1), seed=cfg.train.seed, balanced=balanced,
                             maps=task.batch_maps(cfg, data) if maps else ())


@pytest.fixture(scope="module")
def skewed_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 rows without images: 48 'ant', 6 'bee', 6 'cat' (kind), and a number target."""
    path = tmp_path_factory.mktemp("skewed") / "skewed.csv"
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size", "colour", "kind", "price"])
        for i in range(60):
            kind = "ant" if i % 5 else ("bee", "cat")[i % 2]
            size, price = round(float(rng.uniform(0, 3)), 2), round(float(rng.normal(10, 2)), 2)
            w.writerow([size, ["red", "blue"][i % 2], kind, price])
    return path


def test_augmentation_changes_every_image_column_and_nothing_else(table_csv, tmp_path):
    cfg, data, task = _prepared(table_csv, tmp_path, ["kind", "price"], ["photo", "title", "size", "colour"],
                                data={"augment": {"flip": "horizontal", "crop_padding": 3}})
    changed = 0
    for (x, y), (raw_x, raw_y) in zip(_stream(cfg, data, task), _stream(cfg, data, task, maps=False)):
        changed += int(np.any(x["photo"].numpy() != raw_x["photo"].numpy()))
        assert x["photo"].dtype == raw_x["photo"].dtype and x["photo"].shape == raw_x["photo"].shape
        for key in ("title", "size", "colour"):  # the same rows, untouched
            np.testing.assert_array_equal(x[key].numpy(), raw_x[key].numpy())
        for key in ("kind", "price"):
            np.testing.assert_array_equal(y[key].numpy(), raw_y[key].numpy())
    assert changed > 0


def test_balanced_sampling_draws_the_category_heads_classes_equally(skewed_csv, tmp_path):
    cfg, data, task = _prepared(skewed_csv, tmp_path, ["kind", "price"], data={"balanced_sampling": True})
    ant = data.spec.output("kind").classes.index("ant")

    def ant_share(balanced: bool) -> float:
        kinds = np.concatenate([y["kind"].numpy() for _, y in data.train_stream(
            8, (0, 20), seed=0, balanced=balanced)])
        return float(np.mean(kinds == ant))

    assert ant_share(False) == pytest.approx(0.8, abs=0.03)  # the table's own proportions
    assert ant_share(True) == pytest.approx(1 / 3, abs=0.06)


def test_class_weights_are_the_per_example_weights_of_the_category_head(skewed_csv, tmp_path):
    cfg, data, task = _prepared(skewed_csv, tmp_path, ["kind", "price"],
                                train={"class_weight": {"bee": 4.0}})
    bee = data.spec.output("kind").classes.index("bee")
    batches = list(_stream(cfg, data, task))
    assert batches and all(len(b) == 3 for b in batches)
    for _, y, w in batches:
        want = np.where(y["kind"].numpy() == bee, 4.0, 1.0)
        np.testing.assert_array_equal(w["kind"].numpy(), want)
        np.testing.assert_array_equal(w["price"].numpy(), np.ones_like(want))  # the other head: unweighted


def test_label_smoothing_and_one_hot_labels_make_the_category_heads_loss_categorical(skewed_csv, tmp_path):
    from tfpilot.training.setup import build_model, loss_and_metrics

    cfg, data, _ = _prepared(skewed_csv, tmp_path, ["kind", "price"],
                             train={"label_smoothing": 0.2, "label_mode": "one_hot"})
    model = build_model(cfg, data, "float32")
    losses, _ = loss_and_metrics(cfg, model, 0)
    kind, price = losses["kind"], losses["price"]
    assert (kind.one_hot, kind.label_smoothing) == (True, 0.2) and not price.one_hot
    y, p = np.array([0, 1]), np.array([[0.7, 0.3], [0.6, 0.4]], "float32")
    smooth = np.eye(2)[y] * 0.8 + 0.1
    want = np.mean(-np.sum(smooth * np.log(p), axis=-1))
    assert float(kind(y, p)) == pytest.approx(want, rel=1e-5)
    sparse = np.mean(-np.log(p[np.arange(2), y]))
    assert abs(float(kind(y, p)) - sparse) > 1e-3  # not the plain sparse loss


def test_class_options_train_a_table_model(skewed_csv, tmp_path):
    import tfpilot

    tree = table_config(skewed_csv, tmp_path / "run", epochs=2, label_smoothing=0.1, class_weight="auto")
    tree["features"] = {"outputs": ["kind", "price"]}
    tree["data"]["balanced_sampling"] = True
    run = tfpilot.train(tree, report=False)
    assert len(run.history) == 2 and np.isfinite(run.history[-1]["loss"])
    assert run.load_model().loss["kind"].label_smoothing == pytest.approx(0.1)


@pytest.mark.parametrize("outputs, sections, message", [
    (["price"], {"data": {"balanced_sampling": True}},
     "data.balanced_sampling needs a category or binary head, and the outputs 'price' are numbers"),
    (["price"], {"train": {"label_smoothing": 0.1}},
     r"train.label_smoothing applies to category \(softmax\) heads, not to 'price' \(number\)"),
    (["kind", "colour"], {"train": {"class_weight": "auto"}},
     r"train.class_weight: the table has several class heads \('kind', 'colour'\): name one with train.class_head"),
    (["kind", "price"], {"train": {"class_weight": "auto", "class_head": "price"}},
     "train.class_head 'price' is a number head"),
])
def test_a_class_option_without_a_class_head_names_the_heads(skewed_csv, tmp_path, outputs, sections, message):
    from tfpilot.training.setup import build_model, loss_and_metrics

    cfg, data, task = _prepared(skewed_csv, tmp_path, outputs, **sections)
    with pytest.raises(ValueError, match=message):
        _stream(cfg, data, task, balanced=cfg.data.balanced_sampling)
        loss_and_metrics(cfg, build_model(cfg, data, "float32"), 0)
