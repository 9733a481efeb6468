"""A fast path for the commonest image request: ``{"instances": [<uint8 pixels>, ...]}``.

Turning a JSON body of nested pixel lists into an array the general way (``orjson.loads``,
then ``np.asarray`` of ~H*W one-element lists per image) costs a few hundred microseconds
per 28x28 image on the serving event loop -- more than the model call at batch size 16.
:class:`PixelBody` reads such a body without building the nested lists: it checks that the
body's *structure* (its brackets and commas, whitespace ignored) is exactly that of a regular
``(n, H, W[, C])`` array of integers and that every number stands inside an innermost list (no
digit just before a ``[`` or just after a ``]``), then parses the numbers as one flat JSON list.
Each check is a C-speed ``bytes`` operation (``translate``, ``in``), so the path costs about what
``orjson.loads`` of the flat list does.

Anything else -- other keys, negative numbers, floats, values over 255, ragged or misshapen
lists, malformed JSON -- returns ``None`` and the caller takes the general path, which gives the
request its precise error message. So the fast path changes speed, never an answer.

Example:
    >>> parser = PixelBody((2, 2, 1))
    >>> parser.parse(b'{"instances": [[[[0], [255]], [[7], [9]]]]}').shape
    (1, 2, 2, 1)
    >>> parser.parse(b'{"instances": [[[0, 255], [7, 9]]]}').ravel().tolist()  # (H, W) for grayscale
    [0, 255, 7, 9]
    >>> parser.parse(b'{"instances": [[[0.5, 255], [7, 9]]]}') is None  # floats: the general path
    True
"""

from __future__ import annotations

import re

import numpy as np
import orjson

_WHITESPACE = b" \t\n\r"
_DIGITS = b"0123456789"
#: What may come before the array: whitespace around the brace, key and colon, never inside the key.
_PREFIX = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"instances"[ \t\n\r]*:[ \t\n\r]*')
#: Every digit becomes "0" (a ``bytes.translate`` table), so a misplaced number is a two-byte search.
_DIGITS_TO_ZERO = bytes.maketrans(_DIGITS, b"0" * len(_DIGITS))
#: Brackets become spaces when the numbers are read as one flat list: two numbers that a bracket
#: alone parted read as two with no comma between, which the JSON parser refuses, never as one.
_BRACKETS_TO_SPACES = bytes.maketrans(b"[]", b"  ")
#: Skeletons are cached for batches of up to this many instances.
_MAX_CACHED = 64


def _skeleton(shape: tuple[int, ...]) -> bytes:
    """The brackets and commas of a JSON array of ``shape`` (numbers and whitespace removed)."""
    if not shape:
        return b""
    inner = _skeleton(shape[1:])
    return b"[" + b",".join([inner] * shape[0]) + b"]"


def _misplaced_number(array: bytes) -> bool:
    """Whether a number touches a bracket on the wrong side (whitespace between them ignored):
    ``5[`` or ``]5``, where the skeleton alone cannot tell ``[[5]]`` from ``5[[]]``.

    Example:
        >>> _misplaced_number(b"[[5], [6]]"), _misplaced_number(b"[5 [], [6]]"), _misplaced_number(b"[[], [6]] 7")
        (False, True, True)
    """
    shape = array.translate(_DIGITS_TO_ZERO, _WHITESPACE)
    return b"0[" in shape or b"]0" in shape


class PixelBody:
    """Parses ``{"instances": [...]}`` bodies of uint8 pixels for images of ``shape`` ``(H, W, C)``.

    Args:
        shape: the model's image shape ``(H, W, C)``; when ``C == 1`` instances may also be
            ``(H, W)`` lists, as the general path accepts.

    Example:
        >>> PixelBody((1, 2, 3)).parse(b'{"instances":[[[[1,2,3],[4,5,6]]]]}').tolist()
        [[[[1, 2, 3], [4, 5, 6]]]]
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = tuple(int(d) for d in shape)
        h, w, c = self.shape
        self._images = [_skeleton(self.shape)] + ([_skeleton((h, w))] if c == 1 else [])
        self._skeletons: dict[tuple[int, int], bytes] = {}

    def parse(self, body: bytes) -> np.ndarray | None:
        """The ``(n, H, W, C)`` uint8 batch of ``body``, or None when the general path must read it."""
        start, end = body.find(b"["), body.rfind(b"]")
        if start < 0 or not _PREFIX.fullmatch(body, 0, start):
            return None
        if body[end + 1:].translate(None, _WHITESPACE) != b"}":
            return None
        array = body[start:end + 1]
        skeleton = array.translate(None, _DIGITS + _WHITESPACE)
        form = self._form(skeleton)
        if form is None or _misplaced_number(array):
            return None
        n, _ = form
        try:
            flat = np.array(orjson.loads(b"[" + array.translate(_BRACKETS_TO_SPACES) + b"]"), dtype=np.int64)
        except (orjson.JSONDecodeError, OverflowError, TypeError, ValueError):
            return None
        if flat.size != n * int(np.prod(self.shape)) or (flat.size and int(flat.max()) > 255):
            return None
        return flat.astype(np.uint8).reshape((n, *self.shape))

    def _form(self, skeleton: bytes) -> tuple[int, int] | None:
        """``(n, which)`` when ``skeleton`` is that of ``n`` images of form ``which``, else None."""
        for which, image in enumerate(self._images):
            n, rest = divmod(len(skeleton) - 1, len(image) + 1)
            if rest != 0 or n < 1:
                continue
            key = (n, which)
            expected = self._skeletons.get(key)
            if expected is None:
                expected = b"[" + b",".join([image] * n) + b"]"
                if len(self._skeletons) < _MAX_CACHED:
                    self._skeletons[key] = expected
            if skeleton == expected:
                return key
        return None
