"""Request bodies in TF Serving's JSON format -> a model batch, or a 400 that says what was wrong.

Accepted (TF Serving's REST API, single-input models):

* row form: ``{"instances": [inst, ...]}``, answered with ``{"predictions": ...}``;
* columnar form: ``{"inputs": [inst, ...]}`` or ``{"inputs": {"<input name>": [inst, ...]}}``,
  answered with ``{"outputs": ...}``;
* classify: ``{"examples": [{"<feature>": inst}, ...], "context": {...}}`` (or the two above).

An image instance is a nested list of pixels (H, W, C) -- or (H, W) for grayscale -- of
numbers in 0..255, or ``{"b64": "<base64 PNG/JPEG/BMP/GIF bytes>"}`` (decoded and resized
exactly as in training). A text instance is a string (or ``{"b64": ...}`` of UTF-8 text).
A row-form instance may also be an object with one named input: ``{"image": inst}``.

Example:
    >>> from tfpilot.spec import InputSpec
    >>> from tfpilot.serving.decode import InstanceDecoder, parse_json, request_instances
    >>> payload = parse_json(b'{"instances": [[[0, 255], [255, 0]]]}')
    >>> raw, form = request_instances(payload)
    >>> InstanceDecoder(InputSpec.image(2, 2, 1)).decode(raw).shape
    (1, 2, 2, 1)
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import orjson

from tfpilot.registry import did_you_mean
from tfpilot.serving.errors import BadRequest
from tfpilot.serving.pixel_body import PixelBody
from tfpilot.serving.tensors import json_type

#: Signature names a request may give (TF Serving's defaults).
SIGNATURES = frozenset({"", "serving_default", "tensorflow/serving/predict", "tensorflow/serving/classify"})
#: Largest image (in pixels) a ``{"b64": ...}`` instance may decode to.
MAX_IMAGE_PIXELS = 8192 * 8192

Form = Literal["row", "column"]
_EXAMPLE = '{"instances": [...]}'


def parse_json(body: bytes) -> dict[str, Any]:
    """The request's JSON object; a 400 for an empty, malformed or non-object body.

    ``orjson`` parses (a few times faster than ``json`` on pixel lists); a body it refuses --
    NaN or Infinity, which TF Serving accepts, or a real error -- is parsed again by ``json``,
    which also gives the line and column of the error.
    """
    if not body.strip():
        raise BadRequest(f"JSON Parse error: The document is empty (empty request body): send a JSON object "
                         f"like {_EXAMPLE}")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = _parse_slowly(body)
    if not isinstance(payload, dict):
        raise BadRequest(f"the request body must be a JSON object like {_EXAMPLE}, not {json_type(payload)}")
    return payload


def _parse_slowly(body: bytes) -> Any:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"JSON Parse error: Invalid value (malformed JSON at line {exc.lineno} column {exc.colno}: "
            f"{exc.msg}); "
            f"send a JSON object like {_EXAMPLE}"
        ) from None
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 text: send JSON (binary data goes in {\"b64\": ...})") from None
    except RecursionError:
        raise BadRequest("the JSON is nested too deeply") from None
    return payload


def _check_signature(payload: dict[str, Any]) -> None:
    sig = payload.get("signature_name")
    if sig is None:
        return
    if not isinstance(sig, str) or sig not in SIGNATURES:
        raise BadRequest(f"unknown signature_name {sig!r}: tfpilot models have one signature, 'serving_default'")


def _unwrap_named(value: Any, where: str) -> Any:
    """``{"<input name>": x}`` -> x (tfpilot models have one input); ``{"b64": ...}`` stays."""
    if isinstance(value, dict) and "b64" not in value:
        if len(value) != 1:
            raise BadRequest(
                f"{where}: tfpilot models have one input, so an object instance needs exactly one key "
                f"(the input's name); got {sorted(value) or 'none'}"
            )
        return next(iter(value.values()))
    return value


def request_instances(payload: dict[str, Any], verb: str = "predict") -> tuple[list[Any], Form]:
    """The raw instances of a predict/classify request and its form ("row" or "column").

    Args:
        payload: the parsed JSON object.
        verb: "predict" or "classify" (which also takes TF Serving's ``examples``).
    """
    _check_signature(payload)
    keys = [k for k in ("instances", "inputs", "examples") if k in payload and (k != "examples" or verb == "classify")]
    if len(keys) > 1:
        raise BadRequest(f"give either {' or '.join(repr(k) for k in keys)}, not both: "
                         "\"instances\" is the row format, \"inputs\" the columnar format")
    if not keys:
        wanted = ["instances", "inputs"] + (["examples"] if verb == "classify" else [])
        hint = "".join(did_you_mean(k, wanted) for k in payload if isinstance(k, str))[:200]
        raise BadRequest(f"the request needs \"instances\" (row format) or \"inputs\" (columnar format), e.g. "
                         f"{_EXAMPLE}; got keys {sorted(payload)[:10]}.{hint}")
    key = keys[0]
    value = payload[key]
    if key == "examples":
        return _examples(value, payload.get("context")), "row"
    if key == "inputs" and isinstance(value, dict) and "b64" not in value:
        value = _unwrap_named(value, "inputs")
    if not isinstance(value, list):
        raise BadRequest(f"{key!r} must be a list with one entry per instance (a batch); got {json_type(value)}")
    if not value:
        raise BadRequest(f"{key!r} is empty: send at least one instance")
    if key == "instances":
        return [_unwrap_named(v, f"instance {i}") for i, v in enumerate(value)], "row"
    return value, "column"


def _examples(examples: Any, context: Any) -> list[Any]:
    if not isinstance(examples, list) or not examples:
        raise BadRequest("\"examples\" must be a non-empty list of objects, one per example: "
                         "[{\"<feature>\": value}, ...]")
    if context is not None and not isinstance(context, dict):
        raise BadRequest(f"\"context\" must be an object of features; got {json_type(context)}")
    out = []
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict):
            raise BadRequest(f"example {i}: must be an object of features; got {json_type(ex)}")
        features = {**(context or {}), **ex}
        if len(features) != 1:
            raise BadRequest(f"example {i}: tfpilot models take one feature (the input); got "
                             f"{sorted(features) or 'none'}")
        out.append(next(iter(features.values())))
    return out


def b64_bytes(value: Any, where: str) -> bytes:
    """The bytes of a ``{"b64": "..."}`` object; a 400 when it is not valid base64."""
    data = value.get("b64")
    if not isinstance(data, str):
        raise BadRequest(f"{where}: \"b64\" must be a base64 string; got {json_type(data)}")
    if len(value) != 1:
        raise BadRequest(f"{where}: a {{\"b64\": ...}} object takes no other keys; got {sorted(value)}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        try:  # URL-safe alphabet, as some clients send
            return base64.urlsafe_b64decode(data)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{where}: \"b64\" is not valid base64") from None


class InstanceDecoder:
    """Raw JSON instances (or uploaded files) -> the batch the model takes.

    Args:
        input_spec: what the model takes (:class:`~tfpilot.spec.InputSpec`).
        decode_image: encoded image bytes -> uint8 (H, W, C), resized like in training;
            raises ``ValueError`` when the bytes are not an image. Default: the
            training pipeline's decoder.
        max_instances: most instances per request (more -> 400).
    """

    def __init__(self, input_spec: Any, decode_image: Callable[[bytes], np.ndarray] | None = None,
                 max_instances: int = 256) -> None:
        self.spec = input_spec
        self.decode_image = decode_image or self._default_decode
        self.max_instances = max_instances
        self._pixel_body = PixelBody(input_spec.shape) if input_spec.kind == "image" else None

    # -- entry points -------------------------------------------------------------------------
    def check_count(self, n: int) -> None:
        if n > self.max_instances:
            raise BadRequest(f"too many instances: {n} in one request (limit {self.max_instances}, "
                             "--max-instances); split the request")

    def is_slow(self, raw: list[Any]) -> bool:
        """Whether decoding needs real work (encoded images), so it belongs off the event loop."""
        return self.spec.kind == "image" and any(isinstance(x, dict) for x in raw)

    def pixel_body(self, body: bytes) -> np.ndarray | None:
        """The batch of a row-form body of uint8 pixels read without building nested lists
        (:class:`~tfpilot.serving.pixel_body.PixelBody`), or None: then use :meth:`decode`."""
        if self._pixel_body is None:
            return None
        batch = self._pixel_body.parse(body)
        if batch is not None:
            self.check_count(len(batch))
        return batch

    def decode(self, raw: list[Any]) -> np.ndarray:
        """The model batch for ``raw`` instances, or a :class:`BadRequest` naming the bad one."""
        self.check_count(len(raw))
        if self.spec.kind == "text":
            return np.array([self._text(x, f"instance {i}") for i, x in enumerate(raw)], dtype=object)
        if raw and all(isinstance(x, list) for x in raw):
            fast = self._pixel_batch(raw)
            if fast is not None:
                return fast
        return np.stack([self._image(x, f"instance {i}") for i, x in enumerate(raw)])

    def decode_files(self, files: list[tuple[str, bytes]], per_line: bool = False) -> tuple[np.ndarray, list[str]]:
        """Uploaded ``(filename, bytes)`` -> (batch, one source name per instance)."""
        if self.spec.kind == "text":
            texts, names = [], []
            for name, data in files:
                try:
                    content = data.decode("utf-8-sig")
                except UnicodeDecodeError:
                    raise BadRequest(f"{name}: not UTF-8 text; this model reads text files") from None
                items = [line.strip() for line in content.splitlines() if line.strip()] if per_line else [content]
                if not items:
                    raise BadRequest(f"{name}: the file is empty")
                texts += items
                names += [f"{name}:{i + 1}" for i in range(len(items))] if per_line else [name]
            self.check_count(len(texts))
            return np.array(texts, dtype=object), names
        self.check_count(len(files))
        return np.stack([self._encoded(data, name) for name, data in files]), [n for n, _ in files]

    # -- images ------------------------------------------------------------------------------
    def _pixel_batch(self, raw: list[Any]) -> np.ndarray | None:
        """All instances as one array (the common case), or None to report per instance."""
        try:
            arr = np.asarray(raw)
        except (ValueError, TypeError, RecursionError):
            return None
        h, w, c = self.spec.shape
        if arr.dtype.kind not in "iuf":
            return None
        if arr.shape[1:] == (h, w) and c == 1:
            arr = arr[..., None]
        if arr.shape[1:] != (h, w, c):
            return None
        try:
            return self._pixels(arr, "instances")
        except BadRequest:
            return None  # reported per instance, with its index

    def _image(self, x: Any, where: str) -> np.ndarray:
        h, w, c = self.spec.shape
        if isinstance(x, dict):
            return self._encoded(b64_bytes(x, where), where)
        if not isinstance(x, list):
            raise BadRequest(f"{where}: wrong type: image models take pixels as a nested list {[h, w, c]} of "
                             f"numbers 0..255 or an encoded image as {{\"b64\": \"...\"}}; got {json_type(x)}")
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError):
            raise BadRequest(f"{where}: wrong shape: the nested lists are ragged (rows of different lengths); "
                             f"expected {[h, w, c]}") from None
        except RecursionError:
            raise BadRequest(f"{where}: nested too deeply; expected {[h, w, c]}") from None
        if arr.dtype.kind == "b":
            raise BadRequest(f"{where}: wrong type: pixels must be numbers 0..255, not booleans")
        if arr.dtype.kind in "USO":
            raise BadRequest(f"{where}: wrong type: pixels must be numbers 0..255; found strings, objects, null or "
                             "huge numbers among them (an encoded image goes in {\"b64\": \"...\"})")
        if arr.ndim == 2 and c == 1:
            arr = arr[..., None]
        if arr.shape != (h, w, c):
            hint = f" (or [{h}, {w}] for grayscale)" if c == 1 else ""
            raise BadRequest(
                f"{where}: wrong shape {list(arr.shape)}: this model takes images of shape {[h, w, c]}{hint}; "
                f"resize to {h}x{w} with {c} channel(s), or send the encoded file as {{\"b64\": \"...\"}} "
                "to have it decoded and resized for you"
            )
        return self._pixels(arr[None], where)[0]

    @staticmethod
    def _pixels(arr: np.ndarray, where: str) -> np.ndarray:
        if arr.dtype == np.uint8:
            return arr
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise BadRequest(f"{where}: pixel values must be finite numbers 0..255 (found NaN or Infinity)")
            lo, hi = float(arr.min()), float(arr.max())
            if lo < 0 or hi > 255:
                raise BadRequest(f"{where}: pixel values must be within 0..255; got {lo:g}..{hi:g}")
            if hi <= 1.0 and not np.array_equal(arr, np.round(arr)):
                raise BadRequest(f"{where}: the pixels look scaled to [0, 1]; tfpilot models take raw 0..255 "
                                 "pixels (the scaling is inside the model): send round(x * 255)")
            return np.round(arr).astype(np.uint8)
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise BadRequest(f"{where}: pixel values must be within 0..255; got {lo}..{hi}")
        return arr.astype(np.uint8)

    def _encoded(self, data: bytes, where: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            raise BadRequest(f"{where}: not a decodable image: send PNG, JPEG, BMP or GIF bytes") from None
        if width * height > MAX_IMAGE_PIXELS:
            raise BadRequest(f"{where}: the image is {width}x{height}, too large to decode here; "
                             f"downscale it to {self.spec.shape[1]}x{self.spec.shape[0]} first")
        try:
            return self.decode_image(data)
        except ValueError as exc:
            raise BadRequest(f"{where}: not a decodable image ({exc})") from None

    def _default_decode(self, data: bytes) -> np.ndarray:
        import tensorflow as tf

        from tfpilot.data.images import decode_and_resize, framework_message

        h, w, c = self.spec.shape
        try:
            return decode_and_resize(tf.constant(data), c, (h, w)).numpy()
        except tf.errors.OpError as exc:  # TensorFlow's text without its {{function_node ...}} frame
            raise ValueError(framework_message(exc)) from None

    # -- text --------------------------------------------------------------------------------
    @staticmethod
    def _text(x: Any, where: str) -> str:
        if isinstance(x, list) and len(x) == 1:
            x = x[0]
        if isinstance(x, dict):
            try:
                return b64_bytes(x, where).decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"{where}: the \"b64\" bytes are not UTF-8 text") from None
        if not isinstance(x, str):
            raise BadRequest(f"{where}: wrong type: text models take strings; got {json_type(x)}")
        return x
