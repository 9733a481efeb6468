"""The server's models: one :class:`~tfpilot.serving.versions.ModelManager` per name, and request lookups.

:class:`ServerCore` builds the managers from the settings (tfpilot paths, ``--model_name`` /
``--model_base_path``, or ``--model_config_file``), applies new configurations (the config
file re-read every ``--model_config_file_poll_wait_seconds``, or gRPC's
``HandleReloadConfigRequest``): models added are loaded, models removed are unloaded, the
others keep serving. Every protocol finds its model version through :meth:`ServerCore.resolve`.

What each version folder is served as:

* a SavedModel (``saved_model.pb``) in a base path, or one given alone that ``tfpilot
  export`` did not write: :class:`~tfpilot.serving.saved_model_servable.SavedModelServable`
  (every signature, TF Serving's answers);
* anything else -- a tfpilot run directory, an exported ``.keras``/``.tflite``/``.onnx``
  artifact, or a tfpilot SavedModel given alone (``tfpilot serve RUN/export/saved_model``):
  :class:`~tfpilot.serving.servable.PredictorServable` (tfpilot's answers).

Example:
    >>> core = ServerCore(settings, ServingMetrics())  # doctest: +SKIP
    >>> await core.apply(initial_configs(settings))  # doctest: +SKIP
    >>> record = core.resolve("mnist")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tfpilot.registry import did_you_mean
from tfpilot.serving.errors import NotFound
from tfpilot.serving.metrics import ServingMetrics
from tfpilot.serving.model_config import ConfigError, read_model_config_file
from tfpilot.serving.servable import PredictorServable, Servable
from tfpilot.serving.settings import ModelConfig, ServeSettings
from tfpilot.serving.versions import AVAILABLE, END, LOADING, ManagerOptions, ModelManager, ServableFactory

log = logging.getLogger("tfpilot.serving")


class ModelsUnavailable(RuntimeError):
    """The initial models did not become available (TF Serving then exits non-zero)."""


def is_saved_model_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file())


def has_tfpilot_bundle(path: Path) -> bool:
    return (path / "assets" / "bundle.json").is_file() or (path / "bundle.json").is_file()


def is_base_path(path: Path) -> bool:
    """Whether ``path`` is a TF Serving base path: numbered version folders, and no model of its own."""
    if not path.is_dir() or is_saved_model_dir(path) or (path / "labels.json").is_file():
        return False
    return any(p.name.isdigit() and p.is_dir() for p in path.iterdir())


def servable_factory(settings: ServeSettings, metrics: ServingMetrics | None) -> ServableFactory:
    """Builds each version's servable (see the module docstring for which kind)."""
    from tfpilot.serving.saved_model_servable import SavedModelServable

    options = settings.batch_options()

    def make(config: ModelConfig, version: int, path: Path) -> Servable:
        generic = is_saved_model_dir(path) and (
            not config.single or (config.backend is None and not has_tfpilot_bundle(path)))
        if generic:
            return SavedModelServable(config.name, version, path, options, metrics)
        return PredictorServable(config.name, version, path, options, metrics, backend=config.backend)

    return make


def initial_configs(settings: ServeSettings) -> list[ModelConfig]:
    """The models to serve at start: positional paths, ``--model_name`` ones, or the config file's."""
    if settings.model_config_file is not None:
        return read_model_config_file(settings.model_config_file)
    out = []
    for source in settings.models:
        if source.backend is None and is_base_path(source.path):
            out.append(ModelConfig(name=source.name, base_path=source.path))
        else:
            out.append(ModelConfig(name=source.name, base_path=source.path, single=True, backend=source.backend))
    return out + list(settings.model_configs)


class ServerCore:
    """Every served model, by name.

    Args:
        settings: batching, polling and warm-up settings.
        metrics: where readiness is recorded.
        factory: builds version servables (default: :func:`servable_factory`).
    """

    def __init__(self, settings: ServeSettings, metrics: ServingMetrics | None = None,
                 factory: ServableFactory | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.factory = factory or servable_factory(settings, metrics)
        self.options = ManagerOptions(poll_s=settings.file_system_poll_wait_seconds,
                                      warmup=settings.enable_model_warmup, drain_s=float(settings.graceful_timeout_s))
        self.managers: dict[str, ModelManager] = {}
        self._load_lock = asyncio.Lock()

    # -- configuration --------------------------------------------------------------------------
    async def apply(self, configs: Sequence[ModelConfig]) -> None:
        """Serve exactly ``configs``: add and load new models, unload removed ones, update the rest."""
        wanted = {c.name: c for c in configs}
        retired = []
        for name in [n for n in self.managers if n not in wanted]:
            retired.append(self.managers.pop(name))
            log.info("model %s: removed from the configuration; unloading it", name)
        for name, config in wanted.items():
            manager = self.managers.get(name)
            same_source = manager is not None and (manager.config.base_path, manager.config.single,
                                                   manager.config.backend) == (config.base_path, config.single,
                                                                               config.backend)
            if manager is not None and same_source:
                if manager.config != config:
                    log.info("model %s: new version policy or labels", name)
                    manager.reconfigure(config)
                continue
            if manager is not None:
                retired.append(manager)
            manager = ModelManager(config, self.factory, self.options, self._load_lock, self._changed)
            self.managers[name] = manager
            if self.metrics is not None:
                self.metrics.ready.labels(name).set(0)
            manager.start()
        for manager in retired:
            await manager.stop()
            if self.metrics is not None and manager.name not in self.managers:
                self.metrics.ready.labels(manager.name).set(0)

    def _changed(self, manager: ModelManager, what: str) -> None:
        if self.metrics is not None and self.managers.get(manager.name) is manager:
            self.metrics.ready.labels(manager.name).set(1 if manager.ready else 0)
        if what == "unloaded":
            # Free the old version's reference cycles now. Only the models' objects are walked:
            # the libraries' (hundreds of thousands) were frozen before any model loaded.
            t0 = time.perf_counter()
            found = gc.collect()
            log.info("model %s: %d objects collected after the unload in %.0f ms", manager.name, found,
                     1000 * (time.perf_counter() - t0))

    async def wait_first_polls(self, timeout_s: float | None = None) -> bool:
        """Wait until every model has had its first poll (its first versions loaded or failed)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        while any(m.polls == 0 for m in self.managers.values()):
            if deadline is not None and loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def freeze_libraries(self) -> int:
        """Freeze the objects alive now -- TensorFlow, Keras, the web stack: hundreds of thousands --
        out of the garbage collector, whose full collections would otherwise walk them all and stall
        every request for a few hundred ms. Called before any model loads, so the models' own objects
        (some ten thousand each) stay collectable: an unloaded version is freed by a collection that
        walks only those. Returns the number frozen (0 when ``freeze_gc`` is off)."""
        if not self.settings.freeze_gc:
            return 0
        gc.collect()
        gc.freeze()
        return gc.get_freeze_count()

    async def wait_available(self, names: Sequence[str] | None = None) -> str:
        """Wait as TF Serving's ``ServerCore::WaitUntilModelsAvailable`` does; '' once each model has a
        version AVAILABLE, else TF Serving's message naming the versions that failed to load.

        A model whose base path holds no version yet is waited for (with TF Serving's log line),
        unless another model failed.

        Args:
            names: the models to wait for (default: all).
        """
        names = list(self.managers if names is None else names)
        told: set[str] = set()
        while True:
            pending, failed = False, []
            for name in names:
                manager = self.managers.get(name)
                if manager is None or manager.ready:
                    continue
                errors = [r for r in manager.records.values() if r.state == END and r.error_code != "OK"]
                if manager.loading:
                    pending = True
                elif errors:
                    failed.append((name, errors[-1]))
                else:
                    pending = True
                    if name not in told:
                        told.add(name)
                        log.warning("No versions of servable %s found under base path %s. Did you forget to name "
                                    "your leaf directory as a number (eg. '/1/')?%s", name, manager.config.base_path,
                                    f" ({manager.source_error})" if manager.source_error else "")
            if failed:
                parts = "".join(f"{{{{name: {name} version: {r.version}}} due to error: {r.error_code}: "
                                f"{r.error_message}}}, " for name, r in failed)
                return f"{len(failed)} model(s) did not become available: {{{parts}}}"
            if not pending:
                return ""
            await asyncio.sleep(0.05)

    async def wait_initial_loads(self) -> None:
        """Return once every model has had its first poll."""
        await self.wait_first_polls()
        if self.ready:
            log.info("ready: %s", ", ".join(self.managers))

    async def stop(self) -> None:
        """Unload every model (after the requests holding them have finished)."""
        for manager in list(self.managers.values()):
            await manager.stop()

    # -- lookups --------------------------------------------------------------------------------
    def manager(self, name: str) -> ModelManager:
        """The model called ``name``, or a 404 that says which models exist."""
        manager = self.managers.get(name)
        if manager is None:
            known = sorted(self.managers)
            raise NotFound(f"Servable not found for request: Latest({name}).{did_you_mean(name, known)} "
                           f"Models served here: {', '.join(known) or '(none)'}")
        return manager

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Any:
        """The :class:`~tfpilot.serving.versions.VersionRecord` answering a request."""
        return self.manager(name).resolve(version, label)

    @contextlib.contextmanager
    def lease(self, name: str, version: int | None = None, label: str | None = None) -> Iterator[Servable]:
        """Resolve and hold the servable answering a request, from any thread.

        A thread can resolve a version the event loop then starts to unload (a version switch):
        its lease is refused, and the request resolves again, to the version that replaced it.
        """
        for _ in range(3):
            record = self.resolve(name, version, label)
            if record.acquire():
                break
        else:
            raise record.refusal()
        try:
            yield record.servable
        finally:
            record.release()

    @property
    def ready(self) -> bool:
        return bool(self.managers) and all(m.ready for m in self.managers.values())

    def state(self, name: str) -> tuple[str, str]:
        """``(state, error)`` of a model as a whole: AVAILABLE, LOADING or END (with the last error)."""
        manager = self.managers[name]
        if manager.ready:
            return AVAILABLE, ""
        failed = [r for r in manager.records.values() if r.state == END and r.error_code != "OK"]
        if manager.loading:
            return LOADING, ""
        if failed:
            return END, failed[-1].error_message
        return END, manager.source_error or f"no version folders found under {manager.config.base_path}"

    def servables(self) -> dict[str, Servable | None]:
        """The latest available servable of each model (None while it has none)."""
        out: dict[str, Servable | None] = {}
        for name, manager in self.managers.items():
            available = manager.available()
            out[name] = manager.records[available[-1]].servable if available else None
        return out


async def watch_config_file(core: ServerCore, path: Path, poll_s: float, first_text: str | None = None) -> None:
    """Re-read ``path`` every ``poll_s`` seconds and apply it when it changed (a bad file is logged, not applied)."""
    last = first_text
    while True:
        await asyncio.sleep(poll_s)
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except OSError as exc:
            log.error("cannot re-read --model_config_file %s: %s", path, exc.strerror)
            continue
        if text == last:
            continue
        last = text
        from tfpilot.serving.model_config import parse_model_server_config

        try:
            configs = parse_model_server_config(text, str(path))
        except ConfigError as exc:
            log.error("not applying the changed model config: %s", exc)
            continue
        log.info("model config %s changed: serving %s", path, ", ".join(c.name for c in configs) or "nothing")
        await core.apply(configs)


def config_watcher(core: ServerCore, settings: ServeSettings) -> asyncio.Task | None:
    """The background task that re-reads ``--model_config_file`` (None when it is read once)."""
    path = settings.model_config_file
    if path is None or settings.model_config_file_poll_wait_seconds <= 0:
        return None
    try:
        first: str | None = path.read_text(encoding="utf-8")
    except OSError:
        first = None
    return asyncio.get_running_loop().create_task(
        watch_config_file(core, path, settings.model_config_file_poll_wait_seconds, first), name="model-config")
