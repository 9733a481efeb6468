"""Text preprocessing inside the model: raw strings in, token ids or n-gram vectors out.

:class:`TextEncoder` wraps Keras' ``TextVectorization`` with what the seeds and the
strong baselines need -- front padding/truncation like ``pad_sequences`` (the seed LSTM
only learns with it), sublinear, L2-normalised tf-idf (scikit-learn's recipe), sparse
output -- and is *adapted on the training split only*: the trainer calls
:func:`adapt_preprocessing` right after it builds the model. The vocabulary and idf
weights are saved inside the ``.keras`` file, so a loaded model takes raw strings.

Example:
    >>> import numpy as np
    >>> enc = TextEncoder(max_tokens=20, output_mode="int", sequence_length=4)
    >>> enc.adapt(np.array(["a good film", "a bad film"], dtype=object))
    >>> enc(np.array(["Good, GOOD film!<br />"], dtype=object)).numpy().tolist()
    [[0, 4, 4, 2]]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from tfpilot.errors import UserError
from tfpilot.models.text_vocab import NgramCounts, count_ngrams, word_ids
from tfpilot.registry import serializable

log = logging.getLogger(__name__)

#: Output modes of :class:`TextEncoder`.
OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
#: How :class:`TextEncoder` splits a text into tokens (see ``tokenize``).
TOKENIZE_MODES = ("words", "chars", "char_wb")
#: One character of a script written without spaces between words (Han, kana, Thai, Lao,
#: Khmer, Myanmar) with its combining marks: each becomes a token of its own in "chars" mode.
UNSPACED_CHAR = r"((?:\p{Han}|\p{Hiragana}|\p{Katakana}|\p{Thai}|\p{Lao}|\p{Khmer}|\p{Myanmar})\p{M}*)"


@serializable
def standardize_text(texts: Any) -> Any:
    """Lower-case (Unicode), turn HTML line breaks and punctuation into spaces.

    Example:
        >>> standardize_text(tf.constant(["Great<br />film. Don't!"])).numpy()[0].decode()
        'great film  don t '
    """
    x = tf.strings.lower(texts, encoding="utf-8")
    x = tf.strings.regex_replace(x, r"<br\s*/?>", " ")
    return tf.strings.regex_replace(x, r"[^\p{L}\p{N}\p{M}\s]", " ")


@serializable
def split_unspaced(texts: Any) -> Any:
    """Put spaces around every character of a script written without spaces (Chinese,
    Japanese kana, Thai, ...), so a whitespace split makes each one a token; words of other
    scripts (Latin, digits) stay whole.

    Example:
        >>> split_unspaced(tf.constant(["很好hotel"])).numpy()[0].decode()
        ' 很  好 hotel'
    """
    return tf.strings.regex_replace(texts, UNSPACED_CHAR, r" \1 ")


@serializable
def standardize_chars(texts: Any) -> Any:
    """:func:`standardize_text`, then :func:`split_unspaced` (``tokenize="chars"``).

    Example:
        >>> standardize_chars(tf.constant(["房间很大，Good!"])).numpy()[0].decode().split()
        ['房', '间', '很', '大', 'good']
    """
    return split_unspaced(standardize_text(texts))


@serializable
def lower_chars(texts: Any) -> Any:
    """Lower-case, then :func:`split_unspaced` (``tokenize="chars"``, ``standardize="lower"``)."""
    return split_unspaced(tf.strings.lower(texts, encoding="utf-8"))


#: The vectorizer's standardisation per ``(tokenize, standardize)`` of :class:`TextEncoder`.
_STANDARDIZE = {
    ("words", "default"): standardize_text, ("words", "lower"): "lower", ("words", None): None,
    ("chars", "default"): standardize_chars, ("chars", "lower"): lower_chars, ("chars", None): split_unspaced,
    ("char_wb", "default"): standardize_text, ("char_wb", "lower"): "lower", ("char_wb", None): None,
}


def char_wb_grams(texts: Any, width: int) -> Any:
    """Character 1- to ``width``-grams inside word boundaries, scikit-learn's ``char_wb``
    analyzer: each word, padded with a space on either side, gives its character n-grams
    (n-grams never span two words).

    Args:
        texts: a 1-D string tensor (standardised texts).
        width: the longest n-gram (characters).

    Returns:
        A ``tf.RaggedTensor`` of n-grams, one row per text.

    Example:
        >>> sorted(char_wb_grams(tf.constant(["ab"]), 2)[0].numpy().astype(str).tolist())
        [' ', ' ', ' a', 'a', 'ab', 'b', 'b ']
    """
    words = tf.strings.split(texts)
    chars = tf.strings.unicode_split(" " + words + " ", "UTF-8")
    grams = tf.strings.ngrams(chars, ngram_width=tuple(range(1, int(width) + 1)), separator="")
    return grams.merge_dims(1, 2)


class CharWordGrams:
    """A ``TextVectorization`` split: :func:`char_wb_grams` of a fixed width (rebuilt by
    :class:`TextEncoder` from its own config, so it is never serialised itself)."""

    def __init__(self, width: int) -> None:
        self.width = int(width)

    def __call__(self, texts: Any) -> Any:
        return char_wb_grams(texts, self.width)


@serializable
class TextEncoder(layers.Layer):
    """Raw strings -> token ids (``int``) or n-gram bag vectors (``multi_hot``/``count``/``tf_idf``).

    Args:
        max_tokens: vocabulary size, including the padding and out-of-vocabulary tokens.
        output_mode: "int" (sequences for Embedding models), "multi_hot", "count" or "tf_idf".
        sequence_length: "int" mode: tokens per text (padded / truncated).
        ngrams: n-grams up to this size (2: unigrams and bigrams); None for words only.
        padding: "int" mode: "pre" (zeros first, like Keras' ``pad_sequences``) or "post".
        truncating: "int" mode: "pre" (keep the last tokens, like ``pad_sequences``) or "post".
        sublinear_tf: bag modes: use 1 + log(count) instead of the count (scikit-learn's option).
        normalize: bag modes: scale each vector to unit L2 norm.
        sparse: bag modes: output a ``tf.SparseTensor`` (fast into a Dense layer).
        standardize: "default" (:func:`standardize_text`), "lower", or None (as given).
        adapt_batch_size: texts per batch while adapting.
        tokenize: "words": split on spaces (scripts that space their words); "chars": every
            character of a script written without spaces (Chinese, Japanese, Thai, ...) is a
            token, so ``ngrams`` makes character n-grams; runs of other letters stay words;
            "char_wb": character 1- to ``ngrams``-grams inside each word padded with spaces
            (scikit-learn's ``char_wb`` analyzer, :func:`char_wb_grams`), for short texts
            such as product names, where word pieces ("shirt" in "sweatshirts") carry the class.
        naive_bayes: bag modes, two classes: also weigh each n-gram by its Naive-Bayes
            log-count ratio ``log((p_j / |p|) / (q_j / |q|))``, ``p``/``q`` the smoothed
            counts of the positive/negative training texts holding it (NBSVM, Wang &
            Manning 2012); learned in :meth:`adapt` from the training labels.
        nb_alpha: the Naive-Bayes smoothing (added to every count).

    Example:
        >>> import numpy as np
        >>> enc = TextEncoder(max_tokens=50, output_mode="tf_idf", ngrams=2, sparse=False)
        >>> enc.adapt(np.array(["a good film", "a bad film", "good good"], dtype=object))
        >>> enc(np.array(["good film"], dtype=object)).shape
        TensorShape([1, 50])
    """

    def __init__(
        self,
        max_tokens: int = 20_000,
        output_mode: str = "int",
        sequence_length: int | None = 200,
        ngrams: int | None = None,
        padding: str = "pre",
        truncating: str = "pre",
        sublinear_tf: bool = False,
        normalize: bool = False,
        sparse: bool = False,
        standardize: str | None = "default",
        adapt_batch_size: int = 4096,
        naive_bayes: bool = False,
        nb_alpha: float = 1.0,
        tokenize: str = "words",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", "float32")  # preprocessing stays float32 under mixed precision
        super().__init__(**kwargs)
        if output_mode not in OUTPUT_MODES:
            raise UserError(f"output_mode must be one of {', '.join(OUTPUT_MODES)}, not {output_mode!r}")
        if padding not in ("pre", "post") or truncating not in ("pre", "post"):
            raise UserError(f"padding and truncating must be 'pre' or 'post', got {padding!r} and {truncating!r}")
        if output_mode == "int" and not sequence_length:
            raise UserError("output_mode 'int' needs a sequence_length (tokens per text)")
        if int(max_tokens) < 3:
            raise UserError(f"max_tokens must be at least 3 (padding, unknown and one word), got {max_tokens}")
        if standardize not in ("default", "lower", None):
            raise UserError(f"standardize must be 'default', 'lower' or None, not {standardize!r}")
        if tokenize not in TOKENIZE_MODES:
            raise UserError(f"tokenize must be one of {', '.join(TOKENIZE_MODES)}, not {tokenize!r} (words: split on "
                            "spaces; chars: one token per character of Chinese, Japanese, Thai, ... text; char_wb: "
                            "character n-grams inside words)")
        if tokenize == "char_wb" and output_mode == "int":
            raise UserError("tokenize char_wb makes a bag of character n-grams: use output_mode tf_idf, count or "
                            "multi_hot, not int")
        self.tokenize_mode = tokenize
        self.max_tokens = int(max_tokens)
        self.output_mode = output_mode
        self.sequence_length = int(sequence_length) if sequence_length else None
        self.ngrams = int(ngrams) if ngrams and int(ngrams) > 1 else None
        self.padding, self.truncating = padding, truncating
        self.sublinear_tf = bool(sublinear_tf)
        self.normalize = bool(normalize)
        self.sparse = bool(sparse) and output_mode != "int"
        self.standardize = standardize
        self.adapt_batch_size = int(adapt_batch_size)
        if naive_bayes and output_mode == "int":
            raise UserError("naive_bayes weighs a bag of n-grams: use output_mode tf_idf, count or multi_hot, not int")
        if float(nb_alpha) <= 0:
            raise UserError(f"nb_alpha must be > 0 (the smoothing added to every count), got {nb_alpha}")
        self.naive_bayes = bool(naive_bayes)
        self.nb_alpha = float(nb_alpha)
        char_wb = tokenize == "char_wb"
        self.vectorizer = layers.TextVectorization(
            max_tokens=self.max_tokens,
            standardize=_STANDARDIZE[tokenize, standardize],
            split=CharWordGrams(self.ngrams or 1) if char_wb else "whitespace",
            ngrams=None if char_wb else self.ngrams,
            output_mode="int" if output_mode == "int" else ("multi_hot" if output_mode == "multi_hot" else "count"),
            ragged=output_mode == "int",
            sparse=output_mode != "int",  # bag vectors are weighted sparse, densified at the end if asked
            name="vectorizer",
        )
        self.idf: Any = None
        self.nb: Any = None

    @property
    def uses_idf(self) -> bool:
        return self.output_mode == "tf_idf"

    def build(self, input_shape: Any = None) -> None:
        if self.uses_idf and self.idf is None:
            self.idf = self.add_weight(name="idf", shape=(self.max_tokens,), initializer="ones", trainable=False)
        if self.naive_bayes and self.nb is None:
            self.nb = self.add_weight(name="nb_ratio", shape=(self.max_tokens,), initializer="ones", trainable=False)
        super().build(input_shape)

    # -- adapting ------------------------------------------------------------------------
    def words(self, texts: Any) -> tf.RaggedTensor:
        """The words of each text: the standardisation and whitespace split of ``TextVectorization``
        (``char_wb``: the character n-grams, :func:`char_wb_grams`)."""
        x = tf.convert_to_tensor(texts, tf.string)
        standardize = _STANDARDIZE[self.tokenize_mode, self.standardize]
        if standardize == "lower":
            x = tf.strings.lower(x)
        elif standardize is not None:
            x = standardize(x)
        if self.tokenize_mode == "char_wb":
            return char_wb_grams(x, self.ngrams or 1)
        return tf.strings.split(x)

    @property
    def word_ngrams(self) -> int:
        """The longest n-gram of words counted over :meth:`words` (1 for ``char_wb``, whose
        words are already its n-grams)."""
        return 1 if self.tokenize_mode == "char_wb" else (self.ngrams or 1)

    def tokenize(self, texts: Any) -> tf.RaggedTensor:
        """The tokens (n-grams included) the vectorizer looks up: :meth:`words`, then the
        ``tf.strings.ngrams`` of ``TextVectorization``."""
        tokens = self.words(texts)
        if self.word_ngrams > 1:
            tokens = tf.strings.ngrams(tokens, ngram_width=tuple(range(1, self.ngrams + 1)), separator=" ")
        return tokens

    def adapt(self, texts: Any, batch_size: int | None = None, labels: Any = None) -> None:
        """Learn the vocabulary (and idf weights) from ``texts`` -- the training texts only.

        Gives the vocabulary ``TextVectorization.adapt`` would (the ``max_tokens`` most
        frequent tokens, ties broken by token, descending) and scikit-learn's smooth idf,
        from one exact, vectorised count of the words and n-grams
        (:func:`~tfpilot.models.text_vocab.count_ngrams`): no n-gram strings are built but
        the vocabulary's.

        Args:
            texts: the training texts (str or bytes).
            batch_size: texts standardised and split per batch (default ``adapt_batch_size``).
            labels: the class ids of the texts (two classes), needed with ``naive_bayes``.
        """
        if self.naive_bayes:
            labels = self._binary_labels(labels, texts)
        counts = self.count(texts, batch_size, labels=labels if self.naive_bayes else None, num_classes=2)
        room = self.max_tokens - (2 if self.output_mode == "int" else 1)  # "" and [UNK] come first
        tokens, df, class_df = counts.top(room)
        if not tokens:
            raise UserError("the training texts hold no words: cannot learn a vocabulary (are the texts empty?)")
        self.vectorizer.set_vocabulary(tokens)
        if not self.built:
            self.build((None,))
        if self.uses_idf:
            full = np.zeros(self.max_tokens, np.float64)
            full[1:1 + len(tokens)] = df  # index 0 is [UNK]
            idf = np.log((1.0 + counts.documents) / (1.0 + full)) + 1.0  # scikit-learn's smooth idf
            idf[0] = 0.0  # unknown n-grams ([UNK]) carry no weight, as in scikit-learn
            self.idf.assign(idf.astype(np.float32))
        if self.naive_bayes:
            p = np.full(self.max_tokens, self.nb_alpha)
            q = np.full(self.max_tokens, self.nb_alpha)
            p[1:1 + len(tokens)] += class_df[1]
            q[1:1 + len(tokens)] += class_df[0]
            ratio = np.log((p / p[1:1 + len(tokens)].sum()) / (q / q[1:1 + len(tokens)].sum()))
            ratio[0] = 0.0  # [UNK]
            ratio[1 + len(tokens):] = 0.0  # unused slots of a vocabulary smaller than max_tokens
            self.nb.assign(ratio.astype(np.float32))

    @staticmethod
    def _binary_labels(labels: Any, texts: Any) -> np.ndarray:
        if labels is None:
            raise UserError("naive_bayes needs the training labels: call adapt(texts, labels=...) "
                            "(the trainer passes the training split's)")
        y = np.asarray(labels).reshape(-1)
        if len(y) != len(texts):
            raise UserError(f"adapt got {len(y)} labels for {len(texts)} texts: give one label per text")
        if not np.isin(y, (0, 1)).all():
            raise UserError(f"naive_bayes weighs n-grams for two classes (labels 0 and 1), got labels "
                            f"{sorted(set(np.unique(y).tolist()))[:5]}: set naive_bayes false for more classes")
        return y.astype(np.int64)

    def count(self, texts: Any, batch_size: int | None = None, labels: Any = None,
              num_classes: int | None = None) -> NgramCounts:
        """Count the tokens (words and n-grams up to ``ngrams``) of ``texts``.

        Args:
            texts: the texts (str or bytes).
            batch_size: texts standardised and split per batch (in parallel).
            labels, num_classes: optional class ids of the texts: per-class document
                frequencies are counted too.
        """
        data = tf.data.Dataset.from_tensor_slices(_as_string_array(texts)).batch(batch_size or self.adapt_batch_size)
        data = data.map(lambda t: word_ids(self.words(t)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        batches = list(data)
        if not batches:
            raise UserError("no training texts: cannot learn a vocabulary")
        return count_ngrams(batches, ngrams=self.word_ngrams, labels=labels, num_classes=num_classes)

    @property
    def is_adapted(self) -> bool:
        """Whether a vocabulary was learned (beyond the padding / unknown tokens)."""
        return self.vectorizer.vocabulary_size() > (2 if self.output_mode == "int" else 1)

    def vocabulary_size(self) -> int:
        return int(self.vectorizer.vocabulary_size())

    def get_vocabulary(self) -> list[str]:
        return [str(t) for t in self.vectorizer.get_vocabulary()]

    # -- the forward pass ------------------------------------------------------------------
    def call(self, inputs: Any) -> Any:
        x = self.vectorizer(inputs)
        if self.output_mode == "int":
            return self._pad(x)
        x = self._weigh(x)
        return x if self.sparse else tf.sparse.to_dense(x)

    def _pad(self, rt: Any) -> Any:
        length = self.sequence_length
        rt = rt[:, -length:] if self.truncating == "pre" else rt[:, :length]
        dense = rt.to_tensor(default_value=0, shape=[None, length])
        if self.padding == "post":
            return dense
        shift = length - tf.cast(rt.row_lengths(), tf.int32)
        index = tf.range(length)[None, :] - shift[:, None]
        moved = tf.gather(dense, tf.maximum(index, 0), batch_dims=1)
        return tf.where(index >= 0, moved, tf.zeros_like(moved))

    def _weigh(self, x: tf.SparseTensor) -> tf.SparseTensor:
        """Counts -> (sublinear) tf (x idf) (L2-normalised), on the sparse values only."""
        values = tf.cast(x.values, tf.float32)
        if self.sublinear_tf:
            values = 1.0 + tf.math.log(values)
        if self.uses_idf:
            values = values * tf.gather(tf.convert_to_tensor(self.idf), x.indices[:, 1])
        if self.naive_bayes:
            values = values * tf.gather(tf.convert_to_tensor(self.nb), x.indices[:, 1])
        if self.normalize:
            rows = x.indices[:, 0]
            sq = tf.math.unsorted_segment_sum(values * values, rows, tf.cast(x.dense_shape[0], tf.int32))
            values = values * tf.gather(tf.math.rsqrt(tf.maximum(sq, 1e-12)), rows)
        # The vocabulary may be smaller than max_tokens: the output width is always max_tokens.
        out = tf.SparseTensor(x.indices, values, tf.stack([x.dense_shape[0], tf.constant(self.max_tokens, tf.int64)]))
        out.set_shape([None, self.max_tokens])
        return out

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        batch = input_shape[0] if input_shape else None
        return (batch, self.sequence_length if self.output_mode == "int" else self.max_tokens)

    def compute_output_spec(self, inputs: Any) -> Any:
        dtype = "int64" if self.output_mode == "int" else "float32"
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=dtype, sparse=self.sparse)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            max_tokens=self.max_tokens,
            output_mode=self.output_mode,
            sequence_length=self.sequence_length,
            ngrams=self.ngrams,
            padding=self.padding,
            truncating=self.truncating,
            sublinear_tf=self.sublinear_tf,
            normalize=self.normalize,
            sparse=self.sparse,
            standardize=self.standardize,
            adapt_batch_size=self.adapt_batch_size,
            naive_bayes=self.naive_bayes,
            nb_alpha=self.nb_alpha,
            tokenize=self.tokenize_mode,
        )
        return config


@serializable
class ScaleInput(layers.Layer):
    """Multiply a (sparse or dense) feature vector by a constant.

    Under Adam a weight's step does not depend on the scale of its gradient, so the layer
    after this one learns ``scale`` times as fast on these features as on unscaled ones: a
    per-input learning rate inside one model (and one optimizer).

    Args:
        scale: the factor (> 0).

    Example:
        >>> import numpy as np
        >>> ScaleInput(20.0)(np.ones((1, 2), "float32")).numpy().tolist()
        [[20.0, 20.0]]
    """

    def __init__(self, scale: float, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if float(scale) <= 0:
            raise UserError(f"input_scale must be > 0, got {scale}")
        self.scale = float(scale)

    def call(self, x: Any) -> Any:
        if isinstance(x, tf.SparseTensor):
            return tf.SparseTensor(x.indices, x.values * self.scale, x.dense_shape)
        return x * self.scale

    def compute_output_spec(self, x: Any) -> Any:
        return keras.KerasTensor(x.shape, dtype=x.dtype, sparse=bool(getattr(x, "sparse", False)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


@serializable
class TokenAndPositionEmbedding(layers.Layer):
    """Token embedding plus a learned position embedding (seed 001 §4.2's input stem).

    Args:
        max_length: sequence length (positions 0 .. max_length-1).
        vocab_size: token ids are in [0, vocab_size).
        embed_dim: embedding width (the Transformer's d_model).

    Example:
        >>> import numpy as np
        >>> tuple(TokenAndPositionEmbedding(8, 100, 16)(np.zeros((2, 8), "int64")).shape)
        (2, 8, 16)
    """

    def __init__(self, max_length: int, vocab_size: int, embed_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length, self.vocab_size, self.embed_dim = int(max_length), int(vocab_size), int(embed_dim)
        self.token_emb = layers.Embedding(self.vocab_size, self.embed_dim, name="token")
        self.pos_emb = layers.Embedding(self.max_length, self.embed_dim, name="position")

    def build(self, input_shape: Any) -> None:
        self.token_emb.build(input_shape)
        self.pos_emb.build((self.max_length,))
        super().build(input_shape)

    def call(self, x: Any) -> Any:
        positions = ops.arange(0, ops.shape(x)[-1], dtype="int32")
        return self.token_emb(x) + self.pos_emb(positions)[None]

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (*input_shape, self.embed_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(max_length=self.max_length, vocab_size=self.vocab_size, embed_dim=self.embed_dim)
        return config


@serializable
class TransformerBlock(layers.Layer):
    """Seed 001 §4.2's encoder block with Keras' ``MultiHeadAttention``: attention ->
    dropout -> add & LayerNorm -> feed-forward (dff, ReLU) -> dropout -> add & LayerNorm.

    Args:
        embed_dim: model width (d_model).
        num_heads: attention heads (``key_dim = embed_dim // num_heads``, as in the seed).
        ff_dim: hidden width of the feed-forward network (dff).
        rate: dropout rate.

    Example:
        >>> import numpy as np
        >>> tuple(TransformerBlock(16, 2, 32)(np.zeros((2, 8, 16), "float32")).shape)
        (2, 8, 16)
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, rate: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if embed_dim % num_heads:
            raise UserError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.ff_dim, self.rate = int(ff_dim), float(rate)
        self.att = layers.MultiHeadAttention(num_heads=self.num_heads, key_dim=self.embed_dim // self.num_heads,
                                             name="attention")
        self.ffn_hidden = layers.Dense(self.ff_dim, activation="relu", name="ffn_hidden")
        self.ffn_out = layers.Dense(self.embed_dim, name="ffn_out")
        self.norm1 = layers.LayerNormalization(epsilon=1e-6, name="norm1")
        self.norm2 = layers.LayerNormalization(epsilon=1e-6, name="norm2")
        self.drop1 = layers.Dropout(self.rate)
        self.drop2 = layers.Dropout(self.rate)

    def build(self, input_shape: Any) -> None:
        self.att.build(input_shape, input_shape)
        self.norm1.build(input_shape)
        self.ffn_hidden.build(input_shape)
        self.ffn_out.build((*input_shape[:-1], self.ff_dim))
        self.norm2.build(input_shape)
        super().build(input_shape)

    def call(self, x: Any, training: bool | None = None) -> Any:
        attn = self.drop1(self.att(x, x, training=training), training=training)
        out1 = self.norm1(x + attn)
        ffn = self.drop2(self.ffn_out(self.ffn_hidden(out1)), training=training)
        return self.norm2(out1 + ffn)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(embed_dim=self.embed_dim, num_heads=self.num_heads, ff_dim=self.ff_dim, rate=self.rate)
        return config


def _as_string_array(texts: Any) -> np.ndarray:
    """A 1-D NumPy array of str from a list / array of str or bytes."""
    if isinstance(texts, (str, bytes)):
        texts = [texts]
    arr = np.asarray(list(texts) if not isinstance(texts, np.ndarray) else texts, dtype=object).reshape(-1)
    return np.array([t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in arr], dtype=object)


def adaptable_layers(model: Any) -> list[TextEncoder]:
    """The :class:`TextEncoder` layers of ``model`` (searched recursively)."""
    found: list[TextEncoder] = []

    def walk(layer: Any) -> None:
        if isinstance(layer, TextEncoder):
            found.append(layer)
            return
        for sub in getattr(layer, "layers", None) or []:
            walk(sub)

    walk(model)
    return found


def adapt_preprocessing(model: Any, split: Any, batch_size: int | None = None) -> int:
    """Adapt every :class:`TextEncoder` in ``model`` on the texts of ``split`` (the training
    split -- never validation or test, so nothing leaks). A no-op for image models.

    Args:
        model: a built ``keras.Model``.
        split: a :class:`~tfpilot.data.source.Split` whose ``x`` holds the raw texts.
        batch_size: texts per adapt batch (default: each layer's ``adapt_batch_size``).

    Returns:
        How many layers were adapted.
    """
    encoders = adaptable_layers(model)
    if not encoders:
        return 0
    if split.x is None:
        raise UserError("the training split holds no texts to adapt the text preprocessing on")
    texts = _as_string_array(split.x)
    for enc in encoders:
        started = time.perf_counter()
        enc.adapt(texts, batch_size=batch_size, labels=split.y if enc.naive_bayes else None)
        log.info("adapted %s on %d training texts in %.1f s (vocabulary %d)", enc.name, len(texts),
                 time.perf_counter() - started, enc.vocabulary_size())
    return len(encoders)


def encoder_vocabulary(model: Any) -> Sequence[str]:
    """The vocabulary of the model's first :class:`TextEncoder` (empty if none)."""
    encoders = adaptable_layers(model)
    return encoders[0].get_vocabulary() if encoders else []
