"""What a run ran on: versions, hardware, precision, seed, git commit (saved as env.json)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from tfpilot.plugins import load_entry_points
from tfpilot.training.precision import BF16_CPU_FLAGS, cpu_flags


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(cwd: str | Path | None = None) -> dict[str, Any] | None:
    """The current git commit (and whether the tree is dirty), or None outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=5)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def hardware() -> dict[str, Any]:
    import tensorflow as tf

    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        gpus.append({"name": details.get("device_name", gpu.name),
                     "compute_capability": details.get("compute_capability")})
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_bf16": sorted(cpu_flags() & BF16_CPU_FLAGS),
        "gpus": gpus,
        "platform": platform.platform(),
    }


def environment(precision: str, seed: int) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "packages": {p: _version(p) for p in ("tfpilot", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn")},
        "hardware": hardware(),
        "precision": precision,
        "seed": seed,
        "git": git_commit(),
        "command": sys.argv,
        "plugins": list(load_entry_points()),  # the installed tfpilot.plugins entry points it loaded
    }
