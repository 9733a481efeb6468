"""Every example of a run's data in one flat view: its split, id, label and content.

:func:`flatten` reads the splits exactly as ``tfpilot train`` makes them (a
:class:`~tfpilot.data.PreparedData` or a table's :class:`~tfpilot.data.table.TableData`), so
what ``inspect`` calls a cross-split duplicate is one that training would see.

Example:
    >>> from tfpilot.config import DataConfig
    >>> from tfpilot.data import prepare_data
    >>> flat = flatten(prepare_data(DataConfig(dataset="digits")))
    >>> flat.kind, len(flat), sorted(set(flat.split))
    ('array', 1797, ['test', 'train', 'val'])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The order splits are listed in (training first: a duplicate's "original" is its training copy).
SPLIT_ORDER = ("train", "val", "test")


@dataclass
class Examples:
    """The flat view.

    Attributes:
        kind: ``"image"`` (files), ``"array"`` (in-memory images), ``"text"`` or ``"table"``.
        split: split name per example.
        index: position inside its split.
        ids: a printable id (a path relative to the data root, a text's id, ``row N``).
        y: class id per example (-1: no class head).
        class_names: names of the class ids.
        paths: image files (``kind == "image"``).
        pixels: uint8 images (``kind == "array"``).
        texts: texts (``kind == "text"``).
        columns: a table's model inputs by column name, and ``images``/``texts`` per image or text column.
    """

    kind: str
    split: np.ndarray
    index: np.ndarray
    ids: np.ndarray
    y: np.ndarray
    class_names: list[str]
    paths: np.ndarray | None = None
    pixels: np.ndarray | None = None
    texts: np.ndarray | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    column_kinds: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.split)

    def ref(self, i: int) -> dict[str, Any]:
        """How a finding names example ``i``: split, id and label."""
        label = self.class_names[self.y[i]] if self.y[i] >= 0 and self.class_names else None
        return {"split": str(self.split[i]), "id": str(self.ids[i]), "label": label}


def _ordered(splits: dict[str, Any]) -> list[str]:
    return [s for s in SPLIT_ORDER if s in splits] + [s for s in splits if s not in SPLIT_ORDER]


def _relative(paths: np.ndarray, root: str | None) -> np.ndarray:
    import os

    if not root:
        return paths.astype(str)
    return np.array([os.path.relpath(str(p), root) for p in paths], dtype=object)


def flatten(data: Any) -> Examples:
    """The flat view of a prepared classifier dataset or table (see :class:`Examples`).

    Args:
        data: :class:`~tfpilot.data.PreparedData` or :class:`~tfpilot.data.table.TableData`.
    """
    if getattr(data, "features", None) is not None:
        return _flatten_table(data)
    ds = data.dataset
    names = _ordered(ds.splits)
    parts = [ds.splits[n] for n in names]
    split = np.concatenate([np.full(len(p), n, dtype=object) for n, p in zip(names, parts)])
    index = np.concatenate([np.arange(len(p)) for p in parts])
    y = np.concatenate([p.y for p in parts]).astype(np.int64)
    raw_ids = np.concatenate([np.asarray(p.ids, dtype=object) for p in parts])
    if ds.input_spec.kind == "text":
        texts = np.concatenate([np.asarray(p.x, dtype=object) for p in parts])
        return Examples("text", split, index, raw_ids.astype(str), y, list(ds.class_names), texts=texts)
    if ds.root is not None:
        return Examples("image", split, index, _relative(raw_ids, ds.root), y, list(ds.class_names),
                        paths=raw_ids.astype(str))
    pixels = np.concatenate([p.x for p in parts])
    ids = np.array([f"{s}[{i}]" for s, i in zip(split, raw_ids)], dtype=object)
    return Examples("array", split, index, ids, y, list(ds.class_names), pixels=pixels)


def _flatten_table(data: Any) -> Examples:
    names = _ordered(data.splits)
    parts = [data.splits[n] for n in names]
    split = np.concatenate([np.full(len(p), n, dtype=object) for n, p in zip(names, parts)])
    index = np.concatenate([np.arange(len(p)) for p in parts])
    ids = np.array([f"row {int(r) + 1}" for p in parts for r in p.ids], dtype=object)
    heads = [o for o in data.spec.outputs if o.kind in ("category", "binary")]
    if heads:
        head = heads[0]
        y = np.concatenate([p.targets[head.key] for p in parts]).astype(np.int64)
        class_names = list(head.classes)
    else:
        y, class_names = np.full(len(split), -1, np.int64), []
    columns, kinds = {}, {}
    for f in data.spec.inputs:
        if f.kind == "image":
            columns[f.name] = np.concatenate([p.paths[f.key] for p in parts]).astype(str)
        else:
            columns[f.name] = np.concatenate([p.inputs[f.key] for p in parts])
        kinds[f.name] = f.kind
    return Examples("table", split, index, ids, y, class_names, columns=columns, column_kinds=kinds)


def row_digests(examples: Examples) -> list[str]:
    """A digest per table row over its input cells (rows equal in every input share it)."""
    names = sorted(examples.columns)
    out = []
    for i in range(len(examples)):
        h = hashlib.blake2b(digest_size=8)
        for n in names:
            h.update(f"{n}\x1e{examples.columns[n][i]}\x1f".encode("utf-8", "surrogatepass"))
        out.append(h.hexdigest())
    return out


def text_digests(texts: np.ndarray) -> list[str]:
    """A digest per text (the one ``split.json`` records for texts)."""
    return [hashlib.blake2b(str(t).encode("utf-8", "surrogatepass"), digest_size=8).hexdigest() for t in texts]


def array_digests(pixels: np.ndarray) -> list[str]:
    """A digest per in-memory image (its pixels)."""
    return [hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=8).hexdigest() for a in pixels]
