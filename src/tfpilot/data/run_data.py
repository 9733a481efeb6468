"""A run's data, as the run recorded it: the one place every reader of a run gets its data.

``evaluate``, ``report``, ``export`` (int8 calibration, the export gate), ``verify``,
``benchmark``, ``prune`` and ``ensemble`` call :func:`load_run_data`: with the run's own
dataset it rebuilds exactly the members of ``split.json`` (never a fresh split), and fails
with a :class:`~tfpilot.data.manifest.RecordedSplitError` naming the files when some are
missing or changed. Another dataset (``--dataset``) is prepared afresh -- evaluating on new
data is legitimate -- and :func:`training_overlap` says which of its examples the model
was trained on.

Example:
    >>> from tfpilot.data import load_run_data
    >>> data = load_run_data("runs/mnist_cnn-mnist-20260101-120000", splits=["test"])  # doctest: +SKIP
    >>> data.recorded, len(data.splits["test"])  # doctest: +SKIP
    (True, 10000)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from tfpilot.config import load_config
from tfpilot.data.manifest import content_digests, dataset_kind
from tfpilot.data.registry import DATASETS, PreparedData, prepare_data
from tfpilot.errors import NotFoundError, UserError
from tfpilot.runs import SPLIT, Run
from tfpilot.spec import InputSpec

log = logging.getLogger(__name__)


def same_dataset(a: str, b: str) -> bool:
    """Whether two ``data.dataset`` values name the same dataset (a name, or the same path).

    Example:
        >>> same_dataset("mnist", "mnist"), same_dataset("mnist", "digits")
        (True, False)
    """
    if a == b:
        return True
    if a in DATASETS or b in DATASETS:
        return False
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and os.path.realpath(pa) == os.path.realpath(pb)


def recorded_manifest(run: Run) -> dict[str, Any]:
    """The run's ``split.json``.

    Raises:
        FileNotFoundError: the run has none (then which examples it held out is unknown).
    """
    import json

    path = run.file(SPLIT)
    if not path.is_file():
        raise NotFoundError(
            f"{run.path} has no {SPLIT}, so which examples it trained and tested on is unknown: evaluate it on "
            "other data explicitly (--dataset), or retrain it"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def load_run_data(
    run: str | Path | Run,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    splits: Collection[str] | None = None,
) -> PreparedData:
    """The run's data with its recorded splits, or ``dataset`` prepared for the run's model.

    Images are decoded (or resized) at the size and channels the model takes.

    Args:
        run: the run directory (or :class:`~tfpilot.runs.Run`).
        dataset: another dataset (a name or a path) with the same classes; None, or the
            run's own dataset, gives the recorded splits (``data.recorded`` is True; a run
            without split.json gets a fresh split, with a warning, and ``recorded`` False).
        data_dir: where to look for dataset files first.
        splits: rebuild only these recorded splits (default: all; saves reading train).

    Raises:
        RecordedSplitError: recorded examples are missing, changed or relabelled.
        ValueError: the data's classes or input shape do not fit the model.
    """
    run = run if isinstance(run, Run) else Run(run)
    cfg = load_config(run.config_file)
    spec = InputSpec.from_dict(run.labels["input"])
    update: dict[str, Any] = {k: v for k, v in {"dataset": dataset, "data_dir": data_dir}.items() if v}
    if spec.kind == "image":  # decode files at the size and channels the model takes
        update["image_size"] = list(spec.image_size)
        update["color_mode"] = "grayscale" if spec.channels == 1 else "rgb"
    data_cfg = load_config({"data": {**cfg.data.model_dump(mode="json"), **update}}).data
    own = dataset is None or same_dataset(str(dataset), cfg.data.dataset)
    if own and run.file(SPLIT).is_file():
        data = prepare_data(data_cfg, manifest=recorded_manifest(run), splits=splits)
    else:
        if own:  # a run assembled by hand (or by an old tool): nothing recorded to rebuild
            log.warning("%s has no %s: splitting %s afresh from config.yaml, so the examples may include ones "
                        "the model was trained on", run.path, SPLIT, data_cfg.dataset)
        data = prepare_data(data_cfg)
    if data.class_names != run.class_names:
        raise UserError(
            f"dataset {data_cfg.dataset!r} has classes {data.class_names}, but the model was trained on "
            f"{run.class_names}: use data with the same classes"
        )
    if data.input_spec.shape != spec.shape:
        raise UserError(
            f"dataset {data_cfg.dataset!r} gives inputs of shape {data.input_spec.shape}, but the model "
            f"takes {spec.shape}"
        )
    return data


def training_overlap(
    data: PreparedData, manifest: Mapping[str, Any], split: str, against: Collection[str] = ("train", "val")
) -> dict[str, list[str]]:
    """Examples of ``data.splits[split]`` whose content is in the run's recorded ``against`` splits.

    Content is compared (file bytes, or texts), so a copy of the training folder, a CSV
    listing training images or a duplicate all count. Arrays have no per-example digests:
    nothing is reported for them.

    Returns:
        recorded split -> ids (of ``data``'s examples) found in it; only non-empty entries.

    Example:
        >>> training_overlap(other, recorded_manifest(run), "test")  # doctest: +SKIP
        {'train': ['/data/shapes/circle/0001.png']}
    """
    recorded = manifest.get("digests") or {}
    if not recorded or dataset_kind(data.dataset) != manifest.get("kind"):
        return {}
    part = data.splits[split]
    digests = content_digests(data.dataset, part) or []
    out: dict[str, list[str]] = {}
    for name in against:
        seen = set(recorded.get(name, []))
        hits = [str(i) for i, d in zip(part.ids, digests) if d in seen]
        if hits:
            out[name] = hits
    return out
