"""What a benchmark ran on: CPU model and kind, precision and thread counts, for every figure.

Every benchmark prints :func:`describe` of :func:`machine` beside its table and stores the
dict in its JSON output, so a figure always names the CPU kind (``avx512_bf16`` yes/no: the
bf16 machine vs the AVX2-only, float32 one), the precision each side computed in and the
thread counts it used. Standard library only (TensorFlow is asked for its thread settings
only when the benchmark has already imported it).

Example:
    >>> import sys; sys.path.insert(0, "bench")  # doctest: +SKIP
    >>> from _machine import describe, machine  # doctest: +SKIP
    >>> info = machine(precision={"seed": "float32", "tfpilot": "mixed_bfloat16"})  # doctest: +SKIP
    >>> print(describe(info))  # doctest: +SKIP
    Intel(R) Xeon(R) Processor, 2 cores, avx512_bf16: yes (amx_bf16: yes), load 2.1; precision seed float32, ...
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_info() -> dict[str, Any]:
    """CPU model name, core count and the feature flags a benchmark's figures depend on.

    Returns:
        ``{"cpu": str, "cpu_count": int, "avx512_bf16": bool, "amx_bf16": bool,
        "avx512f": bool, "avx2": bool, "kind": "bf16" | "avx512, no bf16" | "avx2" | "other"}``.
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("model name") and ":" in line:
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and ":" in line:
            flags = set(line.split(":", 1)[1].split())
        if flags and model:
            break
    has = {f: f in flags for f in ("avx512_bf16", "amx_bf16", "avx512f", "avx2")}
    if has["avx512_bf16"] or has["amx_bf16"]:
        kind = "bf16 (avx512_bf16)"
    elif has["avx512f"]:
        kind = "avx512, no bf16"
    elif has["avx2"]:
        kind = "avx2 only, no bf16"
    else:
        kind = "other"
    emulated = os.environ.get("TFPILOT_BENCH_EMULATED")
    if emulated:  # bench/emulate_avx2.sh: the flags above are masked, the CPU is not that kind
        kind = f"{kind} ({emulated})"
    return {"cpu": model, "cpu_count": os.cpu_count(), **has, "kind": kind, "emulated": emulated}


def tf_threads() -> dict[str, Any] | None:
    """TensorFlow's intra/inter-op thread settings (0 = TensorFlow's default: one per core),
    or None when this process has not imported TensorFlow."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return {"intra_op": intra, "inter_op": inter,
            "note": "0 = TensorFlow's default (one thread per core)" if 0 in (intra, inter) else ""}


def load_average() -> float | None:
    """The 1-minute load average (other jobs on a shared machine inflate absolute times)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine(precision: Any = None, threads: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Everything a figure needs to name: CPU, precision, threads, load, versions.

    Args:
        precision: the precision of the figures -- a policy name, or ``{side: policy}``.
        threads: thread counts per side or runtime (``{"tflite": 1, "onnx intra_op": 1}``);
            TensorFlow's own settings are added as ``"tensorflow"`` when it is imported.
        **extra: anything else to record (stored as given).
    """
    threads = dict(threads or {})
    tf = tf_threads()
    if tf is not None:
        threads.setdefault("tensorflow", tf)
    packages = {}
    for name in ("tensorflow", "keras", "onnxruntime", "ai_edge_litert", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            packages[name] = getattr(module, "__version__", None)
    return {**cpu_info(), "precision": precision, "threads": threads, "load_average_1m": load_average(),
            "python": platform.python_version(), "packages": packages, **extra}


def _threads_text(threads: dict[str, Any]) -> str:
    parts = []
    for name, value in threads.items():
        if isinstance(value, dict):
            value = "/".join(f"{k} {v}" for k, v in value.items() if k != "note") + (
                " (0 = default, one per core)" if value.get("note") else "")
        parts.append(f"{name} {value}")
    return ", ".join(parts) or "-"


def describe(info: dict[str, Any]) -> str:
    """One line for the top of a benchmark's output, from :func:`machine`'s dict."""
    bf16 = "yes" if info["avx512_bf16"] else "no"
    amx = "yes" if info["amx_bf16"] else "no"
    precision = info.get("precision")
    if isinstance(precision, dict):
        precision = ", ".join(f"{k} {v}" for k, v in precision.items())
    emulated = f" [{info['emulated']}]" if info.get("emulated") else ""
    return (f"{info['cpu']}{emulated}, {info['cpu_count']} cores, avx512_bf16: {bf16} (amx_bf16: {amx}), "
            f"1-min load {info['load_average_1m']}; precision: {precision or '-'}; "
            f"threads: {_threads_text(info['threads'])}")
