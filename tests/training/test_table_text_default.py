"""A table's text column gets the text default's linear n-gram encoder, chosen from its texts
(training/defaults.py ``table_text_encoder``): character n-grams inside words for short texts,
recorded in the log and config.yaml ``chosen``; the ``char_wb`` TextEncoder saves and loads."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import yaml

import tfpilot
from tfpilot.config import load_config
from tfpilot.data.table import prepare_run_data
from tfpilot.models import create_model
from tfpilot.models.text_layers import ScaleInput, TextEncoder, adaptable_layers, char_wb_grams
from tfpilot.testing.table import make_table
from tfpilot.training import defaults
from tfpilot.training.defaults import choose_defaults

KEY = "features.inputs[title].encoder"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return make_table(tmp_path_factory.mktemp("tbl"), rows=60, images=False)


@pytest.fixture(autouse=True)
def few_rows_suffice(monkeypatch):
    """The 60-row table stands in for one of 1,000+ texts (the linear encoder's minimum)."""
    monkeypatch.setattr(defaults, "TABLE_TEXT_MIN_ROWS", 10)


def resolved(table, *overrides):
    cfg = load_config({"data": {"dataset": str(table)},
                       "features": {"inputs": ["title", "size"], "outputs": ["kind"]}, "model": {"name": "multitask"}},
                      overrides=list(overrides))
    prepared = prepare_run_data(cfg)
    before = prepared.features
    out = choose_defaults(cfg, prepared)
    assert prepared.features is before  # neither argument changes: the chosen features come in a copy
    return out


def test_short_titles_get_a_linear_char_ngram_encoder_and_its_reason(table):
    cfg, data = resolved(table)
    title = next(i for i in cfg.features.inputs if i.name == "title")
    assert title.encoder.model == "ngram_mlp"
    assert title.encoder.params["tokenize"] == "char_wb" and title.encoder.params["ngrams"] == 5
    assert title.encoder.params["hidden_units"] == [] and title.encoder.params["output_mode"] == "tf_idf"
    assert "character 1- to 5-grams" in cfg.chosen[KEY] and "/ 4 words" in cfg.chosen[KEY]
    assert data.features == cfg.features  # the model is built from what config.yaml records
    model = create_model(cfg.model.name, **data.model_args(), **cfg.model.params)
    [enc] = adaptable_layers(model)
    assert enc.name == "title_tokens" and enc.tokenize_mode == "char_wb"
    scale = model.get_layer("title_encoder").get_layer("title_network").get_layer("input_scale")
    assert isinstance(scale, ScaleInput) and scale.scale == 20.0  # the text default's rate 0.02 over 1e-3
    assert "scaled by 20" in cfg.chosen[KEY]


def test_the_text_scale_follows_the_learning_rate_and_only_under_adam(table):
    cfg, _ = resolved(table, "train.optimizer.learning_rate=0.004")
    assert next(i for i in cfg.features.inputs if i.name == "title").encoder.params["input_scale"] == 5.0
    cfg, _ = resolved(table, "train.optimizer.name=sgd")
    assert next(i for i in cfg.features.inputs if i.name == "title").encoder.params["input_scale"] == 1.0


def test_too_few_texts_keep_the_small_mlp_encoder(table, monkeypatch):
    monkeypatch.setattr(defaults, "TABLE_TEXT_MIN_ROWS", 1_000)
    cfg, _ = resolved(table)
    title = next(i for i in cfg.features.inputs if i.name == "title")
    assert title.encoder.params["tokenize"] == "words" and title.encoder.params["hidden_units"] == [64]
    assert "input_scale" not in title.encoder.params and "fewer than 1,000 training texts" in cfg.chosen[KEY]


def test_an_encoder_the_user_gave_is_kept(table):
    cfg, _ = resolved(table, "features.inputs=[{name: title, encoder: {params: {hidden_units: [8]}}}, size]")
    title = next(i for i in cfg.features.inputs if i.name == "title")
    assert title.encoder.params == {"hidden_units": [8]} and KEY not in cfg.chosen


def test_the_choice_is_logged_and_recorded_in_config_yaml(table, tmp_path, caplog):
    cfg = {"data": {"dataset": str(table)}, "features": {"inputs": ["title", "size"], "outputs": ["kind"]},
           "model": {"name": "linear"}, "train": {"epochs": 2, "batch_size": 16, "callbacks": {"progress": "none"}},
           "output": {"run_dir": str(tmp_path / "run")}}
    with caplog.at_level(logging.INFO, logger="tfpilot"):
        run = tfpilot.train(cfg, report=False)
    assert any(r.getMessage().startswith(f"chose {KEY} = ") and "char_wb" in r.getMessage() for r in caplog.records)
    saved = yaml.safe_load(run.file("config.yaml").read_text())
    assert "character 1- to 5-grams" in saved["chosen"][KEY]
    [title] = [i for i in saved["features"]["inputs"] if i["name"] == "title"]
    assert title["encoder"]["params"]["tokenize"] == "char_wb"


def test_char_wb_grams_stay_inside_words():
    grams = set(char_wb_grams(keras.ops.convert_to_tensor(["red tshirt"]), 3)[0].numpy().astype(str).tolist())
    assert {" re", "red", "ed ", " ts", "shi", "rt "} <= grams
    assert not any(" " in g.strip() for g in grams)  # no n-gram spans two words


def test_a_char_wb_encoder_round_trips_through_a_keras_file(tmp_path):
    enc = TextEncoder(max_tokens=200, output_mode="tf_idf", ngrams=4, tokenize="char_wb", sublinear_tf=True,
                      normalize=True, sparse=True, name="tokens")
    enc.adapt(np.array(["red shirt", "blue jeans", "sweatshirt", "jeans"], dtype=object))
    inp = keras.Input(shape=(), dtype="string")
    model = keras.Model(inp, keras.layers.Dense(3)(ScaleInput(20.0, name="scale")(enc(inp))))
    texts = np.array(["red sweatshirt", "unseen words"], dtype=object)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(texts, verbose=0), model.predict(texts, verbose=0), rtol=1e-6)
    again = next(layer for layer in loaded.layers if isinstance(layer, TextEncoder))
    assert again.tokenize_mode == "char_wb" and again.get_vocabulary() == enc.get_vocabulary()
    assert loaded.get_layer("scale").scale == 20.0
