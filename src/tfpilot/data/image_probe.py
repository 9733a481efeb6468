"""What a dataset's images are like, before any is decoded: how many, how large, how many
classes -- read from the file system and a sample of image headers (PIL reads an image's size
without decoding it).

The defaults chosen from the data (``tfpilot.training.defaults``) and the memory plan
(``tfpilot.training.memory_plan``) read it, so that the image size a run decodes to is
chosen before the first image is decoded.

Example:
    >>> from tfpilot.config import DataConfig
    >>> from tfpilot.testing import make_image_folder
    >>> root = make_image_folder(tmp_path / "shapes", per_class=4, size=40)  # doctest: +SKIP
    >>> [p.describe() for p in probe_images_of(DataConfig(dataset=str(root)))]  # doctest: +SKIP
    ['12 images in 3 classes, 40x40x3 (1 size probed)']
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfpilot.data.report import DataReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageProbe:
    """The images of a dataset (or of one image column of a table), from their headers.

    Attributes:
        images: image files in the dataset (every split), or rows of the table.
        classes: class folders (None for a table's image column).
        sizes: ``(height, width) -> count`` over the probed sample.
        channels: 1 if every probed image is grayscale, else 3.
        column: the table's image column (None for a folder or CSV of images).
        train_images: the images a model trains on, about (the split's share of ``images``).
    """

    images: int
    classes: int | None
    sizes: Counter[tuple[int, int]]
    channels: int
    column: str | None = None
    train_images: int | None = None

    @property
    def common_size(self) -> tuple[int, int]:
        """The most common (height, width) of the sample."""
        return self.sizes.most_common(1)[0][0]

    @property
    def largest_side(self) -> int:
        """The longest side of any probed image."""
        return max(max(s) for s in self.sizes)

    def describe(self) -> str:
        """One line: count, classes, common size.

        Example:
            >>> ImageProbe(2527, 6, Counter({(384, 512): 200}), 3).describe()
            '2,527 images in 6 classes, 384x512x3 (1 size probed)'
        """
        h, w = self.common_size
        what = f"column {self.column!r}: {self.images:,} images" if self.column else f"{self.images:,} images"
        classes = f" in {self.classes} classes" if self.classes else ""
        n = len(self.sizes)
        return f"{what}{classes}, {h}x{w}x{self.channels} ({n} size{'s' if n > 1 else ''} probed)"


def _probe(paths: list[str], classes: int | None, column: str | None = None,
           train_share: float = 1.0) -> ImageProbe | None:
    from tfpilot.data.images import image_sizes

    if not paths:
        return None
    sizes, channels = image_sizes(paths)
    return ImageProbe(len(paths), classes, sizes, channels, column, int(round(len(paths) * train_share)))


def _train_share(cfg: Any, given_splits: set[str]) -> float:
    """The share of the files the training split gets (as :func:`~tfpilot.data.prepare_data` splits)."""
    if "train" in given_splits and len(given_splits) > 1:
        return 1.0  # only the train folder was counted
    val = cfg.val_split if cfg.val_split is not None else 0.2
    return max(0.05, 1.0 - val - cfg.test_split)


def _folder_probe(path: Path, cfg: Any, fmt: str) -> ImageProbe | None:
    from tfpilot.data.folder import image_csv_files, image_folder_files

    report = DataReport(dataset=str(path))  # the loader reports skipped files itself
    if fmt == "image_csv":
        classes = image_csv_files(path, report)
        paths = [p for files in classes.values() for p in files]
        return _probe(paths, len(classes), train_share=_train_share(cfg, {"train"}))
    _, _, per_split = image_folder_files(path, report)
    train = per_split.get("train", {})
    paths = [p for files in train.values() for p in files]
    val = cfg.val_split if cfg.val_split is not None else (0.1 if "test" in per_split else 0.2)
    share = 1.0 - (0.0 if "val" in per_split else val) - (0.0 if "test" in per_split else cfg.test_split)
    probe = _probe(paths, len(train), train_share=max(0.05, share))
    if probe is None:
        return None
    total = sum(len(f) for classes in per_split.values() for f in classes.values())
    return ImageProbe(total, probe.classes, probe.sizes, probe.channels, None, probe.train_images)


def _table_probes(config: Any) -> list[ImageProbe]:
    from tfpilot.data import columns as C
    from tfpilot.data.table import resolve_features
    from tfpilot.data.table_io import load_table

    d = config.data
    table = load_table(d.dataset, d)
    features, _ = resolve_features(table.frame, config.features, table.base, d.id_column)
    share = _train_share(d, {"train"})
    probes = []
    for f in features.inputs or []:
        if f.type != "image":
            continue
        cells = [str(v).strip() for v in table.frame[f.name] if isinstance(v, str) and v.strip()]
        paths = [str(C.resolve_path(c, table.base)) for c in cells]
        probe = _probe([p for p in paths if Path(p).is_file()], None, f.name, share)
        if probe is not None:
            probes.append(ImageProbe(len(table.frame), None, probe.sizes, probe.channels, f.name,
                                     probe.train_images))
    return probes


def probe_images_of(config: Any) -> list[ImageProbe]:
    """The images of a run config's dataset, from the file system and image headers only: one
    probe for an image folder, archive or CSV of paths, one per image column of a table, none
    for anything else (built-in arrays, text).

    Args:
        config: the run :class:`~tfpilot.config.Config` (``data`` and ``features`` are read).

    Raises:
        UserError: the dataset is an image source tfpilot cannot read (as loading would).
    """
    from tfpilot.data.registry import DATASETS, FORMATS

    if config.features is not None:
        return _table_probes(config)
    name = config.data.dataset
    path = Path(name).expanduser()
    if name in DATASETS or not path.exists():
        return []
    for fmt in sorted(FORMATS.entries(), key=lambda e: e.obj.priority):
        if fmt.obj.detect(path):
            if fmt.name not in ("image_csv", "image_folder"):
                return []
            probe = _folder_probe(path, config.data, fmt.name)
            return [probe] if probe is not None else []
    return []
