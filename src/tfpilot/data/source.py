"""In-memory description of a loaded dataset, before it becomes tf.data pipelines."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tfpilot.data.report import DataReport
from tfpilot.spec import InputSpec


@dataclass
class Split:
    """One split: labels plus either decoded examples (``x``) or file ``paths``.

    Args:
        y: integer class ids, shape (N,).
        x: uint8 images (N, H, W, C) or an object array of strings, or None.
        paths: file paths decoded lazily by the pipeline, or None.
        ids: stable identifiers of the examples (file paths, or indices into the source).
    """

    y: np.ndarray
    x: np.ndarray | None = None
    paths: np.ndarray | None = None
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.ids is None:
            self.ids = self.paths if self.paths is not None else np.arange(len(self.y))
        n = len(self.y)
        for name in ("x", "paths", "ids"):
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise ValueError(f"split has {n} labels but {len(v)} {name}")

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> Split:
        """The examples at ``index`` (a new Split sharing no arrays with this one)."""
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self,
            y=self.y[index],
            x=None if self.x is None else self.x[index],
            paths=None if self.paths is None else self.paths[index],
            ids=None if self.ids is None else self.ids[index],
        )


@dataclass
class RawDataset:
    """A loaded dataset: named splits ('train', and 'val'/'test' when the source has them).

    Attributes:
        root: for datasets of image files, the folder their paths are recorded relative to
            in ``split.json`` (the class-folder root, or a CSV's folder); None for arrays
            and texts held in memory.
        file_digests: file path -> its content digest (``manifest.file_digest``), where the
            loader already knows it (the decode cache: recorded when the file was decoded,
            trusted while its size and mtime are unchanged); other files are read.
    """

    name: str
    class_names: list[str]
    input_spec: InputSpec
    splits: dict[str, Split]
    report: DataReport = field(default_factory=DataReport)
    root: str | None = None
    file_digests: dict[str, str] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for split_name, split in self.splits.items():
            counts = np.bincount(split.y, minlength=self.num_classes)
            out[split_name] = {c: int(n) for c, n in zip(self.class_names, counts)}
        return out
