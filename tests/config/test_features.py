"""The features section: declared inputs/outputs, options without a meaning for a table, did-you-mean on
losses and encoders."""

from __future__ import annotations

import pytest

from tfpilot.config import ConfigError, load_config
from tfpilot.config.table_flags import with_columns


def test_a_features_section_trains_the_leaderboard_by_default():
    cfg = load_config({"features": {"outputs": ["price", {"name": "category", "loss_weight": 0.5}]}})
    assert cfg.model.name == "auto"  # the leaderboard of table models (training/leaderboard.py)
    assert [(o.name, o.loss_weight) for o in cfg.features.outputs] == [("price", 1.0), ("category", 0.5)]
    assert cfg.features.inputs is None  # every other column


@pytest.mark.parametrize("override, message", [
    ({"data": {"text_column": "title"}}, "data.text_column chooses the column of a text table; with a features "
                                         "section name the text column in features.inputs"),
    ({"data": {"label_column": 1}}, "name the target in features.outputs"),
    ({"data": {"augment": {"mixup": 0.2}}}, "mixup/cutmix mix two rows' labels"),
    ({"train": {"class_head": "prise"}}, "train.class_head: no output 'prise'. Did you mean 'price'"),
    ({"model": {"name": "mnist_cnn"}}, "features section trains a table model; model 'mnist_cnn'"),
])
def test_options_without_a_meaning_for_a_table_say_what_to_set_instead(override, message):
    tree = {"features": {"outputs": ["y", "price"]}, **override}
    with pytest.raises(ConfigError, match=message):
        load_config(tree)


def test_class_options_are_accepted_for_a_table_and_class_head_only_for_one():
    cfg = load_config({"features": {"outputs": ["kind", "price"]},
                       "data": {"augment": {"flip": "horizontal"}, "balanced_sampling": True},
                       "train": {"label_smoothing": 0.1, "label_mode": "one_hot", "class_weight": "auto",
                                 "class_head": "kind"}})
    assert cfg.train.class_head == "kind" and cfg.data.augment.enabled
    with pytest.raises(ConfigError, match="train.class_head names a head of a table model"):
        load_config({"train": {"class_head": "kind"}})


def test_losses_encoders_and_types_are_checked():
    with pytest.raises(ConfigError, match="unknown loss 'hubber'. Did you mean 'huber'"):
        load_config({"features": {"outputs": [{"name": "y", "loss": "hubber"}]}})
    with pytest.raises(ConfigError, match="'crossentropy' is not a regression loss"):
        load_config({"features": {"outputs": [{"name": "y", "type": "number", "loss": "crossentropy"}]}})
    with pytest.raises(ConfigError, match="'ngram_mlp' is not a image model"):
        load_config({"features": {"outputs": ["y"], "inputs": [
            {"name": "photo", "type": "image", "encoder": {"model": "ngram_mlp"}}]}})
    with pytest.raises(ConfigError, match="has no parameter 'widht'"):
        load_config({"features": {"outputs": ["y"], "inputs": [
            {"name": "photo", "type": "image", "encoder": {"model": "fast_cnn", "params": {"widht": 3}}}]}})
    with pytest.raises(ConfigError, match="'y' is both an input and an output"):
        load_config({"features": {"outputs": ["y"], "inputs": ["y"]}})


def test_target_and_input_flags_write_the_features_section():
    cfg = with_columns(load_config({"data": {"dataset": "t.csv"}}), ["price", "kind"], ["photo"])
    assert cfg.model.name == "auto"
    assert [o.name for o in cfg.features.outputs] == ["price", "kind"]
    assert [i.name for i in cfg.features.inputs] == ["photo"]
    kept = load_config({"features": {"outputs": [{"name": "price", "loss": "mae"}]}})
    assert with_columns(kept, ["price"], []).features.outputs[0].loss == "mae"  # declared settings stay
