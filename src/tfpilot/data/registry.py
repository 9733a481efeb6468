"""The dataset registry, path formats, and :func:`prepare_data` (load -> limit -> split).

A built-in dataset is a function ``(DataConfig, DataReport) -> RawDataset`` registered
with ``@register_dataset``. A path given as ``data.dataset`` is handed to the first
registered *format* whose ``detect(path)`` accepts it (image folder, image CSV, ...).

Example:
    >>> from tfpilot.config import DataConfig
    >>> from tfpilot.data import prepare_data
    >>> data = prepare_data(DataConfig(dataset="digits"))
    >>> sorted(data.splits), data.num_classes
    (['test', 'train', 'val'], 10)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfpilot.config.schema import DataConfig
from tfpilot.data.report import DataReport
from tfpilot.data.source import RawDataset
from tfpilot.data.splits import limit_stratified, stratified_split
from tfpilot.registry import Registry, RegistryError

Loader = Callable[[DataConfig, DataReport], RawDataset]

DATASETS: Registry[Loader] = Registry("dataset", autoload=("tfpilot.data.builtin", "tfpilot.data.text"))


@dataclass(frozen=True)
class DataFormat:
    """A kind of dataset path: ``detect(path)`` says whether it applies, ``load`` reads it."""

    detect: Callable[[Path], bool]
    load: Callable[[Path, DataConfig, DataReport], RawDataset]
    priority: int = 100  # lower is tried first


FORMATS: Registry[DataFormat] = Registry("dataset format", autoload=("tfpilot.data.formats", "tfpilot.data.text"))


def register_dataset(name: str | None = None, *, description: str = "", task: str = "image") -> Callable[[Loader], Loader]:
    """Register a built-in dataset loader under ``name``."""
    return DATASETS.register(name, description=description, tags=(task,))


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.list(pattern)


def load_dataset(cfg: DataConfig) -> RawDataset:
    """Load ``cfg.dataset``: a registered name, or a path in a registered format."""
    name = cfg.dataset
    report = DataReport(dataset=name)
    if name in DATASETS:
        ds = DATASETS.get(name)(cfg, report)
    else:
        path = Path(name).expanduser()
        if not path.exists():
            try:
                DATASETS.entry(name)
            except RegistryError as exc:
                raise RegistryError(f"{exc} It is not an existing path either.") from None
        for fmt in sorted(FORMATS.entries(), key=lambda e: e.obj.priority):
            if fmt.obj.detect(path):
                ds = fmt.obj.load(path, cfg, report)
                break
        else:
            raise ValueError(
                f"{path}: not a dataset tfpilot can read. Expected a folder of class folders, "
                f"an archive of one, or a CSV ({', '.join(FORMATS.list())})."
            )
    ds.report.dataset = ds.report.dataset or name
    return ds


@dataclass
class PreparedData:
    """A dataset with its final train/val/test splits, ready for pipelines."""

    dataset: RawDataset
    manifest: dict[str, Any]

    @property
    def splits(self):
        return self.dataset.splits

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def class_names(self) -> list[str]:
        return self.dataset.class_names

    @property
    def input_spec(self):
        return self.dataset.input_spec

    @property
    def report(self) -> DataReport:
        return self.dataset.report


def prepare_data(cfg: DataConfig) -> PreparedData:
    """Load the dataset and make deterministic, stratified train/val/test splits.

    * No test split in the source: ``test_split`` and ``val_split`` of the data are held
      out (70/20/10 with ``val_split=0.2, test_split=0.1``, seed 002's recipe).
    * No val split: ``val_split`` of train is held out.
    * ``train_limit``/``test_limit`` take class-balanced subsets (for quick runs).
    """
    ds = load_dataset(cfg)
    splits = dict(ds.splits)
    if cfg.train_limit:
        splits["train"] = splits["train"].take(limit_stratified(splits["train"].y, cfg.train_limit, cfg.split_seed))
    fractions = {}
    val_split = cfg.val_split if cfg.val_split is not None else (0.1 if "test" in splits else 0.2)
    if "val" not in splits and val_split > 0:
        fractions["val"] = val_split
    if "test" not in splits and cfg.test_split > 0:
        fractions["test"] = cfg.test_split
    if fractions:
        parts = stratified_split(splits["train"].y, fractions, cfg.split_seed)
        source = splits["train"]
        for name, index in parts.items():
            splits[name] = source.take(index)
    if cfg.test_limit and "test" in splits:
        splits["test"] = splits["test"].take(limit_stratified(splits["test"].y, cfg.test_limit, cfg.split_seed))
    ds.splits = splits
    ds.report.split_sizes = {k: len(v) for k, v in splits.items()}
    ds.report.class_counts = ds.class_counts()
    manifest = {
        "dataset": cfg.dataset,
        "seed": cfg.split_seed,
        "held_out_of_train": fractions,
        "splits": {k: v.ids.tolist() for k, v in splits.items()},
    }
    return PreparedData(ds, manifest)
