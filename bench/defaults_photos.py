"""Build the large-photo stand-ins of docs/bench/defaults.md (issue 27) in /tmp, never in the repo.

* ``folder``: fashion-9k's photos upscaled to 1024x768 (a stand-in for camera photos) in class
  folders by ``masterCategory`` -- a seeded sample of ``--rows`` photos of the classes with at
  least 40 photos (Sporting Goods has 1, Free Items 7).
* ``table``: a synthetic table of ``--rows`` rows whose ``photo`` column holds 1500x1125 JPEGs
  (smooth shapes, a bright band telling the ``kind``), plus a ``title`` text column.

Usage::

    python bench/defaults_photos.py folder --rows 3000 --out /tmp/fashion-1024
    python bench/defaults_photos.py table --rows 2000 --out /tmp/photo-table
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import tarfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

#: fashion-9k.tar.gz is read from here, as tfpilot looks datasets up.
DATASETS = Path(os.environ.get("TFPILOT_DATA_DIR", "../shared/datasets"))


def _upscale(job: tuple[str, str]) -> None:
    src, dst = job
    with Image.open(src) as im:
        im.convert("RGB").resize((1024, 768), Image.BICUBIC).save(dst, quality=90)


def build_folder(rows: int, out: Path, seed: int = 0) -> None:
    extracted = Path("/tmp/fashion-9k-src")
    if not (extracted / "fashion-9k").exists():
        with tarfile.open(DATASETS / "fashion-9k.tar.gz") as tar:
            tar.extractall(extracted)
    base = extracted / "fashion-9k"
    table = list(csv.DictReader((base / "fashion_9k.csv").open(encoding="utf-8")))
    counts = Counter(r["masterCategory"] for r in table)
    table = [r for r in table if counts[r["masterCategory"]] >= 40]
    random.Random(seed).shuffle(table)
    jobs = []
    for r in table[:rows]:
        d = out / r["masterCategory"].replace(" ", "_")
        d.mkdir(parents=True, exist_ok=True)
        jobs.append((str(base / r["image"]), str(d / f"{r['id']}.jpg")))
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_upscale, jobs, chunksize=32))
    print(f"{len(jobs)} photos of 1024x768 in {out}: {dict(Counter(Path(j[1]).parent.name for j in jobs))}")


def _photo(job: tuple[int, str, int]) -> None:
    i, path, kind = job
    rng = np.random.default_rng(i)
    h, w = 1500, 1125
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        img[..., c] = (60 + 40 * np.sin(xx / (80 + 20 * c) + rng.uniform(0, 6)) + 30 * np.cos(yy / 120)).astype(np.uint8)
    img[kind * h // 3:(kind + 1) * h // 3] //= 3
    img[kind * h // 3:(kind + 1) * h // 3] += 160
    Image.fromarray(img).save(path, quality=85)


def build_table(rows: int, out: Path) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    kinds = ("ant", "bee", "cat")
    jobs = [(i, str(out / "images" / f"{i}.jpg"), i % 3) for i in range(rows)]
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_photo, jobs, chunksize=16))
    with (out / "table.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["photo", "title", "kind"])
        for i, _, k in jobs:
            w.writerow([f"images/{i}.jpg", f"item number {i % 97}", kinds[k]])
    print(f"{rows} rows with 1500x1125 JPEGs in {out / 'table.csv'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["folder", "table"])
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    (build_folder if a.what == "folder" else build_table)(a.rows, a.out)


if __name__ == "__main__":
    main()
