"""Evaluating a run on its test split, or on another dataset.

Example:
    >>> from tfpilot.evaluation import evaluate
    >>> result = evaluate("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> result["accuracy"]  # doctest: +SKIP
    0.9912
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfpilot.config import load_config
from tfpilot.metrics import classification_metrics, predict_probabilities
from tfpilot.runs import Run


def run_data(run: Run, dataset: str | None = None, data_dir: str | Path | None = None) -> Any:
    """The run's data, split exactly as training split it (same config and split seed), or
    ``dataset`` prepared the same way; images are decoded at the size the model takes.

    Raises:
        ValueError: when the data's inputs do not fit the model.
    """
    from tfpilot.data import prepare_data
    from tfpilot.spec import InputSpec

    cfg = load_config(run.config_file)
    model_spec = InputSpec.from_dict(run.labels["input"])
    update: dict[str, Any] = {k: v for k, v in {"dataset": dataset, "data_dir": data_dir}.items() if v}
    if model_spec.kind == "image":  # decode files at the size the model takes
        update["image_size"] = model_spec.image_size
    data_cfg = load_config({"data": {**cfg.data.model_dump(mode="json"), **update}}).data
    data = prepare_data(data_cfg)
    if data.input_spec.shape != model_spec.shape:
        raise ValueError(
            f"dataset {data_cfg.dataset!r} gives inputs of shape {data.input_spec.shape}, but the model "
            f"takes {model_spec.shape}"
        )
    return data


def evaluate(
    run_dir: str | Path,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | Path | None = None,
    batch_size: int = 256,
    save: bool = True,
) -> dict[str, Any]:
    """Metrics of a run's model on ``split`` of its dataset (or of ``dataset``).

    Args:
        run_dir: the run directory.
        dataset: another dataset (name or path) with the same classes; default: the run's.
        split: "test", "val" or "train".
        data_dir: where to look for dataset files first.
        batch_size: examples per model call.
        save: store the result in ``metrics.json`` under ``split`` (or ``"<dataset>:<split>"``).
    """
    from tfpilot.data import make_pipeline

    run = Run(run_dir)
    cfg = load_config(run.config_file)
    data = run_data(run, dataset, data_dir)
    name = dataset or cfg.data.dataset
    class_names = run.class_names
    if data.class_names != class_names:
        raise ValueError(
            f"dataset {name!r} has classes {data.class_names}, but the model was trained on "
            f"{class_names}: evaluate on data with the same classes"
        )
    if split not in data.splits:
        raise ValueError(f"dataset {name!r} has no {split!r} split; it has {sorted(data.splits)}")
    spec = data.input_spec
    decode = spec.decode_target()
    ds = make_pipeline(data.splits[split], batch_size, training=False, cache=False, **decode)
    y, probs = predict_probabilities(run.load_model(), ds)
    result = classification_metrics(y, probs, class_names, k=cfg.train.top_k)
    if save:
        key = split if dataset is None else f"{name}:{split}"
        run.update_metrics(key, result)
    return result
