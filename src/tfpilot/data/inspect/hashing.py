"""Hashes of image files: a content digest, a perceptual hash and what the header says, in a process pool.

Each file is read once: its bytes give the content digest (the one ``split.json`` records,
:func:`~tfpilot.data.manifest.file_digest`), and decoding them gives the size, the mode and
``imagehash.phash`` (64 bits of the DCT of a 32x32 grayscale copy). Decoding is the slow part,
so the files are spread over a pool of processes (``workers``) in chunks.

Example:
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.png")
    >>> Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(p)
    >>> info = hash_image_files([p], workers=1)[0]
    >>> (info.width, info.height, info.mode, info.error)
    (6, 4, 'RGB', '')
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageInfo:
    """What one file holds: ``digest`` (BLAKE2b, 16 hex digits), ``phash`` (64 bits as an int),
    ``width``, ``height``, ``mode`` (PIL's), ``format``; ``error`` says why it could not be
    read or decoded ('' when it could)."""

    digest: str
    phash: int
    width: int
    height: int
    mode: str
    format: str
    error: str = ""


def phash_bits(image: object) -> int:
    """``imagehash.phash`` of a PIL image as one 64-bit integer.

    Example:
        >>> from PIL import Image
        >>> phash_bits(Image.new("L", (8, 8))) == 0
        True
    """
    import imagehash

    bits = imagehash.phash(image).hash.ravel()
    return int(np.packbits(bits).view(">u8")[0])


def image_info(path: str) -> ImageInfo:
    """Digest, perceptual hash and header of one file (``error`` set instead of raising).

    Args:
        path: the image file.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return ImageInfo("missing", 0, 0, 0, "", "", f"cannot read the file: {exc.strerror or exc}")
    digest = hashlib.blake2b(data, digest_size=8).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height, mode, fmt = im.width, im.height, im.mode, im.format or ""
            im.load()
            return ImageInfo(digest, phash_bits(im), width, height, mode, fmt)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return ImageInfo(digest, 0, 0, 0, "", "", f"not a decodable image: {exc}")


def _chunk(paths: Sequence[str]) -> list[ImageInfo]:
    return [image_info(p) for p in paths]


def hash_image_files(paths: Sequence[str], workers: int | None = None, chunk: int = 512) -> list[ImageInfo]:
    """:func:`image_info` of every path, in order, computed by ``workers`` processes.

    Args:
        paths: image files.
        workers: processes (default: the CPUs this process may use, at most 2 beyond 1 file chunk);
            1 works in this process.
        chunk: files per task.
    """
    paths = [str(p) for p in paths]
    if workers is None:
        workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)
    if workers <= 1 or len(paths) <= chunk:
        return _chunk(paths)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parts = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    # spawn, not fork: the parent may hold TensorFlow's threads
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [info for part in pool.map(_chunk, parts) for info in part]


def array_phashes(images: np.ndarray) -> np.ndarray:
    """``imagehash.phash`` of each uint8 image of ``(N, H, W, C)`` (built-in arrays), as uint64.

    Example:
        >>> array_phashes(np.zeros((2, 8, 8, 1), np.uint8)).tolist()
        [0, 0]
    """
    from PIL import Image

    out = np.empty(len(images), np.uint64)
    for i, a in enumerate(images):
        a = a[..., 0] if a.shape[-1] == 1 else a
        out[i] = phash_bits(Image.fromarray(np.ascontiguousarray(a)))
    return out
