"""The one training path: config -> data -> model -> ``model.fit`` -> run directory.

Example:
    >>> from tfpilot.config import load_config
    >>> from tfpilot.training import Trainer
    >>> cfg = load_config(None, dataset="digits", model="mlp", epochs=1)  # doctest: +SKIP
    >>> trainer = Trainer(cfg).fit()  # doctest: +SKIP
    >>> trainer.run_.metrics["test"]["accuracy"] > 0.5  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tfpilot.config import Config, save_config
from tfpilot.training import run as rundir
from tfpilot.training.run import Run, write_json

log = logging.getLogger(__name__)


def default_run_dir(cfg: Config) -> Path:
    dataset = Path(cfg.data.dataset).name or "data"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return cfg.output.runs_root / f"{cfg.model.name}-{dataset}-{stamp}"


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


class Trainer:
    """Trains one configured model and writes its run directory.

    Args:
        config: the validated run configuration.

    Attributes (after :meth:`fit`):
        run_: the :class:`Run` written.
        model_: the trained ``keras.Model``.
        data_: the :class:`~tfpilot.data.PreparedData` used.
        precision_: the dtype policy the model trained with.
        history_: per-epoch logs.
    """

    def __init__(self, config: Config) -> None:
        self.config = config

    # -- steps -------------------------------------------------------------------------
    def _run_dir(self) -> Path:
        cfg = self.config
        path = Path(cfg.output.run_dir) if cfg.output.run_dir else default_run_dir(cfg)
        if Run(path).finished and not cfg.output.overwrite:
            raise FileExistsError(
                f"{path} already holds a finished run. Choose another --run-dir, or set "
                "output.overwrite=true to replace it."
            )
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _pipeline(self, data: Any, split: str, *, training: bool, one_hot: int | None = None,
                  batch_size: int | None = None) -> Any:
        from tfpilot.data import make_pipeline

        cfg = self.config
        spec = data.input_spec
        decode = dict(image_size=spec.image_size, channels=spec.channels) if spec.kind == "image" else {}
        return make_pipeline(
            data.splits[split], batch_size or cfg.train.batch_size, training=training, seed=cfg.train.seed,
            shuffle_buffer=cfg.data.shuffle_buffer, one_hot=one_hot, **decode,
        )

    def _one_hot(self) -> bool:
        t = self.config.train
        return t.label_mode == "one_hot" or t.label_smoothing > 0

    def _jit(self, precision: str) -> bool | str:
        """XLA for the train step. On CPUs "auto" means off: XLA's CPU backend emulates
        bfloat16 and was 3.4x slower than oneDNN on seed 004's CNN here."""
        jit = self.config.train.jit_compile
        if jit == "auto":
            from tfpilot.training.precision import gpu_compute_capability

            return "auto" if gpu_compute_capability() is not None else False
        return jit

    def _compile(self, model: Any, steps_per_epoch: int, num_classes: int, precision: str) -> None:
        import keras

        from tfpilot.training.optimizers import create_optimizer
        from tfpilot.training.schedules import create_schedule

        t = self.config.train
        lr = create_schedule(t.schedule, t.optimizer.learning_rate, steps_per_epoch, t.epochs)
        optimizer = create_optimizer(t.optimizer, lr)
        k = min(t.top_k, num_classes)
        if self._one_hot():
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing)
            metrics = ["accuracy", keras.metrics.TopKCategoricalAccuracy(k, name="top_k_accuracy")]
        else:
            loss = keras.losses.SparseCategoricalCrossentropy()
            metrics = ["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k, name="top_k_accuracy")]
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=self._jit(precision))

    # -- the whole run -------------------------------------------------------------------
    def fit(self) -> Trainer:
        """Run the whole pipeline; returns self with ``run_``, ``model_``, ``history_`` set."""
        from tfpilot.data import prepare_data
        from tfpilot.evaluation.metrics import classification_metrics, predict_probabilities
        from tfpilot.models import create_model
        from tfpilot.training.callbacks import build_callbacks
        from tfpilot.training.environment import environment
        from tfpilot.training.precision import choose_precision, precision_policy

        cfg = self.config
        t = cfg.train
        run_dir = self._run_dir()
        run = Run(run_dir)
        save_config(cfg, run.file(rundir.CONFIG))
        seed_everything(t.seed, t.deterministic)
        precision = choose_precision(t.precision)

        data = prepare_data(cfg.data)
        write_json(run.file(rundir.SPLIT), data.manifest)
        data.report.save(run.file(rundir.DATA_REPORT))
        write_json(run.file(rundir.LABELS), {
            "class_names": data.class_names,
            "input": data.input_spec.to_dict(),
            "dataset": cfg.data.dataset,
            "model": cfg.model.name,
        })
        write_json(run.file(rundir.ENV), environment(precision, t.seed))

        one_hot = data.num_classes if self._one_hot() else None
        has_val = "val" in data.splits and len(data.splits["val"]) > 0
        train_ds = self._pipeline(data, "train", training=True, one_hot=one_hot)
        val_ds = self._pipeline(data, "val", training=False, one_hot=one_hot) if has_val else None
        steps = t.steps_per_epoch or math.ceil(len(data.splits["train"]) / t.batch_size)
        with precision_policy(precision):
            model = create_model(cfg.model.name, data.input_spec, data.num_classes, **cfg.model.params)
        self._compile(model, steps, data.num_classes, precision)
        callbacks, timer = build_callbacks(t.callbacks, run_dir, t.epochs, steps, has_validation=has_val)
        log.info("training %s (%s params, %s) on %s", cfg.model.name, f"{model.count_params():,}", precision,
                 cfg.data.dataset)
        if t.steps_per_epoch:
            train_ds = train_ds.repeat()
        started = time.perf_counter()
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=t.epochs,
            steps_per_epoch=t.steps_per_epoch,
            callbacks=callbacks,
            verbose=2 if t.callbacks.progress == "keras" else 0,
            shuffle=False,  # the pipeline shuffles (seeded)
        )
        wall = time.perf_counter() - started
        model.save(run.model_path)

        metrics: dict[str, Any] = {
            "train_seconds": round(timer.train_seconds, 3),
            "fit_wall_seconds": round(wall, 3),
            "epochs_run": len(history.history.get("loss", [])),
            "precision": precision,
            "params": int(model.count_params()),
        }
        for split in ("val", "test"):
            if split in data.splits and len(data.splits[split]):
                ds = self._pipeline(data, split, training=False, batch_size=max(t.batch_size, 256))
                y, probs = predict_probabilities(model, ds)
                metrics[split] = classification_metrics(y, probs, data.class_names, k=t.top_k)
        write_json(run.file(rundir.METRICS), metrics)

        self.run_, self.model_, self.data_, self.precision_ = run, model, data, precision
        self.history_ = history.history
        return self


def train(config: Config | str | Path | dict[str, Any], **overrides: Any) -> Run:
    """Train a model from a config (object, YAML path or dict) and return its :class:`Run`.

    Args:
        config: the run configuration.
        **overrides: short flags (``dataset=``, ``model=``, ``epochs=``, ``batch_size=``,
            ``run_dir=``, ``data_dir=``) applied on top.
    """
    from tfpilot.config import load_config

    cfg = load_config(config, **overrides) if overrides or not isinstance(config, Config) else config
    return Trainer(cfg).fit().run_
