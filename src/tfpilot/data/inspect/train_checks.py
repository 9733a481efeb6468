"""The cheap data checks ``tfpilot train`` runs on every new run (``data.dedupe``).

Unreadable files are already dropped and listed by the loaders (``data_report.json``); this
adds **exact duplicates across splits**: an evaluation example (val, test) whose content -- file
bytes, text, pixels, or a table row's inputs -- equals an example of an earlier split. It costs
no extra reading: the digests are the ones ``split.json`` records.

* ``data.dedupe: warn`` (default): say so in the log and in ``data_report.json``'s notes.
* ``data.dedupe: drop``: also remove those examples from the evaluation splits; ``split.json``
  records what was dropped (``dedupe``), so every later command rebuilds the same splits.
* ``data.dedupe: off``: skip the check.

Example:
    >>> from tfpilot.config import DataConfig
    >>> from tfpilot.data import prepare_data
    >>> data = prepare_data(DataConfig(dataset="digits"))
    >>> cross_split_copies(data)
    {}
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tfpilot.data.inspect.examples import SPLIT_ORDER, array_digests, flatten, row_digests
from tfpilot.errors import UserError

log = logging.getLogger(__name__)

#: Examples named in the warning.
SHOWN = 5


def _digests(data: Any) -> dict[str, list[str]]:
    """Split name -> a content digest per example, in split order."""
    if getattr(data, "features", None) is not None:
        flat = flatten(data)
        digests = np.array(row_digests(flat), dtype=object)
        return {str(n): list(digests[flat.split == n]) for n in dict.fromkeys(flat.split)}
    recorded = (data.manifest or {}).get("digests")
    if recorded:
        return {n: list(recorded[n]) for n in data.splits if n in recorded}
    return {n: array_digests(s.x) for n, s in data.splits.items() if s.x is not None}


def _ids(data: Any, name: str) -> list[str]:
    split = data.splits[name]
    if getattr(data, "features", None) is not None:
        return [f"row {int(r) + 1}" for r in split.ids]
    return [str(i) for i in split.ids]


def cross_split_copies(data: Any) -> dict[str, dict[int, tuple[str, int]]]:
    """Evaluation split -> {position: (earlier split, its position)} of exact copies.

    Splits are ordered train, val, test: a val example is checked against train, a test
    example against train and val.

    Args:
        data: prepared data (a classifier's or a table's).
    """
    digests = _digests(data)
    names = [n for n in SPLIT_ORDER if n in digests] + [n for n in digests if n not in SPLIT_ORDER]
    seen: dict[str, tuple[str, int]] = {}
    out: dict[str, dict[int, tuple[str, int]]] = {}
    for name in names:
        here = {}
        for i, d in enumerate(digests[name]):
            if d in seen and seen[d][0] != name and d != "missing":
                here[i] = seen[d]
        if here:
            out[name] = here
        for i, d in enumerate(digests[name]):
            seen.setdefault(d, (name, i))
    return out


def check_splits(data: Any, mode: str) -> Any:
    """Run the cheap checks on freshly split ``data`` as ``data.dedupe`` says (see the module).

    Args:
        data: prepared data, split afresh.
        mode: ``"warn"``, ``"drop"`` or ``"off"``.

    Returns:
        ``data`` (its evaluation splits without the copies when ``mode`` is ``"drop"``).

    Raises:
        UserError: ``drop`` on a table (its split keeps equal rows together, except by ``data.id_column``).
    """
    if mode == "off":
        return data
    copies = cross_split_copies(data)
    if not copies:
        return data
    total = sum(len(v) for v in copies.values())
    examples = [f"{name} {_ids(data, name)[i]} = {src} {_ids(data, src)[j]}"
                for name, found in copies.items() for i, (src, j) in list(found.items())[:SHOWN]][:SHOWN]
    per_split = ", ".join(f"{len(v)} in {k}" for k, v in copies.items())
    action = ("dropped from the evaluation splits (data.dedupe=drop; recorded in split.json)" if mode == "drop" else
              "so those metrics are partly measured on training data: drop them with --set data.dedupe=drop, "
              "or look with `tfpilot inspect`")
    data.report.note(f"{total} evaluation example(s) are exact copies of an example in an earlier split "
                     f"({per_split}; e.g. {'; '.join(examples)}): {action}")
    if mode == "drop":
        _drop(data, copies)
    return data


def _drop(data: Any, copies: dict[str, dict[int, tuple[str, int]]]) -> None:
    """Remove the copies from the evaluation splits and from ``data.manifest`` (split.json)."""
    from tfpilot.data.manifest import _fingerprint

    if getattr(data, "features", None) is not None:
        raise UserError("data.dedupe=drop is for image and text datasets: a table's rows are split by their content, "
                        "so equal rows share a split (with data.id_column, rows with equal ids do); remove the "
                        "duplicate rows from the table instead")
    manifest = data.manifest
    dropped: dict[str, list[Any]] = {}
    for name, found in copies.items():
        split = data.splits[name]
        keep = np.setdiff1d(np.arange(len(split)), np.fromiter(found, dtype=np.int64))
        recorded = manifest["splits"][name]
        dropped[name] = [recorded[i] for i in sorted(found)]
        part = split.take(keep)
        data.dataset.splits[name] = part
        manifest["splits"][name] = [recorded[i] for i in keep]
        manifest["labels"][name] = [manifest["labels"][name][i] for i in keep]
        digests = None
        if "digests" in manifest and name in manifest["digests"]:
            digests = manifest["digests"][name] = [manifest["digests"][name][i] for i in keep]
        if digests is None:  # arrays: their fingerprint is of the pixels before any resize; the ids and
            manifest["fingerprints"].pop(name, None)  # labels still pin the split's members
        else:
            manifest["fingerprints"][name] = _fingerprint(part, manifest["splits"][name], manifest["labels"][name],
                                                          digests)
    manifest["dedupe"] = {"mode": "drop", "reason": "exact copy of an example in an earlier split", "dropped": dropped}
    data.report.split_sizes = {k: len(v) for k, v in data.splits.items()}
    data.report.class_counts = data.dataset.class_counts()
