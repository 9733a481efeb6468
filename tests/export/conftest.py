"""Fixtures for the export tests: one tiny trained image run and one tiny text model,
each exported to every format once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

TEXT_CLASSES = ["neg", "pos"]


@pytest.fixture(scope="session")
def image_export(image_run: Path) -> Any:
    """``export(image_run, "all")``: every format under RUN/export."""
    from tfpilot.export import export

    return export(image_run, "all")


@pytest.fixture
def outlier_run(image_run: Path, tmp_path: Path) -> Path:
    """A copy of the run whose logits carry a +1e5 offset: softmax (float) is unchanged, but
    int8 must spread 256 levels over [0, 1e5], so every class gets the same logit."""
    import shutil

    from tfpilot.runs import Run

    copy = tmp_path / "outlier-run"
    shutil.copytree(image_run, copy, ignore=shutil.ignore_patterns("export", "checkpoints", "logs", "backup"))
    model = Run(copy).load_model()
    head = model.get_layer("predictions")
    head.bias.assign(head.bias.numpy() + 1e5)
    model.save(copy / "model.keras")
    return copy


@pytest.fixture(scope="session")
def image_test_data(image_run: Path) -> tuple[np.ndarray, np.ndarray]:
    from tfpilot.export.data import load_split

    return load_split(image_run, "test")


def make_texts(n_per_class: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Short reviews whose class is set by their sentiment words."""
    rng = np.random.default_rng(seed)
    words = {0: ["bad", "awful", "boring", "hate", "dull"], 1: ["good", "great", "fun", "wonderful", "love"]}
    filler = ["the", "movie", "was", "a", "film", "plot", "really", "Acting!"]
    texts, labels = [], []
    for label in (0, 1):
        for _ in range(n_per_class):
            texts.append(" ".join(rng.choice(filler, 3).tolist() + rng.choice(words[label], 2).tolist()))
            labels.append(label)
    return np.asarray(texts, dtype=object), np.asarray(labels)


@pytest.fixture(scope="session")
def text_data() -> tuple[np.ndarray, np.ndarray]:
    return make_texts()


@pytest.fixture(scope="session")
def text_model() -> Any:
    """keras.Input(string) -> TextVectorization -> Embedding -> pooling -> sigmoid, trained."""
    import keras
    import tensorflow as tf
    from keras import layers

    texts, labels = make_texts()
    keras.utils.set_random_seed(0)
    vectorize = layers.TextVectorization(max_tokens=64, output_sequence_length=8, name="vectorize")
    vectorize.adapt(texts.astype(str))
    inputs = keras.Input(shape=(), dtype="string", name="text")
    x = layers.Embedding(64, 8)(vectorize(inputs))
    x = layers.GlobalAveragePooling1D()(x)
    # One sigmoid unit (the seeds' binary head), so every format's two-class path is covered.
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid", name="predictions")(x), name="tiny_text")
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(tf.constant(texts.astype(str)), labels, epochs=40, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="session")
def text_export(text_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny text model exported to every format (int8 calibrated on its training texts)."""
    from tfpilot.export import ExportSource, export
    from tfpilot.spec import InputSpec

    texts, labels = make_texts()
    source = ExportSource(text_model, TEXT_CLASSES, InputSpec.text(), calibration=texts, evaluation=(texts, labels))
    return export(source, "all", tmp_path_factory.mktemp("text-export"))


@pytest.fixture(scope="session")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained table run: photo (image) + title (text) + colour (category) -> kind (category) + price."""
    import tfpilot
    from tests.tables.conftest import table_config
    from tfpilot.testing.table import make_table

    root = tmp_path_factory.mktemp("table-export")
    cfg = table_config(make_table(root, rows=60, size=16), root / "run", epochs=3)
    cfg["features"]["inputs"] = ["photo", "title", "colour"]
    return tfpilot.train(cfg, report=False).path
