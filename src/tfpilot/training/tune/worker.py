"""A worker: ask the shared study for trials and run them until the search has its trials or
its time is up. ``--jobs J`` starts J of them (spawned processes) on one study.

Example:
    >>> work("tune-out", worker=0, deadline=None)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from tfpilot.errors import UserError
from tfpilot.training.tune.objective import run_trial
from tfpilot.training.tune.settings import TuneSettings
from tfpilot.training.tune.space import SearchSpace
from tfpilot.training.tune.study import ask_lock, counted, mark_owner, open_study

log = logging.getLogger(__name__)


def _next_trial(study: Any, settings: TuneSettings, out_dir: Path, deadline: float | None) -> Any:
    """The next trial (a queued one first), or None when the search has all its trials or its time is up."""
    if deadline is not None and time.time() >= deadline:
        return None
    with ask_lock(out_dir):
        if counted(study) >= settings.trials:
            return None
        trial = study.ask()
        mark_owner(trial)
        return trial


def work(out_dir: str | Path, worker: int = 0, deadline: float | None = None) -> int:
    """Run trials of the search in ``out_dir`` until it has ``settings.trials`` of them or
    ``deadline`` (a ``time.time()``) has passed; returns how many this worker ran.

    A trial whose config fails with a user error (an impossible combination) is marked FAIL
    and the search goes on; any other error marks it FAIL and stops this worker.

    Args:
        out_dir: the search directory (holds ``tune.json``).
        worker: this worker's index (its sampler's seed offset).
        deadline: no new trial starts after this time (None: no limit).
    """
    import optuna
    from optuna.trial import TrialState

    from tfpilot.training.tune.pruning import MetricNotLoggedError

    out_dir = Path(out_dir)
    settings = TuneSettings.load(out_dir)
    space = SearchSpace.parse(settings.space)
    study = open_study(settings, out_dir, worker)
    ran = 0
    while (trial := _next_trial(study, settings, out_dir, deadline)) is not None:
        ran += 1
        try:
            value = run_trial(trial, settings, space, out_dir)
        except optuna.TrialPruned as exc:
            study.tell(trial, state=TrialState.PRUNED)
            log.info("trial %d pruned (%s)", trial.number, exc)
            continue
        except MetricNotLoggedError:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except UserError as exc:
            log.warning("trial %d failed: %s", trial.number, exc)
            study.tell(trial, state=TrialState.FAIL)
            continue
        except BaseException:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        if math.isfinite(value):
            study.tell(trial, value)
            log.info("trial %d: %s = %.4g", trial.number, settings.metric, value)
        else:
            log.warning("trial %d: %s is %s: marked failed", trial.number, settings.metric, value)
            study.tell(trial, state=TrialState.FAIL)
    return ran
