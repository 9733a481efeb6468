"""Word importance by occlusion, on a tiny text model that learned which words mean what."""

from __future__ import annotations

import numpy as np
import pytest

POSITIVE = ["great", "excellent", "wonderful"]
NEGATIVE = ["awful", "boring", "terrible"]
FILLER = ["the", "movie", "plot", "was", "actors", "and", "a", "story", "film", "scenes"]


def sentences(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(FILLER, size=rng.integers(5, 10)))
        words.insert(int(rng.integers(0, len(words))), str(rng.choice(POSITIVE if label else NEGATIVE)))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def text_model():
    """Raw strings in, probabilities (neg, pos) out: TextVectorization + embedding bag."""
    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(0)
    texts, y = sentences(400, seed=0)
    vectorize = layers.TextVectorization(max_tokens=64, output_sequence_length=16)
    vectorize.adapt(tf.constant(texts))
    inputs = keras.Input(shape=(), dtype="string")
    x = layers.Embedding(64, 8)(vectorize(inputs))
    x = layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(tf.constant(texts), y, epochs=10, batch_size=32, verbose=0)
    return model


def test_the_sentiment_word_matters_most(text_model):
    from tfpilot.evaluation.explain_text import explain_text

    texts, y = sentences(20, seed=1)
    for text, label in zip(texts, y):
        e = explain_text(text_model, text)
        assert e.class_index == label, f"the model got {text!r} wrong"
        assert e.top(1)[0].text in (POSITIVE if label else NEGATIVE)
        assert [w.text for w in e.words] == text.split()
        assert e.probability > 0.5


def test_words_against_the_class_are_negative(text_model):
    from tfpilot.evaluation.explain_text import explain_text

    text = "the plot was terrible but the actors were wonderful"
    e = explain_text(text_model, text, class_index=1)
    importance = {w.text: w.importance for w in e.words}
    assert importance["terrible"] < 0 < importance["wonderful"]
    html = e.to_html()
    assert 'title="' in html and "rgba(220,38,38" in html and "rgba(22,163,74" in html


def test_long_texts_are_capped_and_bad_input_explained(text_model):
    from tfpilot.evaluation.explain_text import explain_text

    text = " ".join(["great"] + ["the"] * 30)
    e = explain_text(text_model, text, max_words=5)
    assert len(e.words) == 31 and all(w.importance == 0.0 for w in e.words[5:])
    assert e.top(1)[0].text == "great"
    assert "&hellip;" in e.to_html(max_chars=20)
    with pytest.raises(ValueError, match="takes a string"):
        explain_text(text_model, ["not", "a", "string"])
    with pytest.raises(ValueError, match="out of range"):
        explain_text(text_model, "great film", class_index=5)


def test_text_run_report_highlights_words(text_model, tmp_path):
    """The report of a text run: reviews in the galleries with the words that pushed the
    prediction highlighted, and ROC / PR for the two classes."""
    import json

    from tfpilot.config import load_config, save_config
    from tfpilot.evaluation.report import report
    from tfpilot.spec import InputSpec

    texts, y = sentences(200, seed=2)
    texts[0] = texts[0] + " <br /><br />"  # IMDB's markup must show as text, not act as HTML
    table = tmp_path / "reviews.csv"
    table.write_text("review,sentiment\n" + "".join(f"{t},{'pos' if label else 'neg'}\n" for t, label in zip(texts, y)))
    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config({"data": {"dataset": str(table)}, "model": {"name": "mlp"}}), run / "config.yaml")
    text_model.save(run / "model.keras")
    (run / "labels.json").write_text(json.dumps({"class_names": ["neg", "pos"], "input": InputSpec.text().to_dict()}))
    (run / "metrics.json").write_text(json.dumps({"train_seconds": 1.5, "precision": "float32",
                                                  "params": int(text_model.count_params())}))
    html = report(run, misclassified=4, correct=4).read_text(encoding="utf-8")
    assert html.count('<div class="review">') >= 4
    assert "words for the prediction:" in html and 'class="w" style="background:rgba(22,163,74' in html
    assert "ROC AUC" in html and "<br />" not in html
    assert "not recorded" in html  # no history.csv / env.json: said so, not crashed
