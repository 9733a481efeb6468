"""Magnitude pruning for Keras 3 (the TensorFlow Model Optimization toolkit supports only
Keras 2): a callback that zeroes the smallest-magnitude kernel weights on a polynomial
sparsity schedule while ``model.fit`` fine-tunes, and :func:`prune`, which fine-tunes a
run's model that way and writes the result as a new run directory.

The schedule is tfmot's ``PolynomialDecay``: sparsity rises from ``initial_sparsity`` at
``begin_step`` to ``target_sparsity`` at ``end_step`` as ``1 - (1 - t)^power``; masks are
recomputed every ``frequency`` steps and applied after every step, so pruned weights stay
zero. The pruned model is a plain Keras model (no wrapper layers): it saves, loads with
``safe_mode=True`` and exports like any other.

Example:
    >>> from tfpilot.training.prune import prune
    >>> result = prune("runs/mnist", sparsity=0.5, epochs=1)  # doctest: +SKIP
    >>> round(result.sparsity, 2), result.run_dir  # doctest: +SKIP
    (0.5, PosixPath('runs/mnist-pruned50'))
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfpilot.errors import AlreadyExistsError, NotFoundError, UserError

log = logging.getLogger(__name__)

#: Run files a pruned run copies from its parent unchanged.
COPIED_FILES = ("config.yaml", "labels.json", "split.json", "data_report.json", "env.json")


def polynomial_sparsity(
    step: int, target: float, begin_step: int, end_step: int, initial: float = 0.0, power: float = 3.0
) -> float:
    """Sparsity at ``step``: ``initial`` before ``begin_step``, ``target`` after ``end_step``.

    Example:
        >>> polynomial_sparsity(0, 0.5, 0, 100), polynomial_sparsity(100, 0.5, 0, 100)
        (0.0, 0.5)
        >>> round(polynomial_sparsity(50, 0.5, 0, 100), 4)
        0.4375
    """
    if step <= begin_step:
        return initial
    if step >= end_step:
        return target
    t = (step - begin_step) / max(end_step - begin_step, 1)
    return target + (initial - target) * (1.0 - t) ** power


def prunable_kernels(model: Any) -> list[Any]:
    """The kernels magnitude pruning applies to: every Dense / Conv / Embedding matrix."""
    out = []
    for layer in _walk(model):
        for attr in ("kernel", "embeddings", "depthwise_kernel"):
            var = getattr(layer, attr, None)
            if var is not None and len(var.shape) >= 2 and var.trainable:
                out.append(var)
    return out


def _walk(model: Any):
    for layer in getattr(model, "layers", []):
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk(layer)


def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """0/1 mask that zeroes the ``sparsity`` fraction of ``weights`` with the smallest |w|.

    Example:
        >>> magnitude_mask(np.array([[0.1, -3.0], [0.5, 2.0]]), 0.5).tolist()
        [[0.0, 1.0], [0.0, 1.0]]
    """
    k = int(math.floor(sparsity * weights.size))
    mask = np.ones(weights.size, dtype=weights.dtype)
    if k > 0:
        order = np.argsort(np.abs(weights).reshape(-1), kind="stable")
        mask[order[:k]] = 0
    return mask.reshape(weights.shape)


class MagnitudePruning(keras.callbacks.Callback):
    """Zero the smallest-magnitude kernel weights during ``model.fit``.

    Args:
        target_sparsity: fraction of each kernel's weights that ends up zero (0-1).
        begin_step: first train step at which pruning starts.
        end_step: step at which ``target_sparsity`` is reached.
        frequency: recompute the masks every this many steps.
        initial_sparsity: sparsity at ``begin_step``.
        power: exponent of the polynomial schedule.

    Attributes (after training starts):
        kernels_: the pruned variables.
        masks_: their current 0/1 masks.
        sparsity_: the sparsity of the last mask update.

    Example:
        >>> import numpy as np
        >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
        >>> model.compile("sgd", "mse")
        >>> pruning = MagnitudePruning(0.5, end_step=2, frequency=1)
        >>> _ = model.fit(np.ones((8, 8)), np.ones((8, 4)), batch_size=2, verbose=0, callbacks=[pruning])
        >>> float(np.mean(model.layers[0].kernel.numpy() == 0))
        0.5
    """

    def __init__(
        self,
        target_sparsity: float = 0.5,
        begin_step: int = 0,
        end_step: int = 1000,
        frequency: int = 100,
        initial_sparsity: float = 0.0,
        power: float = 3.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= target_sparsity < 1.0:
            raise UserError(f"target_sparsity must be in [0, 1), got {target_sparsity}")
        if end_step < begin_step or frequency < 1:
            raise UserError(
                f"need begin_step <= end_step and frequency >= 1 (got {begin_step}, {end_step}, {frequency})")
        self.target_sparsity = target_sparsity
        self.begin_step = begin_step
        self.end_step = end_step
        self.frequency = frequency
        self.initial_sparsity = initial_sparsity
        self.power = power

    def on_train_begin(self, logs: Any = None) -> None:
        self.kernels_ = prunable_kernels(self.model)
        if not self.kernels_:
            raise UserError(f"model {self.model.name!r} has no Dense/Conv/Embedding kernels to prune")
        self._update_masks(0.0)
        self._step = 0

    def _update_masks(self, sparsity: float) -> None:
        self.masks_ = [magnitude_mask(np.asarray(v.numpy(), dtype="float32"), sparsity) for v in self.kernels_]
        self._mask_tensors = [keras.ops.convert_to_tensor(m > 0) for m in self.masks_]
        self.sparsity_ = sparsity

    def _apply(self) -> None:
        for var, keep in zip(self.kernels_, self._mask_tensors):
            # where(), not multiply: w * 0 gives -0.0 for negative w, which compresses worse
            var.assign(keras.ops.where(keep, var.value, keras.ops.zeros_like(var.value)))

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self._step += 1
        step = self._step
        if step >= self.begin_step and ((step - self.begin_step) % self.frequency == 0 or step == self.end_step):
            self._update_masks(polynomial_sparsity(step, self.target_sparsity, self.begin_step, self.end_step,
                                                   self.initial_sparsity, self.power))
        if step >= self.begin_step:
            self._apply()

    def on_train_end(self, logs: Any = None) -> None:
        self._update_masks(self.target_sparsity)
        self._apply()


def sparsity_of(variables: list[Any]) -> float:
    """Fraction of exactly-zero values over ``variables``."""
    total = sum(int(np.prod(v.shape)) for v in variables)
    zeros = sum(int(np.sum(np.asarray(v.numpy()) == 0)) for v in variables)
    return zeros / total if total else 0.0


def gzip_weights_size(model: Any) -> int:
    """Bytes of the model's float32 weights (no optimizer state) after gzip -9.

    Example:
        >>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, use_bias=False)])
        >>> before = gzip_weights_size(model)
        >>> kernel = model.layers[0].kernel
        >>> _ = kernel.assign(np.where(magnitude_mask(kernel.numpy(), 0.9) > 0, kernel.numpy(), 0.0))
        >>> gzip_weights_size(model) < before / 3
        True
    """
    raw = b"".join(np.asarray(w, dtype="float32").tobytes() for w in model.get_weights())
    return len(gzip.compress(raw, compresslevel=9))


@dataclass
class PruneResult:
    """What :func:`prune` did."""

    run_dir: Path
    target_sparsity: float
    sparsity: float  # over the pruned kernels
    overall_sparsity: float  # over all weights
    gzip_bytes_before: int
    gzip_bytes_after: int
    accuracy_before: float
    accuracy_after: float
    epochs: int
    seconds: float

    @property
    def compression(self) -> float:
        return self.gzip_bytes_before / self.gzip_bytes_after if self.gzip_bytes_after else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir)
        d["compression"] = round(self.compression, 3)
        return d


def check_out_dir(out: Path, run_dir: Path) -> None:
    """Refuse an ``--out`` that :func:`prune` may not replace.

    Only a missing folder, an empty one, or an earlier pruned run (its ``metrics.json``
    has a ``pruning`` section) may be replaced -- never the run itself or any other folder.

    Raises:
        ValueError: ``out`` is the run being pruned.
        FileExistsError: ``out`` holds something prune did not write.

    Example:
        >>> check_out_dir(Path("runs/new-folder"), Path("runs/mnist"))  # doctest: +SKIP
    """
    if out.resolve() == run_dir.resolve():
        raise UserError("the pruned run needs its own directory: choose another --out")
    if not out.exists():
        return
    if out.is_dir() and not any(out.iterdir()):
        return
    metrics = out / "metrics.json"
    ours = False
    if out.is_dir() and metrics.is_file():
        try:
            ours = "pruning" in json.loads(metrics.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            ours = False
    if not ours:
        raise AlreadyExistsError(
            f"{out} exists and was not written by tfpilot prune (no metrics.json with a 'pruning' section): "
            "choose another --out or move it away"
        )


def fine_tune_learning_rate(configured: float | str, metrics: dict[str, Any]) -> float:
    """The default fine-tuning rate: a tenth of the rate the run trained at.

    With ``learning_rate: auto`` that is the rate its LR range test found
    (``metrics.json["learning_rate_found"]``).

    Raises:
        ValueError: ``auto`` without a recorded rate (pass ``learning_rate`` / ``--lr``).

    Example:
        >>> fine_tune_learning_rate(0.01, {}), fine_tune_learning_rate("auto", {"learning_rate_found": 0.3})
        (0.001, 0.03)
    """
    if configured != "auto":
        return float(configured) / 10
    found = metrics.get("learning_rate_found")
    if found is None:
        raise UserError(
            "the run was trained with learning_rate: auto but its metrics.json records no learning_rate_found: "
            "pass the fine-tuning rate explicitly (--learning-rate / learning_rate=)"
        )
    return float(found) / 10


def prune(
    run_dir: str | Path,
    sparsity: float = 0.5,
    epochs: int = 2,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    out_dir: str | Path | None = None,
    train_limit: int | None = None,
) -> PruneResult:
    """Fine-tune a run's model with magnitude pruning; write the pruned model as a new run.

    Args:
        run_dir: a finished run.
        sparsity: fraction of every Dense/Conv/Embedding kernel to zero.
        epochs: fine-tuning epochs (the target is reached after 70% of the steps).
        learning_rate: fine-tuning learning rate (default: a tenth of the run's; with
            ``learning_rate: auto``, of the rate its range test found).
        batch_size: default: the run's.
        out_dir: the new run directory (default ``<run>-pruned<NN>`` beside it); an
            existing one is replaced only if it is empty or an earlier pruned run.
        train_limit: fine-tune on at most this many training examples (class-balanced).

    Returns:
        a :class:`PruneResult`; ``out_dir`` holds model.keras, labels.json, config.yaml, ...
        and metrics.json with the test metrics and a ``pruning`` section.

    Fine-tuning uses the run's recorded train split and the scores its recorded test split
    (the members of its split.json), never a fresh split.

    Raises:
        FileExistsError: ``out_dir`` holds something prune did not write.
        RecordedSplitError: recorded examples are missing or changed since training.
    """
    from tfpilot.config import load_config
    from tfpilot.data import load_run_data, make_pipeline
    from tfpilot.data.splits import limit_stratified
    from tfpilot.metrics import classification_metrics, predict_probabilities
    from tfpilot.runs import Run, write_json
    from tfpilot.spec import InputSpec
    from tfpilot.training.optimizers import create_optimizer

    if not 0.0 < sparsity < 1.0:
        raise UserError(f"--sparsity must be between 0 and 1 (a fraction of weights to zero), got {sparsity}")
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    run = Run(run_dir)
    if not run.finished:
        raise NotFoundError(f"{run.path} is not a finished tfpilot run (no model.keras / metrics.json)")
    cfg = load_config(run.config_file)
    spec = InputSpec.from_dict(run.labels["input"])
    out = Path(out_dir) if out_dir else run.path.with_name(f"{run.path.name}-pruned{round(sparsity * 100)}")
    check_out_dir(out, run.path)
    lr = learning_rate or fine_tune_learning_rate(cfg.train.optimizer.learning_rate, run.metrics)
    data = load_run_data(run)  # the recorded splits: fine-tune on train, score on test
    batch = batch_size or cfg.train.batch_size
    decode = spec.decode_target()
    train = data.splits["train"]
    if train_limit and train_limit < len(train):
        train = train.take(limit_stratified(train.y, train_limit, cfg.data.split_seed))
    train_ds = make_pipeline(train, batch, training=True, seed=cfg.train.seed, **decode)
    eval_split = "test" if "test" in data.splits and len(data.splits["test"]) else "val"
    eval_ds = make_pipeline(data.splits[eval_split], 256, training=False, cache=False, **decode)

    model = run.load_model()
    _, probs = predict_probabilities(model, eval_ds)
    y_eval = data.splits[eval_split].y
    acc_before = float(np.mean(probs.argmax(1) == y_eval))
    gz_before = gzip_weights_size(model)

    steps = math.ceil(len(train) / batch) * epochs
    end = max(1, int(steps * 0.7))
    pruning = MagnitudePruning(sparsity, begin_step=0, end_step=end, frequency=max(1, end // 10))
    sigmoid = model.outputs[0].shape[-1] == 1  # the seeds' binary head: one sigmoid unit
    loss = keras.losses.BinaryCrossentropy() if sigmoid else keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=create_optimizer(cfg.train.optimizer, lr), loss=loss, metrics=["accuracy"],
                  jit_compile=False)
    started = time.perf_counter()
    log.info("pruning %s to %.0f%% sparsity: %d epochs, %d steps", run.path.name, sparsity * 100, epochs, steps)
    model.fit(train_ds, epochs=epochs, callbacks=[pruning], verbose=0, shuffle=False)
    seconds = time.perf_counter() - started

    _, probs = predict_probabilities(model, eval_ds)
    metrics = classification_metrics(y_eval, probs, run.class_names, k=cfg.train.top_k)
    check_out_dir(out, run.path)  # again: it may have appeared while fine-tuning
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in COPIED_FILES:
        if run.file(name).is_file():
            shutil.copy2(run.file(name), out / name)
    model.save(out / "model.keras")
    result = PruneResult(
        run_dir=out, target_sparsity=sparsity, sparsity=sparsity_of(pruning.kernels_),
        overall_sparsity=sparsity_of(model.weights), gzip_bytes_before=gz_before,
        gzip_bytes_after=gzip_weights_size(model), accuracy_before=acc_before,
        accuracy_after=float(metrics["accuracy"]), epochs=epochs, seconds=round(seconds, 3),
    )
    parent = run.metrics
    write_json(out / "metrics.json", {
        eval_split: metrics, "precision": parent.get("precision"), "params": int(model.count_params()),
        "pruning": {**result.to_dict(), "parent_run": str(run.path.resolve()), "evaluated_on": eval_split},
    })
    return result
