"""matplotlib on an Agg canvas: the figure and PNG helpers every plot of tfpilot uses.

No display and no pyplot global state, so plotting is safe in servers and threads.

Example:
    >>> from tfpilot.plotting import new_figure, to_png
    >>> fig = new_figure(2, 2)
    >>> _ = fig.add_subplot().plot([0, 1], [1, 0], color=TRAIN)
    >>> to_png(fig)[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

#: Palette shared by the plots (train, validation, accent).
TRAIN, VAL, ACCENT = "#2563eb", "#ea580c", "#16a34a"


def new_figure(width: float, height: float) -> Any:
    """A Figure on an Agg canvas (rendering never touches a display or pyplot's globals)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Any, path: str | Path | None = None, dpi: int = 100) -> bytes:
    """Render ``fig`` to PNG bytes; also write them to ``path`` when given."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data
