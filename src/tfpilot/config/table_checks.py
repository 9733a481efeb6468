"""Which options a table model (a config with ``features``) honours, and which it refuses.

A key the schema accepts is honoured or rejected: the classifier-only switches (image
augmentation, MixUp/CutMix, label smoothing, one-hot labels, class weights, balanced
sampling, fine-tuning stages, the text-table column guesses) have no meaning for a model
with several heads, so setting them with ``features`` is an error that says so.

Example:
    >>> from tfpilot.config import load_config
    >>> load_config({"features": {"outputs": ["y"]}, "train": {"label_smoothing": 0.1}})
    Traceback (most recent call last):
    ...
    tfpilot.config.loader.ConfigError: invalid configuration (1 problem):
      - (top level): train.label_smoothing: table models (a features section) do not use it: a loss per head is set in features.outputs[].loss
"""

from __future__ import annotations

from typing import Any

from tfpilot.registry import MODELS


def _refusals(cfg: Any) -> list[tuple[str, bool, str]]:
    d, t = cfg.data, cfg.train
    per_head = "a loss per head is set in features.outputs[].loss"
    return [
        ("data.augment", d.augment.enabled, "image augmentation runs on single-input pipelines only"),
        ("data.balanced_sampling", d.balanced_sampling, "balanced sampling needs one class label per row"),
        ("data.text_column", d.text_column is not None, "name the text column in features.inputs"),
        ("data.label_column", d.label_column is not None, "name the target in features.outputs (--target)"),
        ("train.label_smoothing", t.label_smoothing > 0, per_head),
        ("train.label_mode", t.label_mode == "one_hot", "category heads take integer labels"),
        ("train.class_weight", t.class_weight != "none", "class weights need a single class label per row"),
    ]


def check_table_config(cfg: Any) -> None:
    """Raise ValueError when a table config sets a classifier-only option, or when the
    model does not fit the config (a table model without features, or the reverse)."""
    tags = MODELS.entry(cfg.model.name).tags
    if cfg.features is None:
        if "table" in tags:
            raise ValueError(f"model {cfg.model.name!r} is a table model: give a features section with the "
                             "output columns (tfpilot train --dataset TABLE --target COLUMN)")
        return
    if "table" not in tags:
        raise ValueError(f"a features section trains a table model; model {cfg.model.name!r} is a "
                         f"{'/'.join(tags) or 'image'} classifier. Use model.name: "
                         f"{' or '.join(MODELS.list(tag='table'))} (image and text models go in "
                         "features.inputs[].encoder.model)")
    for key, is_set, why in _refusals(cfg):
        if is_set:
            raise ValueError(f"{key}: table models (a features section) do not use it: {why}")
