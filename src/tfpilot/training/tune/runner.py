"""Start, run and resume a search, then write its outputs.

Example:
    >>> result = tune("configs/mnist_mlp.yaml", "tune-out", {"trials": 20, "jobs": 2})  # doctest: +SKIP
    >>> result.best_config  # doctest: +SKIP
    PosixPath('tune-out/best.yaml')
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tfpilot.config import Config, ConfigError, load_config
from tfpilot.config.loader import format_validation_error
from tfpilot.config.tune import TuneConfig
from tfpilot.errors import AlreadyExistsError, UserError
from tfpilot.training.tune.settings import SETTINGS, TuneSettings, check_objective, parse_duration
from tfpilot.training.tune.space import SearchSpace
from tfpilot.training.tune.study import open_study, requeue_orphans
from tfpilot.training.tune.worker import work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneResult:
    """A finished (or timed-out) search.

    Attributes:
        out_dir: the search directory.
        study: the Optuna study.
        best_config: ``DIR/best.yaml`` (None: no trial completed).
        requeued: trials a killed process had left RUNNING, marked FAIL and queued again.
        metric: the objective's metric.
    """

    out_dir: Path
    study: Any
    best_config: Path | None
    metric: str = "val_accuracy"
    requeued: tuple[int, ...] = ()

    @property
    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.study.trials:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        return counts


def _settings(cfg: Config, given: Mapping[str, Any], storage: str | None,
              enqueue: Sequence[Mapping[str, Any]]) -> TuneSettings:
    """The settings of a new search: the ``tune:`` section of ``cfg`` with ``given`` over it."""
    section = cfg.tune.model_dump(mode="json", by_alias=True) if cfg.tune else {}
    given = dict(given)
    space = given.pop("space", None)
    merged = {**section, **{k: v for k, v in given.items() if v is not None}}
    try:  # the given keys are the tune: section's: checked as it is
        TuneConfig.model_validate({k: v for k, v in merged.items() if k != "space"})  # the space: parsed below
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc).replace("invalid configuration", "invalid tune settings")) from None
    if isinstance(space, (str, Path)):
        parsed = SearchSpace.from_file(space)
    else:
        parsed = SearchSpace.parse(space if space else section.get("space") or {},
                                   where="the given space" if space else "tune.space")
    base = cfg.model_dump(mode="json")
    base["tune"] = None
    base["output"]["run_dir"] = None
    parsed.check(base)
    metric = merged.get("metric", "val_accuracy")
    return TuneSettings(
        base=base, space=parsed.to_yaml(), metric=metric, direction=check_objective(metric, merged.get("direction")),
        trials=merged.get("trials", 20), jobs=merged.get("jobs", 1), timeout_s=parse_duration(merged.get("timeout")),
        pruner=merged.get("pruner", "median"), pruner_startup_trials=merged.get("pruner_startup_trials", 5),
        pruner_warmup_epochs=merged.get("pruner_warmup_epochs", 1), seed=merged.get("seed", 0),
        storage=storage, enqueue=[dict(v) for v in enqueue])


def tune(config: Config | str | Path | dict[str, Any], out_dir: str | Path,
         settings: TuneConfig | Mapping[str, Any] | None = None, *, storage: str | None = None,
         enqueue: Sequence[Mapping[str, Any]] = ()) -> TuneResult:
    """Search the config space with Optuna; every trial is a run directory ``DIR/trials/NNN``.

    Args:
        config: the base config (object, YAML path or dict); its ``tune:`` section gives the
            space and settings unless ``settings`` does.
        out_dir: the search directory (must not hold a search: use :func:`resume_tune`).
        settings: the search (:class:`~tfpilot.config.tune.TuneConfig`, or a mapping of its keys:
            ``space``, ``metric``, ``direction``, ``trials``, ``jobs``, ``timeout``, ``pruner``,
            ``seed``, ...), each key given over the ``tune:`` section's; ``space`` may also be a
            YAML file of it. See ``docs/tune.md``.
        storage: an Optuna RDB URL (``postgresql://...``) for workers on several machines;
            None: the journal file ``DIR/journal.log``.
        enqueue: config values of trials to run first, e.g. ``[{"train.optimizer.learning_rate": 1e-3}]``.

    Raises:
        ConfigError: a bad space key (before any trial), a test metric, no direction.
        AlreadyExistsError: ``out_dir`` already holds a search.

    Example:
        >>> space = {"train.optimizer.learning_rate": {"log_uniform": [1e-4, 1e-2]}}
        >>> result = tune("configs/mnist_mlp.yaml", "tune-out", {"space": space, "trials": 20})  # doctest: +SKIP
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    given = (settings.model_dump(mode="json", by_alias=True, exclude_unset=True) if isinstance(settings, TuneConfig)
             else dict(settings or {}))
    search = _settings(cfg, given, storage, enqueue)
    out = Path(out_dir)
    if (out / SETTINGS).exists():
        raise AlreadyExistsError(f"{out} already holds a search: continue it with `tfpilot tune --resume {out}`, "
                                 "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    search.save(out)
    study = open_study(search, out)
    queued = SearchSpace.parse(search.space)
    for values in search.enqueue:
        study.enqueue_trial(queued.to_params(values))
    return _run(search, out, ())


def resume_tune(out_dir: str | Path, *, trials: int | None = None, jobs: int | None = None,
                timeout: str | float | None = None) -> TuneResult:
    """Continue a search that was stopped or killed: finished trials are kept; a trial left
    RUNNING by a dead process is marked FAIL and run again with the same params.

    Args:
        out_dir: the search directory.
        trials, jobs, timeout: change the budget (None: as saved).
    """
    out = Path(out_dir)
    settings = TuneSettings.load(out).updated(trials=trials, jobs=jobs, timeout_s=parse_duration(timeout))
    settings.save(out)
    requeued = requeue_orphans(open_study(settings, out))
    if requeued:
        log.warning("trials %s were left running by a process that is gone: marked failed, queued again",
                    ", ".join(map(str, requeued)))
    return _run(settings, out, tuple(requeued))


def _run(settings: TuneSettings, out: Path, requeued: tuple[int, ...]) -> TuneResult:
    deadline = None if settings.timeout_s is None else time.time() + settings.timeout_s
    if settings.jobs == 1:
        work(out, 0, deadline)
    else:
        _spawn_workers(out, settings.jobs, deadline)
    return write_outputs(settings, out, requeued)


def _spawn_workers(out: Path, jobs: int, deadline: float | None) -> None:
    """``jobs`` worker processes (spawned: TensorFlow does not survive a fork) on the study."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=work, args=(str(out), k, deadline), name=f"tune-worker-{k}") for k in range(jobs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [f"{p.name} (exit {p.exitcode})" for p in procs if p.exitcode != 0]
    if failed:
        raise UserError(f"tune workers failed: {', '.join(failed)}; their traceback is above. The finished trials "
                        f"are kept: fix the cause and run `tfpilot tune --resume {out}`")


def write_outputs(settings: TuneSettings, out: Path, requeued: tuple[int, ...] = ()) -> TuneResult:
    """``best.yaml``, ``trials.csv``, ``tune.html`` and the HParams summaries of the search in ``out``."""
    from tfpilot.training.tune.html import write_html
    from tfpilot.training.tune.results import write_best, write_hparams, write_trials_csv

    space = SearchSpace.parse(settings.space)
    study = open_study(settings, out)
    best = write_best(settings, space, study, out)
    write_trials_csv(study, space, out)
    write_html(settings, space, study, out)
    write_hparams(settings, space, study, out)
    return TuneResult(out_dir=out, study=study, best_config=best, requeued=requeued, metric=settings.metric)


__all__ = ["TuneResult", "resume_tune", "tune", "write_outputs"]
