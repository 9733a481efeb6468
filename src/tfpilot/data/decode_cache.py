"""A disk cache of decoded image folders, so the second run on the same files decodes nothing.

An entry is one folder under ``cache_dir()/decoded/<key>/`` (see
:func:`~tfpilot.data.paths.cache_dir`): a ``.npy`` uint8 array per split (memory-mappable,
the images in the order of the split's files), a ``.npy`` of the files' content digests
(what ``split.json`` records, so it need not read every file again either), and a small
``manifest.json`` that records their shapes and CRC-32 checksums, the decoded size and
channels, and which files could not be decoded and why (so a bad file is reported again,
with the same message, without being decoded again).

The key is a hash of everything the pixels depend on, all of it cheap to read:

* each split's file list in order, as paths relative to the dataset root, with each file's
  size and modification time in nanoseconds (``os.stat``; no file is read) -- a changed,
  added, removed or renamed file gives a different key, so an entry is never stale;
* the decode target: the size and channels decoded to (``data.image_size`` and
  ``data.color_mode``, else what a probe of a few hundred file headers says, so a run's
  ``evaluate`` with its explicit size hits its training's entry), the resize method and
  antialiasing, the TensorFlow version that decodes, and :data:`CACHE_FORMAT`.

Entries are written into a temporary folder that is renamed into place when complete, so a
crashed or concurrent writer never leaves a half entry behind, and two processes building the
same key end with one valid entry. An entry whose files do not match its manifest (a
truncated array, a flipped byte) is discarded with a log line and rebuilt. The cache keeps at
most ``$TFPILOT_DECODE_CACHE_GB`` (default 4) GB: after each write the least recently used
entries are deleted until the rest fit. :func:`clear` deletes every entry (or delete the
folder: ``rm -r ~/.cache/tfpilot/decoded``); ``data.decode_cache: false`` turns the cache off.

Example:
    >>> import numpy as np
    >>> from tfpilot.testing import make_image_folder
    >>> root = make_image_folder(tmp_path / "shapes", per_class=2)  # doctest: +SKIP
    >>> files = {"train": sorted(str(p) for p in root.rglob("*.png"))}  # doctest: +SKIP
    >>> key = entry_key("shapes", files, root, target((16, 16), 3))  # doctest: +SKIP
    >>> load(key, want_pixels=lambda size, channels: True) is None  # nothing stored yet  # doctest: +SKIP
    True
    >>> pixels = np.zeros((6, 16, 16, 3), np.uint8)  # as decoded  # doctest: +SKIP
    >>> save(key, EntryMeta((16, 16), 3, 1), {"train": CachedSplit(6, [], pixels)})  # doctest: +SKIP
    True
    >>> meta, splits = load(key, want_pixels=lambda size, channels: True)  # doctest: +SKIP
    >>> splits["train"].pixels.shape  # doctest: +SKIP
    (6, 16, 16, 3)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.data.images import RESIZE_ANTIALIAS, RESIZE_METHOD
from tfpilot.data.paths import cache_dir, relative_paths
from tfpilot.errors import UserError

log = logging.getLogger(__name__)

#: The entry layout; bump it when what an entry holds or means changes (old entries are
#: then never read again, and age out of the cache).
CACHE_FORMAT = 1
ENV_BUDGET_GB = "TFPILOT_DECODE_CACHE_GB"
DEFAULT_BUDGET_GB = 4.0
MANIFEST = "manifest.json"
#: Temporary and discarded folders older than this are leftovers of a killed process.
STALE_TMP_S = 3600.0
#: Stands for a file's own path in a stored failure reason (a moved folder reports its new paths).
PATH_MARK = "{path}"
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "tf-nightly")


class CorruptEntryError(ValueError):
    """A cache entry's files do not match its manifest."""


@dataclass(frozen=True)
class EntryMeta:
    """What a cache entry says about the decoded images.

    Attributes:
        size: (height, width) every image was decoded to.
        channels: 1 or 3.
        distinct_sizes: how many different sizes the probed files had.
    """

    size: tuple[int, int]
    channels: int
    distinct_sizes: int


@dataclass
class CachedSplit:
    """One split of an entry.

    Attributes:
        files: how many files the split lists.
        failed: ``(index, reason)`` of the files that did not decode, ascending.
        pixels: the decoded images of the other files, in order; None when the entry holds
            only which files are readable (the images were too big to cache).
        digests: every file's content digest (``manifest.file_digest``, 16 hex digits), in
            order, so that ``split.json`` need not read the files again; None if unknown.
    """

    files: int
    failed: list[tuple[int, str]]
    pixels: np.ndarray | None = None
    digests: list[str] | None = None

    @property
    def ok(self) -> np.ndarray:
        """Indices of the files that decoded, ascending."""
        return np.setdiff1d(np.arange(self.files, dtype=np.int64), np.array([i for i, _ in self.failed], np.int64))


def decoded_dir() -> Path:
    """The folder of all decode cache entries (``cache_dir()/decoded``)."""
    return cache_dir() / "decoded"


def budget_bytes() -> int:
    """The cache's size limit: ``$TFPILOT_DECODE_CACHE_GB`` GB (default 4; 0 stores nothing).

    Raises:
        ValueError: the variable is not a non-negative number.
    """
    raw = os.environ.get(ENV_BUDGET_GB, "").strip()
    if not raw:
        return int(DEFAULT_BUDGET_GB * 2**30)
    try:
        gb = float(raw)
    except ValueError:
        gb = -1.0
    if not gb >= 0:  # also refuses nan
        raise UserError(f"${ENV_BUDGET_GB}={raw!r}: expected the decode cache's size limit in GB, a number "
                        f">= 0 (default {DEFAULT_BUDGET_GB:g}; 0 keeps no decoded images)")
    return int(gb * 2**30)


def _decoder_version() -> str:
    for name in _TF_DISTRIBUTIONS:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "tensorflow unknown"


def target(size: Sequence[int], channels: int) -> dict[str, Any]:
    """The decode target of a key: the size and channels decoded to, and how images are
    resized and decoded.

    Args:
        size: (height, width), as resolved (``data.image_size``, else the probed size).
        channels: 1 or 3, as resolved (``data.color_mode``, else the probed mode).

    Example:
        >>> target((32, 32), 3)["image_size"], target((32, 32), 3)["resize"]
        ([32, 32], 'bilinear')
    """
    return {
        "image_size": [int(v) for v in size],
        "channels": int(channels),
        "resize": RESIZE_METHOD,
        "antialias": RESIZE_ANTIALIAS,
        "decoder": _decoder_version(),
        "format": CACHE_FORMAT,
    }


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:40] or "data"


def entry_key(name: str, splits: Mapping[str, Sequence[str]], root: str | Path, decode: Mapping[str, Any]) -> str:
    """The key of the entry for these files decoded to ``decode``: ``<name>-<20 hex digits>``.

    Args:
        name: a readable prefix (the dataset's file name).
        splits: split name -> its file paths, in the order the images are stored.
        root: the dataset root the paths are taken relative to.
        decode: the decode target (:func:`target`).
    """
    root = os.path.abspath(os.fspath(root))
    h = hashlib.blake2b(digest_size=10)
    h.update(json.dumps(dict(decode), sort_keys=True).encode())
    for split in sorted(splits):
        paths = splits[split]
        lines = [f"\0split {split} {len(paths)}"]
        for rel, p in zip(relative_paths(paths, root), paths):
            try:
                st = os.stat(p)
                lines.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}")
            except OSError:
                lines.append(f"{rel}\0missing")
        h.update("\n".join(lines).encode("utf-8", "surrogatepass"))
    return f"{_slug(name)}-{h.hexdigest()}"


def _crc(a: np.ndarray) -> int:
    a = np.ascontiguousarray(a)
    return zlib.crc32(memoryview(a.reshape(-1).view(np.uint8))) if a.size else 0


def _pixels_file(split: str) -> str:
    return f"pixels-{_slug(split)}.npy"


def _digests_file(split: str) -> str:
    return f"digests-{_slug(split)}.npy"


def _load_checked(path: Path, info: Mapping[str, Any], shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """The array in ``path``, memory-mapped copy-on-write (read once, by the checksum; the
    splits copy what they take), after checking its dtype, shape and checksum."""
    arr = np.asarray(np.load(path, mmap_mode="c", allow_pickle=False))
    if arr.dtype != np.dtype(dtype) or arr.shape != shape or tuple(info["shape"]) != shape:
        raise CorruptEntryError(f"{path.name} holds {arr.dtype} {arr.shape}, expected {dtype} {shape}")
    if _crc(arr) != int(info["crc32"]):
        raise CorruptEntryError(f"{path.name} does not match its checksum")
    return arr


def _read_entry(entry: Path, key: str, want_pixels: Callable[[tuple[int, int], int], bool]
                ) -> tuple[EntryMeta, dict[str, CachedSplit]] | None:
    """The entry's content, None when it lacks the pixels wanted; CorruptEntryError if broken."""
    try:
        m = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        if m.get("format") != CACHE_FORMAT or m.get("key") != key:
            raise CorruptEntryError(f"its manifest is for {m.get('key')!r}, format {m.get('format')!r}")
        meta = EntryMeta((int(m["size"][0]), int(m["size"][1])), int(m["channels"]), int(m["distinct_sizes"]))
        pixels = want_pixels(meta.size, meta.channels)
        out: dict[str, CachedSplit] = {}
        for split, s in m["splits"].items():
            files = int(s["files"])
            failed = [(int(i), str(r)) for i, r in s["failed"]]
            if any(not 0 <= i < files for i, _ in failed):
                raise CorruptEntryError(f"split {split!r}: a failed-file index is out of range")
            cached = CachedSplit(files, failed)
            if pixels:
                p = s.get("pixels")
                if p is None:
                    log.info("decode cache entry %s holds no images (they were over the budget): decoding", key)
                    _remove(entry)  # so that save() can store one with the images
                    return None
                expected = (files - len(failed), meta.size[0], meta.size[1], meta.channels)
                cached.pixels = _load_checked(entry / p["file"], p, expected, "uint8")
            d = s.get("digests")
            if d is not None:
                cached.digests = _load_checked(entry / d["file"], d, (files,), "S16").astype("U16").tolist()
            out[split] = cached
    except CorruptEntryError:
        raise
    except FileNotFoundError as exc:
        if not entry.exists():
            return None  # removed by another process (evicted) while we read it: a miss
        raise CorruptEntryError(f"a file of the entry is missing ({exc.filename})") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as exc:  # json, np.load, int()
        raise CorruptEntryError(f"{type(exc).__name__}: {exc}") from None
    return meta, out


def load(key: str, want_pixels: Callable[[tuple[int, int], int], bool]
         ) -> tuple[EntryMeta, dict[str, CachedSplit]] | None:
    """The entry of ``key``, or None (no entry, or one that cannot serve: then decode again).

    A corrupt entry is discarded with a warning (and rebuilt by the caller's :func:`save`);
    a hit marks the entry as recently used.

    Args:
        key: from :func:`entry_key`.
        want_pixels: ``(size, channels) -> bool``: whether the caller needs the images (else
            only which files failed); an entry that holds no images then does not serve.
    """
    budget_bytes()  # a bad $TFPILOT_DECODE_CACHE_GB fails now, not after decoding
    entry = decoded_dir() / key
    if not entry.is_dir():
        return None
    try:
        got = _read_entry(entry, key, want_pixels)
    except CorruptEntryError as exc:
        log.warning("decode cache entry %s is corrupt (%s): discarding it and decoding again", entry, exc)
        _remove(entry)
        return None
    if got is not None:
        try:
            os.utime(entry / MANIFEST)  # least recently used goes first
        except OSError:
            pass  # evicted meanwhile: the data is already in memory
    return got


def save(key: str, meta: EntryMeta, splits: Mapping[str, CachedSplit], source: str = "") -> bool:
    """Store an entry (atomically), then evict least recently used entries over the budget.

    The images are left out (only the failures are kept) when they alone exceed the budget
    or a split has none. Another process that stored the same key first wins; a write that
    fails (disk full, read-only cache) is logged and changes nothing.

    Args:
        key: from :func:`entry_key`.
        meta: the decoded size, channels and probe result.
        splits: split name -> what was decoded (``failed`` reasons may name the file's path).
        source: the dataset, recorded for people reading the manifest.

    Returns:
        Whether the entry is in the cache now.
    """
    budget = budget_bytes()
    if budget == 0:
        return False
    root = decoded_dir()
    final = root / key
    if final.is_dir():
        return True
    nbytes = sum(s.pixels.nbytes for s in splits.values() if s.pixels is not None)
    with_pixels = all(s.pixels is not None for s in splits.values()) and nbytes <= budget
    if nbytes > budget:
        log.info("decoded images (%.2f GB) are over the decode cache budget (%.2f GB, $%s): caching only "
                 "which files are readable", nbytes / 2**30, budget / 2**30, ENV_BUDGET_GB)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
    except OSError as exc:
        log.warning("could not write the decode cache under %s (%s): continuing without it", root, exc)
        return False
    try:
        manifest: dict[str, Any] = {"format": CACHE_FORMAT, "key": key, "source": source, "created": time.time(),
                                    "size": list(meta.size), "channels": meta.channels,
                                    "distinct_sizes": meta.distinct_sizes, "splits": {}}
        for split, s in splits.items():
            entry: dict[str, Any] = {"files": s.files, "failed": [[i, r] for i, r in s.failed], "pixels": None,
                                     "digests": None}
            if with_pixels and s.pixels is not None:
                entry["pixels"] = _save_checked(tmp / _pixels_file(split), np.asarray(s.pixels, dtype=np.uint8))
            if s.digests is not None:
                entry["digests"] = _save_checked(tmp / _digests_file(split), np.array(s.digests, dtype="S16"))
            manifest["splits"][split] = entry
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        try:
            tmp.rename(final)
        except OSError:
            if not final.is_dir():  # not "another process stored it first"
                raise
    except OSError as exc:
        log.warning("could not write the decode cache entry %s (%s): continuing without it", final, exc)
        return False
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    evict(budget, keep=key)
    return True


def _save_checked(path: Path, arr: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(arr)
    np.save(path, arr, allow_pickle=False)
    return {"file": path.name, "shape": list(arr.shape), "dtype": arr.dtype.str.lstrip("|<>="), "crc32": _crc(arr)}


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    """``(last used, bytes, folder)`` of every entry."""
    out = []
    for d in root.iterdir() if root.is_dir() else []:
        if d.name.startswith(".") or not d.is_dir():
            continue
        try:
            used = (d / MANIFEST).stat().st_mtime
        except OSError:
            used = 0.0
        size = 0
        for f in d.iterdir():
            try:
                size += f.stat().st_size
            except OSError:
                continue
        out.append((used, size, d))
    return sorted(out)


def _remove(entry: Path) -> None:
    """Delete an entry without racing a reader or writer: rename it out of the way first."""
    trash = entry.parent / f".trash-{entry.name}-{uuid.uuid4().hex[:8]}"
    try:
        entry.rename(trash)
    except OSError:
        return  # already gone (another process removed it)
    shutil.rmtree(trash, ignore_errors=True)


def evict(budget: int | None = None, keep: str | None = None) -> list[str]:
    """Delete least recently used entries until the rest fit in ``budget`` bytes, and
    leftovers of killed processes.

    Args:
        budget: bytes (default :func:`budget_bytes`).
        keep: a key never evicted (the entry just written).

    Returns:
        The keys deleted.
    """
    budget = budget_bytes() if budget is None else budget
    root = decoded_dir()
    if not root.is_dir():
        return []
    now = time.time()
    for d in root.iterdir():
        if d.name.startswith((".tmp-", ".trash-")):
            try:
                if now - d.stat().st_mtime > STALE_TMP_S:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                continue
    entries = _entries(root)
    total = sum(size for _, size, _ in entries)
    removed = []
    for _, size, d in entries:
        if total <= budget:
            break
        if d.name == keep:
            continue
        _remove(d)
        total -= size
        removed.append(d.name)
    if removed:
        log.info("decode cache over %.2f GB ($%s): removed %d least recently used entr%s",
                 budget / 2**30, ENV_BUDGET_GB, len(removed), "y" if len(removed) == 1 else "ies")
    return removed


def clear() -> int:
    """Delete every decode cache entry; returns how many there were.

    Example:
        >>> import os, tempfile
        >>> os.environ["TFPILOT_CACHE_DIR"] = tempfile.mkdtemp()
        >>> clear()
        0
    """
    entries = _entries(decoded_dir())
    for _, _, d in entries:
        _remove(d)
    return len(entries)


def store_reason(reason: str, path: str) -> str:
    """``reason`` with the file's own path replaced by :data:`PATH_MARK` (see :func:`reason_for`)."""
    return reason.replace(os.fspath(path), PATH_MARK) if path else reason


def reason_for(stored: str, path: str) -> str:
    """The failure reason of a stored entry, naming the file at ``path``.

    Example:
        >>> reason_for(store_reason("cannot identify image file '/a/x.png'", "/a/x.png"), "/b/x.png")
        "cannot identify image file '/b/x.png'"
    """
    return stored.replace(PATH_MARK, os.fspath(path))
