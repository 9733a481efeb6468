"""Tiny synthetic image data that a model can actually learn (class = a bright shape's
position), written as arrays or as image folders, plus corrupt/non-image files on demand.

Example:
    >>> import tempfile
    >>> from tfpilot.testing import make_image_folder
    >>> root = make_image_folder(tempfile.mkdtemp(), classes=("a", "b"), per_class=3)
    >>> sorted(p.name for p in root.iterdir())
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def make_shapes_arrays(n: int, num_classes: int = 3, size: int = 16, channels: int = 1,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: uint8 images (n, size, size, channels) where class k has a bright square
    in the k-th horizontal band, plus noise. Learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    rng.shuffle(y)
    x = rng.integers(0, 60, size=(n, size, size, channels), dtype=np.uint8)
    band = size // num_classes
    for i, k in enumerate(y):
        r = k * band + rng.integers(0, max(band - 3, 1))
        c = rng.integers(0, size - 4)
        x[i, r : r + 3, c : c + 4, :] = 255
    return x, y.astype(np.int64)


def write_image(path: str | Path, array: np.ndarray) -> Path:
    """Save a uint8 (H, W[, C]) array as PNG/JPEG (by the suffix of ``path``)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
    Image.fromarray(arr).save(path)
    return path


def make_image_folder(
    root: str | Path,
    classes: Sequence[str] = ("circle", "square", "triangle"),
    per_class: int = 12,
    size: int = 16,
    channels: int = 3,
    splits: Sequence[str] | None = None,
    suffix: str = ".png",
    corrupt: int = 0,
    non_image: int = 0,
    seed: int = 0,
) -> Path:
    """Write a learnable image-folder dataset.

    Args:
        root: where to write.
        classes: class folder names.
        per_class: images per class (per split).
        size, channels: image size and 1 or 3 channels.
        splits: e.g. ("train", "test") for ROOT/<split>/<class>/, or None for ROOT/<class>/.
        suffix: ".png" or ".jpg".
        corrupt: corrupt image files (random bytes with an image suffix) per class.
        non_image: non-image files (notes.txt) per class.
    """
    root = Path(root)
    for s_i, split in enumerate(splits or [None]):
        base = root / split if split else root
        x, y = make_shapes_arrays(per_class * len(classes), len(classes), size, channels, seed=seed + s_i)
        counters = dict.fromkeys(range(len(classes)), 0)
        for img, k in zip(x, y):
            write_image(base / classes[k] / f"{counters[k]:04d}{suffix}", img)
            counters[k] += 1
        rng = np.random.default_rng(seed + 100 + s_i)
        for k, name in enumerate(classes):
            for j in range(corrupt):
                (base / name / f"corrupt_{j}{suffix}").write_bytes(rng.bytes(64))
            for j in range(non_image):
                (base / name / f"notes_{j}.txt").write_text("not an image")
    return root


def tiny_config(dataset: str | Path, run_dir: str | Path, **train: Any) -> dict[str, Any]:
    """A config dict that trains in about a second: small model, 1 epoch, no TensorBoard."""
    return {
        "data": {"dataset": str(dataset)},
        "model": {"name": "mlp", "params": {"hidden_units": [16]}},
        "train": {"epochs": 1, "batch_size": 16,
                  "callbacks": {"tensorboard": False, "progress": "none"}, **train},
        "output": {"run_dir": str(run_dir)},
    }
