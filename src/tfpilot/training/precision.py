"""Choosing the numeric precision for the hardware, and applying it while a model is built.

``auto`` picks ``mixed_bfloat16`` on CPUs with native bf16 (AVX512-BF16 or AMX),
``mixed_float16`` on GPUs of compute capability >= 7.0, else ``float32``. The classifier
head of every tfpilot model computes in float32 whatever the policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def gpu_compute_capability() -> tuple[int, int] | None:
    """Compute capability of the first visible GPU, or None without one."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return details.get("compute_capability") or (0, 0)


def choose_precision(requested: str = "auto") -> str:
    """Resolve ``requested`` ("auto" or a Keras dtype policy name) for this machine.

    Example:
        >>> choose_precision("float32")
        'float32'
    """
    if requested != "auto":
        return requested
    cc = gpu_compute_capability()
    if cc is not None:
        return "mixed_float16" if cc >= (7, 0) else "float32"
    return "mixed_bfloat16" if cpu_flags() & BF16_CPU_FLAGS else "float32"


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Set Keras' global dtype policy to ``name`` inside the block, then restore it."""
    import keras

    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
