"""``split.json``: the exact members of a run's splits, and rebuilding those splits from it.

Training records which examples went to train/val/test (:func:`build_manifest`); every
command that reads the run afterwards (evaluate, report, export, verify, prune,
ensemble, resume) rebuilds exactly those splits from the record (:func:`apply_manifest`)
instead of splitting again, and stops with a :class:`RecordedSplitError` naming the
files when a recorded example is missing or changed.

What a member is depends on the dataset's kind:

* ``files`` (image folders, CSVs of image paths): the path relative to the dataset root,
  with a BLAKE2b digest of the file's bytes;
* ``texts`` (text folders, text tables, IMDB): the loader's id (``neg/12.txt``,
  ``reviews.csv:7``), with a digest of the text;
* ``arrays`` (MNIST, CIFAR, digits): the index into the source split (the built-in
  train or test arrays), with one digest of the split's pixels and labels.

Labels are recorded too (as indices into the recorded ``class_names``), so a relabelled
example is caught as well, and a class folder added later does not shift the labels.

Example:
    >>> from tfpilot.config import DataConfig
    >>> from tfpilot.data import prepare_data
    >>> data = prepare_data(DataConfig(dataset="digits"))
    >>> again = prepare_data(DataConfig(dataset="digits"), manifest=data.manifest)
    >>> again.recorded, len(again.splits["test"]) == len(data.splits["test"])
    (True, True)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.data.paths import relative_paths
from tfpilot.data.source import RawDataset, Split
from tfpilot.errors import UserError

log = logging.getLogger(__name__)

#: The ``split.json`` layout written by :func:`build_manifest` (1: ids only, before fingerprints).
MANIFEST_FORMAT = 2
#: How many offending examples an error message names.
SHOWN = 10

METHODS = {
    "files": "hash of (split_seed, path relative to the dataset root)",
    "texts": "hash of (split_seed, text)",
    "arrays": "per-class permutation seeded by (split_seed, class)",
}


class RecordedSplitError(UserError):
    """A recorded split cannot be rebuilt: examples are missing, changed or relabelled."""


# -- members, keys and digests -------------------------------------------------------------
def dataset_kind(ds: RawDataset) -> str:
    """``"files"``, ``"texts"`` or ``"arrays"`` (see the module docstring)."""
    if ds.input_spec.kind == "text":
        return "texts"
    return "files" if ds.root is not None else "arrays"


def member_ids(ds: RawDataset, split: Split) -> list[Any]:
    """What ``split.json`` records for each example of ``split``.

    Example:
        >>> import numpy as np
        >>> from tfpilot.spec import InputSpec
        >>> ds = RawDataset("d", ["a"], InputSpec.image(1, 1, 1), {}, root="/data")
        >>> member_ids(ds, Split(y=[0], paths=np.array(["/data/a/1.png"], dtype=object)))
        ['a/1.png']
    """
    kind = dataset_kind(ds)
    if kind == "files":
        return relative_paths((str(p) for p in split.ids), str(ds.root))
    if kind == "texts":
        return [str(i) for i in split.ids]
    return [int(i) for i in split.ids]


def split_keys(ds: RawDataset, split: Split) -> list[str] | None:
    """The hash keys of :func:`~tfpilot.data.splits.hash_split` (None: split arrays by class).

    Files are keyed by their relative path, texts by their content (so exact duplicates
    always land in the same split and cannot leak from train into test)."""
    kind = dataset_kind(ds)
    if kind == "files":
        return member_ids(ds, split)
    if kind == "texts":
        return [str(t) for t in split.x]
    return None


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def file_digest(path: str | Path) -> str:
    """16 hex digits of BLAKE2b over a file's bytes ("missing" when it cannot be read)."""
    h = hashlib.blake2b(digest_size=8)
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "missing"
    return h.hexdigest()


def content_digests(ds: RawDataset, split: Split) -> list[str] | None:
    """A digest of each example's content (file bytes, or text); None for arrays."""
    kind = dataset_kind(ds)
    if kind == "files":
        known = ds.file_digests or {}
        return [known.get(str(p)) or file_digest(p) for p in split.ids]
    if kind == "texts":
        return [_digest(str(t).encode("utf-8", "surrogatepass")) for t in split.x]
    return None


def _fingerprint(split: Split, ids: Sequence[Any], labels: Sequence[int], digests: Sequence[str] | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([list(ids), list(labels), list(digests or [])]).encode())
    if digests is None and split.x is not None:  # arrays: the pixels themselves
        h.update(np.ascontiguousarray(split.x).tobytes())
    return h.hexdigest()


# -- writing -------------------------------------------------------------------------------
def build_manifest(
    ds: RawDataset,
    dataset: str,
    seed: int,
    sources: Mapping[str, str],
    held_out: Mapping[str, float],
) -> dict[str, Any]:
    """The ``split.json`` record of ``ds.splits`` (call before images are resized).

    Args:
        ds: the dataset with its final splits.
        dataset: ``data.dataset`` as configured.
        seed: ``data.split_seed``.
        sources: split -> the source split its examples come from ('val' -> 'train' when
            held out of train, 'test' -> 'test' when the source has one).
        held_out: the fractions held out of the source's train split.
    """
    kind = dataset_kind(ds)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "dataset": dataset,
        "kind": kind,
        "root": ds.root,
        "seed": seed,
        "method": METHODS[kind],
        "held_out_of_train": dict(held_out),
        "class_names": list(ds.class_names),
        "sources": dict(sources),
        "splits": {},
        "labels": {},
        "fingerprints": {},
    }
    if kind != "arrays":
        manifest["digests"] = {}
    for name, split in ds.splits.items():
        ids = member_ids(ds, split)
        labels = [int(v) for v in split.y]
        digests = content_digests(ds, split)
        manifest["splits"][name] = ids
        manifest["labels"][name] = labels
        if digests is not None:
            manifest["digests"][name] = digests
        manifest["fingerprints"][name] = _fingerprint(split, ids, labels, digests)
    return manifest


# -- reading -------------------------------------------------------------------------------
def _source_of(manifest: Mapping[str, Any], name: str, ds: RawDataset) -> str:
    sources = manifest.get("sources") or {}
    if name in sources:
        return sources[name]
    held = manifest.get("held_out_of_train") or {}  # format 1
    return "train" if name in held or name not in ds.splits else name


def _lookup_ids(ds: RawDataset, split: Split, fmt: int) -> list[Any]:
    return member_ids(ds, split) if fmt >= 2 else [str(i) for i in split.ids]


def _shown(items: Sequence[str]) -> str:
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" (+{more} more)" if more > 0 else "")


def _source(ds: RawDataset, manifest: Mapping[str, Any], name: str, problems: list[str]) -> Split | None:
    """The dataset split the recorded split ``name`` was drawn from."""
    source = _source_of(manifest, name, ds)
    if source not in ds.splits:
        problems.append(f"the run's {name!r} split came from the dataset's {source!r} split, which the "
                        f"dataset no longer has (it has {sorted(ds.splits)})")
        return None
    return ds.splits[source]


def _take_recorded(ds: RawDataset, source: Split, manifest: Mapping[str, Any], name: str,
                   problems: list[str]) -> Split | None:
    """The recorded members of ``name`` out of ``source``, in the recorded order."""
    fmt = int(manifest.get("format", 1))
    recorded = manifest["splits"][name]
    position = {key: i for i, key in enumerate(_lookup_ids(ds, source, fmt))}
    wanted = [m if fmt >= 2 else str(m) for m in recorded]
    missing = [str(m) for m in wanted if m not in position]
    if missing:
        problems.append(f"{len(missing)} of the {len(recorded)} examples of the recorded {name!r} split are missing "
                        f"or unreadable now: {_shown(missing)}")
        return None
    return source.take(np.array([position[m] for m in wanted], dtype=np.int64))


def _relabel(ds: RawDataset, part: Split, manifest: Mapping[str, Any], name: str, class_names: list[str],
             problems: list[str]) -> bool:
    """Check each member kept its recorded label; re-index ``part.y`` to ``class_names``."""
    recorded = manifest["splits"][name]
    now = [ds.class_names[k] for k in part.y]
    was = [class_names[k] for k in manifest["labels"][name]]
    relabelled = [f"{m} (was {a!r}, now {b!r})" for m, a, b in zip(recorded, was, now) if a != b]
    if relabelled:
        problems.append(f"{len(relabelled)} example(s) of the {name!r} split have another label now: "
                        f"{_shown(relabelled)}")
        return False
    index = {c: i for i, c in enumerate(class_names)}
    part.y = np.array([index[c] for c in now], dtype=np.int64)
    return True


def _contents_match(ds: RawDataset, part: Split, manifest: Mapping[str, Any], name: str,
                    problems: list[str]) -> bool:
    """Check the members' contents against the recorded digests (or the arrays' fingerprint)."""
    recorded = manifest["splits"][name]
    digests = manifest.get("digests", {}).get(name)
    if digests is not None:
        current = content_digests(ds, part) or []
        changed = [str(m) for m, a, b in zip(recorded, digests, current) if a != b]
        if changed:
            problems.append(f"{len(changed)} example(s) of the {name!r} split changed since training (their "
                            f"content no longer matches split.json): {_shown(changed)}")
        return not changed
    expected = manifest.get("fingerprints", {}).get(name)
    if expected is not None and expected != _fingerprint(part, recorded, manifest["labels"][name], None):
        problems.append(f"the examples of the {name!r} split differ from the ones the run recorded (the "
                        "dataset's arrays are not the ones it was trained on)")
        return False
    return True


def _select(ds: RawDataset, manifest: Mapping[str, Any], name: str, class_names: list[str],
            problems: list[str]) -> Split | None:
    """The recorded members of split ``name`` (None, with ``problems`` filled, if they cannot be)."""
    source = _source(ds, manifest, name, problems)
    part = None if source is None else _take_recorded(ds, source, manifest, name, problems)
    if part is None or int(manifest.get("format", 1)) < 2:
        return part
    if not _relabel(ds, part, manifest, name, class_names, problems):
        return None
    return part if _contents_match(ds, part, manifest, name, problems) else None


def apply_manifest(ds: RawDataset, manifest: Mapping[str, Any], splits: Collection[str] | None = None) -> None:
    """Replace ``ds.splits`` with the recorded members of ``splits`` (default: every recorded split).

    Files added to the dataset since the record are left out (and noted); the labels are
    re-indexed to the recorded ``class_names``.

    Raises:
        RecordedSplitError: a recorded example is missing, unreadable, changed or relabelled.
    """
    fmt = int(manifest.get("format", 1))
    kind = manifest.get("kind")
    if fmt >= 2 and kind != dataset_kind(ds):
        raise RecordedSplitError(
            f"the run recorded {kind} ({METHODS.get(str(kind), '?')}), but {manifest.get('dataset')!r} now loads as "
            f"{dataset_kind(ds)} (from {ds.report.source or ds.name}): point data.data_dir / --data-dir at the "
            "copy the run was trained on, or retrain"
        )
    class_names = list(manifest.get("class_names") or ds.class_names)
    names = [n for n in manifest["splits"] if splits is None or n in splits]
    problems: list[str] = []
    parts = {n: _select(ds, manifest, n, class_names, problems) for n in names}
    if problems:
        where = ds.root or ds.report.source or manifest.get("dataset")
        raise RecordedSplitError(
            f"cannot rebuild the run's recorded split from {where}: " + "; ".join(problems) + ". split.json "
            "lists the exact examples the run was trained and tested on. Restore the original files (or point "
            "data.data_dir / --data-dir at the original copy), or retrain on the current data."
        )
    if fmt < 2:
        log.warning("split.json was written by an older tfpilot (no fingerprints): examples are matched by "
                    "their ids only, so changed contents cannot be detected")
    recorded = sum(len(manifest["splits"][n]) for n in manifest["splits"])
    total = sum(len(s) for s in ds.splits.values())
    if total > recorded:
        log.info("%d example(s) of the dataset are not in the run's recorded split (left out by "
                 "train_limit/test_limit, or added since training): they are not used", total - recorded)
    ds.splits = {n: p for n, p in parts.items() if p is not None}
    ds.class_names = class_names
