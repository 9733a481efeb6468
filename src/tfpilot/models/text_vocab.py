"""Counting words and n-grams for a vocabulary: exact, and vectorised in NumPy.

``TextVectorization.adapt`` with ``ngrams`` builds every n-gram as a string and counts the
strings in a hash table; on IMDB's 25,000 reviews that is ~17 million strings for 1- to
3-grams, and the slowest step of a fast text model. Here the texts are standardised and
split by TensorFlow once, each distinct word gets an integer id, and an n-gram is the
integer ``id(prefix) * words + id(last word)`` -- exact, no hashing, no collisions. Each
width is then counted with one sort (:func:`numpy.sort` of ``code << bits | position``: a
stable sort by code in one int64 key), which gives its total count and its document
frequency together. Only the n-grams that can make the vocabulary are ever turned back
into strings.

The vocabulary is the one ``TextVectorization.adapt`` learns: the most frequent tokens,
ties broken by the token (descending); see :meth:`NgramCounts.top`.

Example:
    >>> import tensorflow as tf
    >>> words = tf.strings.split(tf.constant(["a good film", "a bad film", "good good"]))
    >>> counts = count_ngrams(words, ngrams=2)
    >>> tokens, df, _ = counts.top(4)
    >>> tokens, df.tolist()
    (['good', 'film', 'a', 'good good'], [2, 2, 2, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpilot.errors import UserError

#: Largest ``code << bits | position`` that one int64 sort key holds.
_KEY_LIMIT = 2**62


@dataclass
class NgramLevel:
    """The distinct n-grams of one width, as integer codes.

    Attributes:
        width: the n of the n-grams.
        codes: sorted distinct codes: ``prefix * num_words + last word id`` (the prefix is
            an index into the previous width's ``codes``; width 1: the word id).
        counts: occurrences of each n-gram in all the texts.
        df: texts each n-gram occurs in.
        class_df: ``(classes, len(codes))``: texts of each class it occurs in (when labels
            were given), else None.
    """

    width: int
    codes: np.ndarray
    counts: np.ndarray
    df: np.ndarray
    class_df: np.ndarray | None = None


@dataclass
class NgramCounts:
    """Counts of the words and n-grams of a corpus (see :func:`count_ngrams`).

    Attributes:
        words: the distinct words (bytes), indexed by word id.
        levels: one :class:`NgramLevel` per n-gram width, 1 first.
        documents: texts counted.
    """

    words: np.ndarray
    levels: list[NgramLevel]
    documents: int

    def top(self, room: int) -> tuple[list[str], np.ndarray, np.ndarray | None]:
        """The ``room`` most frequent tokens of every width, as ``TextVectorization`` orders
        them: by count, ties by the token, both descending.

        Args:
            room: tokens to keep (the vocabulary size less its reserved tokens).

        Returns:
            ``(tokens, df, class_df)``: the tokens, their document frequencies and, when
            labels were counted, their per-class document frequencies ``(classes, tokens)``.
        """
        if not self.levels:  # no words at all
            return [], np.zeros(0, np.int64), None
        counts = np.concatenate([lv.counts for lv in self.levels])
        if counts.size > room:  # only the candidates at or above the room-th largest count
            kth = np.partition(counts, counts.size - room)[counts.size - room]
            keep = np.flatnonzero(counts >= kth)
        else:
            keep = np.arange(counts.size)
        bounds = np.cumsum([0] + [lv.codes.size for lv in self.levels])
        level_of = np.searchsorted(bounds, keep, side="right") - 1
        strings = np.empty(keep.size, dtype=object)
        for i, lv in enumerate(self.levels):
            mine = level_of == i
            strings[mine] = self._strings(i, lv.codes[keep[mine] - bounds[i]])
        tokens = strings.astype("S")
        order = np.lexsort((tokens, counts[keep]))[::-1][:room]  # count, then token: descending
        keep = keep[order]
        df = np.concatenate([lv.df for lv in self.levels])[keep]
        class_df = None
        if self.levels[0].class_df is not None:
            class_df = np.concatenate([lv.class_df for lv in self.levels], axis=1)[:, keep]
        return [t.decode("utf-8", "replace") for t in tokens[order]], df, class_df

    def _strings(self, level: int, codes: np.ndarray) -> np.ndarray:
        """The n-gram strings (bytes, words joined by one space) of codes of ``levels[level]``."""
        nw = np.int64(self.words.size)
        parts = []
        for i in range(level, 0, -1):
            parts.append(codes % nw)
            codes = self.levels[i - 1].codes[codes // nw]
        parts.append(codes)
        out = self.words[parts[-1]]
        for ids in reversed(parts[:-1]):
            out = np.char.add(np.char.add(out, b" "), self.words[ids])
        return out


def word_ids(words: Any) -> tuple[Any, Any, Any]:
    """``(distinct words, id of each word, row lengths)`` of one batch of tokenised texts.

    What :func:`count_ngrams` takes, batch by batch; cheap to run in a parallel ``tf.data`` map.

    Args:
        words: a ``tf.RaggedTensor`` of words, one row per text (``tf.strings.split``'s output).
    """
    import tensorflow as tf

    distinct, ids = tf.unique(words.flat_values, out_idx=tf.int64)
    return distinct, ids, words.row_lengths()


def count_ngrams(words: Any, ngrams: int = 1, labels: Sequence[int] | np.ndarray | None = None,
                 num_classes: int | None = None) -> NgramCounts:
    """Count the 1- to ``ngrams``-grams of tokenised texts, within each text.

    Args:
        words: a ``tf.RaggedTensor`` of words, one row per text (what ``tf.strings.split``
            returns), or an iterable of :func:`word_ids` of consecutive batches of texts.
        ngrams: the longest n-gram width counted.
        labels: optional class id of each text: per-class document frequencies are counted
            too (for Naive-Bayes feature weights).
        num_classes: classes of ``labels`` (default: ``max(labels) + 1``).

    Returns:
        The :class:`NgramCounts`.

    Example:
        >>> import tensorflow as tf
        >>> counts = count_ngrams(tf.strings.split(tf.constant(["to be or not to be"])), ngrams=2)
        >>> [lv.counts.tolist() for lv in counts.levels]
        [[2, 2, 1, 1], [2, 1, 1, 1]]
    """
    import tensorflow as tf

    batches = [word_ids(words)] if isinstance(words, tf.RaggedTensor) else list(words)
    if not batches:
        raise UserError("count_ngrams got no texts: give at least one batch of tokenised texts")
    vocab, index = tf.unique(tf.concat([b[0] for b in batches], 0), out_idx=tf.int64)  # merge the batches' words
    index, offset, wid = index.numpy(), 0, []
    for distinct, ids, _ in batches:
        wid.append(index[offset + np.asarray(ids)])
        offset += int(distinct.shape[0])
    wid = np.concatenate(wid)
    lengths = np.concatenate([np.asarray(b[2], np.int64) for b in batches])
    docs = int(lengths.size)
    rows = np.repeat(np.arange(docs, dtype=np.int64), lengths)
    y = None
    if labels is not None:
        y = np.asarray(labels, np.int64).reshape(-1)
        if y.size != docs:
            raise UserError(f"count_ngrams got {y.size} labels for {docs} texts: give one label per text")
        num_classes = int(num_classes or (y.max() + 1 if y.size else 1))
    nw = int(vocab.shape[0])
    levels: list[NgramLevel] = []
    prefix = None  # index into the previous level's codes of the n-gram starting at each position
    for n in range(1, max(1, int(ngrams)) + 1):
        if n == 1:
            starts, code = np.arange(wid.size), wid
        else:
            m = wid.size - (n - 1)
            if m <= 0:
                break
            starts = np.flatnonzero((prefix[:m] >= 0) & (rows[:m] == rows[n - 1:n - 1 + m]))
            code = prefix[starts] * nw + wid[starts + n - 1]
        if code.size == 0:
            break
        level, index = _count_level(n, code, rows[starts], nw * (levels[-1].codes.size if levels else 1), y,
                                    num_classes)
        levels.append(level)
        prefix = np.full(wid.size, -1, np.int64)
        prefix[starts] = index
    return NgramCounts(words=vocab.numpy().astype("S") if nw else np.array([], "S1"), levels=levels,
                       documents=docs)


def _count_level(width: int, code: np.ndarray, row: np.ndarray, code_limit: int,
                 y: np.ndarray | None, num_classes: int | None) -> tuple[NgramLevel, np.ndarray]:
    """Count one width's codes (occurrences and texts) with one sort; also return the index
    of each occurrence's code among the sorted distinct codes.

    ``row`` is non-decreasing (occurrences come text by text), so a stable sort by code keeps
    each code's rows in order and its texts are the changes of row within it.
    """
    shift = max(int(code.size - 1).bit_length(), 1)
    if code_limit < _KEY_LIMIT >> shift:  # one int64 key: code, then position (a stable sort)
        key = np.sort((code << shift) | np.arange(code.size, dtype=np.int64))
        sorted_code, order = key >> shift, key & ((1 << shift) - 1)
    else:
        order = np.argsort(code, kind="stable")
        sorted_code = code[order]
    sorted_row = row[order]
    new_code = np.ones(code.size, bool)
    np.not_equal(sorted_code[1:], sorted_code[:-1], out=new_code[1:])
    new_pair = new_code.copy()
    new_pair[1:] |= sorted_row[1:] != sorted_row[:-1]
    group = np.cumsum(new_code) - 1
    codes = sorted_code[new_code]
    counts = np.bincount(group, minlength=codes.size)
    df = np.bincount(group[new_pair], minlength=codes.size)
    class_df = None
    if y is not None:
        pair_group, pair_class = group[new_pair], y[sorted_row[new_pair]]
        class_df = np.stack([np.bincount(pair_group[pair_class == k], minlength=codes.size)
                             for k in range(num_classes)])
    index = np.empty(code.size, np.int64)
    index[order] = group
    return NgramLevel(width, codes, counts, df, class_df), index
