"""What the Open Inference Protocol says about models, shared by its REST and gRPC faces.

Triton's answers, as its server gives them (its source and its own QA tests are the reference):

* lookups worded, and coded, as Triton's (``model_repository_manager.cc``, ``model_lifecycle.cc``):
  ``Request for unknown model: 'm' is not found`` (INVALID_ARGUMENT, HTTP 400),
  ``... 'm' version 3 is not found`` and ``... 'm' has no available versions`` (NOT_FOUND, 404),
  ``... 'm' version 1 is not at ready state`` (UNAVAILABLE, 503);
* statistics (the statistics extension): per model version, requests that succeeded and
  failed with their time, and the time spent decoding (``compute_input``), in the model
  (``compute_infer``) and encoding (``compute_output``), counted over the protocol's REST and
  gRPC infer calls; ``execution_count`` is every model call of the version (batched calls
  count once, whatever protocol sent the requests);
* model configuration: the servable described as a Triton ``ModelConfig`` (``max_batch_size``
  and per-example ``dims`` when the default signature batches along dimension 0);
* the model repository: the models this server was configured with; ``unload`` stops serving
  one (it stays in the index as ``UNAVAILABLE``/``unloaded``), ``load`` serves it again or,
  when it is served, polls its base path now (new versions load, as Triton's reload does).
  As in Triton, load and unload are refused unless the server runs with
  ``--model-control-mode explicit``.

Example:
    >>> models = OipModels.of(core)  # doctest: +SKIP
    >>> models.resolve("simple", None).servable.version  # doctest: +SKIP
    2
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from tfpilot.serving.core import ServerCore
from tfpilot.serving.errors import BadRequest, FailedPrecondition, NotFound, Unavailable
from tfpilot.serving.servable import Servable
from tfpilot.serving.settings import ModelConfig
from tfpilot.serving.signatures import DEFAULT_SIGNATURE, Signature
from tfpilot.serving.versions import AVAILABLE, END, LOADING, UNLOADING, VersionRecord

#: The protocol extensions this server implements (Triton's names, in its server metadata).
EXTENSIONS = ("binary_tensor_data", "statistics", "model_configuration", "model_repository")
#: Triton's model states in the repository index, by TF Serving's version state.
INDEX_STATE = {AVAILABLE: "READY", LOADING: "LOADING", UNLOADING: "UNLOADING", END: "UNAVAILABLE"}
DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output",
             "cache_hit", "cache_miss")


@dataclass
class InferStats:
    """One model version's statistics (updated from the event loop and gRPC threads)."""

    counts: dict[str, list[int]] = field(default_factory=lambda: {k: [0, 0] for k in DURATIONS})
    inference_count: int = 0
    last_inference_ms: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def success(self, rows: int, input_ns: int, infer_ns: int, output_ns: int,
                total_ns: int) -> None:
        """Record a request that was answered."""
        phases = (("success", total_ns), ("compute_input", input_ns), ("compute_infer", infer_ns),
                  ("compute_output", output_ns))
        with self._lock:
            for key, ns in phases:
                self.counts[key][0] += 1
                self.counts[key][1] += ns
            self.inference_count += rows
            self.last_inference_ms = int(time.time() * 1000)

    def fail(self, total_ns: int) -> None:
        """Record a request that failed after its model was found."""
        with self._lock:
            self.counts["fail"][0] += 1
            self.counts["fail"][1] += total_ns
            self.last_inference_ms = int(time.time() * 1000)

    def as_json(self, servable: Servable) -> dict[str, Any]:
        """The statistics extension's ``$model_stat`` of this version."""
        with self._lock:
            durations = {k: {"count": c, "ns": ns} for k, (c, ns) in self.counts.items()}
            return {"name": servable.name, "version": str(servable.version),
                    "last_inference": self.last_inference_ms,
                    "inference_count": self.inference_count,
                    "execution_count": servable.batcher.calls,
                    "inference_stats": durations, "batch_stats": [], "memory_usage": []}


class InferTimer:
    """Times one infer call's phases and records them in its version's statistics.

    Example:
        >>> timer = InferTimer(stats)  # doctest: +SKIP
        >>> timer.decoded(); timer.inferred(); timer.done(rows=1)  # doctest: +SKIP
    """

    def __init__(self, stats: InferStats) -> None:
        self.stats = stats
        self.t0 = self.t1 = self.t2 = time.perf_counter_ns()

    def decoded(self) -> None:
        self.t1 = time.perf_counter_ns()

    def inferred(self) -> None:
        self.t2 = time.perf_counter_ns()

    def done(self, rows: int) -> None:
        t3 = time.perf_counter_ns()
        self.stats.success(rows, self.t1 - self.t0, self.t2 - self.t1, t3 - self.t2, t3 - self.t0)

    def failed(self) -> None:
        self.stats.fail(time.perf_counter_ns() - self.t0)


def default_signature(servable: Servable) -> Signature:
    return servable.signatures.get(DEFAULT_SIGNATURE) or next(iter(servable.signatures.values()))


def platform_of(servable: Servable) -> str:
    if servable.kind == "saved_model":
        return "tensorflow_savedmodel"
    return f"tfpilot_{getattr(servable, 'backend', '')}"


def _tensor_meta(sig: Signature, which: str) -> list[dict[str, Any]]:
    infos = sig.inputs if which == "inputs" else sig.outputs
    return [{"name": k, "datatype": v.dtype.kserve,
             "shape": [-1 if d is None else d for d in (v.shape or ())]}
            for k, v in infos.items()]


def model_metadata(servable: Servable, versions: list[int]) -> dict[str, Any]:
    """V2 model metadata: the default signature's tensors (``platform`` says what serves it)."""
    sig = default_signature(servable)
    return {"name": servable.name, "versions": [str(v) for v in versions],
            "platform": platform_of(servable), "inputs": _tensor_meta(sig, "inputs"),
            "outputs": _tensor_meta(sig, "outputs")}


def _triton_type(kserve: str) -> str:
    return "TYPE_STRING" if kserve == "BYTES" else f"TYPE_{kserve}"


def version_policy(config: ModelConfig) -> dict[str, Any]:
    """Triton's ``version_policy`` for TF Serving's ``model_version_policy``."""
    if config.policy == "all":
        return {"all": {}}
    if config.policy == "specific":
        return {"specific": {"versions": sorted(config.versions)}}
    return {"latest": {"num_versions": config.num_versions}}


def model_config(servable: Servable, config: ModelConfig) -> dict[str, Any]:
    """The servable as Triton's ``ModelConfig`` (JSON field names as Triton's HTTP answer uses).

    When the default signature batches along dimension 0, ``max_batch_size`` is the batcher's
    largest batch and ``dims`` leave out the batch dimension, as Triton describes batching models;
    otherwise ``max_batch_size`` is 0 and ``dims`` are the full shapes (-1: any size).
    """
    sig = default_signature(servable)
    rows_first = all(o.shape is not None and len(o.shape) >= 1 and o.shape[0] is None
                     for o in sig.outputs.values())
    batching = getattr(servable, "batching", True) and sig.batchable and rows_first
    skip = 1 if batching else 0

    def tensors(infos: Any) -> list[dict[str, Any]]:
        return [{"name": k, "data_type": _triton_type(v.dtype.kserve),
                 "dims": [-1 if d is None else int(d) for d in (v.shape or (-1,))[skip:]]}
                for k, v in infos.items()]

    out: dict[str, Any] = {
        "name": servable.name, "platform": platform_of(servable),
        "backend": "tensorflow" if servable.kind == "saved_model" else "tfpilot",
        "version_policy": version_policy(config),
        "max_batch_size": servable.options.max_batch if batching else 0,
        "input": tensors(sig.inputs), "output": tensors(sig.outputs),
    }
    if batching:
        delay_us = int(servable.options.timeout_ms * 1000)
        out["dynamic_batching"] = {"max_queue_delay_microseconds": delay_us}
    return out


def parse_model_version(version: str | None) -> int | None:
    """A request's version string ('' or None: the latest), or a 400."""
    if version in (None, ""):
        return None
    text = str(version)
    if not text.isdigit():
        raise BadRequest(f"failed to parse model version '{text}': a model version is a "
                         "non-negative integer")
    return int(text)


class OipModels:
    """The protocol's view of a :class:`ServerCore`: lookups, statistics, the repository.

    One per core (:meth:`of`), shared by the REST routes and the gRPC service.

    Args:
        core: the server's models.
    """

    def __init__(self, core: ServerCore) -> None:
        self.core = core
        self.unloaded: dict[str, ModelConfig] = {}
        self._stats: weakref.WeakKeyDictionary[Servable, InferStats] = weakref.WeakKeyDictionary()
        self._stats_lock = threading.Lock()

    @classmethod
    def of(cls, core: ServerCore) -> OipModels:
        """The core's instance (made on first use)."""
        found = getattr(core, "_oip_models", None)
        if found is None:
            found = cls(core)
            core._oip_models = found  # type: ignore[attr-defined]
        return found

    # -- lookups --------------------------------------------------------------------------------
    def manager(self, name: str) -> Any:
        manager = self.core.managers.get(name)
        if manager is None:
            if name in self.unloaded:
                raise NotFound(f"Request for unknown model: '{name}' has no available versions")
            raise BadRequest(f"Request for unknown model: '{name}' is not found")
        return manager

    def resolve(self, name: str, version: str | None) -> VersionRecord:
        """The version answering a request (the latest available when ``version`` is empty)."""
        manager = self.manager(name)
        wanted = parse_model_version(version)
        if wanted is None:
            available = manager.available()
            if not available:
                raise NotFound(f"Request for unknown model: '{name}' has no available versions")
            return manager.records[available[-1]]
        record = manager.records.get(wanted)
        if record is None:
            raise NotFound(f"Request for unknown model: '{name}' version {wanted} is not found")
        if record.state != AVAILABLE:
            raise Unavailable(f"Request for unknown model: '{name}' version {wanted} is not at "
                              "ready state")
        return record

    def is_ready(self, name: str, version: str | None) -> bool:
        try:
            self.resolve(name, version)
        except (BadRequest, NotFound, Unavailable):
            return False
        return True

    def metadata(self, name: str, version: str | None) -> dict[str, Any]:
        record = self.resolve(name, version)
        return model_metadata(record.servable, self.manager(name).available())

    def config(self, name: str, version: str | None) -> dict[str, Any]:
        record = self.resolve(name, version)
        return model_config(record.servable, self.manager(name).config)

    # -- statistics -----------------------------------------------------------------------------
    def stats(self, servable: Servable) -> InferStats:
        """The statistics of one loaded version."""
        found = self._stats.get(servable)
        if found is None:
            with self._stats_lock:
                found = self._stats.setdefault(servable, InferStats())
        return found

    def statistics(self, name: str | None, version: str | None) -> dict[str, Any]:
        """``{"model_stats": [...]}``: every available version of ``name`` (all models: None)."""
        if name in (None, ""):
            managers = [m for _, m in sorted(self.core.managers.items())]
            records = [m.records[v] for m in managers for v in m.available()]
        elif version in (None, ""):
            manager = self.manager(name)
            records = [manager.records[v] for v in manager.available()]
        else:
            records = [self.resolve(name, version)]
        out = []
        for record in records:
            servable = record.servable
            if servable is not None:
                out.append(self.stats(servable).as_json(servable))
        return {"model_stats": out}

    # -- repository -----------------------------------------------------------------------------
    def index(self, ready: bool = False) -> list[dict[str, Any]]:
        """The repository index: every configured model's versions with Triton's states."""
        rows: list[dict[str, Any]] = []
        names = sorted(set(self.core.managers) | set(self.unloaded))
        for name in names:
            manager = self.core.managers.get(name)
            if manager is None:
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": "unloaded"})
                continue
            if not manager.records:
                rows.append({"name": name, "state": "UNAVAILABLE",
                             "reason": manager.source_error or "no versions on disk"})
            for version, record in sorted(manager.records.items()):
                state = INDEX_STATE.get(record.state, "LOADING")  # START: about to load
                reason = record.error_message or ("unloaded" if record.state == END else "")
                rows.append({"name": name, "version": str(version), "state": state,
                             "reason": reason})
        if ready:
            rows = [r for r in rows if r["state"] == "READY"]
        return rows

    def _configs(self) -> list[ModelConfig]:
        return [m.config for m in self.core.managers.values()]

    def _check_control(self) -> None:
        if self.core.settings.model_control_mode != "explicit":
            # Triton's words; its code is UNAVAILABLE, but this is no "retry later": 400
            raise FailedPrecondition("explicit model load / unload is not allowed if polling is "
                                     "enabled: start tfpilot serve with "
                                     "--model-control-mode explicit")

    async def load(self, name: str, timeout_s: float = 300.0) -> None:
        """Serve ``name`` again after an unload, or poll its base path now when it is served."""
        self._check_control()
        manager = self.core.managers.get(name)
        if manager is not None:
            polls = manager.polls
            manager.poll_soon()
            deadline = asyncio.get_running_loop().time() + timeout_s
            while manager.polls == polls and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
        elif name in self.unloaded:
            config = self.unloaded.pop(name)
            await self.core.apply([*self._configs(), config])
            await self.core.wait_first_polls(timeout_s)
            manager = self.core.managers[name]
        else:
            known = ", ".join(sorted(set(self.core.managers) | set(self.unloaded))) or "(none)"
            raise BadRequest(f"failed to load '{name}', failed to poll from model repository: "
                             f"no model '{name}' is configured (models: {known})")
        if not manager.ready:
            failed = [r for r in manager.records.values() if r.error_message]
            reason = (failed[-1].error_message if failed
                      else manager.source_error or "no version loaded")
            raise BadRequest(f"failed to load '{name}', failed to load all versions: {reason}")

    async def unload(self, name: str) -> None:
        """Stop serving ``name`` (after the requests holding it); it stays in the index."""
        self._check_control()
        if name in self.unloaded:
            return
        manager = self.manager(name)
        self.unloaded[name] = manager.config
        await self.core.apply([c for c in self._configs() if c.name != name])
