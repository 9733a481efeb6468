"""The memory plan: before anything is decoded, how much memory a run will hold, against what
the machine can give it -- and what to shrink, or a clear error, when it does not fit.

A run's resident memory is, about:

* **the runtime**: Python, TensorFlow and tfpilot themselves (:data:`RUNTIME_BYTES`, measured);
* **the decoded images**: every image held in memory at the size it is decoded to (uint8),
  ``data.cache`` allowing. While decoding, :data:`PIXEL_COPIES` copies of all of them (the
  decoded batches and their concatenation); while training, as many copies of the images the
  splits keep (``data.train_limit`` drops some): the splits' arrays and the
  tensors the input pipelines make of them. Images decoded per epoch instead (``data.cache:
  none``, or ``auto`` over ``data.cache_max_gb``) hold the validation and test splits in the
  evaluation pipelines' caches only;
* **the parameters**: 4 bytes each, times :data:`PARAM_COPIES` (the weights, their gradients
  and Adam's two moments);
* **the activations** of one training step: every layer's output for a batch, at
  :data:`ACTIVATION_BYTES` per element (what is kept for the backward pass, their gradients and
  temporaries), whatever ``train.precision``;
* **a save**: at each epoch's end the backup (``train.callbacks.backup``: the weights and Adam's
  two moments) and the best-epoch checkpoint are written as ``.keras`` files, whose weights Keras
  builds in memory and copies once more into the zip: :data:`SAVE_COPIES` float32 copies of the
  parameters per saved copy, while the step's activations are gone.

The peak is the larger of the decoding phase and the training phase (the images kept, the
parameters and the larger of the activations and a save). The parameters and activations are
counted on the model itself, built at the chosen size and then dropped (Keras' name counters and
random state are put back as they were, so the run's own model is built exactly as without the
plan).

The budget is what the machine can give: the smaller of ``MemAvailable`` (``/proc/meminfo``)
and the cgroup's limit less its usage, plus what this process already holds, times
:data:`HEADROOM`; ``$TFPILOT_MEMORY_GB`` sets it instead. Over budget, the plan shrinks, in
order, what the user left to tfpilot: the image size (down to :data:`MIN_SIDE` px on the
longer side), the batch size (down to :data:`MIN_BATCH`), then the in-memory cache
(``data.cache: none``: images decoded per epoch) -- each step logged with the numbers and
recorded in the config's ``chosen``. When nothing left can shrink, it stops with a
:class:`MemoryBudgetError` that names the numbers and the knobs.

Example:
    >>> plan = MemoryPlan(runtime=1.0e9, data=9.5e9, params=2.0e7, activations=4.0e8, budget=8.0e9)
    >>> plan.fits, plan.describe()
    (False, '10.9 GB (runtime 1.0 + decoded images 9.5 + parameters 0.0 + activations 0.4) of a 8.0 GB budget')
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tfpilot.config import Config
from tfpilot.config.schema import EVAL_BATCH
from tfpilot.errors import UserError

log = logging.getLogger(__name__)

ENV_BUDGET_GB = "TFPILOT_MEMORY_GB"
#: Share of the available memory a run plans to use.
HEADROOM = 0.8
#: Resident memory of Python + TensorFlow + Keras + tfpilot before any data (measured, see
#: docs/bench/defaults.md).
RUNTIME_BYTES = 1.1e9
#: Copies of the decoded images alive at the peak (decoded batches + their concatenation,
#: the split copies, the pipeline's tensors).
PIXEL_COPIES = 2.0
#: float32 copies per parameter: weights, gradients, Adam's two moments.
PARAM_COPIES = 4
#: Bytes per layer-output element of a training step, per example, whatever ``train.precision``.
#: The same 384x512 ``mini_resnet`` run peaked at 7.42 GB in float32 (Intel Xeon without bf16)
#: and 7.54 GB under ``mixed_bfloat16`` (AMD EPYC with avx512_bf16); at batch 32 and 64 in float32
#: each example added 87 MB, 3.6 bytes per element (docs/bench/defaults.md). Eight bytes in float32
#: and four under a mixed policy (two copies at the compute dtype's width) over-estimated the
#: float32 run 1.8x.
ACTIVATION_BYTES = 4.0
#: ... and of a model call after training: half a training step's (no gradients, no backward
#: temporaries; the same ratio as before, not measured apart).
CALL_ACTIVATION_BYTES = ACTIVATION_BYTES / 2
#: Copies of a saved array held while Keras saves a ``.keras`` file: its in-memory H5 and the
#: bytes copied from it into the zip (``keras.src.saving.saving_lib.H5IOStore``). 388M-parameter
#: ``mnist_cnn`` with its backup: 17.7 GB peak against 11.3 GB planned without this term
#: (docs/bench/defaults.md).
SAVE_COPIES = 2
#: TensorFlow's CPU kernels may index a tensor with 32 bits: a model call whose layer outputs
#: reach 2^31 elements can crash the process (a segfault, no error). 388M-parameter ``mnist_cnn``
#: at 768x1024 trained at batch 8 and then crashed evaluating at batch 256 (docs/bench/defaults.md).
MAX_CALL_ELEMENTS = 2**31 - 1
#: The plan does not shrink a chosen image size below this (longer side, px) ...
MIN_SIDE = 32
#: ... nor a batch size it chose below this.
MIN_BATCH = 16


class MemoryBudgetError(UserError):
    """The run cannot fit the machine's memory by anything the plan may shrink."""


@dataclass(frozen=True)
class MemoryPlan:
    """A run's estimated peak resident memory, in bytes, and the budget it must fit.

    Attributes:
        runtime: Python, TensorFlow and tfpilot.
        data: the decoded images held in memory while training.
        params: parameters with gradients and optimizer slots.
        activations: one training step's activations.
        budget: what the machine gives the run.
        decoding: the decoded images held while decoding (before the model exists).
        saving: what an epoch's end holds while saving the model (no activations then).
    """

    runtime: float
    data: float
    params: float
    activations: float
    budget: float
    decoding: float = 0.0
    saving: float = 0.0

    @property
    def total(self) -> float:
        """The estimated peak: the runtime and the larger of decoding and training."""
        return self.runtime + max(self.decoding, self.data + self.params + max(self.activations, self.saving))

    @property
    def fits(self) -> bool:
        """Whether the estimate is within the budget."""
        return self.total <= self.budget

    def describe(self) -> str:
        """The estimate and its parts, in GB."""
        gb = 1e9
        decoding = f"; decoding: {self.decoding / gb:.1f}" if self.decoding else ""
        step = f"activations {self.activations / gb:.1f}"
        if self.saving > self.activations:
            step = f"saving the model {self.saving / gb:.1f} (more than the activations, {self.activations / gb:.1f})"
        return (f"{self.total / gb:.1f} GB (runtime {self.runtime / gb:.1f} + decoded images {self.data / gb:.1f} + "
                f"parameters {self.params / gb:.1f} + {step}{decoding}) of a {self.budget / gb:.1f} GB budget")


def _meminfo_available() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_free() -> float | None:
    """The cgroup (v2, else v1) limit less its usage; None when unlimited or unknown."""
    v1 = "/sys/fs/cgroup/memory/memory."
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         (f"{v1}limit_in_bytes", f"{v1}usage_in_bytes")):
        try:
            raw = Path(limit).read_text().strip()
            if raw == "max" or int(raw) >= 2**60:
                return None
            return float(int(raw) - int(Path(usage).read_text().strip()))
        except (OSError, ValueError):
            continue
    return None


def resident_bytes() -> float:
    """This process's resident memory now (``VmRSS``), 0 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def budget_bytes() -> tuple[float, str]:
    """What the run may use, and where that figure comes from.

    Raises:
        UserError: ``$TFPILOT_MEMORY_GB`` is not a positive number.
    """
    raw = os.environ.get(ENV_BUDGET_GB, "").strip()
    if raw:
        try:
            gb = float(raw)
        except ValueError:
            gb = -1.0
        if not gb > 0:
            raise UserError(f"${ENV_BUDGET_GB}={raw!r}: expected the memory a run may use in GB, a number > 0")
        return gb * 1e9, f"${ENV_BUDGET_GB}"
    free = [v for v in (_meminfo_available(), _cgroup_free()) if v is not None]
    if not free:
        return float("inf"), "unknown (no /proc/meminfo)"
    return (min(free) + resident_bytes()) * HEADROOM, f"{HEADROOM:.0%} of the memory available"


@contextlib.contextmanager
def _keras_state_kept() -> Iterator[None]:
    """Build a throw-away model inside: Keras' name counters, its global seed generator and
    Python's random state (which unseeded initializers draw from) are restored after."""
    import copy

    from keras.src.backend.common import global_state

    py_state = random.getstate()
    uids = global_state.get_global_attribute("object_name_uids")
    uids = copy.copy(uids) if uids is not None else None
    gen = global_state.get_global_attribute("global_seed_generator")
    gen_state = gen.state.numpy() if gen is not None else None
    try:
        yield
    finally:
        random.setstate(py_state)
        global_state.set_global_attribute("object_name_uids", uids)
        if gen is not None:
            gen.state.assign(gen_state)
        else:
            global_state.set_global_attribute("global_seed_generator", None)


def _activation_elements(model: Any) -> int:
    """Elements of every layer's output for one example (nested models counted by their layers)."""
    import math

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            total += _activation_elements(layer)
            continue
        try:
            outputs = layer.output
        except (AttributeError, ValueError):
            continue
        for t in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            shape = getattr(t, "shape", None)
            if shape is None or getattr(t, "dtype", "float32") == "string":
                continue
            total += math.prod(int(d) for d in shape[1:] if d is not None)
    return total


def model_footprint(name: str, size: tuple[int, int], channels: int, classes: int,
                    params: dict[str, Any]) -> tuple[int, int]:
    """``(parameters, activation elements per example)`` of a zoo image model at ``size``.

    Args:
        name: the zoo model.
        size: (height, width) of its input.
        channels: 1 or 3.
        classes: classes of its head.
        params: its ``model.params``.

    Example:
        >>> model_footprint("mnist_cnn", (28, 28), 1, 10, {})[0]
        130890
    """
    import gc

    from tfpilot.models import create_model
    from tfpilot.registry import MODELS
    from tfpilot.spec import InputSpec

    if "weights" in (MODELS.info(name).params or ()):
        params = {**params, "weights": "none"}  # the counts are the same; a weights file need not be read
    with _keras_state_kept():
        model = create_model(name, InputSpec.image(size[0], size[1], channels), max(classes, 2), **params)
        counts = int(model.count_params()), _activation_elements(model)
        del model
        gc.collect()
    return counts


@dataclass(frozen=True)
class Workload:
    """What the plan sizes: the decoded images and the model that trains on them.

    Attributes:
        images: images decoded (every split, every image column).
        size: (height, width) they are decoded to.
        channels: 1 or 3.
        in_memory: whether the decoded images are held in memory (else decoded per epoch).
        eval_share: the share of the images in the validation and test splits.
        kept_share: the share of the images the splits keep (all but what ``train_limit`` drops).
        params: the model's parameters.
        activations: the model's activation elements per example.
        batch_size: examples per training step.
        saved_copies: float32 copies of the parameters a save writes: 3 with the backup (the
            weights and Adam's moments), else 1 (the model).
    """

    images: int
    size: tuple[int, int]
    channels: int
    in_memory: bool
    eval_share: float
    params: int
    activations: int
    batch_size: int
    kept_share: float = 1.0
    saved_copies: int = 1


def estimate(work: Workload, budget: float, runtime: float = RUNTIME_BYTES) -> MemoryPlan:
    """The :class:`MemoryPlan` of a workload.

    Example:
        >>> w = Workload(2000, (1500, 1125), 3, True, 0.3, 500_000, 2_000_000, 128)
        >>> round(estimate(w, 24e9).data / 1e9, 1)  # 2,000 decoded 1,500 px photos
        20.2
    """
    pixels = float(work.images * work.size[0] * work.size[1] * work.channels)
    data = pixels * PIXEL_COPIES * work.kept_share if work.in_memory else pixels * work.eval_share
    return MemoryPlan(runtime, data, 4.0 * PARAM_COPIES * work.params,
                      ACTIVATION_BYTES * work.activations * work.batch_size, budget,
                      decoding=pixels * PIXEL_COPIES if work.in_memory else 0.0,
                      saving=4.0 * SAVE_COPIES * work.saved_copies * work.params)


def scaled_size(size: Sequence[int], side: int) -> tuple[int, int]:
    """``size`` scaled so its longer side is ``side``, the aspect ratio kept (each side a
    multiple of 4 where it can be, at least 8).

    Example:
        >>> scaled_size((768, 1024), 128), scaled_size((224, 224), 96), scaled_size((1100, 844), 160)
        ((96, 128), (96, 96), (160, 124))
    """
    h, w = int(size[0]), int(size[1])
    scale = side / max(h, w)
    return tuple(max(8, int(round(v * scale / 4)) * 4) for v in (h, w))  # type: ignore[return-value]


def _workload(config: Config, probes: Sequence[Any], size: tuple[int, int], batch: int, in_memory: bool,
              footprint: Callable[..., tuple[int, int]] | None = None) -> Workload:
    """The workload of ``config`` on the probed images at ``size``, ``batch`` and ``in_memory``
    (each model's counts from ``footprint``, :func:`model_footprint`'s arguments)."""
    from tfpilot.models.encoders import DEFAULT_MODELS

    channels = {"grayscale": 1, "rgb": 3}.get(config.data.color_mode, max(p.channels for p in probes))
    from tfpilot.models.ydf import is_forest

    forest = is_forest(config.model.name)
    params = activations = 0
    for p in probes:
        if p.column is not None and forest:
            continue  # forests leave image columns out: no encoder to size
        if p.column is None:
            name, model_params, classes = config.model.name, dict(config.model.params), p.classes or 2
        else:  # a table's image column: its encoder (the rest of a table model is small beside it)
            given = next((f.encoder for f in (config.features.inputs or []) if f.name == p.column), None)
            name = (given.model if given is not None else None) or DEFAULT_MODELS["image"]
            model_params, classes = dict(given.params) if given is not None else {}, 2
        counts = (footprint or model_footprint)(name, size, channels, classes, model_params)
        params, activations = params + counts[0], activations + counts[1]
    images = sum(p.images for p in probes)
    train = sum(p.train_images or p.images for p in probes)
    evals = images - train
    used = min(train, config.data.train_limit or train) + evals
    return Workload(images, size, channels, in_memory, evals / max(images, 1), params, activations,
                    max(1, min(batch, train)), used / max(images, 1),  # a step holds at most the training split
                    saved_copies=3 if config.train.callbacks.backup else 1)


def plan_memory(config: Config, probes: Sequence[Any], *, size_chosen: bool, batch_chosen: bool,
                budget: tuple[float, str] | None = None) -> tuple[dict[str, tuple[Any, str]], MemoryPlan]:
    """Fit a run on probed images into the memory budget, shrinking what the user left to tfpilot.

    Args:
        config: the run config, its image size and model chosen (``data.image_size`` set).
        probes: the dataset's :class:`~tfpilot.data.image_probe.ImageProbe` (one per image column).
        size_chosen: ``data.image_size`` was chosen by tfpilot (so it may shrink).
        batch_chosen: ``train.batch_size`` was left to its default (so it may shrink).
        budget: ``(bytes, where from)``; default :func:`budget_bytes`.

    Returns:
        ``({dotted key: (new value, reason)}, the plan)``: the keys changed to fit (none when it
        fits as it is), and the plan that fits.

    Raises:
        MemoryBudgetError: nothing left to shrink brings the estimate within the budget.
    """
    from tfpilot.data.images import keep_decoded

    limit, source = budget or budget_bytes()
    size = tuple(int(v) for v in config.data.image_size)
    batch = int(config.train.batch_size)
    channels = {"grayscale": 1, "rgb": 3}.get(config.data.color_mode, max(p.channels for p in probes))
    images = sum(p.images for p in probes)
    in_memory = keep_decoded(config.data, images, size, channels)
    cache_free = config.data.cache == "auto"

    built: dict[str, tuple[int, int]] = {}  # each model is built once per size, however often the plan asks

    def footprint(*args: Any) -> tuple[int, int]:
        key = repr(args)
        if key not in built:
            built[key] = model_footprint(*args)
        return built[key]

    def plan_of() -> tuple[Workload, MemoryPlan]:
        work = _workload(config, probes, size, batch, in_memory, footprint)
        return work, estimate(work, limit)

    work, plan = plan_of()
    first = plan
    changes: dict[str, tuple[Any, str]] = {}
    log.info("memory plan: %s (%s)", plan.describe(), source)
    while not plan.fits:
        over = f"the estimate, {plan.describe()}, is over the budget ({source})"
        if size_chosen and max(size) > MIN_SIDE and (not in_memory or plan.data >= plan.activations or
                                                      not batch_chosen or batch <= MIN_BATCH):
            size = scaled_size(size, max(MIN_SIDE, int(max(size) * 0.75)))
            changes["data.image_size"] = (list(size), f"{over}: images decoded at {size[0]}x{size[1]} instead")
        elif batch_chosen and batch > MIN_BATCH:
            batch = max(MIN_BATCH, batch // 2)
            changes["train.batch_size"] = (batch, f"{over}: {batch} examples a step instead")
        elif in_memory and cache_free:
            in_memory = False
            changes["data.cache"] = ("none", f"{over}: decoded images are not kept in memory (each epoch decodes "
                                             "them again, slower)")
        else:
            raise MemoryBudgetError(
                f"this run needs about {plan.describe()} ({source}), and nothing left to tfpilot can shrink "
                f"(images at {size[0]}x{size[1]}, batch {batch}, decoded images "
                f"{'in memory' if in_memory else 'not kept'}). Lower data.image_size, train.batch_size or use "
                "data.cache: none; or a smaller model; or give it more memory "
                f"(${ENV_BUDGET_GB} sets the budget in GB)")
        key = next(reversed(changes))
        log.warning("memory plan: %s", changes[key][1])
        work, plan = plan_of()
    if changes:
        log.info("memory plan: %s after shrinking (was %.1f GB)", plan.describe(), first.total / 1e9)
    if config.train.eval_batch_size is None:
        evaluation = max(batch, EVAL_BATCH)
        why = evaluation_problem(work, plan, evaluation)
        if why:
            changes["train.eval_batch_size"] = (batch, f"{why}: the finished model is evaluated {batch} examples "
                                                       "a call, as it trained")
            log.warning("memory plan: %s", changes["train.eval_batch_size"][1])
    return changes, plan


def evaluation_problem(work: Workload, plan: MemoryPlan, batch: int) -> str | None:
    """Why evaluating ``batch`` examples a call would not do (None: it would): its layer outputs
    over :data:`MAX_CALL_ELEMENTS`, or its memory (each layer's output at
    :data:`CALL_ACTIVATION_BYTES`, no gradients or optimizer slots) over the budget.

    Example:
        >>> w = Workload(3000, (768, 1024), 3, True, 0.3, 388_161_156, 88_000_000, 8)
        >>> evaluation_problem(w, estimate(w, 20e9), 256)[:57]
        '256 examples a call make 22,528,000,000 elements of layer'
        >>> evaluation_problem(w, estimate(w, 20e9), 8) is None
        True
    """
    elements = work.activations * batch
    if elements > MAX_CALL_ELEMENTS:
        return (f"{batch} examples a call make {elements:,} elements of layer outputs, over the "
                f"{MAX_CALL_ELEMENTS + 1:,} TensorFlow's CPU kernels can index")
    need = plan.runtime + plan.data + 4.0 * work.params + CALL_ACTIVATION_BYTES * elements
    if need > plan.budget:
        return (f"evaluating {batch} examples a call needs about {need / 1e9:.1f} GB of a "
                f"{plan.budget / 1e9:.1f} GB budget")
    return None
