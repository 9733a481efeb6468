"""Defaults chosen from the data (training/defaults.py): a model for text data when none is
named, with its reasons recorded; every key the user gave is kept."""

from __future__ import annotations

import pytest

from tfpilot.config import ConfigError, load_config
from tfpilot.data import prepare_data
from tfpilot.testing.text import make_text_corpus, write_text_table
from tfpilot.training.defaults import choose_defaults


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    texts, labels = make_text_corpus(60, seed=1)
    return str(write_text_table(tmp_path_factory.mktemp("en") / "reviews.csv", texts, labels))


@pytest.fixture(scope="module")
def chinese(tmp_path_factory):
    texts = ["房间很干净，服务很好", "太吵了，房间很脏", "早餐不错，位置方便", "前台态度差，设施旧"] * 10
    labels = ["pos", "neg", "pos", "neg"] * 10
    return str(write_text_table(tmp_path_factory.mktemp("zh") / "hotel.csv", texts, labels))


def resolve(*overrides, **flags):
    cfg = load_config(None, overrides=list(overrides), **flags)
    return cfg, choose_defaults(cfg, prepare_data(cfg.data))[0]


@pytest.fixture(scope="module")
def long_english(tmp_path_factory):
    """The same reviews, each eight times as long (a median of 104 words)."""
    texts, labels = make_text_corpus(60, seed=1)
    return str(write_text_table(tmp_path_factory.mktemp("en-long") / "reviews.csv",
                                [" ".join([t] * 8) for t in texts], labels))


def test_text_with_no_model_named_gets_a_word_ngram_model_and_its_reasons(english):
    given, cfg = resolve(dataset=english)
    assert given.model.name == "auto"
    assert cfg.model.name == "ngram_mlp" and cfg.model.params["tokenize"] == "words"
    assert cfg.model.params["naive_bayes"] is True
    assert "text (40 texts" in cfg.chosen["model.name"] and "word 1- to 3-grams" in cfg.chosen["model.name"]
    assert cfg.train.batch_size == 512 and cfg.train.optimizer.learning_rate == 0.02
    assert cfg.train.epochs == 20 and "40 training texts" in cfg.chosen["train.epochs"]


def test_short_spaced_texts_get_a_hidden_layer_and_long_ones_a_linear_model(english, long_english, chinese):
    _, short = resolve(dataset=english)  # a median of 13 words
    assert short.model.params["hidden_units"] == [64] and short.model.params["dropout"] == 0.5
    assert "one hidden layer of 64 (dropout 0.5: short texts, a median of 13 words <= 40)" in short.chosen["model.name"]
    _, long = resolve(dataset=long_english)
    assert long.model.params["hidden_units"] == [] and "dropout" not in long.model.params
    assert "a linear model on tf-idf" in long.chosen["model.name"]
    _, chars = resolve(dataset=chinese)  # short, but n-grams of characters: linear
    assert chars.model.params["hidden_units"] == []


def test_chinese_text_is_tokenised_by_characters(chinese):
    _, cfg = resolve(dataset=chinese)
    assert cfg.model.params["tokenize"] == "chars" and "Chinese" in cfg.chosen["model.name"]


def test_an_explicit_model_is_honoured_and_only_its_tokenisation_is_chosen(chinese):
    _, cfg = resolve(dataset=chinese, model="cnn1d")
    assert cfg.model.name == "cnn1d" and cfg.model.params == {"tokenize": "chars"}
    assert set(cfg.chosen) == {"model.params.tokenize"} and "Chinese" in cfg.chosen["model.params.tokenize"]
    assert cfg.train.epochs == 10 and cfg.train.batch_size == 128  # the recipe comes with the chosen model only


def test_keys_the_user_gave_are_kept(chinese):
    _, cfg = resolve("model.params.tokenize=words", "model.params.hidden_units=[16]", "train.batch_size=64",
                     dataset=chinese, epochs=3)
    assert cfg.model.name == "ngram_mlp"
    assert cfg.model.params["tokenize"] == "words" and cfg.model.params["hidden_units"] == [16]
    assert (cfg.train.epochs, cfg.train.batch_size) == (3, 64)
    assert not {"train.epochs", "train.batch_size", "model.params.tokenize"} & set(cfg.chosen)


def test_params_given_without_a_model_are_checked_against_the_model_chosen(english):
    cfg = load_config(None, overrides=["model.params.filters=8"], dataset=english)
    with pytest.raises(ConfigError, match="'ngram_mlp' has no parameter 'filters'"):
        choose_defaults(cfg, prepare_data(cfg.data))


def test_image_data_keeps_the_image_default_and_says_why():
    _, cfg = resolve(dataset="digits")
    assert cfg.model.name == "mnist_cnn" and "image data" in cfg.chosen["model.name"]
    assert cfg.model.params == {} and cfg.train.epochs == 10


def test_a_resolved_config_chooses_nothing_again(english, tmp_path):
    from tfpilot.config import save_config

    _, cfg = resolve(dataset=english)
    again = load_config(save_config(cfg, tmp_path / "config.yaml"))
    assert choose_defaults(again, prepare_data(again.data))[0] == again
