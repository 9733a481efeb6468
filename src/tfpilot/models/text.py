"""Text classifiers: the seeds' sequence models and a fast n-gram baseline.

Every model takes raw strings (``InputSpec.text()``): a :class:`TextEncoder` inside the
model tokenises them (``tokenize``: "words" split on spaces; "chars" one token per
character of Chinese, Japanese, Thai, ... text, which writes no spaces between words) and
is adapted on the training split only (see
:func:`~tfpilot.models.text_layers.adapt_preprocessing`), so the saved ``.keras`` file
takes raw text too.

Example:
    >>> from tfpilot.models import create_model
    >>> from tfpilot.spec import InputSpec
    >>> model = create_model("ngram_mlp", InputSpec.text(), 2, vocab_size=1000)
    >>> model.input.dtype, model.output.shape
    ('string', (None, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers

from tfpilot.errors import UserError
from tfpilot.models.common import classifier_head
from tfpilot.models.registry import register_model
from tfpilot.models.text_layers import TextEncoder, TokenAndPositionEmbedding, TransformerBlock
from tfpilot.spec import InputSpec


def text_input(input_spec: InputSpec, **encoder: Any) -> tuple[Any, Any]:
    """A string ``keras.Input`` and the :class:`TextEncoder` applied to it.

    Args:
        input_spec: must be ``InputSpec.text()``.
        **encoder: :class:`TextEncoder` arguments (max_tokens, output_mode, ...).

    Returns:
        ``(inputs, x)``: the model input (a batch of strings) and the encoded tensor.
    """
    if input_spec.kind != "text":
        raise UserError(f"a text model needs text input, got {input_spec.kind}")
    inputs = keras.Input(shape=(), dtype="string", name="text")
    return inputs, TextEncoder(name="encoder", **encoder)(inputs)


def sequence_input(input_spec: InputSpec, vocab_size: int, sequence_length: int, padding: str = "pre",
                   truncating: str = "pre", tokenize: str = "words") -> tuple[Any, Any]:
    """Strings -> ``sequence_length`` token ids (front-padded/truncated like ``pad_sequences``)."""
    return text_input(input_spec, max_tokens=vocab_size, output_mode="int", sequence_length=sequence_length,
                      padding=padding, truncating=truncating, tokenize=tokenize)


def binary_or_softmax_head(x: Any, num_classes: int, binary_head: bool) -> Any:
    """One sigmoid unit for two classes when ``binary_head`` (the seed's head), else softmax."""
    if binary_head and num_classes == 2:
        return layers.Dense(1, activation="sigmoid", dtype="float32", name="predictions")(x)
    return classifier_head(x, num_classes)


@register_model("lstm", task="text")
def lstm(
    input_spec: InputSpec,
    num_classes: int,
    vocab_size: int = 10_000,
    sequence_length: int = 200,
    embedding_dim: int = 128,
    units: int = 64,
    dropout: float = 0.2,
    recurrent_dropout: float = 0.2,
    binary_head: bool = True,
    padding: str = "pre",
    truncating: str = "pre",
    tokenize: str = "words",
) -> keras.Model:
    """Seed 000 §3.2: Embedding 128 -> LSTM 64 (dropout 0.2, recurrent 0.2) -> sigmoid.

    Args:
        vocab_size: words kept (the seed's ``max_features``), padding and unknown included.
        sequence_length: tokens per review (the seed's ``maxlen``).
        embedding_dim, units: embedding width and LSTM units.
        dropout, recurrent_dropout: the LSTM's dropouts (recurrent dropout > 0 disables
            the fused kernel: slower on CPU, as in the seed).
        binary_head: one sigmoid unit for two classes (the seed); softmax otherwise.
        padding, truncating: "pre" (the seed's ``pad_sequences`` defaults) or "post".
        tokenize: "words" (split on spaces) or "chars" (a token per character of a script
            written without spaces; see :class:`TextEncoder`).

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> lstm(InputSpec.text(), 2).output.shape
        (None, 1)
    """
    inputs, x = sequence_input(input_spec, vocab_size, sequence_length, padding, truncating, tokenize)
    x = layers.Embedding(vocab_size, embedding_dim)(x)
    x = layers.LSTM(units, dropout=dropout, recurrent_dropout=recurrent_dropout)(x)
    return keras.Model(inputs, binary_or_softmax_head(x, num_classes, binary_head), name="lstm")


@register_model("lstm_dense", task="text")
def lstm_dense(
    input_spec: InputSpec,
    num_classes: int,
    vocab_size: int = 10_000,
    sequence_length: int = 200,
    embedding_dim: int = 128,
    units: int = 128,
    dense_units: int = 64,
    dropout: float = 0.2,
    recurrent_dropout: float = 0.2,
    dense_dropout: float = 0.3,
    tokenize: str = "words",
) -> keras.Model:
    """Seed 001 §3.3: Embedding 128 -> LSTM 128 -> Dense 64 (ReLU) -> Dropout 0.3 -> softmax.

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> lstm_dense(InputSpec.text(), 3).output.shape
        (None, 3)
    """
    inputs, x = sequence_input(input_spec, vocab_size, sequence_length, tokenize=tokenize)
    x = layers.Embedding(vocab_size, embedding_dim)(x)
    x = layers.LSTM(units, dropout=dropout, recurrent_dropout=recurrent_dropout)(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dense_dropout)(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="lstm_dense")


@register_model("bilstm", task="text")
def bilstm(
    input_spec: InputSpec,
    num_classes: int,
    vocab_size: int = 20_000,
    sequence_length: int = 200,
    embedding_dim: int = 128,
    units: int = 64,
    dense_units: int = 64,
    dropout: float = 0.3,
    tokenize: str = "words",
) -> keras.Model:
    """Embedding -> Bidirectional LSTM -> Dense (ReLU) -> Dropout -> softmax.

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> bilstm(InputSpec.text(), 2).output.shape
        (None, 2)
    """
    inputs, x = sequence_input(input_spec, vocab_size, sequence_length, tokenize=tokenize)
    x = layers.Embedding(vocab_size, embedding_dim)(x)
    x = layers.Bidirectional(layers.LSTM(units))(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="bilstm")


@register_model("gru", task="text")
def gru(
    input_spec: InputSpec,
    num_classes: int,
    vocab_size: int = 20_000,
    sequence_length: int = 200,
    embedding_dim: int = 128,
    units: int = 64,
    dropout: float = 0.2,
    tokenize: str = "words",
) -> keras.Model:
    """Embedding -> GRU -> Dropout -> softmax.

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> gru(InputSpec.text(), 2).output.shape
        (None, 2)
    """
    inputs, x = sequence_input(input_spec, vocab_size, sequence_length, tokenize=tokenize)
    x = layers.Embedding(vocab_size, embedding_dim)(x)
    x = layers.GRU(units)(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="gru")


@register_model("cnn1d", task="text")
def cnn1d(
    input_spec: InputSpec,
    num_classes: int,
    vocab_size: int = 20_000,
    sequence_length: int = 400,
    embedding_dim: int = 128,
    filters: int = 128,
    kernel_size: int = 5,
    dense_units: int = 64,
    dropout: float = 0.5,
    tokenize: str = "words",
) -> keras.Model:
    """Embedding -> Conv1D (ReLU) -> global max-pool -> Dense (ReLU) -> Dropout -> softmax.

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> cnn1d(InputSpec.text(), 2).output.shape
        (None, 2)
    """
    inputs, x = sequence_input(input_spec, vocab_size, sequence_length, tokenize=tokenize)
    x = layers.Embedding(vocab_size, embedding_dim)(x)
    x = layers.Conv1D(filters, kernel_size, activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="cnn1d")


@register_model("transformer", task="text")
def transformer(
    input_spec: InputSpec,
    num_classes: int,
    vocab_size: int = 10_000,
    sequence_length: int = 200,
    d_model: int = 128,
    num_heads: int = 8,
    dff: int = 512,
    rate: float = 0.1,
    dense_units: int = 64,
    dropout: float = 0.3,
    tokenize: str = "words",
) -> keras.Model:
    """Seed 001 §4.2: token + position embedding -> Transformer block -> GAP -> Dense 64.

    The encoder block uses Keras' ``MultiHeadAttention`` with the seed's shapes, a
    feed-forward network, LayerNorm and dropout; global average pooling, Dense 64 (ReLU),
    dropout and a softmax follow.

    Args:
        d_model, num_heads, dff, rate: the seed's encoder-block sizes and dropout.
        dense_units, dropout: the classifier's hidden Dense and its dropout.

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> transformer(InputSpec.text(), 2, sequence_length=32).output.shape
        (None, 2)
    """
    inputs, x = sequence_input(input_spec, vocab_size, sequence_length, tokenize=tokenize)
    x = TokenAndPositionEmbedding(sequence_length, vocab_size, d_model, name="embedding")(x)
    x = TransformerBlock(d_model, num_heads, dff, rate, name="encoder_block")(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="transformer")


@register_model("ngram_mlp", task="text")
def ngram_mlp(
    input_spec: InputSpec,
    num_classes: int,
    vocab_size: int = 100_000,
    ngrams: int = 2,
    output_mode: str = "tf_idf",
    sublinear_tf: bool = True,
    normalize: bool = True,
    hidden_units: Sequence[int] = (64,),
    dropout: float = 0.5,
    sparse: bool = True,
    naive_bayes: bool = False,
    nb_alpha: float = 1.0,
    tokenize: str = "words",
    input_scale: float = 1.0,
) -> keras.Model:
    """A bag of n-grams (sublinear, L2-normalised tf-idf) into a small dense network.

    The fast strong baseline: uni+bigram tf-idf is what scikit-learn's best linear models
    use; a hidden ReLU layer with dropout on top of it beats them on IMDB in 2-3 epochs.

    Args:
        vocab_size: n-grams kept (the most frequent in the training texts).
        ngrams: n-grams up to this size (2: unigrams + bigrams).
        output_mode: "tf_idf", "count" or "multi_hot".
        sublinear_tf, normalize: 1 + log(tf), and unit L2 norm per text.
        hidden_units: widths of the hidden ReLU layers; empty: a linear softmax (with
            ``naive_bayes``, an NBSVM-like model).
        dropout: dropout after each hidden layer.
        sparse: keep the n-gram vector sparse into the first Dense (much faster).
        naive_bayes: two classes: weigh each n-gram by its Naive-Bayes log-count ratio too
            (NBSVM, Wang & Manning 2012), learned from the training labels with the
            vocabulary (see :class:`~tfpilot.models.text_layers.TextEncoder`).
        nb_alpha: the Naive-Bayes smoothing.
        tokenize: "words" (split on spaces), "chars" (a token per character of a script
            written without spaces, so ``ngrams`` makes character n-grams) or "char_wb"
            (character 1- to ``ngrams``-grams inside words).
        input_scale: multiply the n-gram vector by this (:class:`~tfpilot.models.text_layers.ScaleInput`):
            under Adam the weights of the first layer on it then learn ``input_scale`` times
            as fast -- a learning rate of its own, e.g. for the text part of a table model
            trained at a rate that suits its image encoder.

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> ngram_mlp(InputSpec.text(), 2, vocab_size=1000).count_params()  # 1000x64+64, 64x2+2, idf 1000
        65194
    """
    if output_mode == "int":
        raise UserError("ngram_mlp takes a bag of n-grams: output_mode must be tf_idf, count or multi_hot")
    if naive_bayes and num_classes != 2:
        raise UserError(f"ngram_mlp's naive_bayes weighs n-grams for two classes, the data has {num_classes}: "
                        "set model.params.naive_bayes false")
    inputs, x = text_input(input_spec, max_tokens=vocab_size, output_mode=output_mode, ngrams=ngrams,
                           sequence_length=None, sublinear_tf=sublinear_tf, normalize=normalize, sparse=sparse,
                           naive_bayes=naive_bayes, nb_alpha=nb_alpha, tokenize=tokenize)
    if float(input_scale) != 1.0:
        from tfpilot.models.text_layers import ScaleInput

        x = ScaleInput(float(input_scale), name="input_scale")(x)
    for units in hidden_units:
        x = layers.Dense(units, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="ngram_mlp")
