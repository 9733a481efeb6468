"""data.augment.crop_padding: reflect-pad + random crop, in whole pixels, on uint8 batches."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tfpilot.config.schema import AugmentConfig
from tfpilot.training.augment import build_augmenter, random_crop


def _shift_of(out: np.ndarray, padded: np.ndarray, size: int, pad: int) -> tuple[int, int] | None:
    """The (dy, dx) window of ``padded`` that ``out`` is, or None."""
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            if np.array_equal(padded[dy:dy + size, dx:dx + size], out):
                return dy, dx
    return None


def test_random_crop_is_a_whole_pixel_window_of_the_reflect_padded_image():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (64, 8, 8, 3), dtype=np.uint8)
    out = np.asarray(random_crop(x, 2, seed=1))
    assert out.shape == x.shape and out.dtype == np.uint8
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    shifts = [_shift_of(o, p, 8, 2) for o, p in zip(out, padded)]
    assert all(s is not None for s in shifts)  # every image is one window, no interpolation
    assert len(set(shifts)) > 5  # offsets vary across the batch (all 25 are possible)


def test_a_horizontal_flip_with_the_crop_mirrors_about_half_the_windows():
    x = np.random.default_rng(2).integers(0, 255, (200, 8, 8, 3), dtype=np.uint8)
    aug = build_augmenter(AugmentConfig(crop_padding=2, flip="horizontal"), channels=3, seed=0)
    assert aug.crop_flip and aug.pixel_layers == []  # folded into the crop's column gather
    out = np.asarray(aug(x, np.zeros(200))[0])
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    plain = [_shift_of(o, p, 8, 2) is not None for o, p in zip(out, padded)]
    mirrored = [_shift_of(o[:, ::-1], p, 8, 2) is not None for o, p in zip(out, padded)]
    assert all(a or b for a, b in zip(plain, mirrored))  # each one window, mirrored or not
    assert 70 < sum(m and not p for m, p in zip(mirrored, plain)) < 130


def test_crop_padding_is_honoured_by_the_augmenter():
    x = np.random.default_rng(1).integers(0, 255, (32, 8, 8, 1), dtype=np.uint8)
    y = np.arange(32) % 2
    assert build_augmenter(AugmentConfig(), channels=1) is None
    aug = build_augmenter(AugmentConfig(crop_padding=1), channels=1, seed=0)
    assert aug is not None and aug.crop_padding == 1
    out, labels = aug(x, y)
    out = np.asarray(out)
    assert out.dtype == np.uint8 and out.shape == x.shape
    assert not np.array_equal(out, x)  # ignoring the key would leave the batch unchanged
    np.testing.assert_array_equal(np.asarray(labels), y)
    # with flip as well, the crop still applies (and the uint8 contract holds)
    both, _ = build_augmenter(AugmentConfig(crop_padding=1, flip="horizontal"), channels=1, seed=0)(x, y)
    assert np.asarray(both).dtype == np.uint8


def test_crop_padding_validates():
    assert AugmentConfig(crop_padding=2).enabled
    with pytest.raises(ValidationError, match="crop_padding"):
        AugmentConfig(crop_padding=-1)


def test_an_empty_batch_passes_every_augmentation():
    """A replica's share of a distributed epoch's partial last batch may have no rows."""
    import tensorflow as tf

    for options in ({"crop_padding": 2, "flip": "horizontal"}, {"flip": "horizontal", "rotation": 0.1, "zoom": 0.1},
                    {"mixup": 0.2}, {"cutmix": 1.0}):
        augment = build_augmenter(AugmentConfig(**options), 3, seed=0)
        empty = (np.zeros((0, 8, 8, 3), np.uint8), np.zeros((0, 2), np.float32))
        (x, y), = tf.data.Dataset.from_tensors(empty).map(augment)
        assert tuple(x.shape) == (0, 8, 8, 3) and tuple(y.shape) == (0, 2), options
