"""One split of a table: the model inputs and encoded targets of its rows, by key.

It lives apart from :mod:`tfpilot.data.table` so that both the table preparation and
:mod:`tfpilot.data.table_pipeline` use it without importing each other.

Example:
    >>> import numpy as np
    >>> split = TableSplit({"x": np.arange(4.0)}, {"y": np.zeros(4)}, np.arange(4))
    >>> len(split.take(np.array([0, 2]))), split.take(np.array([3])).inputs["x"].tolist()
    (2, [3.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TableSplit:
    """One split of a table: model inputs and encoded targets by key, and the rows they came from.

    Attributes:
        inputs: column key -> raw model input (uint8 images (N, H, W, C) or their file
            paths, object arrays of strings, float32 with NaN).
        targets: output key -> int64 class ids, float32 0/1 (binary) or float32 values.
        ids: 0-based row numbers in the table.
        paths: image column key -> the image files (for reports and decoding).
    """

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    ids: np.ndarray
    paths: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: np.ndarray) -> TableSplit:
        index = np.asarray(index, dtype=np.int64)
        return TableSplit({k: v[index] for k, v in self.inputs.items()}, {k: v[index] for k, v in self.targets.items()},
                          self.ids[index], {k: v[index] for k, v in self.paths.items()})
