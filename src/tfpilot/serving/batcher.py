"""Dynamic micro-batching: concurrent requests share one model call.

Requests put their (already decoded) instances on an asyncio queue. One collector task
per model takes the first waiting request, adds every other one already queued, and --
while more requests have arrived and are still being decoded -- waits up to
``timeout_ms`` for them, until ``max_batch`` instances are gathered. The model call
runs in a dedicated worker thread, never on the event loop; while it runs, the next
requests queue up and form the next batch. An idle server therefore never waits: a
lone request goes straight to the model.

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
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("tfpilot.serving")


class QueueFull(RuntimeError):
    """More instances are waiting than the batcher accepts."""


@dataclass
class _Job:
    batch: Any  # np.ndarray of n instances
    future: asyncio.Future

    @property
    def n(self) -> int:
        return len(self.batch)


class MicroBatcher:
    """Gather concurrent requests into batched calls of ``fn`` in a worker thread.

    Args:
        fn: batch (N, ...) -> outputs (N, ...); called in a worker thread.
        max_batch: most instances per call (a bigger request is called alone, in chunks
            of ``max_batch``).
        timeout_ms: longest the first request of a batch waits for requests that have
            already arrived and are being decoded (see :meth:`arriving`).
        max_queue: most instances waiting; beyond it :meth:`submit` raises :class:`QueueFull`.
        on_batch: called with (batch size, seconds) after every model call.
        on_depth: called with the number of waiting instances whenever it changes.
        name: the worker thread's name.
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        max_batch: int = 32,
        timeout_ms: float = 5.0,
        max_queue: int = 4096,
        on_batch: Callable[[int, float], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
        name: str = "model",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.fn = fn
        self.max_batch = max_batch
        self.timeout_s = max(0.0, timeout_ms) / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.on_depth = on_depth
        self.name = name
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._arriving = 0
        self._depth = 0
        self._calls = 0

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> MicroBatcher:
        """Start the collector task (call from the running event loop)."""
        if self._task is None:
            self._queue = asyncio.Queue()
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"tfpilot-{self.name}")
            self._task = asyncio.get_running_loop().create_task(self._collect(), name=f"batcher-{self.name}")
        return self

    async def stop(self) -> None:
        """Finish the queued requests, then stop the collector and the worker thread."""
        if self._task is None:
            return
        while self._depth and not self._task.done():
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

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

    async def submit(self, batch: Any) -> Any:
        """Queue ``batch`` (N instances) and return ``fn``'s outputs for exactly those N."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        n = len(batch)
        if n == 0:
            raise ValueError("an empty batch")
        if self._depth + n > self.max_queue:
            raise QueueFull(f"{self._depth} instances are already waiting (limit {self.max_queue})")
        job = _Job(batch, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        self._set_depth(self._depth + n)
        return await job.future

    def _set_depth(self, depth: int) -> None:
        self._depth = depth
        if self.on_depth is not None:
            self.on_depth(depth)

    # -- collecting ---------------------------------------------------------------------------
    async def _collect(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        carry: _Job | None = None
        while True:
            first = carry if carry is not None else await queue.get()
            carry = None
            jobs, n = [first], first.n
            deadline = loop.time() + self.timeout_s
            while n < self.max_batch:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if self._arriving <= 0 or remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if n + job.n > self.max_batch:
                    carry = job
                    break
                jobs.append(job)
                n += job.n
            self._set_depth(self._depth - n)
            await self._run([j for j in jobs if not j.future.done()])

    async def _run(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self._executor, self._call, [j.batch for j in jobs])
        except Exception as exc:  # noqa: BLE001 -- isolate the request that broke the batch
            if len(jobs) == 1:
                if not jobs[0].future.done():
                    jobs[0].future.set_exception(exc)
                return
            log.warning("a batch of %d requests failed (%s); retrying them one by one", len(jobs), exc)
            for job in jobs:
                await self._run([job])
            return
        start = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_result(outputs[start : start + job.n])
            start += job.n

    def _call(self, parts: list[Any]) -> Any:
        """Runs in the worker thread: one model call per ``max_batch`` instances."""
        batch = parts[0] if len(parts) == 1 else np.concatenate(parts)
        chunks = []
        for i in range(0, len(batch), self.max_batch):
            t0 = time.perf_counter()
            chunk = batch[i : i + self.max_batch]
            chunks.append(self.fn(chunk))
            self._calls += 1
            if self.on_batch is not None:
                self.on_batch(len(chunk), time.perf_counter() - t0)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
