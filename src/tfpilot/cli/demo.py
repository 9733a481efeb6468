"""``tfpilot demo``: the README's first command -- train and evaluate MNIST end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import headline, metrics_table, print_table, say, setup_logging, user_errors
from tfpilot.runs import REPORT

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def demo_config(run_dir: Optional[Path]) -> tuple[object, str]:
    """``configs/mnist_fast.yaml`` when MNIST can be found, else a digits run that needs no files."""
    from tfpilot.config import load_config
    from tfpilot.data.paths import find_data_file

    preset = CONFIGS / "mnist_fast.yaml"
    if find_data_file(["mnist.npz"]) is not None or _keras_download_mnist():
        source: object = preset if preset.is_file() else {"data": {"dataset": "mnist"}, "model": {"name": "fast_cnn"}}
        return load_config(source, run_dir=run_dir), "mnist"
    cfg = {"data": {"dataset": "digits"}, "model": {"name": "fast_cnn", "params": {"padding": "same"}},
           "train": {"epochs": 15, "batch_size": 64}}
    return load_config(cfg, run_dir=run_dir), "digits (MNIST was not found)"


def _keras_download_mnist() -> bool:
    """Keras' own MNIST download (into ~/.keras/datasets, where tfpilot then finds it)."""
    import keras

    try:
        keras.datasets.mnist.load_data()
        return True
    except Exception:  # offline, or the host is unreachable
        return False


@user_errors
def demo_command(
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", "-o")] = None,
) -> None:
    """Train a fast CNN on MNIST (digits offline), evaluate it, write its report, print the
    run directory and the next commands to try."""
    from tfpilot.api import train

    setup_logging()
    cfg, what = demo_config(run_dir)
    say("tfpilot demo: training ", (cfg.model.name, "bold"), " on ", (what, "bold"))
    run = train(cfg, report=True)
    test = run.metrics["test"]
    print_table(metrics_table("test", headline(test)))
    say("run directory: ", (str(run.path), "bold"))
    say("test accuracy: ", (f"{test['accuracy']:.4f}", "bold"))
    if run.file(REPORT).is_file():
        say("report: ", (str(run.file(REPORT)), "bold"), " (open it in a browser)")
    say("next, try:")
    for command in (f"tfpilot evaluate {run.path}", f"tfpilot predict {run.path} IMAGE.png",
                    f"tfpilot export {run.path} --format all", f"tfpilot serve {run.path}"):
        say(f"  {command}")
