"""Hashes of image files: a content digest, a perceptual hash and what the header says, in a process pool.

Each file is read once: its bytes give the content digest (the one ``split.json`` records,
:func:`~tfpilot.data.manifest.file_digest`), and decoding them gives the size, the mode and the
32x32 grayscale copy that ``imagehash.phash`` hashes. Decoding is the slow part, so the files are
spread over a pool of processes (``workers``) in chunks; the DCTs of the copies are then taken
all at once (:func:`phash_batch`, the same arithmetic as ``imagehash.phash``, checked equal to it
by the tests), not one image at a time.

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

import dataclasses
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
    phash: int | np.ndarray  # the 32x32 grayscale copy until hash_image_files hashes it
    width: int
    height: int
    mode: str
    format: str
    error: str = ""


#: imagehash.phash's defaults: an 8x8 hash of the DCT of a (8 * 4) x (8 * 4) grayscale copy.
HASH_SIZE, HIGHFREQ = 8, 4


def phash_input(image: object) -> np.ndarray:
    """What ``imagehash.phash`` takes the DCT of: the image in grayscale, resized to 32x32 (LANCZOS)."""
    from PIL import Image

    side = HASH_SIZE * HIGHFREQ
    return np.asarray(image.convert("L").resize((side, side), Image.LANCZOS), dtype=np.uint8)


def phash_batch(gray: np.ndarray) -> np.ndarray:
    """``imagehash.phash`` of a stack of its 32x32 inputs (:func:`phash_input`), as uint64: the 2-D DCT
    (scipy.fftpack, as imagehash), its top-left 8x8, each bit "above the median".

    Example:
        >>> phash_batch(np.zeros((3, 32, 32), np.uint8)).tolist()
        [0, 0, 0]
    """
    import scipy.fftpack

    if not len(gray):
        return np.zeros(0, np.uint64)
    pixels = np.asarray(gray, dtype=np.float64)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=1), axis=2)[:, :HASH_SIZE, :HASH_SIZE]
    bits = dct.reshape(len(dct), -1) > np.median(dct.reshape(len(dct), -1), axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").reshape(-1).astype(np.uint64)


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
            return ImageInfo(digest, phash_input(im), width, height, mode, fmt)
    except UnidentifiedImageError:
        return ImageInfo(digest, 0, 0, 0, "", "", "not a decodable image: no image format recognised in its bytes")
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        return ImageInfo(digest, 0, 0, 0, "", "", f"not a decodable image: {exc}")


def _chunk(paths: Sequence[str]) -> list[ImageInfo]:
    return [image_info(p) for p in paths]


def hash_image_files(paths: Sequence[str], workers: int | None = None, chunk: int = 512) -> list[ImageInfo]:
    """:func:`image_info` of every path, in order, read and decoded by ``workers`` processes, with
    ``phash`` the perceptual hash (0 for a file that failed).

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
        infos = _chunk(paths)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        parts = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
        # spawn, not fork: the parent may hold TensorFlow's threads
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            infos = [info for part in pool.map(_chunk, parts) for info in part]
    ok = [i for i, x in enumerate(infos) if not x.error]
    hashes = phash_batch(np.stack([infos[i].phash for i in ok]) if ok else np.zeros((0, 32, 32), np.uint8))
    for i, h in zip(ok, hashes):
        infos[i] = dataclasses.replace(infos[i], phash=int(h))
    return infos


def array_phashes(images: np.ndarray) -> np.ndarray:
    """``imagehash.phash`` of each uint8 image of ``(N, H, W, C)`` (built-in arrays), as uint64.

    Example:
        >>> array_phashes(np.zeros((2, 8, 8, 1), np.uint8)).tolist()
        [0, 0]
    """
    from PIL import Image

    gray = np.empty((len(images), HASH_SIZE * HIGHFREQ, HASH_SIZE * HIGHFREQ), np.uint8)
    for i, a in enumerate(images):
        a = a[..., 0] if a.shape[-1] == 1 else a
        gray[i] = phash_input(Image.fromarray(np.ascontiguousarray(a)))
    return phash_batch(gray)
