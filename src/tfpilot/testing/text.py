"""Tiny synthetic text corpora that a model can learn (each class has its own words),
written as lists, CSV/TSV/JSONL tables or class folders of ``.txt`` files.

Example:
    >>> from tfpilot.testing.text import make_text_corpus
    >>> texts, labels = make_text_corpus(4, seed=0)
    >>> len(texts), sorted(set(labels))
    (4, ['neg', 'pos'])
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Words that mark each class of a synthetic corpus (class i uses row i mod len).
CLASS_WORDS = (
    ("awful", "boring", "dull", "terrible", "waste", "worst"),
    ("great", "wonderful", "superb", "loved", "brilliant", "best"),
    ("funny", "hilarious", "laugh", "comedy", "jokes", "silly"),
    ("scary", "horror", "creepy", "blood", "fear", "dark"),
)
FILLER = ("the", "a", "film", "movie", "plot", "actor", "scene", "was", "and", "it", "this", "story")


def make_text_corpus(n: int = 60, classes: Sequence[str] = ("neg", "pos"), length: int = 12,
                     seed: int = 0) -> tuple[list[str], list[str]]:
    """``(texts, labels)``: ``n`` short texts, balanced over ``classes``; each holds a few
    words of its class among filler words, with some punctuation and HTML line breaks."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        k = i % len(classes)
        words = list(rng.choice(FILLER, size=length))
        marks = rng.choice(CLASS_WORDS[k % len(CLASS_WORDS)], size=3)
        for pos, word in zip(rng.choice(length, size=3, replace=False), marks):
            words[pos] = str(word).capitalize() if pos == 0 else f"{word}!"
        texts.append(" ".join(words[: length // 2]) + "<br /><br />" + " ".join(words[length // 2 :]) + ".")
        labels.append(classes[k])
    return texts, labels


def write_text_table(path: str | Path, texts: Sequence[str], labels: Sequence[object], *,
                     text_column: str = "text", label_column: str = "label", header: bool = True) -> Path:
    """Write a table in the format named by the suffix: .csv, .tsv, .jsonl (else CSV)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as f:
            for t, y in zip(texts, labels):
                f.write(json.dumps({text_column: t, label_column: y}) + "\n")
        return path
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",")
        if header:
            w.writerow([text_column, label_column])
        w.writerows(zip(texts, labels))
    return path


def write_text_folder(root: str | Path, texts: Sequence[str], labels: Sequence[str],
                      split: str | None = None) -> Path:
    """Write ``ROOT[/split]/<label>/<i>.txt``, one file per text."""
    root = Path(root)
    base = root / split if split else root
    for i, (t, y) in enumerate(zip(texts, labels)):
        p = base / str(y) / f"{i:05d}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(t, encoding="utf-8")
    return root
