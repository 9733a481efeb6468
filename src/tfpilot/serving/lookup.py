"""Decoding and encoding off the event loop when heavy; ``top_k`` checks.

Example:
    >>> check_top_k(3, 10), check_top_k(None, 10)
    (3, 10)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.responses import Response

from tfpilot.serving.errors import BadRequest

T = TypeVar("T")
#: Bodies larger than this are parsed and decoded in a worker thread (a few images' worth).
INLINE_BODY_BYTES = 64 * 1024
#: Answers with more numbers than this are serialised in a worker thread.
INLINE_ANSWER_NUMBERS = 16_384


async def off_loop(fn: Callable[..., T], *args: Any, heavy: bool) -> T:
    """``fn(*args)``: inline when cheap, in a worker thread when ``heavy``."""
    if not heavy:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def json_response(content: Any) -> Response:
    """A JSON response; non-finite numbers are written as TF Serving does (NaN, Infinity)."""
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    if b"null" in body:  # orjson writes NaN and Infinity as null; json writes them as TF Serving does
        # (answers hold no real nulls; a string containing "null" just takes this slower path)
        body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, media_type="application/json")


async def json_answer(content: Callable[[], dict[str, Any]], numbers: int) -> Response:
    """The JSON response of ``content()``, built off the event loop when it holds many ``numbers``."""
    if numbers <= INLINE_ANSWER_NUMBERS:
        return json_response(content())
    return await asyncio.to_thread(lambda: json_response(content()))


def check_top_k(top_k: int | None, num_classes: int) -> int:
    """``top_k`` clipped to the number of classes (None: all of them)."""
    if top_k is None:
        return num_classes
    if top_k < 1:
        raise BadRequest(f"top_k must be at least 1; got {top_k}")
    return min(top_k, num_classes)
