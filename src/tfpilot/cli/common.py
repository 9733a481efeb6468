"""Shared CLI plumbing: one console, quiet TensorFlow, and user errors told apart from bugs."""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console

from tfpilot.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)

#: Exit status of an error that is the user's to fix (one ``error:`` line), and of a bug (a traceback).
USER_ERROR_EXIT, BUG_EXIT = 2, 1
#: The environment variable that, set to 1, shows the traceback of user errors too (like ``--debug``).
DEBUG_ENV = "TFPILOT_DEBUG"
#: ``tfpilot --debug``, for the command it runs (set by :func:`debug_scope`, never left set).
_DEBUG: contextvars.ContextVar[bool] = contextvars.ContextVar("tfpilot_cli_debug", default=False)
#: What a command raises to end itself or to refuse an option: typer's to print, never a bug. (Click's
#: ``ClickException`` is found through ``BadParameter``: typer re-exports it under no name of its own.)
TYPER_EXITS: tuple[type[BaseException], ...] = (
    typer.Exit, typer.Abort, next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"))


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter (call before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )
    logging.getLogger("tfpilot").setLevel(logging.INFO)


def say(*parts: str | tuple[str, str], err: bool = False) -> None:
    """Print one line that is never wrapped or cropped, whatever the terminal width, so that
    paths and commands in it can be copied (and parsed by tests). ``parts`` are plain text
    or ``(text, style)`` pairs; neither is read as rich markup, so ``[`` in a path is kept.

    Example: ``say("run directory: ", (str(run.path), "bold"))``
    """
    from rich.text import Text

    (err_console if err else console).print(Text.assemble(*parts), soft_wrap=True, highlight=False)


def _narrowest(table: Any) -> tuple[int, int]:
    """(narrowest, natural) width of a rich table: cells wrapped at words, except in
    ``no_wrap`` columns, which need their longest cell; and every cell on one line."""
    from rich.measure import Measurement
    from rich.padding import Padding

    options = console.options.update_width(10_000)
    _, right, _, left = Padding.unpack(table.padding)
    narrowest = natural = 0
    for column in table.columns:
        cells = [column.header, *column.cells] if table.show_header else list(column.cells)
        sizes = [Measurement.get(console, options, c) for c in cells] or [Measurement(0, 0)]
        need = max(m.maximum if column.no_wrap else m.minimum for m in sizes)
        narrowest += max(need, column.min_width or 0) + left + right
        natural += max(max(m.maximum for m in sizes), column.min_width or 0) + left + right
    borders = (len(table.columns) - 1 + (2 if table.show_edge else 0)) if table.box else 0
    return narrowest + borders, natural + borders


def print_table(table: Any) -> None:
    """Print a rich table. Cells wrap at word boundaries to fit the terminal; when it is
    narrower than the table's narrowest layout, the table is printed at its natural width
    (lines longer than the terminal) instead of being squeezed into "…" cells that hide
    the values."""
    width = console.width
    narrowest, natural = _narrowest(table)
    if narrowest <= width:
        console.print(table)
        return
    try:
        console.width = natural
        console.print(table, crop=False)
    finally:
        console.width = width


def _validation_problem(error: Any) -> str:
    """One pydantic error as ``key: reason`` (the reason alone for the whole object)."""
    msg = str(error["msg"]).removeprefix("Value error, ")
    key = ".".join(str(part) for part in error["loc"])
    return f"{key}: {msg}" if key else msg


def error_message(exc: BaseException) -> str:
    """What a user sees of an error: its message (a KeyError's key text without the quotes
    repr adds), without any TensorFlow stack text (``{{function_node ...}}``, ``[Op:...]``)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):  # pydantic's text adds types, inputs and URLs: keep the reasons
        return "; ".join(_validation_problem(e) for e in exc.errors())
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    if "{{function_node" in str(msg) or "[Op:" in str(msg):
        from tfpilot.data.images import framework_message

        msg = framework_message(Exception(str(msg)))
    return str(msg)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's to fix: a :class:`tfpilot.errors.UserError`, or pydantic's
    ``ValidationError`` of a value the user gave (a config or setting built from flags). Anything
    else -- a ``ValueError`` or ``KeyError`` from Keras, NumPy or tfpilot itself -- is a bug."""
    from pydantic import ValidationError

    return isinstance(exc, (UserError, ValidationError))


@contextmanager
def debug_scope(debug: bool) -> Iterator[None]:
    """Within it, :func:`debug_requested` is ``debug`` (or ``TFPILOT_DEBUG``); the app enters it for
    the command it runs (``ctx.with_resource``), so one invocation's ``--debug`` never leaks into another.

    Example:
        >>> with debug_scope(True):
        ...     debug_requested()
        True
    """
    token = _DEBUG.set(debug)
    try:
        yield
    finally:
        _DEBUG.reset(token)


def debug_requested() -> bool:
    """``tfpilot --debug ...`` or ``TFPILOT_DEBUG=1``: show the traceback of user errors too."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return _DEBUG.get() or env not in ("", "0", "false", "no", "off")


def print_traceback(exc: BaseException) -> None:
    """The plain Python traceback of ``exc`` on stderr, as Python prints an uncaught one."""
    sys.stderr.write("".join(traceback.format_exception(exc)))
    sys.stderr.flush()


def user_errors(fn: F) -> F:
    """Tell the user's errors from bugs. A user error (:func:`is_user_error`) becomes
    ``error: MESSAGE`` on stderr (never wrapped: a long message stays one line whatever the
    terminal) and exit status 2, with its traceback before it under ``--debug`` /
    ``TFPILOT_DEBUG=1``. Any other exception is a bug: its traceback, a line saying so, and exit
    status 1. Click's own exits and usage errors pass through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TYPER_EXITS:
            raise
        except Exception as exc:
            user = is_user_error(exc)
            if not user or debug_requested():
                print_traceback(exc)
            if user:
                say(("error:", "bold red"), " ", error_message(exc), err=True)
                raise typer.Exit(USER_ERROR_EXIT) from None
            say(("internal error:", "bold red"), f" {type(exc).__name__} (the traceback above): a bug in tfpilot "
                "or a library it uses, not in what you gave; please report it with the traceback", err=True)
            raise typer.Exit(BUG_EXIT) from None

    return wrapper  # type: ignore[return-value]


def metrics_table(title: str, rows: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def per_class_table(per_class: dict[str, dict[str, float]]) -> Any:
    from rich.table import Table

    table = Table(title="per class", show_header=True)
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, m in per_class.items():
        table.add_row(name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"]))
    return table


HEADLINE = ("accuracy", "loss", "top_k_accuracy", "macro_f1", "balanced_accuracy", "num_examples")


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in HEADLINE if k in metrics}
