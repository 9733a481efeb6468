"""User code in every stage: modules named in ``imports:`` / ``--import``, and installed plugins.

A custom loss, model or layer is registered when the module that defines it is imported.
A run names those modules in its config (``imports: [my_module]``), so every later stage
(evaluate, report, predict, export, verify, serve, ``tfpilot.load``) imports them again
before it reads the run. Installed packages can instead declare a Python entry point in
the group ``tfpilot.plugins``; those are loaded once, at the CLI's start, when a run's model
is loaded, and when a registry is asked for a name it does not know.

Example:
    >>> import_modules(["json"], "imports")
    ['json']
    >>> try:
    ...     import_modules(["no_such_module_xyz"], "imports")
    ... except PluginError as exc:
    ...     print(str(exc)[:69])
    imports: cannot import 'no_such_module_xyz' (No module named 'no_such
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from importlib import metadata

from tfpilot.errors import UserError

#: The entry-point group an installed package uses to register its losses, models and layers.
GROUP = "tfpilot.plugins"

#: How to make a module importable, for every error that names one.
HOW_TO_PROVIDE = (
    "Make it importable: put the folder that holds it on PYTHONPATH (or run from that folder), "
    "`pip install` the package that provides it, or pass `tfpilot --import MODULE ...`; "
    f"an installed package can instead declare a `{GROUP}` entry point."
)


class PluginError(UserError):
    """A user module or plugin named by a config, a run or ``--import`` cannot be imported."""


def import_modules(names: Sequence[str], source: str) -> list[str]:
    """Import each module of ``names`` (registering what it defines); return the names.

    Args:
        names: dotted module names, e.g. ``["my_losses", "my_pkg.models"]``.
        source: where the names came from, for the error (``imports``, ``--import``,
            ``runs/x/config.yaml``).

    Raises:
        PluginError: a module (or a package its name starts with) is not found. An error
            raised *inside* the user's module is its own bug and propagates as it is.
    """
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not _is_prefix(exc.name, name):
                raise  # the module was found but itself imports something missing: its traceback says what
            raise PluginError(f"{source}: cannot import {name!r} ({exc}). {HOW_TO_PROVIDE}") from None
    return list(names)


def _is_prefix(missing: str, name: str) -> bool:
    return name == missing or name.startswith(missing + ".")


@functools.cache
def load_entry_points() -> tuple[dict[str, str], ...]:
    """Load every installed ``tfpilot.plugins`` entry point, once per process.

    Returns:
        One ``{"name", "value", "dist"}`` record per plugin loaded (what a run's ``env.json``
        keeps), in name order.

    Raises:
        PluginError: an entry point names a module or object that does not exist.
    """
    loaded = []
    for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "?"
        try:
            ep.load()
        except (ModuleNotFoundError, AttributeError) as exc:
            raise PluginError(f"the {GROUP} entry point {ep.name!r} = {ep.value!r} of package {dist!r} cannot be "
                              f"loaded ({exc}): reinstall {dist!r} or uninstall it") from exc
        loaded.append({"name": ep.name, "value": ep.value, "dist": dist})
    return tuple(loaded)


def unknown_name_hint(kind: str, name: str) -> str:
    """The sentence an unknown-name error ends with: how to make a user's own ``name`` known.

    Example:
        >>> unknown_name_hint("loss", "my_loss")[:60]
        "If 'my_loss' is your own loss, import the module that regist"
    """
    return (f"If {name!r} is your own {kind}, import the module that registers it: `imports: [MODULE]` in the "
            f"config (a run records it in its config.yaml), `tfpilot --import MODULE ...`, or a `{GROUP}` "
            "entry point of an installed package.")
