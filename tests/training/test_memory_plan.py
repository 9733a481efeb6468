"""The memory plan (training/memory_plan.py): the estimate's parts, shrinking what was left to
tfpilot when over the budget (and saying why), and a clear error when nothing can shrink."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from tfpilot.config import load_config
from tfpilot.data.image_probe import ImageProbe
from tfpilot.testing import make_image_folder
from tfpilot.training.memory_plan import (MemoryBudgetError, Workload, budget_bytes, estimate, model_footprint,
                                          plan_memory)

PHOTOS = [ImageProbe(2000, 3, Counter({(1500, 1125): 40}), 3, None, 1400)]


def naive(**overrides):
    """A run that would decode 2,000 photos at their full 1500x1125 (the issue's OOM)."""
    return load_config({"data": {"dataset": "photos", "image_size": [1500, 1125], **overrides},
                        "model": {"name": "mini_resnet"}})


def test_the_estimate_adds_runtime_pixels_parameters_and_activations():
    w = Workload(1000, (100, 100), 3, True, 0.3, 1_000_000, 500_000, 64)
    plan = estimate(w, budget=10e9, runtime=1e9)
    pixels = 1000 * 100 * 100 * 3
    assert plan.data == pytest.approx(2 * pixels) and plan.decoding == pytest.approx(2 * pixels)
    assert plan.params == 16e6 and plan.activations == pytest.approx(4 * 500_000 * 64)
    assert plan.total == pytest.approx(1e9 + plan.data + 16e6 + plan.activations) and plan.fits
    limited = estimate(Workload(1000, (100, 100), 3, True, 0.3, 0, 0, 64, kept_share=0.4), budget=10e9, runtime=0)
    assert limited.data == pytest.approx(0.8 * pixels) and limited.total == pytest.approx(2 * pixels)  # decoding
    streamed = estimate(Workload(1000, (100, 100), 3, False, 0.3, 0, 0, 64), budget=1.0, runtime=0)
    assert streamed.data == pytest.approx(0.3 * 1000 * 100 * 100 * 3) and not streamed.fits


def test_a_mixed_precision_run_plans_the_same_activations_as_float32(monkeypatch):
    """Measured: the same run peaked at 7.42 GB in float32 and 7.54 GB under mixed_bfloat16."""
    from tfpilot.config import load_config
    from tfpilot.training import memory_plan, precision

    monkeypatch.setattr(memory_plan, "model_footprint", lambda *args: (1_000, 5_000))  # (params, activations)
    probes = [ImageProbe(1000, 4, Counter({(96, 128): 40}), 3, None, 800)]
    config = load_config({"data": {"dataset": "photos", "image_size": [96, 128]}, "model": {"name": "mini_resnet"}})
    plans = {}
    for policy in ("float32", "mixed_bfloat16"):
        monkeypatch.setattr(precision, "choose_precision", lambda requested, p=policy: p)
        plans[policy] = memory_plan.estimate(memory_plan._workload(config, probes, (96, 128), 64, True), 20e9)
    assert plans["float32"] == plans["mixed_bfloat16"]
    assert plans["float32"].activations == memory_plan.ACTIVATION_BYTES * 64 * 5_000 == 1_280_000


def test_the_footprint_is_counted_on_the_model_without_changing_the_next_one():
    import keras

    from tfpilot.models import create_model
    from tfpilot.spec import InputSpec

    keras.utils.set_random_seed(0)
    first = create_model("mnist_cnn", InputSpec.image(28, 28, 1), 10)
    keras.utils.set_random_seed(0)
    params, acts = model_footprint("mnist_cnn", (28, 28), 1, 10, {})
    second = create_model("mnist_cnn", InputSpec.image(28, 28, 1), 10)
    assert params == 130890 and acts > 28 * 28 * 32
    assert [w.name for w in second.weights] == [w.name for w in first.weights]
    assert all((a.numpy() == b.numpy()).all() for a, b in zip(first.weights, second.weights))


def test_over_budget_the_chosen_image_size_shrinks_and_the_log_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="tfpilot"):
        changes, plan = plan_memory(naive(), PHOTOS, size_chosen=True, batch_chosen=False, budget=(4e9, "test"))
    size, why = changes["data.image_size"]
    assert plan.fits and max(size) < 1500 and size[0] > size[1]  # portrait kept
    assert "over the budget (test)" in why and "decoded images" in why
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("memory plan" in m and "GB" in m for m in warnings)


def between_cached_and_streamed(cfg):
    """A budget the run fits with its decoded images streamed, not with them in memory."""
    _, plan = plan_memory(cfg, PHOTOS, size_chosen=False, batch_chosen=False, budget=(1e15, "test"))
    return plan.total - plan.data / 2


def test_a_given_image_size_is_not_shrunk_the_cache_is():
    cfg = naive(image_size=[300, 225])
    changes, plan = plan_memory(cfg, PHOTOS, size_chosen=False, batch_chosen=False,
                                budget=(between_cached_and_streamed(cfg), "test"))
    assert set(changes) == {"data.cache"} and changes["data.cache"][0] == "none" and plan.fits


def test_nothing_left_to_shrink_is_a_clear_error():
    cfg = naive(image_size=[300, 225], cache="memory")
    with pytest.raises(MemoryBudgetError) as err:
        plan_memory(cfg, PHOTOS, size_chosen=False, batch_chosen=False,
                    budget=(between_cached_and_streamed(cfg), "test"))
    msg = str(err.value)
    assert "GB" in msg and "300x225" in msg and "data.image_size" in msg and "$TFPILOT_MEMORY_GB" in msg


def test_the_budget_can_be_set_and_is_checked(monkeypatch):
    monkeypatch.setenv("TFPILOT_MEMORY_GB", "3.5")
    assert budget_bytes() == (3.5e9, "$TFPILOT_MEMORY_GB")
    monkeypatch.setenv("TFPILOT_MEMORY_GB", "lots")
    with pytest.raises(Exception, match="TFPILOT_MEMORY_GB"):
        budget_bytes()
    monkeypatch.delenv("TFPILOT_MEMORY_GB")
    available, where = budget_bytes()
    assert 0 < available < float("inf") and "available" in where


def test_a_run_that_cannot_fit_stops_before_decoding_with_the_numbers(tmp_path, monkeypatch):
    from tfpilot.api import train

    root = make_image_folder(tmp_path / "shapes", per_class=4, size=40, suffix=".jpg")
    monkeypatch.setenv("TFPILOT_MEMORY_GB", "0.5")  # less than TensorFlow itself
    with pytest.raises(MemoryBudgetError, match=r"of a 0\.5 GB budget \(\$TFPILOT_MEMORY_GB\)"):
        train(load_config(None, dataset=str(root), epochs=1, run_dir=str(tmp_path / "run")), report=False)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_an_evaluation_batch_too_large_for_the_model_falls_to_the_training_batch(caplog):
    """388M-parameter mnist_cnn at 768x1024 trained at batch 8, then crashed evaluating 256 images a call:
    any CNN's first layers at that size pass TensorFlow's 2^31 elements (mini_resnet here: fast to build)."""
    cfg = load_config({"data": {"dataset": "photos", "image_size": [768, 1024]}, "model": {"name": "mini_resnet"},
                       "train": {"batch_size": 8, "precision": "float32"}})
    photos = [ImageProbe(3000, 3, Counter({(768, 1024): 40}), 4, None, 2100)]
    with caplog.at_level(logging.WARNING, logger="tfpilot"):
        changes, plan = plan_memory(cfg, photos, size_chosen=False, batch_chosen=False, budget=(40e9, "test"))
    value, why = changes["train.eval_batch_size"]
    assert value == 8 and "256 examples a call" in why and plan.fits
    assert "evaluated 8 examples a call" in caplog.text
    small = load_config({"data": {"dataset": "photos", "image_size": [64, 64]}, "model": {"name": "mini_resnet"}})
    changes, _ = plan_memory(small, photos, size_chosen=False, batch_chosen=False, budget=(40e9, "test"))
    assert "train.eval_batch_size" not in changes  # small images: 256 a call, as before
    assert load_config({"data": {"dataset": "photos"}, "train": {"batch_size": 8}}).train.evaluation_batch == 256


def test_a_save_at_the_end_of_an_epoch_is_planned_beside_the_parameters():
    w = Workload(3000, (768, 1024), 3, True, 0.3, 388_161_156, 88_000_000, 8, saved_copies=3)
    plan = estimate(w, budget=24e9)
    assert plan.saving == pytest.approx(4 * 2 * 3 * 388_161_156) and plan.saving > plan.activations
    assert plan.total == pytest.approx(plan.runtime + plan.data + plan.params + plan.saving)
    assert "saving the model 9.3" in plan.describe()


def test_the_plan_builds_each_size_once_and_reads_no_weights_file(monkeypatch, tmp_path):
    """Shrinking asks for the model at every size it tries, the evaluation batch at the last one:
    each size is built once. A transfer model's weights file is not read (the counts do not
    depend on it): one that does not exist plans like no weights."""
    from tfpilot.training import memory_plan

    built = []
    real = memory_plan.model_footprint

    def counted(name, size, *args):
        built.append(size)
        return real(name, size, *args)

    monkeypatch.setattr(memory_plan, "model_footprint", counted)
    changes, _ = plan_memory(naive(), PHOTOS, size_chosen=True, batch_chosen=False, budget=(4e9, "test"))
    assert len(built) >= 2 and len(built) == len(set(built))  # it shrank; each size tried was built once
    assert built[0] == (1500, 1125) and tuple(changes["data.image_size"][0]) == built[-1]
    params = {"alpha": 0.35, "image_size": 32}
    missing = str(tmp_path / "no-such.weights.h5")
    assert real("mobilenet_v2", (32, 32), 3, 3, {**params, "weights": missing}) == \
        real("mobilenet_v2", (32, 32), 3, 3, {**params, "weights": "none"})
