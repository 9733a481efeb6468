"""YDF's TensorFlow ops (``ydf-tf``): what loading a SavedModel with decision forests in it needs.

A SavedModel exported from a ``ydf_gbt`` / ``ydf_rf`` run calls YDF's inference ops
(``SimpleMLCreateModelResource``, ``SimpleMLInferenceOpWithHandle``, ...). TensorFlow knows
them only once ``ydf_tf`` is imported, so every place that calls ``tf.saved_model.load``
calls :func:`ensure_ops` first. It imports nothing else (not ``ydf`` itself) and costs
little; without ``ydf-tf`` installed it does nothing, and a SavedModel that needs the ops
then fails to load with TensorFlow's own message naming the op.

Example:
    >>> from tfpilot.models.ydf_ops import ensure_ops
    >>> ensure_ops()  # ydf-tf is installed with tfpilot (make install)
    True
"""

from __future__ import annotations

import importlib.util

#: What to install for YDF's ops (``--no-deps``: its dependency is the full ``tensorflow`` wheel,
#: which would replace ``tensorflow-cpu``).
INSTALL = 'pip install --no-deps "ydf-tf==2.21.*"'


def ensure_ops() -> bool:
    """Register YDF's TensorFlow ops, if ``ydf-tf`` is installed.

    Returns:
        whether the ops are registered.
    """
    if importlib.util.find_spec("ydf_tf") is None:
        return False
    import ydf_tf  # noqa: F401  (registers the ops with TensorFlow)

    return True
