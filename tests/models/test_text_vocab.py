"""The fast n-gram counter behind ``TextEncoder.adapt``, its Naive-Bayes weights, and an
``ngram_mlp`` trained through the Trainer whose saved ``model.keras`` predicts raw text as
the trained model did."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tfpilot.testing.text import make_text_corpus


def strings(texts):
    return np.array(texts, dtype=object)


def reference_counts(texts, ngrams):
    """Plain-Python counts of the 1..n-grams of whitespace-split texts: (total, texts holding it)."""
    total, docs = Counter(), Counter()
    for t in texts:
        words = t.split()
        grams = [" ".join(words[i:i + n]) for n in range(1, ngrams + 1) for i in range(len(words) - n + 1)]
        total.update(grams)
        docs.update(set(grams))
    return total, docs


@pytest.mark.parametrize("one_key", [True, False])
def test_counts_and_document_frequencies_match_plain_python(one_key, monkeypatch):
    import tensorflow as tf

    from tfpilot.models import text_vocab

    if not one_key:  # the stable-argsort path taken when codes are too many for one int64 key
        monkeypatch.setattr(text_vocab, "_KEY_LIMIT", 1)
    texts = ["to be or not to be", "be be be", "", "not to be outdone", "or"]
    counts = text_vocab.count_ngrams(tf.strings.split(tf.constant(texts)), ngrams=3)
    tokens, df, _ = counts.top(10_000)
    total, docs = reference_counts(texts, 3)
    assert sorted(tokens) == sorted(total)
    assert dict(zip(tokens, df.tolist())) == dict(docs)
    # order: by count, then token, both descending (TextVectorization's)
    assert tokens == sorted(total, key=lambda t: (total[t], t), reverse=True)
    assert counts.documents == 5


def test_batched_word_ids_count_like_one_batch():
    import tensorflow as tf

    from tfpilot.models.text_vocab import count_ngrams, word_ids

    texts, _ = make_text_corpus(30, seed=2)
    words = tf.strings.split(tf.constant(texts))
    whole = count_ngrams(words, ngrams=2).top(60)
    batches = [word_ids(tf.strings.split(tf.constant(texts[i:i + 7]))) for i in range(0, 30, 7)]
    parts = count_ngrams(batches, ngrams=2).top(60)
    assert whole[0] == parts[0]
    np.testing.assert_array_equal(whole[1], parts[1])


def test_trigram_vocabulary_and_idf_match_keras_adapt():
    import keras

    from tfpilot.models.text_layers import TextEncoder, standardize_text

    texts = strings(make_text_corpus(60, seed=4)[0] + ["tie alpha beta", "tie beta alpha"])
    ours = TextEncoder(max_tokens=120, output_mode="tf_idf", ngrams=3, adapt_batch_size=16)
    ours.adapt(texts)
    ref = keras.layers.TextVectorization(max_tokens=120, standardize=standardize_text, ngrams=3, output_mode="count")
    ref.adapt(texts)
    assert ours.get_vocabulary() == [str(t) for t in ref.get_vocabulary()]
    counts = ref(texts).numpy() > 0
    want = np.log((1 + len(texts)) / (1 + counts.sum(axis=0))) + 1
    np.testing.assert_allclose(ours.idf.numpy()[1:], want[1:], rtol=1e-6)
    assert ours.idf.numpy()[0] == 0.0


def test_naive_bayes_ratios_are_the_smoothed_log_count_ratios():
    from tfpilot.models.text_layers import TextEncoder

    texts = strings(["good film", "good good plot", "bad film", "bad plot bad"])
    y = np.array([1, 1, 0, 0])
    enc = TextEncoder(max_tokens=10, output_mode="count", naive_bayes=True, nb_alpha=1.0, sparse=False)
    enc.adapt(texts, labels=y)
    vocab = enc.get_vocabulary()[1:]
    pos = np.array([sum(w in t.split() for t in texts[y == 1]) for w in vocab]) + 1.0
    neg = np.array([sum(w in t.split() for t in texts[y == 0]) for w in vocab]) + 1.0
    want = np.log((pos / pos.sum()) / (neg / neg.sum()))
    ratio = enc.nb.numpy()
    np.testing.assert_allclose(ratio[1:1 + len(vocab)], want, rtol=1e-6)
    assert ratio[0] == 0.0 and not ratio[1 + len(vocab):].any()
    assert ratio[vocab.index("good") + 1] > 0 > ratio[vocab.index("bad") + 1]
    # the counts are scaled by the ratios: "good good" -> 2 x r(good)
    out = enc(strings(["good good unseen"])).numpy()[0]
    assert out[vocab.index("good") + 1] == pytest.approx(2 * ratio[vocab.index("good") + 1])
    assert out[0] == 0.0  # unknown words weigh nothing
    with pytest.raises(ValueError, match="needs the training labels"):
        TextEncoder(max_tokens=10, output_mode="count", naive_bayes=True).adapt(texts)
    with pytest.raises(ValueError, match="two classes"):
        TextEncoder(max_tokens=10, output_mode="count", naive_bayes=True).adapt(texts, labels=[0, 1, 2, 0])
    with pytest.raises(ValueError, match="output_mode tf_idf"):
        TextEncoder(output_mode="int", naive_bayes=True)


def test_ngram_mlp_naive_bayes_rejects_more_than_two_classes():
    from tfpilot.models import create_model
    from tfpilot.spec import InputSpec

    with pytest.raises(ValueError, match="two classes, the data has 3"):
        create_model("ngram_mlp", InputSpec.text(), 3, vocab_size=50, naive_bayes=True)


def test_trained_ngram_mlp_file_predicts_raw_text_as_the_trained_model(tmp_path):
    """Through the one fit path: the saved model.keras takes raw strings and gives the
    probabilities the trainer's model gives, and the val accuracy the run recorded."""
    from tfpilot.config import load_config
    from tfpilot.runs import load_model
    from tfpilot.testing import tiny_config
    from tfpilot.testing.text import write_text_table
    from tfpilot.training import Trainer

    texts, labels = make_text_corpus(120, seed=8)
    data = write_text_table(tmp_path / "d.csv", texts, labels)
    cfg = tiny_config(data, tmp_path / "run", epochs=3, optimizer={"learning_rate": 0.01})
    cfg["model"] = {"name": "ngram_mlp", "params": {"vocab_size": 300, "ngrams": 3, "hidden_units": [8],
                                                    "naive_bayes": True}}
    trainer = Trainer(load_config(cfg)).fit()
    val = trainer.data_.splits["val"]
    loaded = load_model(trainer.run_.model_path)
    raw = strings(list(val.x) + ["A superb, brilliant film!", "", "worst, dull plot<br />"])
    ours = np.asarray(loaded.predict(raw, verbose=0))
    np.testing.assert_allclose(ours, np.asarray(trainer.model_.predict(raw, verbose=0)), rtol=1e-6, atol=1e-7)
    acc = float(np.mean(ours[: len(val)].argmax(1) == val.y))
    assert acc == pytest.approx(trainer.run_.metrics["val"]["accuracy"])
    assert acc >= 0.9
    assert ours[len(val)].argmax() == trainer.data_.class_names.index("pos")
