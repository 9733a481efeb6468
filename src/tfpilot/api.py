"""The composition layer: the steps that span packages ("train, then report").

``tfpilot/__init__.py`` and the CLI call these; below this module, ``training/`` never
imports ``evaluation/`` and nothing but this module imports ``training/`` (see
``docs/architecture.md``).

Example:
    >>> import tfpilot
    >>> run = tfpilot.train({"data": {"dataset": "digits"}, "model": {"name": "mlp"}}, epochs=1)  # doctest: +SKIP
    >>> run.metrics["test"]["accuracy"] > 0.8  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tfpilot.config import Config, load_config
from tfpilot.config.schema import AUTO_MODEL
from tfpilot.data.inspect.options import InspectOptions
from tfpilot.evaluation.evaluate import evaluate
from tfpilot.evaluation.report import report, report_after_training
from tfpilot.inference import Predictor, load
from tfpilot.runs import Run, rerun_dir
from tfpilot.training import Trainer
from tfpilot.training.determinism import DeterminismReport, check_determinism
from tfpilot.training.ensemble import ensemble
from tfpilot.training.launch import launch
from tfpilot.training.leaderboard import fit_leaderboard
from tfpilot.training.lr_finder import LRFinderResult, find_lr
from tfpilot.training.prune import PruneResult, prune
from tfpilot.training.tune import TuneResult, resume_tune, tune

__all__ = ["DeterminismReport", "InspectOptions", "LRFinderResult", "Predictor", "PruneResult", "Run", "Trainer",
           "TuneResult", "beside_its_run", "check_determinism", "ensemble", "evaluate", "find_lr", "inspect", "launch",
           "load", "prune", "report", "resume", "resume_tune", "train", "tune"]

log = logging.getLogger(__name__)


def _finish(trainer: Any, write_report: bool) -> Run | None:
    """The run written, with its report; None on a worker of a multi-worker run other than
    the chief (the chief alone writes the run directory and its report)."""
    if not trainer.chief_:
        return None
    if write_report:
        report_after_training(trainer)
    return trainer.run_


def train(config: Config | str | Path | dict[str, Any], report: bool = True, **overrides: Any) -> Run | None:
    """Train a model from a config (object, YAML path or dict) and return its :class:`Run`
    (None on the non-chief workers of a ``train.distribute=multi_worker`` run).

    Args:
        config: the run configuration.
        report: also write the evaluation report (``RUN/report.html``, see
            :func:`tfpilot.evaluation.report.report`).
        **overrides: short flags (``dataset=``, ``model=``, ``epochs=``, ``batch_size=``,
            ``run_dir=``, ``data_dir=``) applied on top.

    A table with ``model.name: auto`` (the default) trains the leaderboard of table models and
    their weighted ensemble (:func:`~tfpilot.training.leaderboard.fit_leaderboard`): the run is
    the ensemble, its candidates are runs in ``RUN/candidates/``.

    A YAML path that is a run's own ``config.yaml`` (no ``run_dir=`` given) trains into a new
    directory beside that run (see :func:`beside_its_run`). A run directory that holds a run
    is refused, unless ``output.resume_if_exists`` (an unfinished run: resume it) or
    ``output.overwrite`` (discard it) is set.
    """
    cfg = load_config(config, **overrides) if overrides or not isinstance(config, Config) else config
    if isinstance(config, (str, Path)) and overrides.get("run_dir") is None:
        cfg = beside_its_run(cfg, config)
    if cfg.features is not None and cfg.model.name == AUTO_MODEL:  # a table, no model named: the leaderboard
        return _finish(fit_leaderboard(cfg), report)
    return _finish(Trainer(cfg).fit(), report)


def beside_its_run(cfg: Config, config_file: str | Path) -> Config:
    """``cfg`` as read from ``config_file``, with ``output.run_dir`` moved to a new directory
    beside the run when ``config_file`` is that run's own ``config.yaml``
    (``tfpilot train RUN/config.yaml`` reproduces RUN into ``RUN-2``, and says so).

    An unfinished run with ``output.resume_if_exists`` stays where it is: it is resumed.

    Args:
        cfg: the config loaded from ``config_file``.
        config_file: the YAML file it was read from.

    Example:
        >>> cfg = beside_its_run(load_config("runs/fast/config.yaml"), "runs/fast/config.yaml")  # doctest: +SKIP
        >>> cfg.output.run_dir  # doctest: +SKIP
        PosixPath('runs/fast-2')
    """
    new = rerun_dir(config_file, cfg.output.run_dir)
    if new is None or (cfg.output.resume_if_exists and not Run(cfg.output.run_dir).finished):
        return cfg
    log.info("%s is the config of the run in %s: training a new run beside it, in %s",
             config_file, cfg.output.run_dir, new)
    return cfg.model_copy(update={"output": cfg.output.model_copy(update={"run_dir": new})})


def resume(run_dir: str | Path, report: bool = True) -> Run | None:
    """Continue an interrupted run from its last completed epoch (see :meth:`Trainer.resume`),
    then write its report."""
    return _finish(Trainer.resume(run_dir), report)


def inspect(config: Config, out: str | Path, options: InspectOptions | None = None) -> dict[str, Any]:
    """``tfpilot inspect``: check the data of ``config`` as training would split it; write
    ``OUT/inspect.json`` and the self-contained ``OUT/inspect.html``; return the findings.

    Args:
        config: a config naming the data (``data.dataset``, a table's ``features``).
        out: the output folder.
        options: what to check and how hard (:class:`~tfpilot.data.inspect.options.InspectOptions`:
            the label-issue search with its K-fold model, hashing workers, near-duplicate
            thresholds); None: the defaults.

    Example:
        >>> found = inspect(load_config(None, dataset="digits"), "inspect-digits", InspectOptions(folds=3))  # doctest: +SKIP
        >>> found["duplicates"]["exact"]["count"]  # doctest: +SKIP
        0
    """
    import json
    import time

    from tfpilot.data.inspect import findings as F
    from tfpilot.data.table import prepare_run_data
    from tfpilot.evaluation.inspect_page import write_page
    from tfpilot.training.label_issues import label_issue_findings

    options = options or InspectOptions()
    start = time.perf_counter()
    data = prepare_run_data(config)
    frame = None
    if config.features is not None:
        from tfpilot.data.table_io import load_table

        frame = load_table(config.data.dataset, config.data).frame
    found, flat = F.inspect_data(data, frame=frame, workers=options.workers, image_distance=options.image_distance,
                                 text_similarity=options.text_similarity)
    found = {"dataset": config.data.dataset, **found}
    if options.label_issues:
        found["label_issues"] = label_issue_findings(config, data, flat, folds=options.folds, epochs=options.epochs,
                                                     model=options.model)
    found["timings"]["total_s"] = round(time.perf_counter() - start, 2)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "inspect.json").write_text(json.dumps(found, indent=1, default=str), encoding="utf-8")
    write_page(found, flat, out / "inspect.html", shown=options.shown)
    return found
