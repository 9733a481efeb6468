"""``tfpilot inspect``'s data checks: content and perceptual hashes, duplicate search, table columns.

Layer 2 (data): nothing here trains. The label-issue search, which needs a model, is
:mod:`tfpilot.training.label_issues`; the page is :mod:`tfpilot.evaluation.inspect_page`; the
composition is :func:`tfpilot.api.inspect`.

Example:
    >>> from tfpilot.data.inspect import near_pairs
    >>> import numpy as np
    >>> near_pairs(np.array([0, 1, 2**40 - 1], np.uint64), max_distance=2).tolist()
    [[0, 1, 1]]
"""

from __future__ import annotations

from tfpilot.data.inspect.duplicates import near_pairs, text_near_pairs
from tfpilot.data.inspect.hashing import ImageInfo, hash_image_files

__all__ = ["ImageInfo", "hash_image_files", "near_pairs", "text_near_pairs"]
