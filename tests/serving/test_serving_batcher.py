"""The micro-batcher, in process: gathering, limits, the worker thread, failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from tfpilot.serving.batcher import MicroBatcher, QueueFull


class Recorder:
    """A model stand-in: records each call's batch size and thread, sleeps ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sizes: list[int] = []
        self.threads: set[str] = set()
        self.delay = delay

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(len(batch))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        return batch * 10


async def run_requests(batcher: MicroBatcher, sizes: list[int]) -> list[np.ndarray]:
    await batcher.start()
    try:
        reqs = [np.full((n, 2), i) for i, n in enumerate(sizes)]
        outs = await asyncio.gather(*(batcher.submit(r) for r in reqs))
        for r, o in zip(reqs, outs):
            np.testing.assert_array_equal(o, r * 10)  # each request gets exactly its own rows back
        return outs
    finally:
        await batcher.stop()


def test_concurrent_requests_share_calls_up_to_max_batch() -> None:
    model = Recorder(delay=0.02)
    asyncio.run(run_requests(MicroBatcher(model, max_batch=8, timeout_ms=0), [1] * 40))
    assert sum(model.sizes) == 40
    assert max(model.sizes) == 8
    assert len(model.sizes) <= 6  # the first call goes alone; the rest queue up behind it


def test_lone_request_never_waits_for_the_timeout() -> None:
    model = Recorder()

    async def main() -> float:
        batcher = await MicroBatcher(model, max_batch=32, timeout_ms=2000).start()
        t0 = time.perf_counter()
        await batcher.submit(np.ones((1, 2)))
        elapsed = time.perf_counter() - t0
        await batcher.stop()
        return elapsed

    assert asyncio.run(main()) < 1.0  # far below the 2 s timeout: nobody else was arriving


def test_waits_for_requests_that_are_arriving() -> None:
    model = Recorder()

    async def main() -> None:
        batcher = await MicroBatcher(model, max_batch=8, timeout_ms=1000).start()

        async def late() -> np.ndarray:
            with batcher.arriving():
                await asyncio.sleep(0.05)  # e.g. reading and decoding its body
            return await batcher.submit(np.ones((1, 2)))

        late_task = asyncio.create_task(late())
        await asyncio.sleep(0)  # `late` is now arriving
        await asyncio.gather(batcher.submit(np.ones((1, 2))), late_task)
        await batcher.stop()

    asyncio.run(main())
    assert model.sizes == [2]


def test_timeout_bounds_the_wait() -> None:
    model = Recorder()

    async def main() -> float:
        batcher = await MicroBatcher(model, max_batch=8, timeout_ms=50).start()
        with batcher.arriving():  # announced, but never submitted
            t0 = time.perf_counter()
            await batcher.submit(np.ones((1, 2)))
            elapsed = time.perf_counter() - t0
        await batcher.stop()
        return elapsed

    elapsed = asyncio.run(main())
    assert 0.04 <= elapsed < 1.0
    assert model.sizes == [1]


def test_big_request_is_split_into_max_batch_chunks() -> None:
    model = Recorder()
    outs = asyncio.run(run_requests(MicroBatcher(model, max_batch=4, timeout_ms=0), [10]))
    assert model.sizes == [4, 4, 2] and outs[0].shape == (10, 2)


def test_requests_are_not_split_across_calls_when_they_fit() -> None:
    model = Recorder(delay=0.01)
    asyncio.run(run_requests(MicroBatcher(model, max_batch=5, timeout_ms=0), [3, 3, 3, 3]))
    assert model.sizes == [3, 3, 3, 3]  # 3 + 3 > 5: each request is its own call


def test_model_runs_in_a_worker_thread_and_the_loop_stays_free() -> None:
    model = Recorder(delay=0.3)

    async def main() -> int:
        batcher = await MicroBatcher(model, max_batch=4, name="m").start()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        await batcher.submit(np.ones((1, 2)))
        t.cancel()
        await batcher.stop()
        return ticks

    ticks = asyncio.run(main())
    assert ticks >= 10  # the event loop kept running during the 0.3 s model call
    assert model.threads and all(name.startswith("tfpilot-m") for name in model.threads)


def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    def model(batch: np.ndarray) -> np.ndarray:
        time.sleep(0.01)
        if (batch < 0).any():
            raise ValueError("negative input")
        return batch

    async def main() -> list:
        batcher = await MicroBatcher(model, max_batch=8).start()
        reqs = [np.full((1, 1), v) for v in (1, 2, -1, 3, 4)]
        outs = await asyncio.gather(*(batcher.submit(r) for r in reqs), return_exceptions=True)
        await batcher.stop()
        return outs

    outs = asyncio.run(main())
    assert isinstance(outs[2], ValueError)
    assert [o.item() for i, o in enumerate(outs) if i != 2] == [1, 2, 3, 4]


def test_queue_limit_and_bad_arguments() -> None:
    async def main() -> None:
        batcher = await MicroBatcher(Recorder(delay=0.05), max_batch=2, max_queue=4).start()
        first = asyncio.create_task(batcher.submit(np.ones((4, 1))))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit(np.ones((1, 1)))
        await first
        with pytest.raises(ValueError):
            await batcher.submit(np.ones((0, 1)))
        await batcher.stop()

    asyncio.run(main())
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch=0)
    with pytest.raises(RuntimeError, match="not started"):
        asyncio.run(MicroBatcher(Recorder()).submit(np.ones((1, 1))))


def test_metrics_callbacks() -> None:
    batches, depths = [], []
    batcher = MicroBatcher(Recorder(), max_batch=4, on_batch=lambda n, s: batches.append((n, s)),
                           on_depth=depths.append)
    asyncio.run(run_requests(batcher, [2, 2]))
    assert sum(n for n, _ in batches) == 4 and all(s >= 0 for _, s in batches)
    assert max(depths) >= 2 and depths[-1] == 0
    assert batcher.calls == len(batches) and batcher.depth == 0


def test_only_requests_with_the_same_key_share_a_call() -> None:
    calls: list[tuple[str, int]] = []

    def model(batch: dict, key: str) -> dict:
        time.sleep(0.01)
        calls.append((key, len(batch["x"])))
        return {"y": batch["x"] * (2 if key == "double" else 3)}

    async def main() -> list:
        batcher = await MicroBatcher(model, max_batch=16, timeout_ms=0).start()
        keys = ["double", "triple"] * 6
        outs = await asyncio.gather(*(batcher.submit({"x": np.full((1, 2), i)}, key=k)
                                      for i, k in enumerate(keys)))
        await batcher.stop()
        return list(zip(keys, outs))

    results = asyncio.run(main())
    for i, (key, out) in enumerate(results):
        np.testing.assert_array_equal(out["y"], np.full((1, 2), i) * (2 if key == "double" else 3))
    assert sum(n for _, n in calls) == 12 and max(n for _, n in calls) > 1  # batched, never across keys


def test_outputs_that_do_not_follow_the_batch_are_answered_per_request() -> None:
    sizes: list[int] = []

    def model(batch: np.ndarray) -> dict:
        time.sleep(0.01)
        sizes.append(len(batch))
        return {"total": np.array(batch.sum()), "rows": batch}  # a scalar output: no row per instance

    async def main() -> list:
        batcher = await MicroBatcher(model, max_batch=8, timeout_ms=0).start()
        outs = await asyncio.gather(*(batcher.submit(np.full((1, 1), v)) for v in (1, 2, 3, 4)))
        await batcher.stop()
        return outs

    outs = asyncio.run(main())
    assert [int(o["total"]) for o in outs] == [1, 2, 3, 4]  # each request got its own outputs whole
    assert max(sizes) > 1 and sizes.count(1) >= 3  # a shared call was tried, then one per request


def test_unsplittable_requests_run_alone_and_several_threads_run_calls_at_once() -> None:
    model = Recorder(delay=0.1)

    async def main() -> float:
        batcher = await MicroBatcher(model, max_batch=2, timeout_ms=0, threads=2).start()
        t0 = time.perf_counter()
        await asyncio.gather(batcher.submit(np.ones((5, 2)), splittable=False), batcher.submit(np.ones((1, 2))))
        elapsed = time.perf_counter() - t0
        await batcher.stop()
        return elapsed

    elapsed = asyncio.run(main())
    assert sorted(model.sizes) == [1, 5]  # not cut into chunks of 2, not merged
    assert elapsed < 0.19 and len(model.threads) == 2  # the two calls overlapped


def test_stop_waits_for_the_call_in_progress() -> None:
    model = Recorder(delay=0.2)

    async def main() -> np.ndarray:
        batcher = await MicroBatcher(model, max_batch=4).start()
        request = asyncio.create_task(batcher.submit(np.ones((1, 2))))
        while batcher.calls == 0 and not model.sizes:
            await asyncio.sleep(0.01)  # the call has started (nothing is queued any more)
        await batcher.stop()
        return await request

    np.testing.assert_array_equal(asyncio.run(main()), np.ones((1, 2)) * 10)


# -- call(): requests from threads of their own (the gRPC server's) ------------------------------
class Gated(Recorder):
    """A :class:`Recorder` whose calls wait for ``gate`` and count how many run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Event()
        self.running = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.set()
        self.gate.wait(10)
        try:
            return super().__call__(batch)
        finally:
            with self.lock:
                self.running -= 1


def test_call_on_an_idle_batcher_runs_the_model_in_the_calling_thread() -> None:
    model = Recorder()

    async def main() -> np.ndarray:
        batcher = await MicroBatcher(model, max_batch=8, name="m").start()
        out = await asyncio.to_thread(batcher.call, np.full((2, 2), 3))
        await batcher.stop()
        return out

    np.testing.assert_array_equal(asyncio.run(main()), np.full((2, 2), 30))
    assert len(model.threads) == 1 and not next(iter(model.threads)).startswith("tfpilot-m")  # no worker thread


def test_calls_while_the_model_is_busy_queue_and_share_the_next_call() -> None:
    model = Gated()

    async def main() -> list[np.ndarray]:
        batcher = await MicroBatcher(model, max_batch=8, timeout_ms=0).start()
        first = asyncio.create_task(asyncio.to_thread(batcher.call, np.full((1, 2), 1)))
        await asyncio.to_thread(model.started.wait, 10)  # the first runs in its thread and holds the model
        others = [asyncio.create_task(asyncio.to_thread(batcher.call, np.full((1, 2), i))) for i in (2, 3)]
        others.append(asyncio.create_task(batcher.submit(np.full((1, 2), 4))))  # and one from the event loop
        while batcher.depth < 3:
            await asyncio.sleep(0.01)
        assert model.sizes == [] and model.running == 1  # they wait: one call at a time (threads=1)
        model.gate.set()
        outs = await asyncio.gather(first, *others)
        await batcher.stop()
        return outs

    outs = asyncio.run(main())
    for i, out in zip((1, 2, 3, 4), outs):
        np.testing.assert_array_equal(out, np.full((1, 2), i * 10))  # each gets its own rows
    assert model.sizes == [1, 3] and model.most == 1  # the three waiting shared one call, after the first


def test_call_refuses_when_the_queue_is_full_and_when_stopped() -> None:
    model = Gated()

    async def main() -> MicroBatcher:
        batcher = await MicroBatcher(model, max_batch=8, max_queue=2).start()
        first = asyncio.create_task(asyncio.to_thread(batcher.call, np.ones((1, 2))))
        await asyncio.to_thread(model.started.wait, 10)
        with pytest.raises(QueueFull, match="limit 2"):
            await asyncio.to_thread(batcher.call, np.ones((3, 2)))  # 3 instances cannot wait behind it
        model.gate.set()
        await first
        await batcher.stop()
        return batcher

    batcher = asyncio.run(main())
    with pytest.raises(RuntimeError, match="not started"):
        batcher.call(np.ones((1, 2)))
