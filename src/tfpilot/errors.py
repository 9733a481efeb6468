"""The errors that are the user's to fix, told apart from tfpilot's (and its libraries') bugs.

A :class:`UserError` says what was wrong with something the user gave (a config, data, a path,
an option, a run) and how to fix it. The CLI prints its message as one ``error:`` line and exits
with status 2; any other exception is a bug and is shown with its traceback (status 1).

Every user error is a ``ValueError``, so ``except ValueError`` keeps catching them; the
subclasses are also the built-in error a caller would expect for a missing file
(``FileNotFoundError``), an existing one (``FileExistsError``) or an unknown name (``KeyError``).

Example:
    >>> from tfpilot.errors import NotFoundError, UserError
    >>> err = NotFoundError("runs/x has no model.keras: train it first with `tfpilot train`")
    >>> isinstance(err, UserError) and isinstance(err, FileNotFoundError) and isinstance(err, ValueError)
    True
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user gave is wrong; the message says what and how to fix it.

    Example:
        >>> str(UserError("--sparsity must be between 0 and 1, got 2.0"))
        '--sparsity must be between 0 and 1, got 2.0'
    """


class NotFoundError(UserError, FileNotFoundError):
    """A file, folder or run the user named does not exist, or lacks what it needs."""


class AlreadyExistsError(UserError, FileExistsError):
    """A path the user named already holds something that would be lost."""


class UnknownNameError(UserError, KeyError):
    """A name the user gave (a column, a head, a registered thing) is unknown; the message
    names the nearest known ones.

    Example:
        >>> str(UnknownNameError("no column 'prise'. Did you mean 'price'?"))
        "no column 'prise'. Did you mean 'price'?"
    """

    def __str__(self) -> str:  # KeyError quotes its message; the user reads it plain.
        return str(self.args[0]) if self.args else ""
