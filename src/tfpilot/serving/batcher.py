"""Dynamic micro-batching: concurrent requests share one model call.

Requests put their (already decoded) instances on a queue. One collector task per model
takes the first waiting request, adds every other queued one with the same ``key`` (the
same signature and instance shape), and -- while more requests have arrived and are still
being decoded -- waits up to ``timeout_ms`` for them, until ``max_batch`` instances are
gathered. The model call runs in a worker thread, never on the event loop; while it runs,
the next requests queue up and form the next batch. An idle server therefore never waits:
a lone request goes straight to the model.

Requests handled in threads of their own (the gRPC server's) call :meth:`MicroBatcher.call`:
a lone one -- no other such thread waiting, no call running or forming, nothing queued -- runs
the model right there, in its own thread (no hand-off to the event loop and a worker thread
and back); otherwise it joins the queue like any other request and shares the next call.

A batch is one array (N, ...) or a dict of named arrays that all have N rows; the outputs
are split back the same way. A model whose outputs do not follow the batch (their first
dimension is not N) still works: such a batch fails to split and its requests are retried
one by one, each getting its own outputs whole.

Example:
    >>> import asyncio, numpy as np
    >>> from tfpilot.serving.batcher import MicroBatcher
    >>> async def main():
    ...     batcher = MicroBatcher(lambda x: x * 2, max_batch=8)
    ...     await batcher.start()
    ...     out = await asyncio.gather(*(batcher.submit(np.full((1, 2), i)) for i in range(3)))
    ...     await batcher.stop()
    ...     return [o.tolist() for o in out]
    >>> asyncio.run(main())
    [[[0, 0]], [[2, 2]], [[4, 4]]]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("tfpilot.serving")


class QueueFull(RuntimeError):
    """More instances are waiting than the batcher accepts."""


class BatchMismatch(ValueError):
    """The model's outputs do not have one row per instance, so a shared call cannot be split."""


def batch_size(batch: Any) -> int:
    """N: the rows of an array, or of every array in a dict of named arrays (a scalar counts as one)."""
    if isinstance(batch, dict):
        if not batch:
            return 0
        batch = next(iter(batch.values()))
    return len(batch) if np.ndim(batch) else 1


def _concat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def _rows(out: Any, start: int, stop: int, total: int) -> Any:
    """Rows start:stop of every output, which must all have ``total`` rows."""
    def cut(x: Any, name: str) -> Any:
        if np.ndim(x) == 0 or len(x) != total:
            raise BatchMismatch(f"output {name} has shape {list(np.shape(x))}, not {total} rows")
        return x[start:stop]

    if isinstance(out, dict):
        return {k: cut(v, repr(k)) for k, v in out.items()}
    return cut(out, "0")


def _slice_batch(batch: Any, start: int, stop: int) -> Any:
    if isinstance(batch, dict):
        return {k: v[start:stop] for k, v in batch.items()}
    return batch[start:stop]


@dataclass
class _Job:
    batch: Any  # np.ndarray, or dict[str, np.ndarray], of n instances
    future: asyncio.Future | concurrent.futures.Future  # the latter for a request from another thread
    n: int
    key: Any = None
    splittable: bool = True


class MicroBatcher:
    """Gather concurrent requests into batched calls of ``fn`` in worker threads.

    Args:
        fn: batch (N, ...) -> outputs (N, ...); called in a worker thread as ``fn(batch)``,
            or ``fn(batch, key)`` for requests submitted with a ``key``. A batch may also be a
            dict of named arrays (outputs then too).
        max_batch: most instances per call (a bigger request is called alone, in chunks
            of ``max_batch``).
        timeout_ms: longest the first request of a batch waits for requests that have
            already arrived and are being decoded (see :meth:`arriving`).
        max_queue: most instances waiting; beyond it :meth:`submit` raises :class:`QueueFull`.
        on_batch: called with (batch size, seconds) after every model call.
        on_depth: called with the number of waiting instances whenever it changes.
        name: the worker threads' name.
        threads: model calls that may run at once (TF Serving's ``num_batch_threads``).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        max_batch: int = 32,
        timeout_ms: float = 5.0,
        max_queue: int = 4096,
        on_batch: Callable[[int, float], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
        name: str = "model",
        threads: int = 1,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.fn = fn
        self.max_batch = max_batch
        self.timeout_s = max(0.0, timeout_ms) / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.on_depth = on_depth
        self.name = name
        self.threads = threads
        self._waiting: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._slot_freed: asyncio.Event | None = None
        self._running: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._arriving = 0
        # _depth and _busy are shared with the threads that call(): changed under _lock
        self._lock = threading.Lock()
        self._depth = 0
        self._busy = 0  # calls running or being formed (at most ``threads``)
        self._wants_slot = False  # the collector waits for a slot
        self._callers = 0  # threads inside call()
        self._calls = 0

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> MicroBatcher:
        """Start the collector task (call from the running event loop)."""
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._slot_freed = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=f"tfpilot-{self.name}")
            self._task = self._loop.create_task(self._collect(), name=f"batcher-{self.name}")
        return self

    async def stop(self) -> None:
        """Finish the queued requests, then stop the collector and the worker threads."""
        if self._task is None:
            return
        while (self._depth or self._busy or self._running) and not self._task.done():
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def started(self) -> bool:
        return self._task is not None

    @property
    def calls(self) -> int:
        """Model calls made so far."""
        return self._calls

    @property
    def depth(self) -> int:
        """Instances waiting for a model call."""
        return self._depth

    # -- submitting ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Mark a request that is being read and decoded, so a forming batch waits for it."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1

    async def submit(self, batch: Any, key: Any = None, splittable: bool = True) -> Any:
        """Queue ``batch`` (N instances) and return ``fn``'s outputs for exactly those N.

        Args:
            batch: an array (N, ...) or a dict of named arrays with N rows each.
            key: only requests with equal keys share a call (e.g. signature and shapes);
                ``fn`` is then called as ``fn(batch, key)``.
            splittable: False for a request that must run whole and alone (it is never
                merged with others nor cut into ``max_batch`` chunks).
        """
        job = self._job(batch, key, splittable, asyncio.get_running_loop().create_future())
        self._enqueue(job)
        return await job.future

    def call(self, batch: Any, key: Any = None, splittable: bool = True) -> Any:
        """:meth:`submit` from a thread that is not the event loop's, blocking until the outputs are there.

        A lone request -- no other thread in :meth:`call`, no call running or forming, nothing
        queued -- runs the model in this thread at once; otherwise the request is queued and
        shares the next call (so under load the threads' requests batch together).

        Args:
            batch, key, splittable: as for :meth:`submit`.
        """
        job = self._job(batch, key, splittable, concurrent.futures.Future())
        with self._lock:
            self._callers += 1
            here = self._callers == 1 and self._busy < self.threads and not self._depth
            if here:
                self._busy += 1
        try:
            if here:
                try:
                    return self._call([job])
                finally:
                    self._free_slot()
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._enqueue_or_fail, job)
            return job.future.result()
        finally:
            with self._lock:
                self._callers -= 1

    def _job(self, batch: Any, key: Any, splittable: bool, future: Any) -> _Job:
        if self._task is None or self._wakeup is None:
            raise RuntimeError("the batcher is not started")
        n = batch_size(batch)
        if n == 0 and splittable:
            raise ValueError("an empty batch")
        return _Job(batch, future, n, key, splittable)

    def _enqueue(self, job: _Job) -> None:
        """Queue ``job`` (on the event loop), or raise :class:`QueueFull`."""
        assert self._wakeup is not None
        with self._lock:
            if self._depth + job.n > self.max_queue:
                raise QueueFull(f"{self._depth} instances are already waiting (limit {self.max_queue})")
            self._depth += job.n
            depth = self._depth
        self._waiting.append(job)
        self._wakeup.set()
        self._report_depth(depth)

    def _enqueue_or_fail(self, job: _Job) -> None:
        """:meth:`_enqueue` for a :meth:`call` thread (on the event loop): a refusal goes to its future."""
        if self._task is None or self._task.done():
            job.future.set_exception(RuntimeError("the batcher is stopped"))
            return
        try:
            self._enqueue(job)
        except QueueFull as exc:
            job.future.set_exception(exc)

    def _take_depth(self, n: int) -> None:
        with self._lock:
            self._depth -= n
            depth = self._depth
        self._report_depth(depth)

    def _report_depth(self, depth: int) -> None:
        if self.on_depth is not None:
            self.on_depth(depth)

    # -- the call slots (``threads`` of them, shared with call()'s threads) ---------------------
    async def _claim_slot(self) -> None:
        """Wait (on the event loop) until fewer than ``threads`` calls run, and take a slot."""
        assert self._slot_freed is not None
        while True:
            with self._lock:
                if self._busy < self.threads:
                    self._busy += 1
                    self._wants_slot = False
                    return
                self._wants_slot = True
                self._slot_freed.clear()
            await self._slot_freed.wait()

    def _free_slot(self) -> None:
        """Give a slot back, from the event loop or from a :meth:`call` thread."""
        with self._lock:
            self._busy -= 1
            wake = self._wants_slot
        if not wake:
            return
        assert self._loop is not None and self._slot_freed is not None
        if self._on_loop():
            self._slot_freed.set()
        else:
            self._loop.call_soon_threadsafe(self._slot_freed.set)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:  # no loop runs in this thread
            return False

    # -- collecting ---------------------------------------------------------------------------
    def _take_same(self, first: _Job, n: int) -> tuple[list[_Job], int, bool]:
        """Queued jobs with ``first``'s key that fit (in order); whether one did not fit."""
        taken: list[_Job] = []
        kept: deque[_Job] = deque()
        full = False
        while self._waiting:
            job = self._waiting.popleft()
            if full or job.key != first.key or not job.splittable:
                kept.append(job)
            elif n + job.n > self.max_batch:
                full = True
                kept.append(job)
            else:
                taken.append(job)
                n += job.n
        self._waiting = kept
        return taken, n, full

    async def _next_job(self) -> _Job:
        assert self._wakeup is not None
        while not self._waiting:
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._waiting.popleft()

    async def _collect(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next_job()
            await self._claim_slot()
            jobs, n = [first], first.n
            if first.splittable:
                deadline = loop.time() + self.timeout_s
                while n < self.max_batch:
                    more, n, full = self._take_same(first, n)
                    jobs += more
                    remaining = deadline - loop.time()
                    if full or n >= self.max_batch or self._arriving <= 0 or remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except asyncio.TimeoutError:
                        more, n, _ = self._take_same(first, n)
                        jobs += more
                        break
            self._take_depth(n)
            live = [j for j in jobs if not j.future.done()]
            if self.threads == 1:  # one call at a time: run it here (a task would cost a loop turn)
                await self._run_then_release(live)
                continue
            task = loop.create_task(self._run_then_release(live))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_then_release(self, jobs: list[_Job]) -> None:
        try:
            await self._run(jobs)
        finally:
            self._free_slot()

    async def _run(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self._executor, self._call, jobs)
            results = [outputs] if len(jobs) == 1 else self._split(outputs, jobs)
        except Exception as exc:  # noqa: BLE001 -- isolate the request that broke the batch
            if len(jobs) == 1:
                if not jobs[0].future.done():
                    jobs[0].future.set_exception(exc)
                return
            if not isinstance(exc, BatchMismatch):
                log.warning("a batch of %d requests failed (%s); retrying them one by one", len(jobs), exc)
            for job in jobs:
                await self._run([job])
            return
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    @staticmethod
    def _split(outputs: Any, jobs: list[_Job]) -> list[Any]:
        total = sum(j.n for j in jobs)
        out, start = [], 0
        for job in jobs:
            out.append(_rows(outputs, start, start + job.n, total))
            start += job.n
        return out

    def _call(self, jobs: list[_Job]) -> Any:
        """Runs in a worker thread: one model call per ``max_batch`` instances."""
        key = jobs[0].key
        batch = _concat([j.batch for j in jobs])
        n = sum(j.n for j in jobs)
        if not jobs[0].splittable or n <= self.max_batch:
            return self._timed(batch, key, n)
        chunks = [self._timed(_slice_batch(batch, i, min(n, i + self.max_batch)), key, min(self.max_batch, n - i))
                  for i in range(0, n, self.max_batch)]
        for i, chunk in enumerate(chunks):  # every output must follow the batch to be joined
            size = min(self.max_batch, n - i * self.max_batch)
            _rows(chunk, 0, size, size)
        return _concat(chunks)

    def _timed(self, batch: Any, key: Any, n: int) -> Any:
        t0 = time.perf_counter()
        out = self.fn(batch) if key is None else self.fn(batch, key)
        self._calls += 1
        if self.on_batch is not None:
            self.on_batch(n, time.perf_counter() - t0)
        return out
