"""``tfpilot tune``: an Optuna search over config keys; every trial a run directory trained
through the one fit path (see ``docs/tune.md``)."""

from tfpilot.training.tune.runner import TuneResult, resume_tune, tune
from tfpilot.training.tune.space import SearchSpace

__all__ = ["SearchSpace", "TuneResult", "resume_tune", "tune"]
