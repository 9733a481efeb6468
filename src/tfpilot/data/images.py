"""Decoding image files: probing sizes, decoding in parallel with tf.data, skipping bad files.

A file that cannot be read or decoded never stops a run: it is dropped, and the
:class:`~tfpilot.data.report.DataReport` records its path and the reason.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfpilot.config.schema import DataConfig
from tfpilot.data.report import DataReport
from tfpilot.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif"})
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
#: How :func:`decode_and_resize` resizes: part of the decode cache's key
#: (:mod:`tfpilot.data.decode_cache`), so changing either makes new entries.
RESIZE_METHOD = "bilinear"
RESIZE_ANTIALIAS = True


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has an image extension (:data:`IMAGE_EXTENSIONS`, any case).

    Example:
        >>> is_image_file("cat/0001.JPG"), is_image_file("notes.txt"), is_image_file(".jpg")
        (True, False, False)
    """
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def probe_images(paths: Sequence[str], max_files: int = 256) -> tuple[tuple[int, int], int, int]:
    """Read the headers of up to ``max_files`` images (spread over ``paths``).

    Returns:
        ``((height, width), channels, distinct_sizes)``: the most common size, 1 if every
        probed image is grayscale else 3, and how many distinct sizes were seen.
    """
    sizes, channels = image_sizes(paths, max_files)
    return sizes.most_common(1)[0][0], channels, len(sizes)


def image_sizes(paths: Sequence[str], max_files: int = 256) -> tuple[Counter[tuple[int, int]], int]:
    """The sizes of up to ``max_files`` images spread over ``paths``, read from their headers
    (PIL opens a file lazily: nothing is decoded).

    Returns:
        ``(Counter of (height, width), channels)``: channels 1 if every probed image is
        grayscale, else 3.

    Raises:
        ValueError: ``paths`` is empty.
        UserError: none of the probed files is a readable image.

    Example:
        >>> from tfpilot.testing import write_image
        >>> import tempfile
        >>> png = write_image(Path(tempfile.mkdtemp()) / "a.png", np.zeros((4, 6, 3), np.uint8))
        >>> image_sizes([str(png)])
        (Counter({(4, 6): 1}), 3)
    """
    from PIL import Image

    if not paths:
        raise ValueError("no image files to probe")
    step = max(1, len(paths) // max_files)
    sizes: Counter[tuple[int, int]] = Counter()
    gray = True
    for p in paths[::step][:max_files]:
        try:
            with Image.open(p) as im:
                sizes[(im.height, im.width)] += 1
                gray &= im.mode in _GRAY_MODES
        except Exception:  # unreadable files are reported by decode_files
            continue
    if not sizes:
        raise UserError(f"none of the {min(len(paths), max_files)} probed files is a readable image")
    return sizes, (1 if gray else 3)


def decode_and_resize(contents, channels: int, size: tuple[int, int]):
    """tf: encoded bytes -> uint8 (height, width, channels); resized only when needed."""
    import tensorflow as tf

    img = tf.io.decode_image(contents, channels=channels, expand_animations=False)
    img.set_shape([None, None, channels])
    shape = tf.shape(img)
    same = tf.logical_and(tf.equal(shape[0], size[0]), tf.equal(shape[1], size[1]))

    def resize():
        r = tf.image.resize(img, size, method=RESIZE_METHOD, antialias=RESIZE_ANTIALIAS)
        return tf.cast(tf.clip_by_value(tf.round(r), 0, 255), tf.uint8)

    img = tf.cond(same, lambda: img, resize)
    img.set_shape([size[0], size[1], channels])
    return img


_TF_NODE = re.compile(r"\{\{[^{}]*\}\}")
_TF_OP = re.compile(r"\s*\[Op:[^\]]*\].*$", re.DOTALL)


def framework_message(exc: BaseException) -> str:
    """The human part of a TensorFlow error, without its ``{{function_node ...}}`` prefix and
    ``[Op:DecodeImage] name:`` suffix, on one line.

    Example:
        >>> class E(Exception):
        ...     message = "{{function_node __wrapped__DecodeImage}} Input is empty. [Op:DecodeImage] name: "
        >>> framework_message(E())
        'Input is empty'
    """
    msg = getattr(exc, "message", None)
    msg = msg if isinstance(msg, str) else str(exc)
    msg = _TF_OP.sub("", _TF_NODE.sub("", msg))
    return " ".join(msg.split()).rstrip(" .;:") or type(exc).__name__


def decode_error(where: str, exc: BaseException, error: type[ValueError] = UserError) -> ValueError:
    """The user-facing error for bytes that ``decode_and_resize`` could not decode: names
    ``where`` (a file, an input), says why in words, and what to give instead."""
    return error(f"{where}: not a decodable image ({framework_message(exc)}); "
                 "give a JPEG, PNG, BMP or GIF file")


def _reason(path: str) -> str:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
    except FileNotFoundError:
        return "file not found"
    except PermissionError:
        return "permission denied"
    except Exception as exc:  # PIL raises many types for corrupt data
        return f"corrupt or unreadable image ({type(exc).__name__}: {exc})"
    return "TensorFlow could not decode this image (unsupported or truncated data)"


@dataclass
class Decoded:
    """What :func:`decode_images` made of a list of files.

    Attributes:
        ok: indices into the paths of the files that decoded, ascending.
        pixels: their uint8 images (N, H, W, C) in the same order, or None.
        failed: ``(index, reason)`` of every file that did not decode, ascending.
    """

    ok: np.ndarray
    pixels: np.ndarray | None
    failed: list[tuple[int, str]]


def keep_decoded(cfg: DataConfig, n: int, size: tuple[int, int], channels: int) -> bool:
    """Whether ``n`` decoded images of ``size`` and ``channels`` are held in memory
    (``data.cache``: memory always, auto up to ``data.cache_max_gb``; else the pipeline
    decodes them per epoch).

    Example:
        >>> from tfpilot.config import DataConfig
        >>> keep_decoded(DataConfig(dataset="d"), 60_000, (32, 32), 3)
        True
        >>> keep_decoded(DataConfig(dataset="d", cache="none"), 1, (2, 2), 1)
        False
    """
    return cfg.cache == "memory" or (cfg.cache == "auto" and n * size[0] * size[1] * channels
                                     <= cfg.cache_max_gb * 2**30)


def decode_images(
    paths: np.ndarray, size: tuple[int, int], channels: int, keep_pixels: bool = True, batch: int = 512
) -> Decoded:
    """Decode every file once (parallel tf.data map); say which failed and why.

    Args:
        paths: file paths.
        size: (height, width) to resize to.
        channels: 1 or 3.
        keep_pixels: return the decoded images (else only which files are readable).
        batch: images per tf.data batch.

    Example:
        >>> from tfpilot.testing import write_image
        >>> import tempfile
        >>> png = write_image(Path(tempfile.mkdtemp()) / "a.png", np.zeros((4, 4, 3), np.uint8))
        >>> d = decode_images(np.array([str(png), "/no/such.png"], dtype=object), (2, 2), 3)
        >>> d.ok.tolist(), d.pixels.shape, d.failed
        ([0], (1, 2, 2, 3), [(1, 'file not found')])
    """
    import tensorflow as tf

    n = len(paths)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(n, dtype=np.int64), np.asarray(paths, dtype=str)))
    ds = ds.map(
        lambda i, p: (i, decode_and_resize(tf.io.read_file(p), channels, size)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.ignore_errors().batch(batch).prefetch(2)
    idx_parts, img_parts = [], []
    for idx, imgs in ds:
        idx_parts.append(idx.numpy())
        if keep_pixels:
            img_parts.append(imgs.numpy())
    ok = np.concatenate(idx_parts) if idx_parts else np.array([], np.int64)
    failed = [(int(bad), _reason(str(paths[bad]))) for bad in np.setdiff1d(np.arange(n), ok)]
    pixels = None
    if keep_pixels:
        pixels = np.concatenate(img_parts) if img_parts else np.zeros((0, *size, channels), np.uint8)
    return Decoded(ok, pixels, failed)


def decode_files(
    paths: np.ndarray,
    size: tuple[int, int],
    channels: int,
    report: DataReport,
    keep_pixels: bool = True,
    batch: int = 512,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode every file once (parallel tf.data map) and drop the ones that fail.

    Args:
        paths: file paths.
        size: (height, width) to resize to.
        channels: 1 or 3.
        report: receives one :class:`SkippedFile` per failure, with its reason.
        keep_pixels: return the decoded images (else only which files are readable).
        batch: images per tf.data batch.

    Returns:
        ``(ok_index, pixels)``: indices into ``paths`` that decoded, and their uint8
        images (N, H, W, C) in the same order, or None when ``keep_pixels`` is False.
    """
    decoded = decode_images(paths, size, channels, keep_pixels=keep_pixels, batch=batch)
    for bad, reason in decoded.failed:
        report.skip(paths[bad], reason)
    return decoded.ok, decoded.pixels


def convert_images(x: np.ndarray, size: tuple[int, int], channels: int, batch: int = 1024) -> np.ndarray:
    """Resize / convert uint8 images (N, H, W, C) the way image files are decoded.

    Grayscale becomes RGB by repeating the channel, RGB becomes grayscale by luma
    (ITU-R 601 weights, as TensorFlow's decoders do); then, as in
    :func:`decode_and_resize`, images are resized bilinearly with antialiasing, rounded and
    clipped to uint8. Done in batches of ``batch`` images to bound memory.

    Args:
        x: uint8 images (N, H, W, C), C 1 or 3.
        size: the target (height, width).
        channels: the target channels, 1 or 3.
        batch: images converted per TensorFlow call.

    Example:
        >>> convert_images(np.zeros((2, 8, 8, 1), np.uint8), (16, 16), 3).shape
        (2, 16, 16, 3)
    """
    import tensorflow as tf

    size = (int(size[0]), int(size[1]))
    if x.shape[1:3] == size and x.shape[-1] == channels:
        return x
    out = np.empty((len(x), size[0], size[1], channels), np.uint8)
    for start in range(0, len(x), batch):
        img = tf.convert_to_tensor(x[start : start + batch])
        if img.shape[-1] != channels:
            if channels == 3:
                img = tf.image.grayscale_to_rgb(img)
            else:
                gray = tf.image.rgb_to_grayscale(tf.cast(img, tf.float32))
                img = tf.cast(tf.clip_by_value(tf.round(gray), 0, 255), tf.uint8)
        if tuple(img.shape[1:3]) != size:
            r = tf.image.resize(img, size, method="bilinear", antialias=True)
            img = tf.cast(tf.clip_by_value(tf.round(r), 0, 255), tf.uint8)
        out[start : start + batch] = img.numpy()
    return out
