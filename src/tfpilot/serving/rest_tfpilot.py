"""tfpilot's own REST answers: raw images and texts in, class probabilities or names out.

Used for tfpilot's Predictor-based models (``tfpilot serve RUN``), and for ``:classify`` on a
SavedModel written by ``tfpilot export`` (whose ``serving_default`` is a predict signature,
so TF Serving itself would refuse it): see :mod:`tfpilot.serving.decode` for the bodies.

* ``:predict`` -> ``{"predictions": [[p_0, ..., p_k], ...]}`` (or ``"outputs"``, columnar);
* ``:classify`` -> ``{"result": [[[class name, score], ...], ...]}``, best first.

Example:
    >>> response = await predict(servable, request)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from tfpilot.serving.decode import parse_json, request_instances
from tfpilot.serving.lookup import INLINE_BODY_BYTES, check_top_k, json_answer, off_loop
from tfpilot.serving.servable import Servable


async def decoded(servable: Servable, body: bytes, verb: str) -> tuple[np.ndarray, str]:
    """The model batch of a body (decoded off the event loop when heavy) and its form."""

    def decode() -> tuple[np.ndarray, str]:
        fast = servable.decoder.pixel_body(body)  # uint8 pixel rows, read without nested lists
        if fast is not None:
            return fast, "row"
        raw, form = request_instances(parse_json(body), verb)
        return servable.decoder.decode(raw), form

    heavy = len(body) > INLINE_BODY_BYTES or (servable.input_spec.kind == "image" and b'"b64"' in body)
    return await off_loop(decode, heavy=heavy)


async def predict(servable: Servable, request: Request) -> Response:
    """``:predict``: class probabilities per instance."""
    with servable.batcher.arriving():  # a forming batch waits for this request while it is decoded
        body = await request.body()
        batch, form = await decoded(servable, body, "predict")
    probs = await servable.probabilities(batch)
    key = "predictions" if form == "row" else "outputs"
    return await json_answer(lambda: {key: probs.tolist()}, probs.size)


async def classify(servable: Servable, request: Request, top_k: int | None) -> Response:
    """``:classify``: class names with scores, best first."""
    with servable.batcher.arriving():
        body = await request.body()
        batch, _ = await decoded(servable, body, "classify")
    return await classify_batch(servable, batch, top_k)


async def classify_body(servable: Servable, body: bytes, top_k: int | None) -> Response:
    """:func:`classify` of a body already read."""
    batch, _ = await decoded(servable, body, "classify")
    return await classify_batch(servable, batch, top_k)


async def classify_batch(servable: Servable, batch: np.ndarray, top_k: int | None) -> Response:
    probs = await servable.probabilities(batch)
    k = check_top_k(top_k, probs.shape[1])
    names = servable.class_names

    def content() -> dict[str, Any]:
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return {"result": [[[names[j], float(row[j])] for j in idx] for row, idx in zip(probs, order, strict=True)]}

    return await json_answer(content, probs.size)
