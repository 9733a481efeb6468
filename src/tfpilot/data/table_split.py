"""Table splits: which rows go to train, val and test, and one split's model values.

Each row goes to a split by a hash of a stable key (the recipe of
:func:`~tfpilot.data.splits.hash_split`, shared with image folders and texts): the row's
content -- every cell of the table, column by column -- or the cell of the id column that
``data.id_column`` names. So

* adding rows (anywhere) or removing rows never moves another row between splits;
* duplicate rows (the same content, or the same id) always land in the same split: a row
  cannot leak from train into test through its copy;
* splits are stratified in expectation: every class (or number-target quintile) is cut at
  the same hash thresholds.

Cells are keyed as the model reads categories (:func:`~tfpilot.data.columns.category_strings`:
``3.0`` and ``3`` are one value, a missing cell is empty), so appending a row with a missing
value -- which turns a column of integers into floats -- keys nothing differently.

Example:
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 1.0], "y": ["a", "b", "a"]})
    >>> keys = row_keys(frame)
    >>> keys[0] == keys[2] != keys[1]  # duplicate rows share a key
    True
    >>> split = TableSplit({"x": np.arange(4.0)}, {"y": np.zeros(4)}, np.arange(4))
    >>> len(split.take(np.array([0, 2]))), split.take(np.array([3])).inputs["x"].tolist()
    (2, [3.0])
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfpilot.data.columns import category_strings
from tfpilot.data.splits import hash_split, limit_stratified, unit_hash
from tfpilot.data.manifest import RecordedSplitError
from tfpilot.errors import UnknownNameError

#: ``split.json``'s ``split_by`` of a content-hash split (an id column's is ``"id:<column>"``).
BY_CONTENT = "content"
_RESTORE = "Restore the table, or evaluate on it as another dataset (--dataset PATH)"


@dataclass
class TableSplit:
    """One split of a table: model inputs and encoded targets by key, and the rows they came from.

    Attributes:
        inputs: column key -> raw model input (uint8 images (N, H, W, C) or their file
            paths, object arrays of strings, float32 with NaN).
        targets: output key -> int64 class ids, float32 0/1 (binary) or float32 values.
        ids: 0-based row numbers in the table.
        paths: image column key -> the image files (for reports and decoding).
    """

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    ids: np.ndarray
    paths: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: np.ndarray) -> TableSplit:
        index = np.asarray(index, dtype=np.int64)
        return TableSplit({k: v[index] for k, v in self.inputs.items()}, {k: v[index] for k, v in self.targets.items()},
                          self.ids[index], {k: v[index] for k, v in self.paths.items()})


# -- keys --------------------------------------------------------------------------------------
def check_id_column(frame: Any, id_column: str | None) -> None:
    """Raise :class:`~tfpilot.errors.UnknownNameError` when ``data.id_column`` is not a column.

    Example:
        >>> import pandas as pd
        >>> check_id_column(pd.DataFrame({"user_id": [1]}), "userid")
        Traceback (most recent call last):
        ...
        tfpilot.errors.UnknownNameError: data.id_column: the table has no column 'userid'. Did you mean 'user_id'? ...
    """
    if id_column is None:
        return
    from tfpilot.registry import did_you_mean

    columns = [str(c) for c in frame.columns]
    if id_column not in columns:
        hint = did_you_mean(id_column, columns)
        raise UnknownNameError(f"data.id_column: the table has no column {id_column!r}.{hint} "
                               f"Its columns: {', '.join(columns)}.")


def split_by(id_column: str | None) -> str:
    """What ``split.json`` says rows were keyed by: ``"content"`` or ``"id:<column>"``."""
    return BY_CONTENT if id_column is None else f"id:{id_column}"


def row_keys(frame: Any, id_column: str | None = None) -> list[str]:
    """The hash key of each row: its id cell, or its every cell (columns in name order, so
    reordering the table's columns keys nothing differently).

    Args:
        frame: the table as read (a pandas DataFrame; every column, before any is dropped).
        id_column: key by this column's cells instead.
    """
    if id_column is not None:
        return [str(v) for v in category_strings(frame[id_column])]
    names = sorted(str(c) for c in frame.columns)
    cells = [category_strings(frame[c]) for c in names]
    return ["\x1f".join(f"{n}\x1e{v}" for n, v in zip(names, row)) for row in zip(*cells)]


def fingerprint(keys: Sequence[str]) -> str:
    """32 hex digits of BLAKE2b over a split's row keys, in row order (a change of any row changes it)."""
    h = hashlib.blake2b(digest_size=16)
    for k in keys:
        h.update(k.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


# -- splitting ---------------------------------------------------------------------------------
def split_rows(keys: Sequence[str], strata: np.ndarray, fractions: Mapping[str, float], seed: int,
               train_limit: int | None = None) -> dict[str, np.ndarray]:
    """Positions of the rows of each split: 'train' plus one per ``fractions`` entry, by hash.

    Args:
        keys: each row's key (:func:`row_keys`).
        strata: class ids to stratify by (every class keeps a training row).
        fractions: split name -> expected fraction of the rows.
        seed: ``data.split_seed``.
        train_limit: keep at most this many rows in all (the lowest-hashing of each stratum)
            before splitting.

    Example:
        >>> parts = split_rows([f"row {i}" for i in range(10)], np.zeros(10), {"test": 0.3}, seed=0)
        >>> sorted(parts), sum(len(p) for p in parts.values())
        (['test', 'train'], 10)
    """
    position = np.arange(len(keys))
    if train_limit:
        position = limit_stratified(strata, train_limit, seed, keys=keys)
        keys, strata = [keys[i] for i in position], strata[position]
    parts = hash_split(keys, strata, fractions, seed)
    return {name: position[index] for name, index in parts.items()}


def fold_rows(parts: Mapping[str, np.ndarray], keys: Sequence[str], fold: tuple[int, int], seed: int
              ) -> dict[str, np.ndarray]:
    """Cross-validation fold ``i`` of ``k`` (``data.cv_fold``): the train and val rows of ``parts``
    dealt into ``k`` folds by a hash of each row's key (salted apart from the split's own hash, so
    the folds cut across train and val); fold ``i`` is 'val', the others 'train', 'test' unchanged.

    A row's fold depends on its key and the seed only: adding rows never moves another, duplicate
    rows share a fold, and every class is dealt alike (stratified in expectation).

    Args:
        parts: the split's row positions by name (``split_rows``).
        keys: each row's key (:func:`row_keys`).
        fold: ``(i, k)``.
        seed: ``data.split_seed``.

    Example:
        >>> keys = [f"row {i}" for i in range(20)]
        >>> parts = {"train": np.arange(12), "val": np.arange(12, 16), "test": np.arange(16, 20)}
        >>> folds = [fold_rows(parts, keys, (i, 4), seed=0) for i in range(4)]
        >>> sorted(np.concatenate([f["val"] for f in folds]).tolist()) == list(range(16))
        True
        >>> folds[0]["test"].tolist()
        [16, 17, 18, 19]
    """
    i, k = fold
    rows = np.sort(np.concatenate([parts["train"], parts.get("val", np.array([], np.int64))]))
    which = np.array([int(unit_hash(seed, keys[r], salt="cv_fold") * k) for r in rows], dtype=np.int64)
    out = {name: index for name, index in parts.items() if name not in ("train", "val")}
    out.update(train=rows[which != i], val=rows[which == i])
    return out


def recorded_rows(recorded: Mapping[str, Any], ids: np.ndarray, keys: Sequence[str], dataset: str
                  ) -> dict[str, np.ndarray]:
    """Positions of the rows a run's ``split.json`` recorded, split by split.

    A split recorded by key (``split_by``) is checked against each split's fingerprint; an
    older, positional one (no ``split_by``) is rebuilt from its row numbers alone.

    Args:
        recorded: the run's ``split.json``.
        ids: the table's usable row numbers (0-based).
        keys: their row keys.
        dataset: ``data.dataset`` (for the message).

    Raises:
        RecordedSplitError: a recorded row is missing or unusable now, or its content changed.
    """
    where = {int(i): p for p, i in enumerate(ids)}
    out: dict[str, np.ndarray] = {}
    for name, members in recorded["splits"].items():
        gone = [int(i) for i in members if int(i) not in where]
        if gone:
            shown = ", ".join(str(i + 1) for i in gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
            raise RecordedSplitError(f"the table {dataset} changed since training: {name} row(s) {shown} of the "
                                     f"run's split.json are missing or unusable now. {_RESTORE}")
        out[name] = np.array([where[int(i)] for i in members], dtype=np.int64)
    prints = recorded.get("fingerprints") or {}
    changed = [n for n, p in out.items() if n in prints and fingerprint([keys[i] for i in p]) != prints[n]]
    if changed:
        raise RecordedSplitError(f"the table {dataset} changed since training: rows of the run's "
                                 f"{', '.join(changed)} split(s) in split.json hold other values now. {_RESTORE}")
    return out
