"""The fold runs of ``tfpilot inspect``'s label-issue search (training/label_issues.py)."""

from __future__ import annotations

from tfpilot.config import load_config
from tfpilot.training.label_issues import fold_config


def test_a_fold_run_keeps_the_model_and_leaves_out_what_only_a_kept_run_needs(tmp_path):
    """A fold is trained once and thrown away: no backups, best-model checkpoint, TensorBoard,
    calibration or mode-gap check, whatever the user's config asks; its model, epochs and batch
    are the search's."""
    config = load_config({"data": {"dataset": "digits"}, "model": {"name": "mlp"},
                          "train": {"callbacks": {"backup": True, "checkpoint": True, "tensorboard": True},
                                    "calibration": "temperature"}})
    fold = fold_config(config, tmp_path / "fold-0", model="fast_cnn", epochs=3, batch_size=16,
                       params={"dense_units": 8})
    cb = fold.train.callbacks
    assert (cb.backup, cb.checkpoint, cb.tensorboard) == (False, False, False)
    assert fold.train.calibration == "none" and not fold.train.mode_gap.enabled
    assert (fold.model.name, fold.model.params, fold.train.epochs, fold.train.batch_size) == (
        "fast_cnn", {"dense_units": 8}, 3, 16)
    assert fold.output.run_dir == tmp_path / "fold-0" and fold.data.dataset == "digits"
