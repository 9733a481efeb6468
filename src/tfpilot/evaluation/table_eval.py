"""Evaluating a table model (a run with a ``features`` section): metrics per head.

The run's own table is read and split exactly as training did (same resolved config,
same seed; the members are checked against ``split.json``); another table (``--dataset``)
must have the same target columns, and its rows are evaluated with the run's class order.

Example:
    >>> from tfpilot.evaluation.table_eval import evaluate_table
    >>> result = evaluate_table("runs/multitask-table")  # doctest: +SKIP
    >>> result["heads"]["price"]["mae"]  # doctest: +SKIP
    1.93
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config import load_config
from tfpilot.data.columns import out_of_vocabulary
from tfpilot.data.table_io import is_table_run
from tfpilot.runs import SPLIT, Run
from tfpilot.spec import TableSpec

log = logging.getLogger(__name__)


def table_run_data(run: Run, dataset: str | None = None, data_dir: str | Path | None = None) -> Any:
    """The run's table split as training split it (or ``dataset``'s), with targets encoded
    in the model's class order and images decoded at the size the model takes.

    Raises:
        ValueError: the run's own table changed since training (other split members), or
            ``dataset`` has target classes the model does not know.
    """
    from tfpilot.data.table import prepare_table

    cfg = load_config(run.config_file)
    spec = TableSpec.from_dict(run.labels["input"])
    update: dict[str, Any] = {k: str(v) for k, v in {"dataset": dataset, "data_dir": data_dir}.items() if v}
    sizes = {tuple(c.shape[:2]) for c in spec.inputs if c.kind == "image"}
    if sizes:
        update["image_size"] = list(next(iter(sizes)))
    cfg = cfg.model_copy(update={"data": load_config({"data": {**cfg.data.model_dump(mode="json"), **update}}).data})
    data = prepare_table(cfg)
    if dataset is None:
        recorded = json.loads(run.file(SPLIT).read_text(encoding="utf-8"))["splits"]
        if recorded != json.loads(json.dumps(data.manifest))["splits"]:
            raise ValueError(f"the table of {run.path} changed since training: its rows no longer split into the "
                             "members recorded in split.json. Evaluate on it as another dataset (--dataset PATH)")
    for out in spec.outputs:
        if out.kind == "number":
            continue
        have = data.spec.output(out.name).classes
        unknown = sorted(set(have) - set(out.classes))
        if unknown:
            raise ValueError(f"target {out.name!r} has classes the model never saw: {', '.join(unknown[:10])}; "
                             f"it knows {', '.join(out.classes)}")
        remap = np.array([out.classes.index(c) for c in have], dtype=np.int64)
        for part in data.splits.values():
            codes = remap[part.targets[out.key].astype(np.int64)]
            part.targets[out.key] = codes.astype(part.targets[out.key].dtype)
    data.spec = spec
    return data


def _all_rows(data: Any) -> Any:
    from tfpilot.data.table import TableSplit

    parts = list(data.splits.values())
    return TableSplit({k: np.concatenate([p.inputs[k] for p in parts]) for k in parts[0].inputs},
                      {k: np.concatenate([p.targets[k] for p in parts]) for k in parts[0].targets},
                      np.concatenate([p.ids for p in parts]),
                      {k: np.concatenate([p.paths[k] for p in parts]) for k in parts[0].paths})


def evaluate_table(run_dir: str | Path, dataset: str | None = None, split: str = "test",
                   data_dir: str | Path | None = None, batch_size: int = 256, save: bool = True,
                   namer: Callable[[str | None, str, bool], str] | None = None) -> dict[str, Any]:
    """Per-head metrics of a table run on ``split`` ("test", "val", "train", or "all" rows).

    ``namer(dataset, split, recorded)`` names the saved file (``tfpilot.evaluation.evaluate``
    passes its ``evaluation_name``; default: the split, or ``<dataset>-<split>``).

    Returns:
        ``{"num_examples", "heads": {output: metrics}, "out_of_vocabulary": {column: n},
        "evaluated_on": {...}}``; saved as ``RUN/evaluations/<name>.json`` when ``save``.
    """
    from tfpilot.data.table_pipeline import predict_heads
    from tfpilot.metrics.heads import baselines, head_metrics

    run = Run(run_dir)
    cfg = load_config(run.config_file)
    data = table_run_data(run, dataset, data_dir)
    if split == "all":
        part = _all_rows(data)
    elif split in data.splits and len(data.splits[split]):
        part = data.splits[split]
    else:
        raise ValueError(f"the table has no {split!r} rows; it has {sorted(data.splits)} (or use --split all)")
    spec = data.spec
    outputs = predict_heads(run.load_model(), part, spec, batch_size)
    base = baselines(spec, data.splits["train"].targets) if dataset is None else None
    result = head_metrics(spec, part.targets, outputs, base, top_k=cfg.train.top_k)
    oov = {c.name: out_of_vocabulary(part.inputs[c.key], c.classes) for c in spec.inputs if c.kind == "category"}
    result["out_of_vocabulary"] = {k: v for k, v in oov.items() if v}
    recorded = dataset is None and split != "all"
    result["evaluated_on"] = {"dataset": str(dataset or cfg.data.dataset), "split": split,
                              "recorded_split": recorded, "skipped_rows": len(data.report.skipped)}
    if save:
        record = {**result, "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        name = namer(dataset, split, recorded) if namer else (split if recorded else f"{Path(str(dataset)).name}-{split}")
        path = run.save_evaluation(name, record)
        result["evaluated_on"]["saved_to"] = str(path)
    return result

__all__ = ["evaluate_table", "is_table_run", "table_run_data"]
