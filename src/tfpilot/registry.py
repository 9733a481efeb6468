"""A small, typed registry: register where a thing is defined, look it up by name.

Every kind of pluggable thing in tfpilot (models, datasets, optimizers, schedules,
exporters, ...) has exactly one :class:`Registry`. The registries that the config schema
and the run directory consult (models, optimizers, schedules, serializable Keras objects)
are defined here, at the bottom of the package, and filled by the modules that define the
things (``@register_model`` in ``models/``, ``@OPTIMIZERS.register`` in ``training/``), so
``config/`` and ``runs/`` check names without importing those packages. Lookups of unknown names fail with a
"did you mean" suggestion, and ``list`` takes a shell-style pattern, like timm's
``list_models("resnet*")``.

Example:
    >>> from tfpilot.registry import Registry
    >>> activations = Registry("activation")
    >>> @activations.register("relu6")
    ... def relu6(x):
    ...     return min(max(x, 0), 6)
    >>> activations.get("relu6")(9)
    6
    >>> activations.list("relu*")
    ['relu6']
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tfpilot import plugins
from tfpilot.builtin_names import BUILTIN_NAMES
from tfpilot.errors import UnknownNameError, UserError

T = TypeVar("T")


class RegistryError(UnknownNameError):
    """An unknown name was looked up; the message names the nearest registered ones."""


def close_matches(name: str, choices: Sequence[str], n: int = 3) -> list[str]:
    """The ``choices`` nearest ``name``: spelling (difflib), then abbreviations ("lr" ->
    learning_rate, "bs" -> batch_size, "epo" -> epochs); at most ``n``."""
    low = name.lower()

    def initials(c: str) -> str:
        return "".join(part[:1] for part in c.split("_") if part)

    abbreviated = [c for c in choices if len(low) >= 2 and low == initials(c)]
    spelled = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    prefixed = [c for c in choices if len(low) >= 2 and c.startswith(low)]
    return list(dict.fromkeys([*abbreviated, *spelled, *prefixed]))[:n]


def did_you_mean(name: str, choices: Sequence[str], n: int = 3) -> str:
    """Return a ``" Did you mean 'x'?"`` suffix for ``name`` among ``choices`` (or "")."""
    close = close_matches(name, choices, n)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object with the metadata it was registered with."""

    name: str
    obj: T
    description: str = ""
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Info:
    """What a config needs to know of a registered name: its tags, the keyword parameters it
    takes (None: any, it has ``**kwargs``) and its registration's extras."""

    name: str
    tags: tuple[str, ...] = ()
    params: tuple[str, ...] | None = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, entry: Entry[Any]) -> Info:
        """The :class:`Info` of a registered entry (its parameters read from its signature)."""
        sig = inspect.signature(entry.obj)
        var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        return cls(entry.name, entry.tags, None if var_kw else tuple(sig.parameters), entry.extra)


class Registry(Generic[T]):
    """Name -> object mapping for one kind of thing.

    Args:
        kind: what is registered ("model", "dataset", ...); used in error messages.
        autoload: modules that register the built-in entries; imported on first lookup,
            so importing a registry has no side effects and costs nothing.
        builtins: the :class:`Info` of each built-in name the ``autoload`` modules register, so
            :meth:`info` and ``in`` answer for them without importing those modules (and
            TensorFlow); ``tests/test_registry.py`` checks it against the real registrations.
    """

    def __init__(self, kind: str, autoload: Sequence[str] = (), builtins: dict[str, Info] | None = None) -> None:
        self.kind = kind
        self.autoload = tuple(autoload)
        self.builtins = dict(builtins or {})
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = not self.autoload

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self.autoload:
                importlib.import_module(module)

    def register(
        self,
        name: str | None = None,
        *,
        description: str = "",
        tags: tuple[str, ...] | list[str] = (),
        **extra: Any,
    ) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` (default: its ``__name__``)."""

        def decorator(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError(f"cannot register a {self.kind} without a name")
            if key in self._entries and self._entries[key].obj is not obj:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
            self._entries[key] = Entry(key, obj, doc, tuple(tags), dict(extra))
            return obj

        return decorator

    def add(self, name: str, obj: T, **kwargs: Any) -> T:
        """Register ``obj`` under ``name`` without decorator syntax."""
        return self.register(name, **kwargs)(obj)

    def entry(self, name: str) -> Entry[T]:
        """The :class:`Entry` for ``name``; raises :class:`RegistryError` with suggestions.

        A name not registered yet is looked for once more after loading the installed
        ``tfpilot.plugins`` entry points (:func:`tfpilot.plugins.load_entry_points`).
        """
        self._load()
        if name not in self._entries:
            plugins.load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            known = sorted(self._entries)
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, known)} "
                f"Known {self.kind}s: {', '.join(known) or '(none)'}. {plugins.unknown_name_hint(self.kind, name)}"
            ) from None

    def info(self, name: str) -> Info:
        """The :class:`Info` of ``name``: of a built-in without importing the module that
        defines it; otherwise read from its registration (raises like :meth:`entry`)."""
        if name in self._entries or name not in self.builtins:
            return Info.of(self.entry(name))
        return self.builtins[name]

    def get(self, name: str) -> T:
        """The object registered under ``name``."""
        return self.entry(name).obj

    def list(self, pattern: str = "*", tag: str | None = None) -> list[str]:
        """Sorted registered names matching the shell-style ``pattern`` (and ``tag``)."""
        self._load()
        return sorted(
            n
            for n, e in self._entries.items()
            if fnmatch.fnmatchcase(n, pattern) and (tag is None or tag in e.tags)
        )

    def entries(self, pattern: str = "*", tag: str | None = None) -> list[Entry[T]]:
        return [self._entries[n] for n in self.list(pattern, tag)]

    def __contains__(self, name: object) -> bool:
        if name in self.builtins or name in self._entries:
            return True
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


def check_params(registry: Registry[Any], name: str, params: dict[str, Any],
                 skip: Sequence[str] = ()) -> None:
    """Raise ValueError if ``params`` holds a keyword that the callable ``name`` does not take
    (a built-in's parameters are known without importing it: :meth:`Registry.info`).

    Args:
        registry: where ``name`` is registered.
        name: the registered callable.
        params: the keyword arguments a config gives it.
        skip: positional parameters that are not the config's to give.

    Example:
        >>> reg = Registry("thing")
        >>> _ = reg.add("f", lambda spec, size=1: size)
        >>> check_params(reg, "f", {"sise": 2}, skip=("spec",))
        Traceback (most recent call last):
        ...
        ValueError: thing 'f' has no parameter 'sise'. Did you mean 'size'? Its parameters: size.
    """
    taken = registry.info(name).params
    if taken is None:
        return
    accepted = [p for p in taken if p not in skip]
    for key in params:
        if key not in accepted:
            raise UserError(
                f"{registry.kind} {name!r} has no parameter {key!r}.{did_you_mean(key, accepted)} "
                f"Its parameters: {', '.join(accepted) or '(none)'}."
            )


def _builtins(kind: str) -> dict[str, Info]:
    return {name: Info(name, tags, None if params is None else tuple(params.split()), dict(extra))
            for name, (tags, params, extra) in BUILTIN_NAMES[kind].items()}


#: Model builders: ``@register_model`` in the modules of ``tfpilot/models/``.
MODELS: Registry[Callable[..., Any]] = Registry(
    "model", builtins=_builtins("model"),
    autoload=("tfpilot.models.mlp", "tfpilot.models.cnn", "tfpilot.models.resnet", "tfpilot.models.text",
              "tfpilot.models.transfer", "tfpilot.models.multitask", "tfpilot.models.airbench", "tfpilot.models.ydf"),
)
#: Optimizer builders: registered in ``tfpilot/training/optimizers.py``.
OPTIMIZERS: Registry[Callable[..., Any]] = Registry(
    "optimizer", autoload=("tfpilot.training.optimizers",), builtins=_builtins("optimizer"))
#: Learning-rate schedule builders: registered in ``tfpilot/training/schedules.py``.
SCHEDULES: Registry[Callable[..., Any]] = Registry(
    "schedule", autoload=("tfpilot.training.schedules",), builtins=_builtins("schedule"))
#: tfpilot's registered-serializable Keras classes (preprocessing layers, schedules), which a
#: saved ``.keras`` file needs to load; each registers with :func:`serializable` where defined.
KERAS_OBJECTS: Registry[type] = Registry(
    "serializable Keras object",
    autoload=("tfpilot.models.layers", "tfpilot.models.text_layers", "tfpilot.models.transfer_layers",
              "tfpilot.models.table_layers", "tfpilot.models.airbench_layers", "tfpilot.models.calibration",
              "tfpilot.models.ydf_layers", "tfpilot.models.ensemble_layers",
              "tfpilot.training.schedules", "tfpilot.training.losses"),
)
#: Loss builders for table heads (``features.outputs[].loss``): ``register_loss`` in
#: ``tfpilot/training/losses.py``; each takes keyword parameters and returns a Keras loss.
LOSSES: Registry[Callable[..., Any]] = Registry(
    "loss", autoload=("tfpilot.training.losses",), builtins=_builtins("loss"))


def serializable(cls: type) -> type:
    """Class decorator: register a Keras layer/schedule as serializable (package "tfpilot")
    and in :data:`KERAS_OBJECTS`, so any loader of tfpilot's ``.keras`` files finds it.

    Example:
        >>> import keras
        >>> @serializable
        ... class Double(keras.layers.Layer):
        ...     def call(self, x):
        ...         return x * 2
        >>> "tfpilot>Double" in KERAS_OBJECTS
        True
    """
    import keras

    keras.saving.register_keras_serializable(package="tfpilot")(cls)
    return KERAS_OBJECTS.add(f"tfpilot>{cls.__name__}", cls)
