"""Load a :class:`Config` from YAML, dicts and ``--set a.b=value`` overrides.

Errors are :class:`ConfigError`: every problem on its own line, naming the key (dotted
path), what was wrong, and the nearest valid key for a typo.

Example:
    >>> from tfpilot.config import load_config
    >>> cfg = load_config(None, overrides=["train.epochs=3", "data.dataset=digits"])
    >>> cfg.train.epochs
    3
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tfpilot.config.schema import Config, TrainConfig
from tfpilot.errors import UserError
from tfpilot.plugins import PluginError
from tfpilot.registry import RegistryError, close_matches, did_you_mean

#: Short command-line flags and the config keys they set.
SHORT_FLAGS: dict[str, str] = {
    "dataset": "data.dataset",
    "data_dir": "data.data_dir",
    "model": "model.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "run_dir": "output.run_dir",
}


class ConfigError(UserError):
    """The configuration is invalid; the message says which key and how to fix it."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into ``(["a", "b"], value)``; the value is parsed as YAML.

    Example:
        >>> parse_override("data.image_size=[32, 32]")
        (['data', 'image_size'], [32, 32])
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc.problem})") from None
    return key.split("."), value


def set_path(tree: dict[str, Any], path: Sequence[str], value: Any) -> None:
    """Set ``tree[path[0]][path[1]]... = value``, creating dicts along the way."""
    node = tree
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(path[: i + 1])
            raise ConfigError(f"--set {'.'.join(path)}: {where} is a value, not a section")
        node = child
    node[path[-1]] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (data, model, train, output)")
    return data


def load_config(
    source: str | Path | Mapping[str, Any] | Config | None = None,
    overrides: Sequence[str] = (),
    **flags: Any,
) -> Config:
    """Build a validated :class:`Config`.

    Args:
        source: a YAML path, a mapping, an existing Config, or None for the defaults.
        overrides: ``"a.b=value"`` strings, applied in order after ``source``.
        **flags: short flags from :data:`SHORT_FLAGS` (``dataset=``, ``epochs=``, ...);
            ``None`` values are ignored.

    Raises:
        ConfigError: naming every invalid key or value.
    """
    if isinstance(source, Config):
        tree = source.model_dump(mode="json", exclude_unset=False)
    elif isinstance(source, Mapping):
        tree = copy.deepcopy(dict(source))
    elif source is None:
        tree = {}
    else:
        tree = read_yaml(source)
    for name, value in flags.items():
        if name not in SHORT_FLAGS:
            raise ConfigError(f"unknown flag {name!r}.{did_you_mean(name, list(SHORT_FLAGS))}")
        if value is not None:
            set_path(tree, SHORT_FLAGS[name].split("."), str(value) if isinstance(value, Path) else value)
    for text in overrides:
        path, value = parse_override(text)
        set_path(tree, path, value)
    return validate_tree(tree)


def validate_tree(tree: Mapping[str, Any]) -> Config:
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def _section_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The schema class that holds the field at ``loc`` (None below a free-form dict)."""
    cls: type[BaseModel] = Config
    for part in loc[:-1]:
        field = cls.model_fields.get(str(part))
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        cls = ann
    return cls


def _unknown_key_hint(name: str, section: type[BaseModel]) -> str:
    """Did-you-mean for an unknown key: the section's own keys first, then the keys of its
    subsections by their dotted path (``train.lr`` -> ``optimizer.learning_rate``)."""
    direct = sorted(section.model_fields)
    nested: dict[str, str] = {}
    for field_name, info in section.model_fields.items():
        sub_section = info.annotation
        if isinstance(sub_section, type) and issubclass(sub_section, BaseModel):
            for leaf in sub_section.model_fields:
                nested.setdefault(leaf, f"{field_name}.{leaf}")
    paths = close_matches(name, direct) + [nested[leaf] for leaf in close_matches(name, sorted(nested))]
    return " Did you mean " + " or ".join(repr(p) for p in paths[:3]) + "?" if paths else ""


def format_validation_error(exc: ValidationError) -> str:
    lines = [f"invalid configuration ({exc.error_count()} problem{'s' if exc.error_count() > 1 else ''}):"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            section = _section_at(loc)
            valid = sorted(section.model_fields) if section else []
            hint = _unknown_key_hint(loc[-1], section) if section else ""
            where = ".".join(loc[:-1]) or "the top level"
            lines.append(f"  - {key}: unknown key.{hint} Valid keys in {where}: {', '.join(valid)}.")
            continue
        msg = err["msg"]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, PluginError):  # names its own key (imports)
            lines.append(f"  - {cause}")
            continue
        if isinstance(cause, RegistryError):
            msg = str(cause)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        got = err.get("input")
        shown = "" if isinstance(got, dict) or err["type"] == "value_error" else f" (got {got!r})"
        lines.append(f"  - {key}: {msg}{shown}")
    return "\n".join(lines)


def save_config(config: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (every field, defaults included)."""
    path = Path(path)
    path.write_text(dump_config(config), encoding="utf-8")
    return path


def evaluation_batch(path: str | Path) -> int:
    """The examples per model call of a run's finished model: ``train.evaluation_batch`` of the
    resolved config at ``path`` (the memory plan lowers it for large images), or
    :data:`~tfpilot.config.schema.EVAL_BATCH` where there is no config (a model copied without it).

    Only the two batch keys are read: a run whose own model's module is not imported yet still
    gets its batch, and loading the model then says what is missing.

    Example:
        >>> evaluation_batch("no/such/config.yaml")
        256
    """
    path = Path(path)
    train = (read_yaml(path).get("train") or {}) if path.is_file() else {}
    keys = {k: train[k] for k in ("batch_size", "eval_batch_size") if train.get(k) is not None}
    return TrainConfig.model_validate(keys).evaluation_batch


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
