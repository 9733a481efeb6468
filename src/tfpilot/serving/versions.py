"""Model versions: polling a base path, loading, warming up, switching and unloading without a failed request.

A :class:`ModelManager` owns one model name. Every ``poll_s`` seconds it lists the numbered
folders of its base path (``DIR/1``, ``DIR/2``, ...) and applies the version policy
(``latest`` N, ``all``, ``specific``) to them:

1. each wanted version that is not loaded is loaded in a worker thread, started (its
   batcher), and warmed up (``assets.extra/tf_serving_warmup_requests``, through the real
   request path) -- only then does it become ``AVAILABLE`` and take traffic;
2. a version that fails to load is ``END`` with TF Serving's error code and message in its
   status, and is left out of the policy, so the versions already serving keep serving
   (it is retried when its folder changes);
3. only then are the versions no longer wanted unloaded: taken out of routing at once
   (``UNLOADING``), then stopped once the requests that hold them have finished.

A request resolves its version and takes a *lease* on it in one step on the event loop
(:meth:`ModelManager.resolve` then :meth:`VersionRecord.lease`), so a version is never stopped
under a request that has it: the switch fails no request.

Example:
    >>> manager = ModelManager(config, make_servable, ManagerOptions(poll_s=1.0))  # doctest: +SKIP
    >>> await manager.poll()  # doctest: +SKIP
    >>> record = manager.resolve()  # the latest AVAILABLE version  # doctest: +SKIP
    >>> with record.lease():  # doctest: +SKIP
    ...     outputs = await record.servable.run("serving_default", inputs)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfpilot.registry import did_you_mean
from tfpilot.serving.errors import BadRequest, NotFound, ServingError, Unavailable
from tfpilot.serving.servable import Servable
from tfpilot.serving.settings import ModelConfig
from tfpilot.serving.signatures import ModelLoadError
from tfpilot.serving.warmup import read_warmup_logs, replay, warmup_file

log = logging.getLogger("tfpilot.serving")

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"
#: Unloaded versions whose END state is still reported, per model.
KEEP_ENDED = 16


def error_code(exc: BaseException) -> str:
    """TF Serving's canonical error code for a load or warm-up failure."""
    if isinstance(exc, ServingError):
        return exc.code
    from tfpilot.serving.saved_model_servable import tf_error_code

    return tf_error_code(exc)


def error_text(exc: BaseException) -> str:
    """The message of a load failure (TensorFlow's own message for its errors)."""
    if isinstance(exc, ServingError):
        return str(exc.detail)
    if isinstance(exc, ModelLoadError):
        return str(exc)
    message = getattr(exc, "message", None)
    if isinstance(message, str):  # a TensorFlow error: its message, without the graph trace
        from tfpilot.serving.saved_model_servable import tf_message

        return f"{type(exc).__name__}: {tf_message(message)}"
    return f"{type(exc).__name__}: {exc}"


def folder_fingerprint(path: Path) -> tuple[Any, ...]:
    """What changes when a version folder's files change (its entries, ``variables/`` and assets)."""
    out: list[Any] = []
    for folder in (path, path / "variables", path / "assets.extra"):
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue
            out.append((str(entry.relative_to(path)), st.st_mtime_ns, st.st_size))
    return tuple(out)


@dataclass
class VersionRecord:
    """One version of a model: its state (TF Serving's), its error, and the servable when loaded."""

    version: int
    path: Path
    state: str = START
    error_code: str = "OK"
    error_message: str = ""
    servable: Servable | None = None
    fingerprint: tuple[Any, ...] | None = None
    leases: int = 0
    since: float = field(default_factory=time.monotonic)
    # leases are taken on the event loop and in the gRPC server's threads: state and count change under it
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Servable]:
        """Hold the version for one request: it is not stopped until every lease is returned."""
        if not self.acquire():
            raise self.refusal()
        try:
            yield self.servable
        finally:
            self.release()

    def acquire(self) -> bool:
        """Take a lease if the version serves (from any thread); False if it does not."""
        with self._lock:
            if self.servable is None or self.state != AVAILABLE:
                return False
            self.leases += 1
            return True

    def refusal(self) -> Unavailable:
        """The error of a lease this version refuses (it does not serve now)."""
        return Unavailable(f"version {self.version} is {self.state.lower()}; retry")

    def release(self) -> None:
        """Return a lease taken with :meth:`acquire`."""
        with self._lock:
            self.leases -= 1

    def set_state(self, state: str, code: str = "OK", message: str = "") -> None:
        with self._lock:
            self.state, self.error_code, self.error_message = state, code, message
            self.since = time.monotonic()


@dataclass(frozen=True)
class ManagerOptions:
    """How a manager runs.

    Args:
        poll_s: seconds between base path polls (0: poll once).
        warmup: replay the warm-up file before a version serves.
        drain_s: longest an unloading version waits for the requests holding it.
    """

    poll_s: float = 1.0
    warmup: bool = True
    drain_s: float = 30.0


ServableFactory = Callable[[ModelConfig, int, Path], Servable]


class ModelManager:
    """The versions of one model.

    Args:
        config: the model's name, base path, version policy and labels.
        factory: builds the (unloaded) servable of one version folder.
        options: polling and warm-up.
        load_lock: taken around each load, so versions load one at a time server-wide.
        on_change: called (with this manager) after a version became available or was unloaded.
    """

    def __init__(self, config: ModelConfig, factory: ServableFactory, options: ManagerOptions,
                 load_lock: asyncio.Lock | None = None,
                 on_change: Callable[[ModelManager, str], None] | None = None) -> None:
        self.config = config
        self.name = config.name
        self.factory = factory
        self.options = options
        self.records: dict[int, VersionRecord] = {}
        self.polls = 0
        self.source_error = ""
        self._lock = load_lock or asyncio.Lock()
        self._on_change = on_change
        self._task: asyncio.Task | None = None
        self._poll_now: asyncio.Event | None = None
        self._latest: VersionRecord | None = None  # what a request without a version gets

    # -- the version source ---------------------------------------------------------------------
    def versions_on_disk(self) -> dict[int, Path]:
        """``{version: folder}`` of the base path (a single artifact: ``{1: path}``)."""
        if self.config.single:
            return {1: self.config.base_path}
        try:
            entries = list(self.config.base_path.iterdir())
        except FileNotFoundError:
            self.source_error = f"the base path {self.config.base_path} does not exist"
            return {}
        except OSError as exc:
            self.source_error = f"cannot list the base path {self.config.base_path}: {exc.strerror}"
            return {}
        self.source_error = ""
        return {int(p.name): p for p in entries if p.name.isdigit() and p.is_dir()}

    def wanted(self, on_disk: dict[int, Path]) -> set[int]:
        """The versions the policy serves, among those on disk that have not failed."""
        usable = sorted((v for v in on_disk if not self._failed(v)), reverse=True)
        if self.config.policy == "latest":
            return set(usable[: self.config.num_versions])
        if self.config.policy == "all":
            return set(usable)
        return set(usable) & set(self.config.versions)

    def _failed(self, version: int) -> bool:
        record = self.records.get(version)
        return record is not None and record.state == END and record.error_code != "OK"

    # -- polling --------------------------------------------------------------------------------
    async def poll(self) -> None:
        """One pass: load what the policy wants, then unload what it no longer does."""
        on_disk = self.versions_on_disk()
        for version, record in list(self.records.items()):
            if record.state == END and record.error_code != "OK":
                if version not in on_disk:
                    del self.records[version]
                elif folder_fingerprint(on_disk[version]) != record.fingerprint:
                    log.info("model %s version %d changed on disk: loading it again", self.name, version)
                    del self.records[version]
        while True:  # a failed version leaves the policy, which may then want an older one
            todo = [v for v in sorted(self.wanted(on_disk), reverse=True)
                    if v not in self.records or self.records[v].state in (START, END)]
            if not todo:
                break
            await self._load(todo[0], on_disk[todo[0]])
        keep = self.wanted(on_disk)
        for version, record in sorted(self.records.items()):
            if record.state == AVAILABLE and version not in keep:
                await self._unload(record)
        self.polls += 1

    async def _load(self, version: int, path: Path) -> None:
        record = VersionRecord(version, path, state=LOADING)
        self.records[version] = record
        servable = self.factory(self.config, version, path)
        started = False
        async with self._lock:
            log.info("model %s: loading version %d from %s", self.name, version, path)
            try:
                await asyncio.to_thread(servable.load)
                await servable.start()
                started = True
                warm = warmup_file(path) if self.options.warmup else None
                if warm is not None:
                    logs = await asyncio.to_thread(read_warmup_logs, warm)
                    sent = await replay(servable, logs)
                    log.info("model %s version %d: warmed up with %d requests", self.name, version, sent)
            except Exception as exc:  # noqa: BLE001 -- reported in the version's status, the others keep serving
                if started:
                    await servable.stop()
                servable.unload()
                record.fingerprint = folder_fingerprint(path)
                record.set_state(END, error_code(exc), error_text(exc))
                log.error("model %s version %d failed to load: %s", self.name, version, record.error_message)
                return
        record.servable = servable
        record.set_state(AVAILABLE)
        self._update_latest()
        log.info("model %s version %d is available", self.name, version)
        if self._on_change is not None:
            self._on_change(self, "loaded")

    async def _unload(self, record: VersionRecord) -> None:
        record.set_state(UNLOADING)  # out of routing: no new lease from here on
        self._update_latest()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.drain_s
        while record.leases > 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if record.leases:
            log.warning("model %s version %d: %d requests still hold it after %.0fs; unloading anyway",
                        self.name, record.version, record.leases, self.options.drain_s)
        servable, record.servable = record.servable, None
        if servable is not None:
            await servable.stop()
            servable.unload()
        record.set_state(END)
        ended = sorted((r.since, v) for v, r in self.records.items() if r.state == END and r.error_code == "OK")
        for _, version in ended[:-KEEP_ENDED]:
            del self.records[version]
        log.info("model %s version %d unloaded", self.name, record.version)
        if self._on_change is not None:
            self._on_change(self, "unloaded")

    async def _run(self) -> None:
        assert self._poll_now is not None
        while True:
            try:
                await self.poll()
            except OSError as exc:  # a transient file-system problem: keep serving, poll again
                log.error("model %s: polling %s failed: %s", self.name, self.config.base_path, exc)
            if self.config.single or self.options.poll_s <= 0:
                await self._poll_now.wait()
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._poll_now.wait(), self.options.poll_s)
            self._poll_now.clear()

    def start(self) -> None:
        """Start polling (the first poll loads the initial versions) in a background task.

        The versions the first poll will load are listed at once, in state START, so a status
        request answered before the first poll runs already names them.
        """
        if self._task is None:
            on_disk = self.versions_on_disk()
            for version in self.wanted(on_disk):
                self.records.setdefault(version, VersionRecord(version, on_disk[version]))
            self._poll_now = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"versions-{self.name}")

    def poll_soon(self) -> None:
        """Poll now instead of at the next interval (e.g. after a config change)."""
        if self._poll_now is not None:
            self._poll_now.set()

    async def stop(self) -> None:
        """Stop polling and unload every version (waiting for the requests that hold them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for record in list(self.records.values()):
            if record.state == AVAILABLE:
                await self._unload(record)

    def reconfigure(self, config: ModelConfig) -> None:
        """A new policy or labels (same base path); applied at once by the next poll."""
        self.config = config
        self.poll_soon()

    # -- routing --------------------------------------------------------------------------------
    def _update_latest(self) -> None:
        available = self.available()
        self._latest = self.records[available[-1]] if available else None

    def available(self) -> list[int]:
        return sorted(v for v, r in self.records.items() if r.state == AVAILABLE)

    @property
    def ready(self) -> bool:
        return bool(self.available())

    @property
    def loading(self) -> bool:
        return self.polls == 0 or any(r.state in (START, LOADING) for r in self.records.values())

    def resolve(self, version: int | None = None, label: str | None = None) -> VersionRecord:
        """The record answering a request for ``version`` or ``label`` (default: the latest available)."""
        latest = self._latest
        if version is None and label is None and latest is not None and latest.state == AVAILABLE:
            return latest
        if version is not None and label is not None:
            raise BadRequest(f"Both model version ({version}) and model version label ({label}) cannot be supplied.")
        if label is not None:
            if label not in self.config.labels:
                known = sorted(self.config.labels)
                raise BadRequest(f"Unrecognized servable version label: {label}.{did_you_mean(label, known)} "
                                 f"Labels of model {self.name!r}: {', '.join(known) or '(none)'}")
            version = self.config.labels[label]
        if version is not None:
            record = self.records.get(version)
            if record is not None and record.state == AVAILABLE:
                return record
            raise NotFound(f"Servable not found for request: Specific({self.name}, {version}); "
                           f"{self._versions_hint(record)}")
        available = self.available()
        if available:
            return self.records[available[-1]]
        self.raise_unavailable()
        raise AssertionError("unreachable")

    def raise_unavailable(self) -> None:
        """The error for a model with no available version: still loading (503), or why not."""
        failed = [r for r in self.records.values() if r.state == END and r.error_code != "OK"]
        if self.loading:
            raise Unavailable(f"model {self.name!r} is still loading; retry when /readyz answers 200", 2)
        if failed:
            raise Unavailable(f"model {self.name!r} is not available: version {failed[-1].version} failed to "
                              f"load: {failed[-1].error_message}", 60)
        where = self.source_error or f"no version folders found under {self.config.base_path}"
        raise NotFound(f"Servable not found for request: Latest({self.name}): {where}")

    def _versions_hint(self, record: VersionRecord | None) -> str:
        available = self.available()
        state = "" if record is None else f"version {record.version} is {record.state}"
        if record is not None and record.error_message:
            state += f" ({record.error_message})"
        served = f"model {self.name!r} serves version(s) {', '.join(map(str, available)) or 'none'}"
        return f"{state}; {served}" if state else served

    def version_of(self, version: int | None, label: str | None) -> int | None:
        """The version a status request names (a label resolved), without requiring it available."""
        if label is not None:
            if label not in self.config.labels:
                raise BadRequest(f"Unrecognized servable version label: {label}")
            return self.config.labels[label]
        return version

    # -- status ---------------------------------------------------------------------------------
    def status_proto(self, version: int | None = None, label: str | None = None) -> Any:
        """TF Serving's ``GetModelStatusResponse`` (versions newest first, as TF Serving lists them)."""
        from tensorflow_serving.apis import get_model_status_pb2

        wanted = self.version_of(version, label)
        response = get_model_status_pb2.GetModelStatusResponse()
        records = sorted(self.records.items(), reverse=True)
        if wanted is not None:
            records = [(v, r) for v, r in records if v == wanted]
            if not records:
                raise NotFound(f"Could not find version {wanted} of model {self.name}")
        if not records:
            raise NotFound(f"Could not find any versions of model {self.name}"
                           + (f": {self.source_error}" if self.source_error else ""))
        from tensorflow.core.protobuf import error_codes_pb2

        for v, record in records:
            status = response.model_version_status.add(
                version=v, state=get_model_status_pb2.ModelVersionStatus.State.Value(record.state))
            status.status.error_code = error_codes_pb2.Code.Value(record.error_code)
            status.status.error_message = record.error_message
        return response
