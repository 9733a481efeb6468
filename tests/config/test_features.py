"""The features section: declared inputs/outputs, refused options, did-you-mean on losses and encoders."""

from __future__ import annotations

import pytest

from tfpilot.config import ConfigError, load_config
from tfpilot.config.table_flags import with_columns


def test_a_features_section_trains_the_multitask_model_by_default():
    cfg = load_config({"features": {"outputs": ["price", {"name": "category", "loss_weight": 0.5}]}})
    assert cfg.model.name == "multitask"
    assert [(o.name, o.loss_weight) for o in cfg.features.outputs] == [("price", 1.0), ("category", 0.5)]
    assert cfg.features.inputs is None  # every other column


@pytest.mark.parametrize("override, message", [
    ({"train": {"label_smoothing": 0.1}}, "train.label_smoothing: table models"),
    ({"data": {"augment": {"flip": "horizontal"}}}, "data.augment: table models"),
    ({"train": {"class_weight": "auto"}}, "train.class_weight: table models"),
    ({"model": {"name": "mnist_cnn"}}, "features section trains a table model; model 'mnist_cnn'"),
])
def test_classifier_only_options_are_refused(override, message):
    tree = {"features": {"outputs": ["y"]}, **override}
    with pytest.raises(ConfigError, match=message):
        load_config(tree)


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
    assert cfg.model.name == "multitask"
    assert [o.name for o in cfg.features.outputs] == ["price", "kind"]
    assert [i.name for i in cfg.features.inputs] == ["photo"]
    kept = load_config({"features": {"outputs": [{"name": "price", "loss": "mae"}]}})
    assert with_columns(kept, ["price"], []).features.outputs[0].loss == "mae"  # declared settings stay
