"""The model registry: ``@register_model`` where a family is defined, ``create_model`` to build.

A builder takes ``(input_spec, num_classes, **params)`` and returns an uncompiled
``keras.Model`` whose input is the *raw* input of :class:`~tfpilot.spec.InputSpec`
(uint8 pixels or strings): the preprocessing lives inside the model.

Example:
    >>> from tfpilot.models import create_model, list_models
    >>> from tfpilot.spec import InputSpec
    >>> model = create_model("mnist_cnn", InputSpec.image(28, 28, 1), num_classes=10)
    >>> model.count_params()
    130890
    >>> "mnist_cnn" in list_models("mnist*")
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfpilot import registry
from tfpilot.errors import UserError
from tfpilot.registry import MODELS
from tfpilot.spec import InputSpec

ModelBuilder = Callable[..., Any]


def register_model(
    name: str | None = None, *, task: str = "image", description: str = "", tags: tuple[str, ...] = ()
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register a model builder under ``name``.

    Args:
        name: registry key (default: the function's name).
        task: the input kind it consumes, "image", "text" or "table".
        description: one line for ``tfpilot models`` (default: the docstring's first line).
        tags: more tags after ``task``, e.g. ``("forest",)``: a table model of decision forests,
            which leaves image columns out (the memory plan sizes no image encoder for it).
    """
    return MODELS.register(name, description=description, tags=(task, *tags))


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered model names matching ``pattern`` (and ``task``)."""
    return MODELS.list(pattern, tag=task)


def check_params(name: str, params: dict[str, Any]) -> None:
    """Raise ValueError if ``params`` holds a keyword the builder ``name`` does not take."""
    registry.check_params(MODELS, name, params, skip=("input_spec", "num_classes"))


def create_model(name: str, input_spec: InputSpec, num_classes: int, **params: Any) -> Any:
    """Build the registered model ``name`` for ``input_spec`` and ``num_classes``.

    Raises:
        tfpilot.registry.RegistryError: for an unknown name, with suggestions.
        ValueError: for a parameter the builder does not take, or an input it cannot use.
    """
    entry = MODELS.entry(name)
    check_params(name, params)
    task = entry.tags[0] if entry.tags else "image"
    if task != input_spec.kind:
        raise UserError(
            f"model {name!r} takes {task} input but the dataset gives {input_spec.kind}: "
            f"choose one of: {', '.join(MODELS.list(tag=input_spec.kind))}"
        )
    if task != "table" and num_classes < 2:
        raise UserError(f"a classifier needs at least 2 classes, the dataset has {num_classes}")
    return entry.obj(input_spec, num_classes, **params)
