"""Built-in table datasets, found with the project's lookup order (``--data-dir``,
``$TFPILOT_DATA_DIR``, ``~/.keras/datasets``): ``auto_mpg``, ``petfinder_mini`` and ``fashion_9k``.

Example:
    >>> from tfpilot.data.table_io import TABLE_DATASETS
    >>> TABLE_DATASETS.list()
    ['auto_mpg', 'fashion_9k', 'petfinder_mini']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfpilot.data.paths import DatasetNotFoundError, extract_archive, find_data_file, search_dirs
from tfpilot.data.table_io import TABLE_DATASETS, LoadedTable, read_table

#: UCI Auto MPG's columns (``auto-mpg.names``); ``origin`` 1/2/3 is read as USA/Europe/Japan.
AUTO_MPG_COLUMNS = ["mpg", "cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year",
                    "origin", "car_name"]
ORIGINS = {1: "USA", 2: "Europe", 3: "Japan"}


def _find(name: str, candidates: list[str], cfg: Any) -> Path:
    found = find_data_file(candidates, cfg.data_dir)
    if found is None:
        looked = "\n".join(f"    {d}/{{{', '.join(candidates)}}}" for d in search_dirs(cfg.data_dir))
        raise DatasetNotFoundError(
            f"dataset {name!r} was not found. tfpilot looked in:\n{looked}\nFix: put one of those files in a "
            "directory and pass --data-dir DIR, or set $TFPILOT_DATA_DIR=DIR.")
    return found


def read_auto_mpg(path: str | Path) -> Any:
    """UCI's ``auto-mpg.data``: whitespace-separated, no header, ``?`` for a missing
    horsepower, then a TAB and the quoted car name.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "auto-mpg.data"
        >>> _ = p.write_text('18.0   8   307.0      ?      3504.      12.0   70  1\\t"chevrolet chevelle"\\n')
        >>> row = read_auto_mpg(p).iloc[0]
        >>> str(row["horsepower"]), row["origin"], row["car_name"]
        ('nan', 'USA', 'chevrolet chevelle')
    """
    import pandas as pd

    frame = pd.read_csv(path, sep=r"\s+", header=None, names=AUTO_MPG_COLUMNS, na_values=["?"], quotechar='"')
    frame["origin"] = frame["origin"].map(ORIGINS).fillna(frame["origin"].astype(str))
    return frame


@TABLE_DATASETS.register("auto_mpg", description="UCI Auto MPG: 398 cars, regression target mpg")
def auto_mpg(cfg: Any) -> LoadedTable:
    path = _find("auto_mpg", ["auto-mpg.data", "auto-mpg/auto-mpg.data"], cfg)
    return LoadedTable(read_auto_mpg(path), path.parent, str(path))


@TABLE_DATASETS.register("petfinder_mini", description="PetFinder.my mini: 11,537 pets, target AdoptionSpeed")
def petfinder_mini(cfg: Any) -> LoadedTable:
    path = _find("petfinder_mini", ["petfinder-mini.csv", "petfinder-mini/petfinder-mini.csv"], cfg)
    frame, base = read_table(path)
    return LoadedTable(frame, base, str(path))


@TABLE_DATASETS.register("fashion_9k", description="9,583 product photos + catalogue attributes (image + text)")
def fashion_9k(cfg: Any) -> LoadedTable:
    path = _find("fashion_9k", ["fashion-9k/fashion_9k.csv", "fashion-9k.tar.gz"], cfg)
    if path.name.endswith(".tar.gz"):
        path = extract_archive(path) / "fashion-9k" / "fashion_9k.csv"
    frame, base = read_table(path)
    return LoadedTable(frame, base, str(path))
