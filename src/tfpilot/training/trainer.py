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
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tfpilot import runs as rundir
from tfpilot.config import Config, load_config, save_config
from tfpilot.errors import AlreadyExistsError, NotFoundError
from tfpilot.runs import Run, write_json
from tfpilot.training.distribute import replica_batch
from tfpilot.training.setup import Task, build_model, loss_and_metrics, loss_weights, seed_everything, task_for

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
        data_: the data used: :class:`~tfpilot.data.PreparedData`, or a table's
            :class:`~tfpilot.data.table.TableData` (the same interface).
        precision_: the dtype policy the model trained with.
        history_: per-epoch logs.
        strategy_: the ``tf.distribute`` strategy of ``train.distribute`` (None: none).
        cluster_: the multi-worker cluster (None unless ``train.distribute=multi_worker``).
        chief_: whether this process wrote the run directory (False on the other workers of a
            multi-worker run, which train in a temporary folder they delete).
    """

    strategy_: Any = None
    cluster_: Any = None

    def __init__(self, config: Config, callbacks: Sequence[Any] = ()) -> None:
        self.config = config
        self.callbacks = callbacks

    # -- steps -------------------------------------------------------------------------
    def _target(self) -> tuple[Path, bool]:
        """``(run directory, resume)``: where this run trains, and whether it continues the
        unfinished run already there (``output.resume_if_exists``).

        Nothing is lost: a finished run is refused, an unfinished one refused with the command
        that resumes it, unless ``output.overwrite`` discards it. Every worker of a multi-worker
        run decides before the workers meet (:meth:`_start_strategy`), so before the chief
        writes anything: they all see the same directory and decide alike.
        """
        out = self.config.output
        path = Path(out.run_dir) if out.run_dir else default_run_dir(self.config)
        run = Run(path)
        if out.overwrite or not run.started:
            return path, False
        if run.finished:
            raise AlreadyExistsError(
                f"{path} already holds a finished run. Choose another --run-dir, or pass --overwrite "
                "(output.overwrite=true) to replace it."
            )
        if out.resume_if_exists:
            return path, True
        raise AlreadyExistsError(
            f"{path} holds an unfinished run ({len(run.history)} epochs in its history, no metrics.json). "
            f"Continue it with `tfpilot resume {path}` (or train with --resume-if-exists), train into "
            "another --run-dir, or discard it with --overwrite."
        )

    def _prepare_dir(self, path: Path) -> None:
        """Create the run directory; with ``output.overwrite``, first discard what a previous run
        left there that would pass for this run's (its backup, model, metrics, history)."""
        import shutil

        if self.config.output.overwrite and Run(path).started:
            log.warning("%s: discarding the previous run's backup, model, metrics and history (output.overwrite)",
                        path)
            shutil.rmtree(path / rundir.BACKUP, ignore_errors=True)
            for name in (rundir.METRICS, rundir.MODEL, rundir.HISTORY):
                (path / name).unlink(missing_ok=True)
        path.mkdir(parents=True, exist_ok=True)

    @property
    def _task(self) -> Task:
        """What this kind of model does its own way (classifier or table, :func:`task_for`)."""
        return task_for(self.config)

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
        base_lr *= t.lr_scaling.factor(t.batch_size)  # train.lr_scaling (none: factor 1)
        lr = create_schedule(t.schedule, base_lr, steps_per_epoch, epochs)
        with self._scope():
            optimizer = create_optimizer(t.optimizer, lr)
            loss, metrics = loss_and_metrics(self.config, model, num_classes)
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights(self.config),
                          jit_compile=self._jit(precision),
                          steps_per_execution=t.steps_per_execution)

    # -- the whole run -------------------------------------------------------------------
    def fit(self) -> Trainer:
        """Run the whole pipeline; returns self with ``run_``, ``model_``, ``history_`` set.

        Raises:
            AlreadyExistsError: ``output.run_dir`` holds a finished run, or an unfinished one and
                neither ``output.resume_if_exists`` nor ``output.overwrite`` is set.
        """
        path, resume = self._target()
        if resume:
            log.info("%s holds an unfinished run: resuming it from its last backup with its recorded config.yaml "
                     "(output.resume_if_exists)", path)
            self.config = load_config(Run(path).config_file)
        return self._run(resume=resume, run_dir=path)

    @classmethod
    def resume(cls, run_dir: str | Path, callbacks: Sequence[Any] = ()) -> Trainer:
        """Continue an interrupted run from its last completed epoch.

        Model weights, optimizer state (and so the schedule step), the callbacks' best-metric
        and patience state, and the per-epoch data order all continue where they stopped.
        """
        run = Run(run_dir)
        if not run.exists:
            raise NotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
        if run.finished:
            raise AlreadyExistsError(f"{run_dir} already finished; nothing to resume")
        return cls(load_config(run.config_file), callbacks)._run(resume=True, run_dir=Path(run_dir))

    def _run(self, resume: bool, run_dir: Path) -> Trainer:
        cfg = self.config
        t = cfg.train
        self._start_strategy()  # first: a multi-worker strategy must exist before TensorFlow runs an op
        seed_everything(t.seed, t.deterministic)
        self.chief_ = self.cluster_ is None or self.cluster_.is_chief
        if not self.chief_:  # another worker of a multi-worker run: the chief alone writes the run
            import shutil
            import tempfile

            scratch = Path(tempfile.mkdtemp(prefix=f"tfpilot-worker{self.cluster_.index}-"))
            try:
                return self._train(resume, source=Run(run_dir) if resume else None, run=Run(scratch))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        if not resume:
            self._prepare_dir(run_dir)
        run = Run(run_dir)
        return self._train(resume, source=run, run=run)

    def _train(self, resume: bool, source: Run | None, run: Run) -> Trainer:
        """Train into ``run`` (resuming from ``source``'s last backup when ``resume``)."""
        from tfpilot.models.ydf_layers import forest_heads
        from tfpilot.training.environment import environment
        from tfpilot.training.precision import choose_precision
        from tfpilot.training.resume import latest_checkpoint

        cfg = self.config
        t = cfg.train
        run_dir = run.path
        self._dir = run_dir
        precision = choose_precision(t.precision)
        # a resumed run: the recorded split, exactly (a clear error names missing or changed data)
        prep_start = time.perf_counter()
        self.config, data = self._task.prepare(cfg, source if resume else None)
        data_prep_s = time.perf_counter() - prep_start  # load + split (+ decode, unless cached)
        decoded = getattr(getattr(data, "report", None), "decode_cache_line", lambda: "")()
        log.info("data prepared in %.2f s%s", data_prep_s, f"; {decoded}" if decoded else "")
        cfg = self.config
        t = cfg.train  # keys chosen from the data (training/defaults.py) are in the prepared config
        if not resume:
            self._write_data_files(run, data)
        write_json(run.file(rundir.ENV), environment(precision, t.seed))

        checkpoint = latest_checkpoint(source.path / "backup") if resume else None
        done, stage, saved_state = 0, 1, {}
        if checkpoint is not None:
            from tfpilot.training.resume import restore_rng_state

            with self._scope():
                model = rundir.load_model(checkpoint[0] / "model.keras")
            restore_rng_state(model, checkpoint[0])
            saved_state = {**checkpoint[1], "dir": checkpoint[0]}
            done, stage = saved_state["epochs_done"], saved_state["stage"]
            log.info("resuming %s after epoch %d", run_dir, done)
        else:
            if resume:
                log.warning("no completed epoch in %s: starting it from the beginning", run_dir)
            with self._scope():
                model = build_model(cfg, data, precision)
            if not forest_heads(model):
                self._compile(model, self._steps(data), data.num_classes, precision)

        ft = t.fine_tune
        total = t.epochs + (ft.epochs if ft.enabled else 0)
        stages = [(1, 0, t.epochs)] + ([(2, t.epochs, total)] if ft.enabled else [])
        history: dict[str, list[float]] = {}
        seconds = 0.0
        if forest_heads(model):  # decision forests: YDF's own learner, not model.fit
            from tfpilot.training.ydf_fit import fit_forests

            history, seconds = fit_forests(model, data, cfg, run_dir)
            stages = []
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
        calibration = None
        if self.strategy_ is None:  # a distributed run's model calibrates once reloaded, below
            model, calibration = self._calibrate(model, data)
            if calibration and not forest_heads(model):  # compiled as the trained one was (model_.loss, evaluate);
                self._compile(model, self._steps(data), data.num_classes, precision)  # its optimizer built,
                model.optimizer.build(model.trainable_variables)  # so model.keras loads without a warning
        model.save(run.model_path)
        if self.strategy_ is not None:
            from tfpilot.training.distribute import weights_digest

            digest = weights_digest(model)
            log.info("worker %d final weights sha256:%s", self.cluster_.index if self.cluster_ else 0, digest[:16])
            if not self.chief_:  # the chief evaluates and reports; this worker's scratch run goes
                self.run_, self.model_, self.data_, self.precision_ = None, model, data, precision
                self.history_ = history
                return self
            # Evaluate the saved model outside the strategy: plain variables, no collectives with
            # workers that have finished.
            model = rundir.load_model(run.model_path)
            model, calibration = self._calibrate(model, data)
            if calibration:
                model.save(run.model_path)

        metrics: dict[str, Any] = {
            "train_seconds": round(seconds, 3),
            "data_prep_s": round(data_prep_s, 3),
            "epochs_run": len(run.history) or len(history.get("loss", [])),
            "precision": precision,
            "params": int(model.count_params()),
        }
        if getattr(self, "found_lr_", None) is not None:
            metrics["learning_rate_found"] = self.found_lr_  # learning_rate: auto (see lr_find.png)
        if self.strategy_ is not None:
            metrics["distributed"] = {
                "strategy": t.distribute, "replicas": int(self.strategy_.num_replicas_in_sync),
                "workers": self.cluster_.num_workers if self.cluster_ else 1,
                "global_batch": t.batch_size, "weights_sha256": digest,
            }
        gap = self._mode_gap(model, data)
        if gap is not None:
            metrics["mode_gap"] = gap
        metrics.update(self._evaluate(model, data))
        if calibration:
            metrics["calibration"] = calibration
        write_json(run.file(rundir.METRICS), metrics)

        self.run_, self.model_, self.data_, self.precision_ = run, model, data, precision
        self.history_ = history
        return self

    # -- pieces of a run -----------------------------------------------------------------
    def _write_data_files(self, run: Run, data: Any) -> None:
        """A new run's record of its config and data: ``config.yaml``, ``split.json``,
        ``data_report.json``, ``labels.json`` and the data's own files (a table: ``schema.yaml``)."""
        cfg = self.config
        save_config(cfg, run.file(rundir.CONFIG))
        write_json(run.file(rundir.SPLIT), data.manifest)
        data.report.save(run.file(rundir.DATA_REPORT))
        write_json(run.file(rundir.LABELS), data.labels_record(cfg.data.dataset, cfg.model.name))
        data.save_extra_files(run.path)

    def _steps(self, data: Any) -> int:
        t = self.config.train
        return t.steps_per_epoch or math.ceil(len(data.splits["train"]) / t.batch_size)

    def _start_fine_tuning(self, model: Any, data: Any, precision: str) -> None:
        """Stage 2: unfreeze the requested backbone layers, recompile at a lower LR."""
        from tfpilot.models.finetune import unfreeze

        ft = self.config.train.fine_tune
        names = unfreeze(model, layers=None if ft.from_layer else ft.unfreeze_layers, from_layer=ft.from_layer)
        self.unfrozen_ = names
        log.info("fine-tuning: unfroze %d backbone layers: %s", len(names), ", ".join(names))
        self._compile(model, self._steps(data), data.num_classes, precision, stage=2)

    def _one_hot(self, data: Any) -> int | None:
        """Classes of the one-hot labels the loss takes, or None (sparse labels)."""
        return data.num_classes if self.config.one_hot_labels else None

    def _train_stream(self, data: Any, start: int, end: int) -> Any:
        """The training batches of epochs [start, end): seeded per epoch, augmented, weighted."""
        cfg = self.config
        batch, replicas = cfg.train.batch_size, 1
        if self.strategy_ is not None:  # this worker's per-replica batches of each global batch, the last partial;
            replica_batch(batch, self.strategy_.num_replicas_in_sync)  # every worker runs the same steps
            replicas = self._local_replicas()
        return data.train_stream(batch, (start, end), seed=cfg.train.seed, shuffle_buffer=cfg.data.shuffle_buffer,
                                 balanced=cfg.data.balanced_sampling, steps_per_epoch=cfg.train.steps_per_epoch,
                                 shard=self._shard(), replicas=replicas, one_hot=self._one_hot(data),
                                 maps=self._task.batch_maps(cfg, data))

    def _val_stream(self, data: Any, one_hot: int | None) -> Any:
        """The validation batches seen after each epoch (a distributed run: this worker's share)."""
        t = self.config.train
        if self.strategy_ is None:
            return data.pipeline("val", t.batch_size, training=False, one_hot=one_hot)
        batch = replica_batch(t.batch_size, self.strategy_.num_replicas_in_sync)
        return self._distribute(data.pipeline("val", batch, training=False, one_hot=one_hot, shard=self._shard()))

    # -- tf.distribute (train.distribute) --------------------------------------------------
    def _scope(self) -> Any:
        """The strategy's scope (variables created in it are mirrored), or a no-op."""
        import contextlib

        return self.strategy_.scope() if self.strategy_ is not None else contextlib.nullcontext()

    def _shard(self) -> tuple[int, int] | None:
        """``(num_workers, index)`` of a multi-worker run: this worker reads its share of each epoch."""
        return (self.cluster_.num_workers, self.cluster_.index) if self.cluster_ is not None else None

    def _local_replicas(self) -> int:
        workers = self.cluster_.num_workers if self.cluster_ is not None else 1
        return self.strategy_.num_replicas_in_sync // workers

    def _distribute(self, ds: Any) -> Any:
        """This worker's per-replica batches as the strategy's distributed dataset: each local
        replica takes the next batch (the worker shards by file itself, so nothing is re-batched
        or re-sharded by tf.distribute)."""
        if self.strategy_ is None:
            return ds
        return self.strategy_.distribute_datasets_from_function(lambda context: ds)

    def _start_strategy(self) -> None:
        """Create ``train.distribute``'s strategy; a multi-worker run checks that every worker
        has the same config, and logs how the global batch splits."""
        from tfpilot.config import dump_config
        from tfpilot.training.distribute import check_same_config, create_strategy, fingerprint

        t = self.config.train
        self.strategy_, self.cluster_ = create_strategy(t.distribute, t.worker_timeout_s)
        if self.strategy_ is None:
            return
        if self.cluster_ is not None:
            check_same_config(self.strategy_, fingerprint(dump_config(self.config)), self.cluster_)
        replicas = self.strategy_.num_replicas_in_sync
        log.info("%s: %d replicas on %d workers; global batch %d, %d per replica", t.distribute, replicas,
                 self.cluster_.num_workers if self.cluster_ else 1, t.batch_size, replica_batch(t.batch_size, replicas))

    def _fit_stage(self, model: Any, data: Any, run_dir: Path, stage: int, start: int, end: int,
                   saved_state: dict[str, Any], seconds_before: float) -> tuple[dict[str, list[float]], float]:
        """Fit epochs [start, end) of one stage; returns its history and the cumulative train seconds."""
        from tfpilot.training.callbacks import build_callbacks
        from tfpilot.training.custom_loop import build_state, custom_fit
        from tfpilot.training.resume import ResumeCheckpoint, restore_callback_state

        t = self.config.train
        steps = self._steps(data)
        has_val = "val" in data.splits and len(data.splits["val"]) > 0
        val_ds = self._val_stream(data, self._one_hot(data)) if has_val else None
        callbacks, timer = build_callbacks(t.callbacks, run_dir, end, steps, has_validation=has_val,
                                           append=start > 0, ema=t.optimizer.ema,
                                           precise_batches=self._precise_bn_batches(model, data))
        timer.train_seconds = seconds_before
        if saved_state:
            restore_callback_state(callbacks, saved_state["callbacks"], saved_state["dir"])
        if t.callbacks.backup:
            callbacks.append(ResumeCheckpoint(run_dir / "backup", callbacks, stage=stage))
        train_ds = self._train_stream(data, start, end)
        if self.strategy_ is not None:
            build_state(model, self.strategy_, train_ds.element_spec)
            train_ds = self._distribute(train_ds)
        all_callbacks = [*callbacks, *self.callbacks]
        if t.loop == "custom":
            history = custom_fit(model, train_ds, epochs=end, initial_epoch=start, steps_per_epoch=steps,
                                 validation_data=val_ds, callbacks=all_callbacks, strategy=self.strategy_)
        else:
            history = model.fit(
                train_ds, validation_data=val_ds, epochs=end, initial_epoch=start, steps_per_epoch=steps,
                callbacks=all_callbacks, verbose=2 if t.callbacks.progress == "keras" else 0,
                shuffle=False,  # the pipeline shuffles, seeded per epoch
            )
        return history.history, timer.train_seconds

    def _train_sample(self, data: Any, examples: int) -> Any:
        """A fixed, seeded sample of the train split as batches (precise BN, the mode-gap check)."""
        t = self.config.train
        return data.sample(examples, t.batch_size, t.seed)

    def _precise_bn_batches(self, model: Any, data: Any) -> Any:
        """The batches precise BN averages over, or None (off, or no trainable BatchNorm layer)."""
        from tfpilot.training.precise_bn import trainable_batch_norms

        pbn = self.config.train.precise_bn
        if not pbn.enabled or not trainable_batch_norms(model):
            return None
        return self._train_sample(data, pbn.examples)

    def _mode_gap(self, model: Any, data: Any) -> dict[str, Any] | None:
        """Training- vs inference-mode accuracy on training examples (``metrics.json: mode_gap``);
        a large gap is logged as a warning."""
        from tfpilot.training.mode_gap import measure_mode_gap

        t = self.config.train
        if not t.mode_gap.enabled or not self._task.measures_mode_gap(model):
            return None
        gap = measure_mode_gap(model, self._train_sample(data, t.mode_gap.examples), t.mode_gap.threshold,
                               precise_bn=t.precise_bn.enabled)
        if gap.large:
            log.warning("%s", gap.message())
        return gap.to_dict()

    def _calibrate(self, model: Any, data: Any) -> tuple[Any, dict[str, Any] | None]:
        """``train.calibration``: the model with a temperature fitted on val per class head
        (:mod:`tfpilot.training.calibrate`), and its record for ``metrics.json`` (None: off)."""
        if self.config.train.calibration == "none":
            return model, None
        from tfpilot.training.calibrate import calibrate

        return calibrate(model, data, batch_size=self.config.train.evaluation_batch)

    def _evaluate(self, model: Any, data: Any) -> dict[str, Any]:
        """The val and test metrics of ``metrics.json`` (a table: per head, beside its baseline)."""
        t = self.config.train
        return data.evaluate(model, batch_size=t.evaluation_batch, top_k=t.top_k)
