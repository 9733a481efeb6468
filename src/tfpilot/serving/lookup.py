"""Finding the model a URL names; decoding and encoding off the event loop when heavy.

Example:
    >>> find_servable({"mnist": object()}, "mnits")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tfpilot.serving.errors.NotFound: 404: Servable not found for request: Latest(mnits). Did you mean 'mnist'? ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from tfpilot.registry import did_you_mean
from tfpilot.serving.errors import BadRequest, NotFound

T = TypeVar("T")
#: Bodies larger than this are parsed and decoded in a worker thread (a few images' worth).
INLINE_BODY_BYTES = 64 * 1024
#: Answers with more numbers than this are serialised in a worker thread.
INLINE_ANSWER_NUMBERS = 16_384
_VERBS = ("predict", "classify", "regress")


def find_servable(servables: Mapping[str, T], name: str, version: str | None = None) -> T:
    """The servable called ``name`` (and ``version``), or a 404/405 that says what exists."""
    if name in servables:
        if version is not None and version != "1":
            raise NotFound(f"Servable not found for request: Specific({name}, {version}); "
                           f"model {name!r} has version 1 only")
        return servables[name]
    base, _, verb = name.partition(":")
    if verb in _VERBS and base in servables:
        raise HTTPException(405, f"Method Not Allowed: :{verb} takes POST with a JSON body")
    known = sorted(servables)
    raise NotFound(f"Servable not found for request: Latest({name}).{did_you_mean(name, known)} "
                   f"Models served here: {', '.join(known) or '(none)'}")


async def off_loop(fn: Callable[..., T], *args: Any, heavy: bool) -> T:
    """``fn(*args)``: inline when cheap, in a worker thread when ``heavy``."""
    if not heavy:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


async def json_answer(content: Callable[[], dict[str, Any]], numbers: int) -> Response:
    """The JSON response of ``content()``, built off the event loop when it holds many ``numbers``."""
    if numbers <= INLINE_ANSWER_NUMBERS:
        return JSONResponse(content())
    body = await asyncio.to_thread(lambda: JSONResponse(content()).body)
    return Response(body, media_type="application/json")


def check_top_k(top_k: int | None, num_classes: int) -> int:
    """``top_k`` clipped to the number of classes (None: all of them)."""
    if top_k is None:
        return num_classes
    if top_k < 1:
        raise BadRequest(f"top_k must be at least 1; got {top_k}")
    return min(top_k, num_classes)
