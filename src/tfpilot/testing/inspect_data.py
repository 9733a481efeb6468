"""Synthetic datasets with planted problems, for ``tfpilot inspect``'s tests: exact duplicates,
near-duplicates (resized or re-encoded images; texts changed in case, punctuation or a word or
two), cross-split copies and flipped labels, each listed so a test can measure recall.

The classes are easy to learn (an image's dominant colour; a text's class words), so a quick
model's out-of-sample probabilities single out the flipped labels.

Example:
    >>> import tempfile
    >>> planted = make_planted_image_folder(tempfile.mkdtemp(), per_class=10, test_per_class=4, copies=2)
    >>> sorted(planted)
    ['broken', 'exact', 'flipped', 'near', 'root']
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

COLOURS = ("red", "green", "blue")
TEXT_CLASSES = {
    "sport": ("goal", "match", "team", "league", "striker", "coach", "score", "season", "cup", "referee"),
    "food": ("recipe", "oven", "flour", "butter", "sauce", "garlic", "bake", "pepper", "dish", "onion"),
    "tech": ("laptop", "software", "chip", "server", "network", "code", "battery", "screen", "cloud", "app"),
}
FILLER = ("the", "a", "we", "they", "said", "today", "new", "very", "with", "about", "after", "some", "and",
          "then", "more", "this", "that", "was", "is", "on")


def _image(rng: np.random.Generator, colour: int, size: int) -> np.ndarray:
    """A smooth random pattern (its own perceptual hash) tinted by its class's colour."""
    from PIL import Image

    small = rng.integers(0, 256, size=(12, 12), dtype=np.uint8)
    pattern = np.asarray(Image.fromarray(small).resize((size, size), Image.BILINEAR), dtype=np.float32)
    rgb = np.stack([pattern * 0.4] * 3, axis=-1)
    rgb[..., colour] += 150
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _save(array: np.ndarray, path: Path, resize: int | None = None, jpeg: bool = False) -> Path:
    from PIL import Image

    im = Image.fromarray(array)
    if resize:
        im = im.resize((resize, resize), Image.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="JPEG" if jpeg else "PNG", quality=85)
    return path


def make_planted_image_folder(root: str | Path, per_class: int = 80, test_per_class: int = 20, copies: int = 6,
                              size: int = 24, flip: float = 0.05, broken: int = 0, seed: int = 0) -> dict[str, Any]:
    """``ROOT/{train,test}/<colour>/*.png`` with planted problems.

    Planted (``copies`` of each): exact copies inside train and from train into test; near copies
    (resized, or re-encoded as JPEG) inside train and from train into test; ``flip`` of the other
    training images moved to another class folder; ``broken`` files that are no image.

    Returns:
        ``{"root", "exact": [(original, copy)], "near": [(original, copy)], "flipped": [path],
        "broken": [path]}``, paths relative to ROOT (``*_leak*`` copies are in test: cross-split).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    planted: dict[str, Any] = {"root": str(root), "exact": [], "near": [], "flipped": [], "broken": []}
    originals = []
    for split, n in (("train", per_class), ("test", test_per_class)):
        for k, colour in enumerate(COLOURS):
            for i in range(n):
                rel = f"{split}/{colour}/{i:04d}.png"
                _save(_image(rng, k, size), root / rel)
                if split == "train":
                    originals.append((rel, k))
    order = rng.permutation(len(originals))
    sources = [originals[i] for i in order[:4 * copies]]
    rest = [originals[i] for i in order[4 * copies:]]
    from PIL import Image

    for n, (rel, k) in enumerate(sources):
        pixels = np.asarray(Image.open(root / rel).convert("RGB"))
        where = "test" if n % 2 else "train"
        tag = "leak" if where == "test" else "dup"
        if n < 2 * copies:  # exact
            copy = f"{where}/{COLOURS[k]}/exact_{tag}_{n:03d}.png"
            (root / copy).write_bytes((root / rel).read_bytes())
            planted["exact"].append((rel, copy))
        else:  # near: resized, or re-encoded as JPEG
            resized = n % 4 < 2
            copy = f"{where}/{COLOURS[k]}/near_{tag}_{n:03d}.{'png' if resized else 'jpg'}"
            _save(pixels, root / copy, resize=size - 6 if resized else None, jpeg=not resized)
            planted["near"].append((rel, copy))
    for rel, k in rest[: int(round(flip * len(originals)))]:
        other = (k + 1 + int(rng.integers(0, len(COLOURS) - 1))) % len(COLOURS)
        moved = f"train/{COLOURS[other]}/flipped_{Path(rel).stem}_{COLOURS[k]}.png"
        (root / rel).rename(root / moved)
        planted["flipped"].append(moved)
    for n in range(broken):
        bad = f"train/{COLOURS[n % len(COLOURS)]}/broken_{n}.png"
        (root / bad).write_bytes(b"\x89PNG but not really" + rng.bytes(32))
        planted["broken"].append(bad)
    return planted


def _text(rng: np.random.Generator, words: tuple[str, ...], length: int) -> list[str]:
    out = list(rng.choice(FILLER, size=length))
    for pos in rng.choice(length, size=length // 2, replace=False):
        out[pos] = str(rng.choice(words))
    return out


def make_planted_text_table(path: str | Path, per_class: int = 100, copies: int = 8, length: int = 30,
                            flip: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """A ``text,label`` CSV with planted problems (rows are 1-based, header not counted).

    Planted: ``copies`` exact duplicate rows; ``copies`` near copies changed in case and
    punctuation; ``copies`` near copies with one or two words replaced; ``flip`` of the other
    original rows given another label.

    Returns:
        ``{"path", "exact": [(row, row)], "near": [(row, row)], "flipped": [row]}``.
    """
    rng = np.random.default_rng(seed)
    names = list(TEXT_CLASSES)
    rows: list[tuple[str, str]] = []
    for k, name in enumerate(names):
        for _ in range(per_class):
            rows.append((" ".join(_text(rng, TEXT_CLASSES[name], length)), name))
    order = [int(i) for i in rng.permutation(len(rows))]
    sources, rest = order[:3 * copies], order[3 * copies:]
    planted: dict[str, Any] = {"path": str(path), "exact": [], "near": [], "flipped": []}
    for n, src in enumerate(sources):
        text, label = rows[src]
        if n < copies:
            new, kind = text, "exact"
        elif n < 2 * copies:
            words = text.split()
            new, kind = " ".join(w.upper() if i % 3 == 0 else w for i, w in enumerate(words)) + "!!", "near"
            new = new.replace(" ", ", ", 2)
        else:
            words = text.split()
            for pos in rng.choice(len(words), size=1 + n % 2, replace=False):
                words[pos] = "zebra" if pos % 2 else "quantum"
            new, kind = " ".join(words), "near"
        rows.append((new, label))
        planted[kind].append((src + 1, len(rows)))
    for src in rest[: int(round(flip * len(order)))]:
        text, label = rows[src]
        other = names[(names.index(label) + 1 + int(rng.integers(0, len(names) - 1))) % len(names)]
        rows[src] = (text, other)
        planted["flipped"].append(src + 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return planted
