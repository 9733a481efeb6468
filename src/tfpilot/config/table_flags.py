"""``--target COL`` / ``--input COL``: the command line's way to write a ``features`` section.

Example:
    >>> from tfpilot.config import load_config
    >>> cfg = with_columns(load_config({"data": {"dataset": "auto_mpg"}}), ["mpg"], [])
    >>> cfg.model.name, [o.name for o in cfg.features.outputs], cfg.features.inputs
    ('auto', ['mpg'], None)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfpilot.errors import UserError
from tfpilot.registry import MODELS


def with_columns(cfg: Any, targets: Sequence[str], inputs: Sequence[str], model_given: bool = False,
                 model: str | None = None, overrides: Sequence[str] = ()) -> Any:
    """``cfg`` with ``features.outputs`` set to ``targets`` and ``features.inputs`` to ``inputs``
    (columns already declared in the config keep their settings); the model becomes
    ``auto`` (the leaderboard of table models) unless a table model was chosen.

    Args:
        cfg: the validated config.
        targets: output columns (empty: keep the config's).
        inputs: input columns (empty: keep the config's, or every other column).
        model_given: ``--model`` was passed (then it is kept, and checked).
        model: ``--model``'s name, when the config was read without it (a table model cannot be
            validated before its ``features``).
        overrides: ``--set`` overrides applied after the model is set (``model.params.*`` of a
            table model).
    """
    from tfpilot.config.loader import parse_override, set_path, validate_tree

    tree = cfg.model_dump(mode="json")
    features = dict(tree.get("features") or {})

    def merge(role: str, names: Sequence[str]) -> None:
        if not names:
            return
        known = {f["name"]: f for f in features.get(role) or []}
        features[role] = [known.get(n, {"name": n}) for n in names]

    merge("outputs", targets)
    merge("inputs", inputs)
    if not features.get("outputs"):
        raise UserError("--input needs --target: name the column(s) to predict")
    tree["features"] = features
    name = tree["model"]["name"]
    if model is not None and model != name:
        tree["model"] = {"name": model, "params": {}}
    elif not model_given and model is None and (name == "auto" or "table" not in MODELS.info(name).tags):
        tree["model"] = {"name": "auto", "params": {}}
    for text in overrides:
        set_path(tree, *parse_override(text))
    return validate_tree(tree)
