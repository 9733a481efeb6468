"""Table datasets: a table in, the resolved schema and train/val/test splits of model values out.

:func:`prepare_table` reads the table (:mod:`tfpilot.data.table_io`), resolves every
column's type (declared in ``features`` or inferred, :mod:`tfpilot.data.columns`), turns
the cells into what the model takes (uint8 pixels decoded from image paths, strings,
float32 with NaN for missing numbers) and the targets into what the losses take (class
ids, 0/1, floats), and splits the rows by a hash of each row's content or id
(:mod:`tfpilot.data.table_split`: adding rows never moves another row, duplicate rows
share a split; stratified in expectation). Category vocabularies and every statistic the
model learns come from the training split only.

Rows are dropped, never silently: a missing target, a missing or unreadable image file
-- each is listed in ``data_report.json`` with its row number (1-based, header not counted).

Example:
    >>> import tempfile
    >>> from tfpilot.config import load_config
    >>> from tfpilot.testing.table import make_table
    >>> path = make_table(tempfile.mkdtemp(), rows=40)
    >>> data = prepare_table(load_config({"data": {"dataset": str(path)}, "features": {"outputs": ["kind", "price"]}}))
    >>> [(f.name, f.kind) for f in data.spec.inputs]
    [('photo', 'image'), ('title', 'text'), ('size', 'number'), ('colour', 'category')]
    >>> sorted(data.splits), len(data.splits["train"]) + len(data.splits["val"]) + len(data.splits["test"])
    (['test', 'train', 'val'], 40)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config.features import FeaturesConfig
from tfpilot.data import columns as C
from tfpilot.data.manifest import RecordedSplitError
from tfpilot.data.registry import RunData, prepare_data
from tfpilot.data.report import DataReport
from tfpilot.data.splits import limit_stratified
from tfpilot.data.table_io import LoadedTable, load_table
from tfpilot.data.table_split import (TableSplit, check_id_column, fingerprint, fold_rows, recorded_rows, row_keys,
                                      split_by, split_rows)
from tfpilot.errors import UserError
from tfpilot.spec import FeatureSpec, TableSpec, column_key

log = logging.getLogger(__name__)

SCHEMA_FILE = "schema.yaml"


@dataclass
class ColumnInfo:
    """One column of the resolved schema: its role, type, and whether it was declared or inferred."""

    name: str
    role: str  # input, output, or skipped
    kind: str
    how: str  # "declared" or the inference's reason

    def line(self) -> str:
        return f"{self.role} {self.name}: {self.kind} ({self.how})"


@dataclass
class TableData(RunData):
    """A table ready for training: its spec, resolved features, splits and report.

    A :class:`~tfpilot.data.registry.RunData` like a classifier's data, with ``(dict of columns,
    dict of targets)`` batches and per-head metrics.
    """

    spec: TableSpec
    features: FeaturesConfig
    splits: dict[str, TableSplit]
    report: DataReport
    manifest: dict[str, Any]
    schema: list[ColumnInfo]
    source: str
    base: Path

    class_head_name: str | None = None  # train.class_head

    input_spec = property(lambda self: self.spec)
    class_names = ()  # classes are per head (spec.outputs[].classes), not of the run
    num_classes = 0

    def targets(self, split: str) -> dict[str, np.ndarray]:
        """Output key -> the encoded targets of ``split``."""
        return self.splits[split].targets

    def model_args(self) -> dict[str, Any]:
        """The model builder's arguments besides ``model.params``: the spec, and each column's
        encoder settings (``features.inputs[].encoder``) by key."""
        encoders = {column_key(f.name): f.encoder.model_dump() for f in self.features.inputs or []}
        return {"input_spec": self.spec, "num_classes": 0, "encoders": encoders}

    def adapt(self, model: Any) -> None:
        """Learn vocabularies, normalisation and target statistics from the training split only.

        Args:
            model: the built table model.
        """
        from tfpilot.models.multitask import adapt_table_model

        train = self.splits["train"]
        normalize = {column_key(o.name): o.normalize for o in self.features.outputs}
        adapt_table_model(model, self.spec, train.inputs, train.targets, normalize)

    # -- what RunData's pipelines read ----------------------------------------------------------
    cache = False  # image columns held as paths are decoded batch by batch, not kept

    def _check_options(self, one_hot: int | None, shard: tuple[int, int] | None) -> None:
        if one_hot:
            raise UserError("table pipelines do not make one-hot labels: a category head one-hots its own "
                            "(train.label_mode: one_hot)")

    def _source(self, split: str, index: np.ndarray | None) -> Any:
        import tensorflow as tf

        from tfpilot.data.table_pipeline import _tensors

        part = self.splits[split]
        return tf.data.Dataset.from_tensor_slices(_tensors(part if index is None else part.take(index), self.spec))

    def _decoder(self, split: str) -> Any:
        from tfpilot.data.table_pipeline import _decoder

        return _decoder(self.splits[split], self.spec)

    def _metrics(self, model: Any, split: str, batch_size: int, top_k: int) -> dict[str, Any]:
        """Per-head metrics of ``split``, each beside its trivial baseline (training mean / majority)."""
        from tfpilot.data.table_pipeline import predict_heads
        from tfpilot.metrics.heads import baselines, head_metrics

        part = self.splits[split]
        outputs = predict_heads(model, part, self.spec, batch_size)
        return head_metrics(self.spec, part.targets, outputs, baselines(self.spec, self.splits["train"].targets),
                            top_k=top_k)

    def sample(self, examples: int, batch_size: int, seed: int) -> Any:
        """A fixed, seeded sample of at most ``examples`` training rows (in table order) as batches.

        Args:
            examples: at most this many rows.
            batch_size: rows per batch.
            seed: the sample's seed.
        """
        from tfpilot.data.table_pipeline import table_pipeline

        split = self.splits["train"]
        index = np.sort(np.random.default_rng(seed).permutation(len(split))[:examples])
        return table_pipeline(split.take(index), self.spec, batch_size, training=False)

    def labels_record(self, dataset: str, model: str) -> dict[str, Any]:
        """The run's ``labels.json``: the task, the table spec, the dataset and the model.

        Args:
            dataset: ``data.dataset`` of the run.
            model: ``model.name`` of the run.
        """
        return {"task": "table", "class_names": [], "input": self.spec.to_dict(), "dataset": dataset,
                "model": model}

    def save_extra_files(self, directory: str | Path) -> list[Path]:
        """Write the files a table run keeps besides the common ones: ``schema.yaml``.

        Args:
            directory: the run directory.
        """
        return [self.save_schema(Path(directory) / SCHEMA_FILE)]

    def schema_text(self) -> str:
        """The resolved schema as printed by ``tfpilot train``."""
        lines = [f"table schema of {self.source} ({sum(len(s) for s in self.splits.values())} rows used):"]
        return "\n".join(lines + ["  " + c.line() for c in self.schema])

    def save_schema(self, path: str | Path) -> Path:
        """Write the resolved ``features`` section as a config file to edit and pass back
        (``tfpilot train schema.yaml --dataset TABLE``)."""
        import yaml

        path = Path(path)
        head = [f"# The table schema tfpilot resolved for {self.source}.",
                "# Edit it and train with it: tfpilot train schema.yaml --dataset TABLE",
                *[f"#   {c.line()}" for c in self.schema]]
        features = self.features.model_dump(mode="json", exclude_defaults=True)
        body = yaml.safe_dump({"features": features}, sort_keys=False)
        path.write_text("\n".join(head) + "\n" + body, encoding="utf-8")
        return path


# -- schema ------------------------------------------------------------------------------------
def resolve_features(frame: Any, features: FeaturesConfig, base: Path, id_column: str | None = None
                     ) -> tuple[FeaturesConfig, list[ColumnInfo]]:
    """Every feature with its type: declared ones checked, ``auto`` ones inferred; inputs
    default to every column that is not an output (identifier columns, and ``id_column``
    that keys the split, left out).

    Raises:
        KeyError: a feature names a column the table lacks (with a did-you-mean).
        ValueError: a setting that does not fit the resolved type, or two columns that
            map to the same model name.
    """
    columns = list(frame.columns)
    features.check_columns(columns)
    info: list[ColumnInfo] = []
    outputs = []
    for out in features.outputs:
        if out.type == "auto":
            found = C.infer_type(frame[out.name], "output")
            out = out.model_copy(update={"type": found.kind})
            out.check_loss(found.kind)
            how = found.reason
        else:
            how = "declared"
        outputs.append(out)
        info.append(ColumnInfo(out.name, "output", out.type, how))
    declared = features.inputs
    names = [i.name for i in declared] if declared is not None else [c for c in columns
                                                                      if c not in {o.name for o in outputs}]
    if declared is None and id_column in names:
        names.remove(id_column)
        info.append(ColumnInfo(id_column, "skipped", "-", "the split's id column (data.id_column)"))
    by_name = {i.name: i for i in declared or []}
    from tfpilot.config.features import InputFeature

    inputs = []
    for name in names:
        feat = by_name.get(name) or InputFeature(name=name)
        if feat.type == "date" or feat.format is not None:
            feat, how = _date_feature(feat, frame[name])
        elif feat.type == "auto":
            found = C.infer_type(frame[name], "input", base)
            if found.kind == "skip":
                if declared is None:
                    info.append(ColumnInfo(name, "skipped", "-", found.reason))
                    continue
                found = C.Inferred("number" if C.is_numeric(frame[name]) else "category", "declared, type inferred")
            feat.check_encoder(found.kind)
            feat = feat.model_copy(update={"type": found.kind, "format": found.format})
            how = found.reason
        else:
            how = "declared"
        inputs.append(feat)
        info.append(ColumnInfo(name, "input", feat.type, how))
    if not inputs:
        raise UserError("the table has no input column left besides the outputs: add columns or list features.inputs")
    keys: dict[str, str] = {}
    for f in [*inputs, *outputs]:
        key = column_key(f.name)
        if key in keys and keys[key] != f.name:
            raise UserError(f"columns {keys[key]!r} and {f.name!r} both map to the model name {key!r}: rename one")
        keys[key] = f.name
    return FeaturesConfig(inputs=inputs, outputs=outputs), info


def _date_feature(feat: Any, series: Any) -> tuple[Any, str]:
    """A date input with its format: the one set (checked), else the one recognised in its cells."""
    from tfpilot.data.dates import detect_format, parse_format

    feat.check_encoder("date")
    if feat.format is not None:
        parse_format(feat.format)
        return feat.model_copy(update={"type": "date"}), f"declared, read as {feat.format}"
    found = detect_format(C.present_strings(series))
    if found is None:
        raise UserError(f"column {feat.name!r} is declared a date, but its cells are not dates tfpilot recognises "
                        f"(e.g. {str(series.dropna().iloc[0])[:30]!r}): set features.inputs[{feat.name}].format "
                        "(e.g. %d/%m/%Y)")
    return feat.model_copy(update={"type": "date", "format": found[0]}), f"declared, read as {found[0]} ({found[1]})"


# -- rows -> values ----------------------------------------------------------------------------
def _drop(frame: Any, keep: np.ndarray, report: DataReport, reason: str) -> Any:
    for i in np.flatnonzero(~keep):
        report.skip(f"row {int(frame.index[i]) + 1}", reason)
    return frame[keep]


def _strata(targets: dict[str, np.ndarray], outputs: list[Any], quantiles: bool = True) -> np.ndarray:
    """Labels to stratify by: the first class target, else quintiles of the first number
    (one stratum without ``quantiles``: the hash split needs no number strata)."""
    for o in outputs:
        if o.type in ("category", "binary"):
            return targets[column_key(o.name)].astype(np.int64)
    values = targets[column_key(outputs[0].name)]
    if not quantiles:
        return np.zeros(len(values), np.int64)
    edges = np.quantile(values, [0.2, 0.4, 0.6, 0.8])
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def _note_unread_dates(f: Any, values: np.ndarray, report: DataReport) -> None:
    """Say how many training dates are missing or unreadable by the column's format."""
    from tfpilot.data.dates import date_features

    unread = int(np.isnan(date_features(list(values), f.format)).any(axis=1).sum())
    if unread:
        report.note(f"column {f.name!r}: {unread} training date(s) missing or not readable as {f.format}, "
                    "imputed with the training mean (plus a missing-indicator)")


def _image_inputs(frame: Any, name: str, base: Path, cfg: Any, report: DataReport
                  ) -> tuple[Any, np.ndarray, np.ndarray | None, tuple[int, int, int]]:
    """Resolve, check and decode one image column; rows whose image is missing or unreadable are dropped."""
    from tfpilot.data.images import decode_files, keep_decoded, probe_images

    cells = frame[name]
    present = cells.notna().to_numpy() & (cells.astype(str).str.strip() != "").to_numpy()
    frame = _drop(frame, present, report, f"no image path in column {name!r}")
    paths = np.array([str(C.resolve_path(str(v).strip(), base)) for v in frame[name]], dtype=object)
    exists = np.array([Path(p).is_file() for p in paths], dtype=bool)
    for i in np.flatnonzero(~exists):
        report.skip(paths[i], f"file not found (column {name!r}, row {int(frame.index[i]) + 1})")
    frame, paths = frame[exists], paths[exists]
    if not len(paths):
        raise UserError(f"column {name!r}: none of its image files exists (paths are relative to {base})")
    probed, channels, distinct = probe_images(list(paths))
    size = tuple(cfg.image_size) if cfg.image_size else probed
    if distinct > 1 and not cfg.image_size:
        report.note(f"column {name!r}: images have {distinct} sizes; resizing all to {size[0]}x{size[1]}")
    channels = {"grayscale": 1, "rgb": 3}.get(cfg.color_mode, channels)
    ok, pixels = decode_files(paths, size, channels, report,
                              keep_pixels=keep_decoded(cfg, len(paths), size, channels))
    return frame.iloc[ok], paths[ok], pixels, (size[0], size[1], channels)


def _targets(frame: Any, outputs: list[Any], report: DataReport) -> tuple[Any, dict[str, np.ndarray],
                                                                           dict[str, list[str]]]:
    classes: dict[str, list[str]] = {}
    for o in outputs:
        missing = frame[o.name].isna().to_numpy() | (frame[o.name].astype(str).str.strip() == "").to_numpy()
        frame = _drop(frame, ~missing, report, f"no value for the target {o.name!r}")
    ids = frame.index.to_numpy()
    targets: dict[str, np.ndarray] = {}
    for o in outputs:
        key = column_key(o.name)
        if o.type == "number":
            targets[key] = C.number_values(frame[o.name], o.name, ids)
            continue
        cells = C.category_strings(frame[o.name])
        names = C.sorted_classes(cells)
        if o.type == "binary" and len(names) != 2:
            raise UserError(f"target {o.name!r} is binary but has {len(names)} values ({', '.join(names[:5])}): "
                            "declare it a category")
        if len(names) < 2:
            raise UserError(f"target {o.name!r} has {len(names)} class; a classification head needs at least 2")
        index = {c: i for i, c in enumerate(names)}
        codes = np.array([index[c] for c in cells], dtype=np.int64)
        targets[key] = codes.astype(np.float32) if o.type == "binary" else codes
        classes[key] = names
    return frame, targets, classes


def prepare_table(cfg: Any, table: LoadedTable | None = None, manifest: dict[str, Any] | None = None) -> TableData:
    """Read, resolve, encode and split the table of a config with a ``features`` section.

    Args:
        cfg: the run :class:`~tfpilot.config.Config` (``data``, ``features`` and
            ``train.class_head`` are used).
        table: the table already read (default: read ``cfg.data.dataset``).
        manifest: a run's recorded split (``split.json``): the table's split must be the same.

    Raises:
        ValueError: the table's rows or split differ from ``manifest``'s.
    """
    d, recorded = cfg.data, manifest
    table = table or load_table(d.dataset, d)
    frame, base = table.frame, table.base
    check_id_column(frame, d.id_column)
    all_keys = row_keys(frame, d.id_column)
    features, schema = resolve_features(frame, cfg.features, base, d.id_column)
    report = DataReport(dataset=d.dataset, source=table.source)
    if d.id_column is not None:
        frame = _drop(frame, np.array([k != "" for k in all_keys], bool), report,
                      f"no value in the id column {d.id_column!r}")
    inputs, outputs = list(features.inputs or []), list(features.outputs)
    used = [f.name for f in inputs] + [o.name for o in outputs]
    frame = frame[used]

    # image key -> (paths, pixels or None, shape, row ids): later columns only drop rows,
    # so the final rows are found in every column's ids.
    images: dict[str, tuple[np.ndarray, np.ndarray | None, tuple[int, int, int], np.ndarray]] = {}
    for f in inputs:
        if f.type == "image":
            frame, paths, pixels, shape = _image_inputs(frame, f.name, base, d, report)
            images[column_key(f.name)] = (paths, pixels, shape, frame.index.to_numpy())
    frame, targets, classes = _targets(frame, outputs, report)
    ids = frame.index.to_numpy().astype(np.int64)
    if len(ids) < 3:
        raise UserError(f"{table.source}: only {len(ids)} usable rows (see data_report.json for the skipped ones)")

    values: dict[str, np.ndarray] = {}
    paths_by_key: dict[str, np.ndarray] = {}
    for f in inputs:
        key, col = column_key(f.name), frame[f.name]
        if f.type == "image":
            paths, pixels, _, img_ids = images[key]
            pos = np.searchsorted(img_ids, ids)
            paths_by_key[key] = paths[pos]
            values[key] = pixels[pos] if pixels is not None else paths[pos]
        elif f.type == "number":
            values[key] = C.number_values(col, f.name, ids)
        elif f.type in ("text", "date"):
            values[key] = C.text_values(col)
        else:
            values[key] = C.category_strings(col)
    whole = TableSplit(values, targets, ids, paths_by_key)

    keys = [all_keys[i] for i in ids]
    val = d.val_split if d.val_split is not None else 0.2
    fractions = {k: v for k, v in {"val": val, "test": d.test_split}.items() if v > 0}
    if recorded is not None:
        if recorded.get("split_by", split_by(d.id_column)) != split_by(d.id_column):
            raise RecordedSplitError(f"the run's split.json keys rows by {recorded['split_by']!r}, the config by "
                                     f"{split_by(d.id_column)!r}: set data.id_column as the run did")
        parts = recorded_rows(recorded, ids, keys, d.dataset)
    else:
        parts = split_rows(keys, _strata(targets, outputs, quantiles=bool(d.train_limit)), fractions,
                           d.split_seed, d.train_limit)
        if d.test_limit and "test" in parts:
            t = parts["test"]
            kept = limit_stratified(_strata(whole.take(t).targets, outputs), d.test_limit, d.split_seed,
                                    keys=[keys[i] for i in t])
            parts["test"] = t[kept]
    if d.cv_fold is not None and recorded is None:  # data.cv_fold: fold i of train + val validates, the rest trains
        parts = fold_rows(parts, keys, d.cv_fold, d.split_seed)
        if not len(parts["val"]):  # before any training: the fold would have nothing to validate on
            raise UserError(f"fold {d.cv_fold[0] + 1} of {d.cv_fold[1]} holds no rows of train + val to validate on "
                            f"({len(parts['train'])} rows dealt into {d.cv_fold[1]} folds, data.cv_fold): set "
                            "train.cv_folds to fewer folds, or 0")
        log.info("data.cv_fold %d of %d: %d rows train, %d validate (test unchanged)", d.cv_fold[0] + 1, d.cv_fold[1],
                 len(parts["train"]), len(parts["val"]))
    merged = bool(d.train_on_val and len(parts.get("val", ())))
    if merged:  # data.train_on_val: the same split, its validation rows trained on
        val_rows = parts.pop("val")
        parts["train"] = np.sort(np.concatenate([parts["train"], val_rows]))
        log.info("data.train_on_val: the %d validation rows join the training split (%d rows)", len(val_rows),
                 len(parts["train"]))
    splits = {name: whole.take(index) for name, index in parts.items() if name == "train" or len(index)}

    train = splits["train"]
    in_specs = []
    for f in inputs:
        key = column_key(f.name)
        vocab: tuple[str, ...] = ()
        shape: tuple[int, ...] = ()
        if f.type == "category":
            vocab = tuple(C.sorted_classes(train.inputs[key]))
            for name, s in splits.items():
                n = C.out_of_vocabulary(s.inputs[key], vocab)
                if name != "train" and n:
                    report.note(f"column {f.name!r}: {n} {name} value(s) unseen in training (out-of-vocabulary)")
        elif f.type == "image":
            shape = images[key][2]
        elif f.type == "date":
            _note_unread_dates(f, train.inputs[key], report)
        elif f.type == "number":
            missing = int(np.isnan(train.inputs[key]).sum())
            if missing:
                report.notes.append(f"column {f.name!r}: {missing} missing training value(s), imputed with the "
                                    "training mean (plus a missing-indicator)")
        in_specs.append(FeatureSpec(f.name, f.type, key, shape, vocab, f.format or ""))
    out_specs = tuple(FeatureSpec(o.name, o.type, column_key(o.name), (), tuple(classes.get(column_key(o.name), ())))
                      for o in outputs)
    spec = TableSpec(tuple(in_specs), out_specs)
    report.split_sizes = {k: len(v) for k, v in splits.items()}
    report.class_counts = {
        name: {f"{o.name}={c}": int(n) for o in out_specs if o.classes
               for c, n in zip(o.classes, np.bincount(s.targets[o.key].astype(np.int64), minlength=len(o.classes)))}
        for name, s in splits.items()}
    report.warn_skipped()
    manifest = {"dataset": d.dataset, "seed": d.split_seed, "held_out_of_train": fractions,
                "split_by": split_by(d.id_column), "splits": {k: v.ids.tolist() for k, v in splits.items()},
                "fingerprints": {k: fingerprint([keys[i] for i in parts[k]]) for k in splits}}
    if merged or (recorded or {}).get("train_includes_val"):
        manifest["train_includes_val"] = True
    fold = d.cv_fold if recorded is None else (recorded or {}).get("cv_fold")
    if fold is not None:
        manifest["cv_fold"] = list(fold)
    if recorded is not None:  # an older, positional split.json (no split_by, no fingerprints) stays as it was
        manifest = {k: v for k, v in manifest.items() if k in recorded}
    return TableData(spec, features, splits, report, manifest, schema, table.source, base, cfg.train.class_head)


def prepare_run_data(config: Any, manifest: dict[str, Any] | None = None) -> RunData:
    """The data of a run config: its table (a ``features`` section; its resolved schema is logged)
    or its classifier dataset, split afresh or exactly as ``manifest`` (a run's ``split.json``) records.

    Args:
        config: the run :class:`~tfpilot.config.Config`.
        manifest: a resumed run's recorded split; None for a new run.
    """
    if config.features is not None:
        table = prepare_table(config, manifest=manifest)
        log.info("%s", table.schema_text())
        return table
    return prepare_data(config.data, manifest=manifest)
