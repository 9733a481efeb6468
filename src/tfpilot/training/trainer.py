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

import json
import logging
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tfpilot import runs as rundir
from tfpilot.config import Config, load_config, save_config
from tfpilot.training.setup import build_model, loss_and_metrics, seed_everything
from tfpilot.runs import Run, write_json

log = logging.getLogger(__name__)


def default_run_dir(cfg: Config) -> Path:
    dataset = Path(cfg.data.dataset).name or "data"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return cfg.output.runs_root / f"{cfg.model.name}-{dataset}-{stamp}"


class Trainer:
    """Trains one configured model and writes its run directory.

    Args:
        config: the validated run configuration.
        callbacks: extra Keras callbacks, run after tfpilot's own (e.g. custom logging).

    Attributes (after :meth:`fit`):
        run_: the :class:`Run` written.
        model_: the trained ``keras.Model``.
        data_: the :class:`~tfpilot.data.PreparedData` used.
        precision_: the dtype policy the model trained with.
        history_: per-epoch logs.
    """

    def __init__(self, config: Config, callbacks: Sequence[Any] = ()) -> None:
        self.config = config
        self.callbacks = callbacks

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
        decode = spec.decode_target()
        return make_pipeline(
            data.splits[split], batch_size or cfg.train.batch_size, training=training, seed=cfg.train.seed,
            shuffle_buffer=cfg.data.shuffle_buffer, one_hot=one_hot, **decode,
        )

    def _jit(self, precision: str) -> bool | str:
        """XLA for the train step. On CPUs "auto" means off: XLA's CPU backend emulates
        bfloat16 and was 3.4x slower than oneDNN on seed 004's CNN here."""
        jit = self.config.train.jit_compile
        if jit == "auto":
            from tfpilot.training.precision import gpu_compute_capability

            return "auto" if gpu_compute_capability() is not None else False
        return jit

    def _learning_rate(self) -> float:
        """``train.optimizer.learning_rate``, running the LR range test first for "auto"."""
        lr = self.config.train.optimizer.learning_rate
        if lr != "auto":
            return float(lr)
        if getattr(self, "found_lr_", None) is None:
            from tfpilot.training.lr_finder import RESULT, find_lr

            saved = self._dir / RESULT  # a resumed run reuses its own range test
            if saved.is_file():
                self.found_lr_ = float(json.loads(saved.read_text())["suggestion"])
            else:
                self.found_lr_ = float(find_lr(self.config, out_dir=self._dir).suggestion)
            log.info("learning_rate auto: the LR range test suggests %.3g", self.found_lr_)
        return self.found_lr_

    def _compile(self, model: Any, steps_per_epoch: int, num_classes: int, precision: str, stage: int = 1) -> None:
        from tfpilot.training.optimizers import create_optimizer
        from tfpilot.training.schedules import create_schedule

        t = self.config.train
        base_lr, epochs = self._learning_rate(), t.epochs
        if stage == 2:
            base_lr, epochs = base_lr * t.fine_tune.learning_rate_factor, t.fine_tune.epochs
        lr = create_schedule(t.schedule, base_lr, steps_per_epoch, epochs)
        optimizer = create_optimizer(t.optimizer, lr)
        loss, metrics = loss_and_metrics(self.config, model, num_classes)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=self._jit(precision),
                      steps_per_execution=t.steps_per_execution)

    # -- the whole run -------------------------------------------------------------------
    def fit(self) -> Trainer:
        """Run the whole pipeline; returns self with ``run_``, ``model_``, ``history_`` set."""
        return self._run(resume=False)

    @classmethod
    def resume(cls, run_dir: str | Path, callbacks: Sequence[Any] = ()) -> Trainer:
        """Continue an interrupted run from its last completed epoch.

        Model weights, optimizer state (and so the schedule step), the callbacks' best-metric
        and patience state, and the per-epoch data order all continue where they stopped.
        """
        run = Run(run_dir)
        if not run.exists:
            raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
        if run.finished:
            raise FileExistsError(f"{run_dir} already finished; nothing to resume")
        return cls(load_config(run.config_file), callbacks)._run(resume=True, run_dir=Path(run_dir))

    def _run(self, resume: bool, run_dir: Path | None = None) -> Trainer:
        from tfpilot.data import prepare_data
        from tfpilot.training.environment import environment
        from tfpilot.training.precision import choose_precision
        from tfpilot.training.resume import latest_checkpoint

        cfg = self.config
        t = cfg.train
        run_dir = run_dir or self._run_dir()
        self._dir = run_dir
        run = Run(run_dir)
        seed_everything(t.seed, t.deterministic)
        precision = choose_precision(t.precision)
        data = prepare_data(cfg.data)
        if resume:
            saved = json.loads(run.file(rundir.SPLIT).read_text())
            if saved["splits"] != json.loads(json.dumps(data.manifest))["splits"]:
                raise ValueError(f"the data of {run_dir} changed since the run started; cannot resume it")
        else:
            save_config(cfg, run.file(rundir.CONFIG))
            write_json(run.file(rundir.SPLIT), data.manifest)
            data.report.save(run.file(rundir.DATA_REPORT))
            write_json(run.file(rundir.LABELS), {
                "class_names": data.class_names,
                "input": data.input_spec.to_dict(),
                "dataset": cfg.data.dataset,
                "model": cfg.model.name,
            })
        write_json(run.file(rundir.ENV), environment(precision, t.seed))

        checkpoint = latest_checkpoint(run_dir / "backup") if resume else None
        done, stage, saved_state = 0, 1, {}
        if checkpoint is not None:
            import keras

            import tfpilot.models.layers  # noqa: F401  (registers tfpilot's layers)

            from tfpilot.training.resume import restore_rng_state

            model = keras.saving.load_model(checkpoint[0] / "model.keras")
            restore_rng_state(model, checkpoint[0])
            saved_state = {**checkpoint[1], "dir": checkpoint[0]}
            done, stage = saved_state["epochs_done"], saved_state["stage"]
            log.info("resuming %s after epoch %d", run_dir, done)
        else:
            if resume:
                log.warning("no completed epoch in %s: starting it from the beginning", run_dir)
            model = build_model(cfg, data, precision)
            self._compile(model, self._steps(data), data.num_classes, precision)

        ft = t.fine_tune
        total = t.epochs + (ft.epochs if ft.enabled else 0)
        stages = [(1, 0, t.epochs)] + ([(2, t.epochs, total)] if ft.enabled else [])
        history: dict[str, list[float]] = {}
        seconds = 0.0
        for number, start, end in stages:
            if done >= end:
                continue
            model.stop_training = False  # early stopping ends a stage, not the fine-tuning after it
            if number == 2 and stage == 1:
                self._start_fine_tuning(model, data, precision)
                stage = 2
            hist, seconds = self._fit_stage(model, data, run_dir, number, max(start, done), end, saved_state,
                                            seconds_before=seconds)
            saved_state = {}
            for key, values in hist.items():
                history.setdefault(key, []).extend(values)
            done = end
        model.save(run.model_path)

        metrics: dict[str, Any] = {
            "train_seconds": round(seconds, 3),
            "epochs_run": len(run.history) or len(history.get("loss", [])),
            "precision": precision,
            "params": int(model.count_params()),
        }
        if getattr(self, "found_lr_", None) is not None:
            metrics["learning_rate_found"] = self.found_lr_  # learning_rate: auto (see lr_find.png)
        metrics.update(self._evaluate(model, data))
        write_json(run.file(rundir.METRICS), metrics)

        self.run_, self.model_, self.data_, self.precision_ = run, model, data, precision
        self.history_ = history
        return self

    # -- pieces of a run -----------------------------------------------------------------
    def _steps(self, data: Any) -> int:
        t = self.config.train
        return t.steps_per_epoch or math.ceil(len(data.splits["train"]) / t.batch_size)

    def _start_fine_tuning(self, model: Any, data: Any, precision: str) -> None:
        """Stage 2: unfreeze the requested backbone layers, recompile at a lower LR."""
        from tfpilot.models.finetune import unfreeze

        ft = self.config.train.fine_tune
        names = unfreeze(model, layers=None if ft.from_layer else ft.unfreeze_layers, from_layer=ft.from_layer)
        self.unfrozen_ = names
        log.info("fine-tuning: unfroze %d backbone layers (%s ... %s)", len(names), names[0] if names else "",
                 names[-1] if names else "")
        self._compile(model, self._steps(data), data.num_classes, precision, stage=2)

    def _train_stream(self, data: Any, start: int, end: int) -> Any:
        """The training batches of epochs [start, end): seeded per epoch, augmented, weighted."""
        import tensorflow as tf

        from tfpilot.data.pipeline import make_train_pipeline
        from tfpilot.training.augment import build_augmenter
        from tfpilot.training.imbalance import class_weights, with_sample_weights

        cfg = self.config
        spec = data.input_spec
        decode = spec.decode_target()
        ds = make_train_pipeline(
            data.splits["train"], cfg.train.batch_size, (start, end), seed=cfg.train.seed,
            shuffle_buffer=cfg.data.shuffle_buffer, balanced=cfg.data.balanced_sampling,
            steps_per_epoch=cfg.train.steps_per_epoch, **decode,
        )
        if self.config.one_hot_labels:
            ds = ds.map(lambda x, y: (x, tf.one_hot(y, data.num_classes)), num_parallel_calls=tf.data.AUTOTUNE)
        augmenter = build_augmenter(cfg.data.augment, spec.channels, cfg.train.seed) if spec.kind == "image" else None
        if augmenter is not None:
            ds = ds.map(augmenter, num_parallel_calls=tf.data.AUTOTUNE)
        weights = class_weights(cfg.train.class_weight, data.splits["train"].y, data.class_names)
        if weights is not None:
            ds = with_sample_weights(ds, weights)
        return ds.prefetch(tf.data.AUTOTUNE)

    def _fit_stage(self, model: Any, data: Any, run_dir: Path, stage: int, start: int, end: int,
                   saved_state: dict[str, Any], seconds_before: float) -> tuple[dict[str, list[float]], float]:
        """Fit epochs [start, end) of one stage; returns its history and the cumulative train seconds."""
        from tfpilot.training.callbacks import build_callbacks
        from tfpilot.training.custom_loop import custom_fit
        from tfpilot.training.resume import ResumeCheckpoint, restore_callback_state

        t = self.config.train
        steps = self._steps(data)
        has_val = "val" in data.splits and len(data.splits["val"]) > 0
        one_hot = data.num_classes if self.config.one_hot_labels else None
        val_ds = self._pipeline(data, "val", training=False, one_hot=one_hot) if has_val else None
        callbacks, timer = build_callbacks(t.callbacks, run_dir, end, steps, has_validation=has_val,
                                           append=start > 0)
        timer.train_seconds = seconds_before
        if saved_state:
            restore_callback_state(callbacks, saved_state["callbacks"], saved_state["dir"])
        if t.callbacks.backup:
            callbacks.append(ResumeCheckpoint(run_dir / "backup", callbacks, stage=stage))
        train_ds = self._train_stream(data, start, end)
        all_callbacks = [*callbacks, *self.callbacks]
        if t.loop == "custom":
            history = custom_fit(model, train_ds, epochs=end, initial_epoch=start, steps_per_epoch=steps,
                                 validation_data=val_ds, callbacks=all_callbacks)
        else:
            history = model.fit(
                train_ds, validation_data=val_ds, epochs=end, initial_epoch=start, steps_per_epoch=steps,
                callbacks=all_callbacks, verbose=2 if t.callbacks.progress == "keras" else 0,
                shuffle=False,  # the pipeline shuffles, seeded per epoch
            )
        return history.history, timer.train_seconds

    def _evaluate(self, model: Any, data: Any) -> dict[str, Any]:
        from tfpilot.metrics import classification_metrics, predict_probabilities

        t = self.config.train
        out = {}
        for split in ("val", "test"):
            if split in data.splits and len(data.splits[split]):
                ds = self._pipeline(data, split, training=False, batch_size=max(t.batch_size, 256))
                y, probs = predict_probabilities(model, ds)
                out[split] = classification_metrics(y, probs, data.class_names, k=t.top_k)
        return out
