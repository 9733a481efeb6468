"""The Optuna study of a search: its storage (a journal file in the search directory, or an
RDB URL), sampler and pruner, and the bookkeeping that makes ``--resume`` and ``--jobs`` safe.

Example:
    >>> from tfpilot.training.tune.settings import TuneSettings
    >>> import tempfile
    >>> study = open_study(TuneSettings(base={}, space={}), tempfile.mkdtemp())
    >>> study.study_name, len(study.trials)
    ('tfpilot-tune', 0)
"""

from __future__ import annotations

import fcntl
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tfpilot.errors import UserError
from tfpilot.training.tune.settings import STUDY_NAME, TuneSettings

#: The journal file of a search (``JournalFileBackend``), shared by its worker processes.
JOURNAL = "journal.log"
#: Held while a worker counts the trials and asks for the next one (one machine).
ASK_LOCK = ".ask.lock"


def open_storage(settings: TuneSettings, out_dir: str | Path) -> Any:
    """``settings.storage`` (an RDB URL, e.g. ``postgresql://user:pw@host/db``) or the journal
    file ``DIR/journal.log`` (several processes on one machine)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if settings.storage:
        return optuna.storages.RDBStorage(settings.storage)
    return optuna.storages.JournalStorage(JournalFileBackend(str(Path(out_dir) / JOURNAL)))


def make_pruner(settings: TuneSettings) -> Any:
    """``median``: MedianPruner (after ``pruner_startup_trials`` complete trials, not in a trial's
    first ``pruner_warmup_epochs`` epochs); ``halving``: SuccessiveHalvingPruner; ``none``."""
    import optuna

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.pruner_startup_trials,
                                           n_warmup_steps=settings.pruner_warmup_epochs)
    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if settings.pruner == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"pruner {settings.pruner!r}: expected median, halving or none")


def open_study(settings: TuneSettings, out_dir: str | Path, worker: int = 0) -> Any:
    """The search's study (created on first use), with worker ``worker``'s sampler
    (TPE, seed ``settings.seed + worker``, constant liar for parallel workers)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # constant_liar is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=settings.seed + worker, constant_liar=True)
    return optuna.create_study(study_name=STUDY_NAME, storage=open_storage(settings, out_dir),
                               direction=settings.direction, sampler=sampler, pruner=make_pruner(settings),
                               load_if_exists=True)


def counted(study: Any) -> int:
    """Trials that count towards ``--trials``: started or finished, less the ones a killed
    process left behind and that were queued again (their rerun counts instead)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    rerun = {t.user_attrs.get("retry_of") for t in trials} - {None}
    return sum(1 for t in trials if t.state != TrialState.WAITING and t.number not in rerun)


@contextmanager
def ask_lock(out_dir: str | Path) -> Iterator[None]:
    """Serialise "count the trials, ask for one" between the processes of one machine, so a
    search with ``--jobs`` runs exactly ``--trials`` trials."""
    with open(Path(out_dir) / ASK_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mark_owner(trial: Any) -> None:
    """Record which process runs ``trial`` (``--resume`` tells a dead one from a live one)."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def requeue_orphans(study: Any) -> list[int]:
    """Mark FAIL every trial left RUNNING by a process that is gone, and queue its params
    again (``enqueue_trial``); returns their numbers.

    A RUNNING trial of a live process on this machine is refused: a search is resumed once
    its workers have stopped. A trial of another machine (RDB storage) is taken as dead.

    Raises:
        UserError: a trial is still running here.
    """
    from optuna.trial import TrialState

    host, orphans = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == host and pid is not None and pid != os.getpid() and _alive(int(pid)):
            raise UserError(f"trial {t.number} is still running in process {pid}: stop that search "
                            "(or let it finish) before resuming it")
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
        orphans.append(t.number)
    return orphans
