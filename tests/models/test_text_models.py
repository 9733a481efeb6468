"""The text zoo and its in-model preprocessing: every model builds, trains a step, and
round-trips through ``.keras`` taking raw strings; the encoder matches Keras' and
scikit-learn's reference behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from tfpilot.models import create_model, list_models
from tfpilot.spec import InputSpec
from tfpilot.testing.text import make_text_corpus

TINY = {  # small widths so each model builds and trains a step in about a second
    "lstm": dict(embedding_dim=8, units=8),
    "lstm_dense": dict(embedding_dim=8, units=8, dense_units=8),
    "bilstm": dict(embedding_dim=8, units=8, dense_units=8),
    "gru": dict(embedding_dim=8, units=8),
    "cnn1d": dict(embedding_dim=8, filters=8, kernel_size=3, dense_units=8),
    "transformer": dict(d_model=8, num_heads=2, dff=16, dense_units=8),
    "ngram_mlp": dict(hidden_units=[8]),
}


def strings(texts):
    return np.array(texts, dtype=object)


@pytest.fixture(scope="module")
def corpus():
    texts, labels = make_text_corpus(48, seed=3)
    return strings(texts), np.array([labels_.index(y) for y in labels for labels_ in [["neg", "pos"]]])


def test_every_text_model_is_registered_for_text():
    assert sorted(TINY) == list_models(task="text")
    with pytest.raises(ValueError, match="takes text input"):
        create_model("lstm", InputSpec.image(8, 8, 1), 2)
    with pytest.raises(ValueError, match="takes image input.*choose one of.*ngram_mlp"):
        create_model("mlp", InputSpec.text(), 2)


@pytest.mark.parametrize("name", sorted(TINY))
def test_model_trains_a_step_and_round_trips_through_keras_file(name, corpus, tmp_path):
    import keras
    import tensorflow as tf

    from tfpilot.data.source import Split
    from tfpilot.models.text_layers import adapt_preprocessing

    texts, y = corpus
    params = dict(TINY[name], vocab_size=64)
    if name != "ngram_mlp":
        params["sequence_length"] = 12
    model = create_model(name, InputSpec.text(), 2, **params)
    assert model.input.dtype == "string"
    assert adapt_preprocessing(model, Split(y=y, x=texts)) == 1
    binary = model.outputs[0].shape[-1] == 1
    assert binary == (name == "lstm")  # the seed's single sigmoid unit
    # one eager training step (no tf.function tracing: ~8x faster than train_on_batch here)
    loss_fn = keras.losses.BinaryCrossentropy() if binary else keras.losses.SparseCategoricalCrossentropy()
    before = [w.copy() for w in model.get_weights()]
    with tf.GradientTape() as tape:
        loss = loss_fn(y[:16], model(texts[:16], training=True))
    keras.optimizers.Adam(1e-2).apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
    assert np.isfinite(float(loss))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    raw = strings(["A great film!<br />Loved it.", "", "awful, dull and boring", "unseen words only"])
    np.testing.assert_allclose(np.asarray(loaded(raw)), np.asarray(model(raw)), rtol=1e-6, atol=1e-6)


def test_seed_lstm_has_the_seeds_shapes():
    model = create_model("lstm", InputSpec.text(), 2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "TextEncoder", "Embedding", "LSTM", "Dense"]
    emb, lstm = model.layers[2], model.layers[3]
    assert (emb.input_dim, emb.output_dim) == (10_000, 128)
    assert (lstm.units, lstm.dropout, lstm.recurrent_dropout) == (64, 0.2, 0.2)
    assert model.layers[1].sequence_length == 200
    # more than two classes: a softmax head instead
    assert create_model("lstm", InputSpec.text(), 3).outputs[0].shape[-1] == 3


def test_transformer_keeps_the_seeds_shapes():
    from tfpilot.models.text_layers import TransformerBlock

    model = create_model("transformer", InputSpec.text(), 2)
    block = next(layer for layer in model.layers if isinstance(layer, TransformerBlock))
    assert (block.embed_dim, block.num_heads, block.ff_dim, block.rate) == (128, 8, 512, 0.1)
    assert block.att.__class__.__name__ == "MultiHeadAttention"
    assert block.compute_output_shape((None, 200, 128)) == (None, 200, 128)


def test_int_encoding_pads_and_truncates_at_the_front_like_pad_sequences():
    import keras

    from tfpilot.models.text_layers import TextEncoder

    train = strings(["one two three four five six", "one two", "three"])
    enc = TextEncoder(max_tokens=20, output_mode="int", sequence_length=4)
    enc.adapt(train)
    texts = ["one two three four five six", "two", "five six"]
    ids = [[enc.get_vocabulary().index(w) for w in t.split()] for t in texts]
    expected = keras.utils.pad_sequences(ids, maxlen=4)  # Keras' defaults: padding and truncating "pre"
    np.testing.assert_array_equal(enc(strings(texts)).numpy(), expected)
    post = TextEncoder(max_tokens=20, output_mode="int", sequence_length=4, padding="post", truncating="post")
    post.adapt(train)
    np.testing.assert_array_equal(post(strings(texts)).numpy(),
                                  keras.utils.pad_sequences(ids, maxlen=4, padding="post", truncating="post"))


def test_vocabulary_matches_keras_text_vectorization_adapt():
    import keras

    from tfpilot.models.text_layers import TextEncoder, standardize_text

    texts = strings(make_text_corpus(80, seed=5)[0] + ["tie alpha", "tie beta", "gamma gamma"])
    for mode, ngrams, max_tokens in (("int", None, 15), ("count", 2, 40)):
        ours = TextEncoder(max_tokens=max_tokens, output_mode=mode, ngrams=ngrams, sequence_length=8)
        ours.adapt(texts)
        ref = keras.layers.TextVectorization(max_tokens=max_tokens, standardize=standardize_text, ngrams=ngrams,
                                             output_mode=mode)
        ref.adapt(texts)
        assert ours.get_vocabulary() == [str(t) for t in ref.get_vocabulary()]


def test_tf_idf_matches_scikit_learn():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from tfpilot.models.text_layers import TextEncoder, standardize_text

    train = make_text_corpus(30, seed=7)[0]
    enc = TextEncoder(max_tokens=10_000, output_mode="tf_idf", ngrams=2, sublinear_tf=True, normalize=True,
                      sparse=False)
    enc.adapt(strings(train))
    ref = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+",
                          preprocessor=lambda t: standardize_text(np.array([t], dtype=object)).numpy()[0].decode())
    ref.fit(train)
    test = ["A superb film, the best!", "worst plot and awful actor", "film film film"]
    ours = enc(strings(test)).numpy()
    vocab = enc.get_vocabulary()
    theirs = ref.transform(test).toarray()
    for row_ours, row_ref in zip(ours, theirs):
        got = {vocab[i]: v for i, v in enumerate(row_ours) if v}
        want = {t: row_ref[j] for t, j in ref.vocabulary_.items() if row_ref[j]}
        assert got.keys() == want.keys()
        np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-5)


def test_standardize_strips_html_breaks_punctuation_and_case():
    from tfpilot.models.text_layers import standardize_text

    out = standardize_text(strings(["GREAT<br />film.<br/>Ça VA!"])).numpy()[0].decode()
    assert out.split() == ["great", "film", "ça", "va"]


def test_encoder_config_round_trips_and_rejects_bad_arguments():
    from tfpilot.models.text_layers import TextEncoder, TokenAndPositionEmbedding, TransformerBlock

    enc = TextEncoder(max_tokens=99, output_mode="tf_idf", ngrams=3, sublinear_tf=True, sparse=True)
    clone = TextEncoder.from_config(enc.get_config())
    assert (clone.max_tokens, clone.output_mode, clone.ngrams, clone.sparse) == (99, "tf_idf", 3, True)
    for layer in (TokenAndPositionEmbedding(8, 50, 4), TransformerBlock(8, 2, 16, 0.2)):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="output_mode must be one of"):
        TextEncoder(output_mode="binary")
    with pytest.raises(ValueError, match="padding and truncating"):
        TextEncoder(padding="left")
    with pytest.raises(ValueError, match="divisible"):
        TransformerBlock(10, 3, 8)
    with pytest.raises(ValueError, match="hold no words"):
        TextEncoder(max_tokens=10).adapt(strings(["...", "!!"]))


def test_trainer_fits_the_sigmoid_lstm_and_adapts_on_the_train_split_only(tmp_path):
    """The seed's one-unit sigmoid head trains with binary cross-entropy through the one
    fit path; the vocabulary holds no word that only val/test texts contain."""
    from tfpilot.config import load_config
    from tfpilot.inference import Predictor
    from tfpilot.models.text_layers import adaptable_layers
    from tfpilot.testing import tiny_config
    from tfpilot.testing.text import write_text_table
    from tfpilot.training import Trainer

    texts, labels = make_text_corpus(80, seed=6)
    texts = [f"{t} uniq{i}" for i, t in enumerate(texts)]  # one word of its own per text
    data = write_text_table(tmp_path / "d.csv", texts, labels)
    cfg = tiny_config(data, tmp_path / "run", epochs=6, optimizer={"learning_rate": 0.02})
    cfg["model"] = {"name": "lstm", "params": {"vocab_size": 200, "sequence_length": 12, "embedding_dim": 8,
                                               "units": 8, "recurrent_dropout": 0.0}}
    cfg["train"]["callbacks"]["early_stopping"] = {"enabled": False}
    trainer = Trainer(load_config(cfg)).fit()
    assert trainer.model_.outputs[0].shape[-1] == 1
    assert trainer.model_.loss.__class__.__name__ == "BinaryCrossentropy"
    assert {"accuracy", "val_accuracy"} <= set(trainer.history_)
    assert trainer.history_["accuracy"][-1] > trainer.history_["accuracy"][0]
    metrics = trainer.run_.metrics["test"]
    assert metrics["accuracy"] >= 0.75 and len(metrics["confusion_matrix"]) == 2

    vocab = set(adaptable_layers(trainer.model_)[0].get_vocabulary())
    own = {split: {t.split()[-1] for t in trainer.data_.splits[split].x} for split in ("train", "val", "test")}
    assert own["train"] <= vocab
    assert not (own["val"] | own["test"]) & vocab

    predictor = Predictor.from_run(trainer.run_.path)
    probs = predictor.predict_proba(["great wonderful superb", "awful boring worst"])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert predictor.predict("great wonderful superb best")[0]["label"] == "pos"
