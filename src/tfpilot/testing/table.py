"""A tiny learnable table with every column type: an image path, a text, a number and a category,
plus a category target and a number target that depend on them.

Columns of :func:`make_table`'s CSV:

* ``photo`` -- ``images/<i>.png`` (relative to the CSV): a bright square in the band of
  the row's ``kind`` (so the image tells the kind);
* ``title`` -- a few words, one of which names the kind (``"red small ant item"``);
* ``size`` -- a float, missing in a few rows;
* ``colour`` -- one of red / green / blue;
* ``kind`` -- the category target (ant / bee / cat);
* ``price`` -- the number target: ``10 * size + {red: 0, green: 5, blue: 10}`` plus a little noise.

Example:
    >>> import tempfile
    >>> path = make_table(tempfile.mkdtemp(), rows=12)
    >>> path.read_text().splitlines()[0]
    'photo,title,size,colour,kind,price'
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tfpilot.testing.synthetic import make_shapes_arrays, write_image

KINDS = ("ant", "bee", "cat")
COLOURS = ("red", "green", "blue")
COLOUR_PRICE = {"red": 0.0, "green": 5.0, "blue": 10.0}
FILLER = ("small", "large", "new", "old", "item", "classic", "fresh")


def make_table(root: str | Path, rows: int = 60, size: int = 16, seed: int = 0, name: str = "table.csv",
               images: bool = True, missing_every: int = 9) -> Path:
    """Write ``root/<name>`` (and ``root/images/*.png``) and return the CSV's path.

    Args:
        root: the folder to write into.
        rows: table rows.
        size: image height and width (RGB).
        seed: the random seed.
        name: the table's file name.
        images: write the ``photo`` column and its images.
        missing_every: every n-th ``size`` cell is left empty (0: none).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    pixels, kinds = make_shapes_arrays(rows, len(KINDS), size, 3, seed=seed)
    header = (["photo"] if images else []) + ["title", "size", "colour", "kind", "price"]
    with (root / name).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(rows):
            kind = KINDS[kinds[i]]
            colour = COLOURS[int(rng.integers(len(COLOURS)))]
            value = float(np.round(rng.uniform(0.5, 3.0), 2))
            words = [colour, str(rng.choice(FILLER)), kind, str(rng.choice(FILLER))]
            price = 10 * value + COLOUR_PRICE[colour] + float(rng.normal(0, 0.3))
            cells = [" ".join(words), "" if missing_every and i % missing_every == missing_every - 1 else value,
                     colour, kind, round(price, 3)]
            if images:
                rel = f"images/{i:04d}.png"
                write_image(root / rel, pixels[i])
                cells = [rel, *cells]
            w.writerow(cells)
    return root / name
