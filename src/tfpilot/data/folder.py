"""Image datasets from the file system: class folders, train/test trees, CSVs, archives.

Layouts:
    * ``ROOT/<class>/*.jpg`` -- one sub-folder per class; tfpilot makes the splits.
    * ``ROOT/{train,test[,val]}/<class>/*.jpg`` -- the splits are given (like ``cifar10-jpg``).
    * ``labels.csv`` with a path column and a label column (paths relative to the CSV).
    * any of these inside a ``.tar.gz``/``.zip`` (extracted once into the cache).
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np

from tfpilot.config.schema import DataConfig
from tfpilot.data import decode_cache
from tfpilot.data.decode_cache import CachedSplit, EntryMeta
from tfpilot.data.images import decode_images, is_image_file, keep_decoded, probe_images
from tfpilot.data.manifest import file_digest
from tfpilot.data.paths import extract_archive, is_archive
from tfpilot.data.report import DataReport
from tfpilot.data.source import RawDataset, Split
from tfpilot.errors import UserError
from tfpilot.spec import InputSpec

log = logging.getLogger(__name__)

SPLIT_DIRS = {"train": "train", "training": "train", "test": "test", "testing": "test",
              "val": "val", "valid": "val", "validation": "val"}
PATH_COLUMNS = ("path", "filepath", "file", "filename", "image", "image_path")
LABEL_COLUMNS = ("label", "class", "category", "target")


def _visible_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def unwrap_root(root: Path) -> Path:
    """Descend through single wrapper folders (``archive/cifar10-jpg/train`` -> ``cifar10-jpg``)."""
    while True:
        dirs = _visible_dirs(root)
        files = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
        if len(dirs) == 1 and not files and not any(d.name.lower() in SPLIT_DIRS for d in dirs):
            root = dirs[0]
        else:
            return root


def _files_under(d: Path) -> list[str]:
    """Every file under ``d`` (sorted as paths sort), except inside hidden sub-folders; links to
    folders are not followed (as ``Path.rglob``). ``os.scandir`` reads each folder's file types
    without a ``stat`` per file, and a depth-first walk over each folder's sorted names gives
    the paths in sorted order without sorting them all: a 60,000-file tree takes ~40 ms."""
    found: list[str] = []

    def walk(folder: str) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            return
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if not e.name.startswith("."):
                        walk(e.path)  # its files sort right here, before the next name
                elif e.is_file():
                    found.append(e.path)
            except OSError:  # vanished or unreadable meanwhile
                continue

    walk(str(d))
    return found


def _scan_class_dirs(root: Path, report: DataReport) -> dict[str, list[str]]:
    """class name -> image paths (sorted); non-image files are reported as skipped."""
    classes: dict[str, list[str]] = {}
    for d in _visible_dirs(root):
        files = []
        for p in _files_under(d):
            if is_image_file(p):
                files.append(p)
            else:
                suffix = Path(p).suffix
                report.skip(p, f"not an image file (extension {suffix or 'none'!r})")
        classes[d.name] = files
    stray = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    if stray:
        report.note(f"{len(stray)} file(s) directly in {root} ignored: images must be inside a class folder")
    return classes


def is_image_folder(path: Path) -> bool:
    return path.is_dir()


def image_folder_files(path: str | Path, report: DataReport) -> tuple[Path, Path, dict[str, dict[str, list[str]]]]:
    """The image files of a class-folder tree (or an archive of one), read from the file
    system only (no image is opened).

    Args:
        path: the folder or archive.
        report: receives the files skipped (not images) and notes.

    Returns:
        ``(path, root, {split: {class: [file, ...]}})``: the folder (an archive's extracted
        copy), the folder the classes (or splits) are in, and the files.

    Raises:
        UserError: no class folders.
    """
    path = Path(path).expanduser()
    if is_archive(path):
        log.info("using the extracted copy of %s (extracted once into the cache)", path)
        path = extract_archive(path)
    root = unwrap_root(path)
    top = {d.name.lower(): d for d in _visible_dirs(root)}
    split_dirs = {SPLIT_DIRS[k]: d for k, d in top.items() if k in SPLIT_DIRS}
    per_split: dict[str, dict[str, list[str]]] = {}
    if "train" in split_dirs:
        for split, d in split_dirs.items():
            per_split[split] = _scan_class_dirs(d, report)
    else:
        per_split["train"] = _scan_class_dirs(root, report)
    names = sorted({c for classes in per_split.values() for c in classes})
    if not names:
        raise UserError(
            f"{root} holds no class folders: expected ROOT/<class>/<image> or "
            "ROOT/train/<class>/<image> (+ test/, val/)"
        )
    return path, root, per_split


def load_image_folder(path: str | Path, cfg: DataConfig, report: DataReport) -> RawDataset:
    """Load a class-folder tree (or an archive of one)."""
    path, root, per_split = image_folder_files(path, report)
    names = sorted({c for classes in per_split.values() for c in classes})
    return _files_to_dataset(str(path), root, per_split, names, cfg, report)


def _read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        sample = f.read(4096)
        f.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        rows = list(csv.reader(f, dialect))
    if not rows:
        raise UserError(f"{path} is empty")
    return rows[0], rows[1:]


def is_image_csv(path: Path) -> bool:
    if not (path.is_file() and path.suffix.lower() in (".csv", ".tsv")):
        return False
    header, rows = _read_csv_rows(path)
    cols = [h.strip().lower() for h in header]
    return any(c in PATH_COLUMNS for c in cols) or bool(rows and is_image_file(rows[0][0]))


def image_csv_files(path: str | Path, report: DataReport) -> dict[str, list[str]]:
    """The image files of a CSV of ``path,label`` rows, by class (no image is opened).

    Args:
        path: the CSV.
        report: receives the rows skipped (no path or label, file not found).

    Raises:
        UserError: the CSV names no path or no label column.
    """
    path = Path(path)
    header, rows = _read_csv_rows(path)
    cols = [h.strip().lower() for h in header]
    pcol = next((cols.index(c) for c in PATH_COLUMNS if c in cols), None)
    lcol = next((cols.index(c) for c in LABEL_COLUMNS if c in cols), None)
    if pcol is None and lcol is None:  # no header: path,label
        rows, pcol, lcol = [header, *rows], 0, 1
    elif pcol is None or lcol is None:
        missing = "a path column" if pcol is None else "a label column"
        raise UserError(
            f"{path}: no {missing}. Columns found: {', '.join(header)}. Name them one of "
            f"{PATH_COLUMNS} (paths) and {LABEL_COLUMNS} (labels)."
        )
    classes: dict[str, list[str]] = {}
    for lineno, row in enumerate(rows, start=2):
        if len(row) <= max(pcol, lcol) or not row[pcol].strip() or not row[lcol].strip():
            report.skip(f"{path}:{lineno}", "row without a path or a label")
            continue
        p = Path(row[pcol].strip())
        p = p if p.is_absolute() else path.parent / p
        if not p.exists():
            report.skip(p, "file not found")
            continue
        classes.setdefault(row[lcol].strip(), []).append(str(p))
    return classes


def load_image_csv(path: str | Path, cfg: DataConfig, report: DataReport) -> RawDataset:
    """Load a CSV of ``path,label`` rows (a header naming the columns is optional)."""
    path = Path(path)
    classes = image_csv_files(path, report)
    names = sorted(classes)
    return _files_to_dataset(str(path), path.parent, {"train": classes}, names, cfg, report)


def _decode_target(source: str, files: dict[str, np.ndarray], cfg: DataConfig) -> EntryMeta:
    """The size and channels to decode to: ``data.image_size``/``color_mode``, else what the
    probed files (a few hundred headers) say."""
    try:
        probed_size, probed_channels, distinct = probe_images([p for paths in files.values() for p in paths])
    except ValueError as exc:
        raise UserError(f"{source}: no readable training image ({exc})") from None
    size = tuple(cfg.image_size) if cfg.image_size else probed_size
    channels = {"grayscale": 1, "rgb": 3}.get(cfg.color_mode, probed_channels)
    return EntryMeta((int(size[0]), int(size[1])), channels, distinct)


def _decode_splits(
    files: dict[str, np.ndarray], meta: EntryMeta, cfg: DataConfig, digests: bool
) -> dict[str, CachedSplit]:
    """Decode every split (the slow part); with ``digests``, also each file's content digest
    (for the cache: ``split.json`` reads every file for it anyway, and need not on a hit)."""
    keep = keep_decoded(cfg, sum(len(p) for p in files.values()), meta.size, meta.channels)
    out = {}
    for split, paths in files.items():
        d = decode_images(paths, meta.size, meta.channels, keep_pixels=keep)
        out[split] = CachedSplit(len(paths), d.failed, d.pixels,
                                 [file_digest(p) for p in paths] if digests else None)
    return out


def _files_to_dataset(
    source: str,
    root: Path,
    per_split: dict[str, dict[str, list[str]]],
    names: list[str],
    cfg: DataConfig,
    report: DataReport,
) -> RawDataset:
    """Probe, decode (skipping bad files) and assemble the splits -- or read all that from
    the decode cache (:mod:`tfpilot.data.decode_cache`) when these files were decoded before
    to the same target."""
    files: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for split_name, classes in per_split.items():
        paths = np.array([p for c in names for p in classes.get(c, [])], dtype=object)
        if len(paths):
            files[split_name] = paths
            labels[split_name] = np.array([i for i, c in enumerate(names) for _ in classes.get(c, [])], np.int64)
    if not files:
        raise UserError(f"{source}: no image files found (extensions: .jpg .jpeg .png .bmp .gif)")
    n = sum(len(p) for p in files.values())

    meta = _decode_target(source, files, cfg)
    key, cached = None, None
    if cfg.decode_cache:  # keyed by the resolved size: a run's evaluate (explicit size) hits its training's entry
        key = decode_cache.entry_key(Path(source).name, files, root, decode_cache.target(meta.size, meta.channels))
        cached = decode_cache.load(key, want_pixels=lambda size, channels: keep_decoded(cfg, n, size, channels))
    if cached is None:
        decoded = _decode_splits(files, meta, cfg, digests=key is not None)
        for split, d in decoded.items():
            d.failed = [(i, decode_cache.store_reason(r, files[split][i])) for i, r in d.failed]
        status = "off"
        if key is not None:
            status = "stored" if decode_cache.save(key, meta, decoded, source=source) else "not stored"
    else:
        (meta, decoded), status = cached, "hit"
    keep = keep_decoded(cfg, n, meta.size, meta.channels)
    size, channels = meta.size, meta.channels
    if meta.distinct_sizes > 1 and not cfg.image_size:
        report.note(
            f"images have {meta.distinct_sizes} different sizes; resizing all to {size[0]}x{size[1]} "
            "(the most common). Set data.image_size to choose."
        )

    splits: dict[str, Split] = {}
    for split_name, paths in files.items():
        d = decoded[split_name]
        for i, reason in d.failed:
            report.skip(paths[i], decode_cache.reason_for(reason, paths[i]))
        ok = d.ok
        pixels = d.pixels if keep else None
        splits[split_name] = Split(y=labels[split_name][ok], x=pixels, paths=None if keep else paths[ok],
                                   ids=paths[ok])
    report.decoded(sum(len(s) for s in splits.values()), status, key, pixels=keep)
    report.warn_skipped()
    if "train" not in splits or len(splits["train"]) == 0:
        raise UserError(f"{source}: no readable training image (see the skipped files in data_report.json)")

    # Classes with no readable training image cannot be learned: drop them, say so.
    present = np.bincount(splits["train"].y, minlength=len(names)) > 0
    if not present.all():
        empty = [c for c, ok_ in zip(names, present) if not ok_]
        report.empty_classes.extend(empty)
        report.note(f"class folder(s) with no readable training image dropped: {', '.join(empty)}")
        remap = np.cumsum(present) - 1
        for k, s in list(splits.items()):
            s = s.take(np.flatnonzero(present[s.y]))
            s.y = remap[s.y]
            splits[k] = s
        names = [c for c, ok_ in zip(names, present) if ok_]
    if len(names) < 2:
        raise UserError(f"{source}: found {len(names)} class with readable images; a classifier needs at least 2")
    report.source = source
    known = {p: h for split, paths in files.items() if decoded[split].digests
             for p, h in zip(paths, decoded[split].digests)}
    return RawDataset(Path(source).name, names, InputSpec.image(size[0], size[1], channels), splits, report,
                      root=os.path.abspath(root), file_digests=known or None)
