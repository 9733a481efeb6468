"""The memory plan's estimate for finished runs, from each run's resolved ``config.yaml`` (as
it ran: nothing is chosen or shrunk again), to set beside their measured peak resident memory
(docs/bench/defaults.md).

Usage::

    python bench/defaults_reestimate.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import sys

from tfpilot.config import load_config
from tfpilot.data.image_probe import probe_images_of
from tfpilot.training.memory_plan import plan_memory


def main() -> None:
    for run in sys.argv[1:]:
        cfg = load_config(f"{run}/config.yaml")
        _, plan = plan_memory(cfg, probe_images_of(cfg), size_chosen=False, batch_chosen=False,
                              budget=(float("inf"), "none"))
        print(f"{run}: {plan.total / 1e9:.2f} GB -- {plan.describe()}", flush=True)


if __name__ == "__main__":
    main()
