"""Which words pushed a text classifier's prediction: word occlusion.

Each word is deleted in turn and the text re-scored; a word's importance is how much the
probability of the explained class drops without it (positive: the word pushed towards
that class; negative: it pushed away). It needs nothing from the model but the contract
"a batch of raw strings in, class probabilities out", so it works for any tfpilot text
model, whatever its tokenizer.

Example:
    >>> from tfpilot.evaluation.explain_text import explain_text
    >>> words = explain_text(model, "a truly great film")  # doctest: +SKIP
    >>> max(words.words, key=lambda w: w.importance).text  # doctest: +SKIP
    'great'
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfpilot.errors import UserError
from tfpilot.metrics import to_probabilities

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Word:
    """One whitespace-separated word of the text, with its position and importance."""

    text: str
    start: int
    end: int
    importance: float


@dataclass(frozen=True)
class TextExplanation:
    """A text, the class explained, its probability, and every word's importance."""

    text: str
    class_index: int
    probability: float
    words: tuple[Word, ...]

    def top(self, k: int = 10, min_share: float | None = None) -> list[Word]:
        """The ``k`` words that pushed hardest towards the explained class.

        Args:
            k: how many words.
            min_share: keep only words whose importance is at least this share of the
                largest absolute importance (e.g. 0.05); None keeps all.
        """
        words = sorted(self.words, key=lambda w: -w.importance)
        if min_share is not None:
            scale = max((abs(w.importance) for w in self.words), default=0.0)
            words = [w for w in words if w.importance > 0 and w.importance >= min_share * scale]
        return words[:k]

    def to_html(self, max_chars: int | None = None, shade: int = 24, min_share: float = 0.15) -> str:
        """The text as HTML, the words that matter shaded by importance (green: for the class,
        red: against), with the importance as a tooltip.

        Args:
            max_chars: cut the shown text after this many characters (None: all of it).
            shade: shade at most this many words (the largest absolute importances).
            min_share: and only words with at least this share of the largest absolute importance.
        """
        scale = max((abs(w.importance) for w in self.words), default=0.0) or 1.0
        ranked = sorted(range(len(self.words)), key=lambda i: -abs(self.words[i].importance))[:shade]
        shaded = {i for i in ranked if abs(self.words[i].importance) >= min_share * scale}
        parts, pos = [], 0
        for i, w in enumerate(self.words):
            if max_chars is not None and w.start >= max_chars:
                parts.append(" &hellip;")
                pos = len(self.text)
                break
            parts.append(html.escape(self.text[pos : w.start]))
            strength = min(abs(w.importance) / scale, 1.0)
            token = html.escape(w.text)
            if i in shaded:
                rgb = "22,163,74" if w.importance > 0 else "220,38,38"
                parts.append(f'<span class="w" style="background:rgba({rgb},{0.6 * strength:.2f})" '
                             f'title="{w.importance:+.4f}">{token}</span>')
            else:
                parts.append(token)
            pos = w.end
        parts.append(html.escape(self.text[pos:]))
        return "".join(parts)


def _predict(model: Any, texts: list[str], batch_size: int) -> np.ndarray:
    import tensorflow as tf

    outs = [np.asarray(model(tf.constant(texts[i : i + batch_size]), training=False))
            for i in range(0, len(texts), batch_size)]
    return to_probabilities(np.concatenate(outs)) if outs else np.zeros((0, 0))


def explain_text(
    model: Any,
    text: str,
    class_index: int | None = None,
    max_words: int = 400,
    batch_size: int = 128,
) -> TextExplanation:
    """Word importance by occlusion for one text.

    Args:
        model: a Keras model taking a batch of raw strings and returning probabilities.
        text: the text to explain.
        class_index: the class to explain; default: the predicted class.
        max_words: occlude at most the first ``max_words`` words (later words get 0), which
            bounds the cost to ``max_words + 1`` texts scored in batches.
        batch_size: texts per model call.

    Example:
        >>> e = explain_text(model, "bad plot, great acting", class_index=1)  # doctest: +SKIP
        >>> [w.text for w in e.top(1)]  # doctest: +SKIP
        ['great']
    """
    if not isinstance(text, str):
        raise UserError(f"explain_text takes a string, got {type(text).__name__}")
    spans = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    occluded = spans[:max_words]
    variants = [text] + [text[:s] + text[e:] for _, s, e in occluded]
    probs = _predict(model, variants, batch_size)
    cls = int(np.argmax(probs[0])) if class_index is None else int(class_index)
    if not 0 <= cls < probs.shape[1]:
        raise UserError(f"class_index {cls} is out of range for a model with {probs.shape[1]} classes")
    base = float(probs[0, cls])
    drops = base - probs[1:, cls]
    words = tuple(Word(t, s, e, float(drops[i]) if i < len(drops) else 0.0) for i, (t, s, e) in enumerate(spans))
    return TextExplanation(text, cls, base, words)
