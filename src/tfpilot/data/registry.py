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

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config.schema import DataConfig
from tfpilot.data import pipeline as pipelines
from tfpilot.data.images import convert_images
from tfpilot.data.manifest import apply_manifest, build_manifest, split_keys
from tfpilot.data.report import DataReport
from tfpilot.data.source import RawDataset
from tfpilot.data.splits import hash_split, limit_stratified, stratified_split
from tfpilot.errors import UserError
from tfpilot.registry import Registry, RegistryError
from tfpilot.spec import CLASSIFIER_HEAD, FeatureSpec, InputSpec, TableSpec, classifier_spec

log = logging.getLogger(__name__)

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
            raise UserError(
                f"{path}: not a dataset tfpilot can read. Expected a folder of class folders, "
                f"an archive of one, or a CSV ({', '.join(FORMATS.list())})."
            )
    ds.report.dataset = ds.report.dataset or name
    return ds


class RunData:
    """The data of a run over named inputs and heads, and the pipelines the trainer reads it
    through: a classifier's :class:`PreparedData` (one input, one category head ``label``) and a
    table's :class:`~tfpilot.data.table.TableData` alike.

    A subclass gives ``splits``, ``spec``, ``features``, ``manifest``, ``report``, ``class_names``,
    ``num_classes``, :meth:`targets`, :meth:`model_args`, :meth:`adapt`, ``_source`` (split name,
    index -> the dataset of those examples), ``_decoder`` (split name -> the map decoding its
    files, or None), ``_metrics``, ``sample``, ``labels_record`` and ``save_extra_files``.
    """

    class_head_name: str | None = None  # train.class_head
    cache = True  # decoded files of a split are cached in memory by :meth:`pipeline`

    def class_head(self, option: str) -> FeatureSpec:
        """The class head ``option`` acts on (:func:`class_head`)."""
        return class_head(self.spec, self.class_head_name, option)

    def _check_options(self, one_hot: int | None, shard: tuple[int, int] | None) -> None:
        """Raise ValueError for a pipeline option this data cannot take (none here)."""

    def pipeline(self, split: str, batch_size: int, *, training: bool, seed: int = 42, shuffle_buffer: int = 60_000,
                 one_hot: int | None = None, shard: tuple[int, int] | None = None) -> Any:
        """Batches of ``(inputs, targets)`` of one split (:func:`~tfpilot.data.pipeline.batches`).

        Args:
            split: "train", "val" or "test".
            batch_size, training, seed, shuffle_buffer, one_hot, shard: as in
                :func:`~tfpilot.data.pipeline.make_pipeline`.
        """
        self._check_options(one_hot, shard)
        return pipelines.batches(lambda index: self._source(split, index), self._decoder(split),
                                 len(self.splits[split]), batch_size, training=training, seed=seed,
                                 shuffle_buffer=shuffle_buffer, one_hot=one_hot, cache=self.cache, shard=shard)

    def train_stream(self, batch_size: int, epochs: tuple[int, int], *, seed: int = 42, shuffle_buffer: int = 60_000,
                     steps_per_epoch: int | None = None, balanced: bool = False, one_hot: int | None = None,
                     shard: tuple[int, int] | None = None, replicas: int = 1,
                     maps: Sequence[Callable[[Any], Any]] = ()) -> Any:
        """The training batches of epochs ``[start, end)``, each epoch shuffled with a seed from
        ``(seed, epoch)`` (:func:`~tfpilot.data.pipeline.epoch_stream`).

        Args:
            batch_size: examples per batch (distributed: the global batch).
            epochs: ``(start, end)`` epoch numbers (0-based, end exclusive).
            seed, shuffle_buffer: the base shuffle seed and the buffer size.
            steps_per_epoch: batches per epoch, if not one pass over the data.
            balanced: draw every class of the class head (:meth:`class_head`) equally often.
            one_hot: if set, labels become one-hot vectors of this many classes.
            shard: ``(num_workers, index)``: this worker's share of every epoch.
            replicas: this worker's replicas; with ``shard`` or several, the stream is its
                per-replica batches (:func:`~tfpilot.data.pipeline.distributed_batches`).
            maps: dataset transforms (augmentation, sample weights) applied to the batched
                stream, in order, before prefetching.
        """
        import tensorflow as tf

        self._check_options(one_hot, shard)
        labels = self.targets("train")[self.class_head("data.balanced_sampling").key] if balanced else None
        ds = pipelines.epoch_stream(lambda index: self._source("train", index), labels, len(self.splits["train"]),
                                    batch_size, epochs, seed=seed, shuffle_buffer=shuffle_buffer,
                                    decode=self._decoder("train"), steps_per_epoch=steps_per_epoch, shard=shard,
                                    replicas=replicas)
        if one_hot:
            ds = ds.map(lambda x, y: (x, tf.one_hot(y, one_hot)), num_parallel_calls=tf.data.AUTOTUNE)
        for transform in maps:
            ds = transform(ds)
        return pipelines._finish(ds)

    def evaluate(self, model: Any, *, batch_size: int, top_k: int) -> dict[str, Any]:
        """The metrics of ``model`` on val and test (a classifier's; a table's per head).

        Args:
            model: the trained model.
            batch_size: examples per prediction batch.
            top_k: k of the top-k accuracy.

        Returns:
            split name -> its metrics (splits that are absent or empty are left out).
        """
        return {split: self._metrics(model, split, batch_size, top_k) for split in ("val", "test")
                if len(self.splits.get(split, ()))}


def class_head(spec: TableSpec, name: str | None, option: str) -> FeatureSpec:
    """The class head (category or binary) that ``option`` acts on: the one called ``name``
    (``train.class_head``), else the only one.

    Args:
        spec: the model's spec (a classifier's: one category head).
        name: ``train.class_head``, or None.
        option: the config key asking (named in the errors).

    Raises:
        ValueError: no class head, several and none named, or ``name`` is a number head.

    Example:
        >>> spec = TableSpec((FeatureSpec("x", "number"),), (FeatureSpec("y", "category", classes=("a", "b")),))
        >>> class_head(spec, None, "train.class_weight").key
        'y'
    """
    heads = [o for o in spec.outputs if o.kind in ("category", "binary")]
    if name is not None:
        head = spec.output(name)
        if head not in heads:
            raise UserError(f"{option}: train.class_head {name!r} is a {head.kind} head; name a category or "
                            "binary head")
        return head
    if len(heads) == 1:
        return heads[0]
    names = ", ".join(repr(o.name) for o in heads or spec.outputs)
    if not heads:
        raise UserError(f"{option} needs a category or binary head, and the outputs {names} are numbers: "
                        f"remove {option} or add a category output")
    raise UserError(f"{option}: the table has several class heads ({names}): name one with train.class_head")


@dataclass
class PreparedData(RunData):
    """A classifier's dataset with its final train/val/test splits, ready for pipelines.

    Attributes:
        dataset: the loaded dataset, its ``splits`` final.
        manifest: the ``split.json`` record of the splits (see :mod:`tfpilot.data.manifest`).
        recorded: the splits were rebuilt from a run's record, not split afresh.
    """

    dataset: RawDataset
    manifest: dict[str, Any]
    recorded: bool = False
    features = None  # a classifier has no features section

    # what the loaded dataset holds
    splits = property(lambda self: self.dataset.splits)
    num_classes = property(lambda self: self.dataset.num_classes)
    class_names = property(lambda self: self.dataset.class_names)
    input_spec = property(lambda self: self.dataset.input_spec)
    report = property(lambda self: self.dataset.report)

    @property
    def spec(self) -> TableSpec:
        """The classifier as a table: one input (``images`` or ``text``), one category head ``label``."""
        return classifier_spec(self.input_spec, self.class_names)

    def targets(self, split: str) -> dict[str, np.ndarray]:
        """Head key -> the class ids of ``split`` (one head: ``label``)."""
        return {CLASSIFIER_HEAD: self.splits[split].y}

    def model_args(self) -> dict[str, Any]:
        """The zoo model builder's arguments besides ``model.params``: the input and the classes."""
        return {"input_spec": self.input_spec, "num_classes": self.num_classes}

    def adapt(self, model: Any) -> None:
        """Adapt the in-model preprocessing (text vocabularies, patch whitening) on the training
        split only.

        Args:
            model: the built classifier.
        """
        from tfpilot.models.airbench import adapt_whitening
        from tfpilot.models.text_layers import adapt_preprocessing

        adapt_preprocessing(model, self.splits["train"])
        adapt_whitening(model, self.splits["train"].x)

    def _source(self, split: str, index: np.ndarray | None) -> Any:
        return pipelines._source(self.splits[split], index)

    def _decoder(self, split: str) -> Any:
        return pipelines._decoder(self.splits[split], **self.input_spec.decode_target())

    def _metrics(self, model: Any, split: str, batch_size: int, top_k: int) -> dict[str, Any]:
        from tfpilot.metrics import classification_metrics, predict_probabilities

        y, probs = predict_probabilities(model, self.pipeline(split, batch_size, training=False))
        return classification_metrics(y, probs, self.class_names, k=top_k)

    def sample(self, examples: int, batch_size: int, seed: int) -> Any:
        """A fixed, seeded sample of the train split as batches
        (:func:`~tfpilot.data.pipeline.make_sample_pipeline`).

        Args:
            examples: at most this many examples.
            batch_size: examples per batch.
            seed: the sample's seed.
        """
        return pipelines.make_sample_pipeline(self.splits["train"], examples, batch_size, seed,
                                    **self.input_spec.decode_target())

    def labels_record(self, dataset: str, model: str) -> dict[str, Any]:
        """The run's ``labels.json``: class names, the input spec, the dataset and the model.

        Args:
            dataset: ``data.dataset`` of the run.
            model: ``model.name`` of the run.
        """
        return {"class_names": self.class_names, "input": self.input_spec.to_dict(), "dataset": dataset,
                "model": model}

    def save_extra_files(self, directory: str | Path) -> list[Path]:
        """Files this kind of data keeps in a run besides the common ones: none.

        Args:
            directory: the run directory.
        """
        return []


def prepare_data(
    cfg: DataConfig, manifest: Mapping[str, Any] | None = None, splits: Collection[str] | None = None
) -> PreparedData:
    """Load the dataset and make deterministic, stratified train/val/test splits -- or, given
    a run's ``manifest`` (its ``split.json``), rebuild exactly the splits it records.

    * No test split in the source: ``test_split`` and ``val_split`` of the data are held
      out (70/20/10 with ``val_split=0.2, test_split=0.1``, seed 002's recipe).
    * No val split: ``val_split`` of train is held out.
    * Files are split by a hash of their relative path and texts by a hash of their
      content (adding files never moves others); built-in arrays per class
      (:mod:`tfpilot.data.splits`).
    * ``train_limit``/``test_limit`` take class-balanced subsets (for quick runs).
    * ``image_size``/``color_mode`` resize / convert built-in arrays as image files are.

    Args:
        cfg: the data config.
        manifest: a run's recorded split; then no new split is made.
        splits: with ``manifest``, rebuild only these recorded splits (default: all).

    Raises:
        RecordedSplitError: a recorded example is missing, changed or relabelled.
    """
    ds = load_dataset(cfg)
    recorded = manifest is not None
    if manifest is None:
        manifest = _split_afresh(ds, cfg)
        _note_missing_classes(ds)  # (a recorded split was reported when it was made)
    else:
        apply_manifest(ds, manifest, splits)
    conform_images(ds, cfg)
    ds.report.split_sizes = {k: len(v) for k, v in ds.splits.items()}
    ds.report.class_counts = ds.class_counts()
    return PreparedData(ds, dict(manifest), recorded=recorded)


def _note_missing_classes(ds: RawDataset) -> None:
    """Say (log and data report) which classes a val/test split has no example of: their
    per-class metrics are undefined and the split's accuracy says nothing about them."""
    for name, split in ds.splits.items():
        if name == "train" or not len(split):
            continue
        missing = [ds.class_names[k] for k in sorted(set(range(len(ds.class_names))) - set(np.unique(split.y)))]
        if missing:
            message = (f"the {name} split has no example of {len(missing)} class(es): {', '.join(missing[:10])}"
                       f"{' ...' if len(missing) > 10 else ''}; add examples of them (or raise "
                       f"data.{'test' if name == 'test' else 'val'}_split) to measure them")
            log.warning("%s", message)
            ds.report.note(message)


def _split_afresh(ds: RawDataset, cfg: DataConfig) -> dict[str, Any]:
    """Split ``ds`` (in place) as ``cfg`` says; returns the ``split.json`` record."""
    splits = dict(ds.splits)
    sources = {name: name for name in splits}
    if cfg.train_limit:
        train = splits["train"]
        splits["train"] = train.take(limit_stratified(train.y, cfg.train_limit, cfg.split_seed,
                                                      split_keys(ds, train)))
    fractions = {}
    val_split = cfg.val_split if cfg.val_split is not None else (0.1 if "test" in splits else 0.2)
    if "val" not in splits and val_split > 0:
        fractions["val"] = val_split
    if "test" not in splits and cfg.test_split > 0:
        fractions["test"] = cfg.test_split
    if fractions:
        source = splits["train"]
        keys = split_keys(ds, source)
        if keys is None:
            parts = stratified_split(source.y, fractions, cfg.split_seed)
        else:
            parts = hash_split(keys, source.y, fractions, cfg.split_seed)
        for name, index in parts.items():
            splits[name] = source.take(index)
            sources[name] = "train"
    if cfg.test_limit and "test" in splits:
        test = splits["test"]
        splits["test"] = test.take(limit_stratified(test.y, cfg.test_limit, cfg.split_seed, split_keys(ds, test)))
    ds.splits = splits
    return build_manifest(ds, cfg.dataset, cfg.split_seed, sources, fractions)


def conform_images(ds: RawDataset, cfg: DataConfig) -> None:
    """Honour ``data.image_size`` / ``data.color_mode`` for in-memory image arrays (built-ins).

    Image files are already decoded at that size and mode by their loader; arrays are
    resized / converted here, after the split, the same way (:func:`convert_images`).

    Raises:
        ValueError: ``image_size`` or ``color_mode`` set for a text dataset.
    """
    spec = ds.input_spec
    if spec.kind != "image":
        if cfg.image_size or cfg.color_mode != "auto":
            raise UserError(
                f"data.image_size / data.color_mode apply to images, but {cfg.dataset!r} is a {spec.kind} dataset: "
                "remove them from the config"
            )
        return
    size = tuple(cfg.image_size) if cfg.image_size else spec.image_size
    channels = {"grayscale": 1, "rgb": 3}.get(cfg.color_mode, spec.channels)
    if (tuple(size), channels) == (tuple(spec.image_size), spec.channels):
        return
    est = sum(len(s) for s in ds.splits.values()) * size[0] * size[1] * channels
    if est > cfg.cache_max_gb * 2**30:
        log.warning("resizing %s to %dx%dx%d holds %.1f GB in memory (over data.cache_max_gb)",
                    ds.name, size[0], size[1], channels, est / 2**30)
    for name, split in ds.splits.items():
        if split.x is None:
            raise UserError(f"{ds.name}: split {name!r} holds file paths decoded at {spec.shape}; set "
                            "data.image_size / color_mode before loading it")
        split.x = convert_images(split.x, size, channels)
    ds.input_spec = InputSpec.image(size[0], size[1], channels)
