"""Image defaults chosen from the data before any image is decoded (training/defaults.py): the
image size from a sample of image headers, the image model by image count and size, each with
its reason in the run's ``chosen``; a table's image column gets its size the same way."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from tfpilot.config import load_config
from tfpilot.data.image_probe import ImageProbe, probe_images_of
from tfpilot.testing import make_image_folder
from tfpilot.testing.synthetic import write_image
from tfpilot.training.defaults import choose_before_loading, choose_image_size, image_recipe


def probe(h: int, w: int, images: int = 2000, channels: int = 3, sizes: int = 1) -> ImageProbe:
    counts = Counter({(h, w): 50, **{(h + i, w): 1 for i in range(1, sizes)}})
    return ImageProbe(images, 6, counts, channels, None, int(images * 0.7))


@pytest.mark.parametrize(("size", "model", "expected"), [
    ((768, 1024), "auto", (48, 64)),        # a large photo: longer side 64, aspect kept
    ((1500, 1125), "auto", (64, 48)),       # portrait
    ((224, 224), "auto", (64, 64)),
    ((32, 32), "auto", (32, 32)),           # small images keep their size
    ((60, 50), "auto", (60, 50)),
    ((768, 1024), "mobilenet_v2", (168, 224)),  # a pretrained backbone: up to its native 224
])
def test_the_image_size_is_chosen_for_the_model_and_the_data(size, model, expected):
    chosen, why = choose_image_size(probe(*size), model)
    assert chosen == expected
    assert f"{size[0]}x{size[1]}" in why


def test_several_sizes_are_named_in_the_reason():
    _, why = choose_image_size(probe(768, 1024, sizes=3), "auto")
    assert "3 sizes" in why and "stretched" in why


def test_the_image_model_follows_the_image_size_and_colour():
    assert image_recipe(60_000, (28, 28), 1)[0] == "mnist_cnn"
    assert image_recipe(50_000, (32, 32), 3)[0] == "cifar_cnn_bn"
    name, params, why = image_recipe(1_800, (96, 128), 3)
    assert name == "mini_resnet" and "1,800 training images of 96x128x3" in why


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder of 3 classes x 8 JPEG 'photos' of 300x400 (header probing, then decoding)."""
    return make_image_folder(tmp_path_factory.mktemp("photos") / "shapes", per_class=8, size=300, suffix=".jpg")


def test_a_photo_folder_is_probed_without_decoding(photos):
    (p,) = probe_images_of(load_config(None, dataset=str(photos)))
    assert (p.images, p.classes, p.common_size, p.channels) == (24, 3, (300, 300), 3)
    assert p.train_images == 17  # 70% of 24, as the split makes it


def test_no_flags_on_a_photo_folder_choose_size_and_model_and_say_why(photos, caplog):
    cfg = load_config(None, dataset=str(photos))
    with caplog.at_level(logging.INFO, logger="tfpilot"):
        out = choose_before_loading(cfg)
    assert out.data.image_size == (64, 64) and out.model.name == "mini_resnet"
    assert "300x300" in out.chosen["data.image_size"] and "at most 64 px" in out.chosen["data.image_size"]
    assert "mini_resnet" in out.chosen["model.name"]
    assert any("memory plan" in r.getMessage() for r in caplog.records)


def test_given_keys_are_kept(photos):
    cfg = load_config(None, overrides=["data.image_size=[40,40]"], dataset=str(photos), model="cifar_cnn_bn")
    out = choose_before_loading(cfg)
    assert out.data.image_size == (40, 40) and out.model.name == "cifar_cnn_bn"
    assert not set(out.chosen)


def test_builtin_arrays_are_not_probed():
    cfg = load_config(None, dataset="digits")
    assert probe_images_of(cfg) == [] and choose_before_loading(cfg) is cfg


def write_photo_table(root: Path, rows: int, side: int, seed: int = 0) -> Path:
    """A table whose ``photo`` column holds ``side`` x ``side*3/4`` JPEGs (a bright band tells the kind)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    kinds = ("ant", "bee", "cat")
    with (root / "table.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["photo", "title", "kind"])
        for i in range(rows):
            k = i % 3
            img = rng.integers(0, 60, (side, side * 3 // 4, 3), dtype=np.uint8)
            img[k * side // 3:(k + 1) * side // 3] += 150
            write_image(root / "images" / f"{i}.jpg", img)
            w.writerow([f"images/{i}.jpg", f"item {rng.integers(100)}", kinds[k]])
    return root / "table.csv"


def test_a_table_of_large_photos_trains_with_no_flags(tmp_path):
    """The mechanism of the 2,000-row, 1,500 px benchmark (docs/bench/defaults.md), on 24 rows."""
    from tfpilot.api import train

    table = write_photo_table(tmp_path / "t", rows=24, side=1500)
    cfg = load_config(None, dataset=str(table), epochs=1, run_dir=str(tmp_path / "run"))
    from tfpilot.config.table_flags import with_columns

    run = train(with_columns(cfg, ["kind"], []), report=False)
    saved = yaml.safe_load((run.path / "config.yaml").read_text())
    assert saved["data"]["image_size"] == [64, 48]
    assert "1500x1125" in saved["chosen"]["data.image_size"]
    assert run.metrics["params"] < 5_000_000
