"""Dynamic batching: concurrent requests for one model become one call of its runner.

Each model has one Batcher: a bounded queue and one worker task. The worker takes the oldest
request and, without waiting (unless max_wait is set), everything else already queued up to
max_batch inputs, runs them as one array in a thread, and hands each caller its own rows in order.
A request that alone holds max_batch inputs or more runs alone, unsplit. A lone request never
waits for company, so batching costs nothing at low load and batches form by themselves under
load. A caller that gives up (client gone, timeout) while still queued is taken out of the queue
and never computed. Each batch adds to the model's statistics (serving.engine.statistics): each
request's queue time, the concat, the runner call and the split, in integer nanoseconds.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from serving.engine.statistics import ModelStatistics

LOOP_TURNS_TO_NOTICE_HANGUPS = 8


class Overloaded(Exception):
    """The model's queue is full; the caller should retry later (503)."""


class NotFinite(Exception):
    """The model's answer for these inputs has a NaN or an infinity, first in row `row`."""

    def __init__(self, row: int) -> None:
        super().__init__(f"no finite answer for row {row}")
        self.row = row


def _checked(y: np.ndarray) -> np.ndarray:
    """y, or NotFinite naming its first row with a NaN or an infinity."""
    finite = np.isfinite(y).reshape(len(y), -1).all(axis=1)
    if not finite.all():
        raise NotFinite(int(np.argmin(finite)))
    return y


# No repr: deque.remove() puts its argument's repr in the ValueError it raises for a job
# already taken, and an array's repr costs far more than the rest of a request.
@dataclass(eq=False, repr=False, slots=True)
class _Job:
    x: np.ndarray
    future: asyncio.Future[np.ndarray]
    epoch: int  # the batcher's epoch when it was queued
    queued_ns: int  # perf_counter_ns() when it was queued


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    cancelled: int = 0
    rejected: int = 0
    last_batch_size: int = 0


class Batcher:
    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        executor: Executor,
        max_batch: int = 64,
        max_wait_s: float = 0.0,
        max_queue: int = 1024,
        merge: bool = True,
        on_batch: Callable[[int, float], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
        statistics: ModelStatistics | None = None,
    ) -> None:
        self._run = run
        self._executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.merge = merge
        self._on_batch = on_batch
        self._on_queue = on_queue or (lambda depth: None)
        self._statistics = statistics
        self._queue: collections.deque[_Job] = collections.deque()
        self.queued_items = 0  # inputs waiting, not yet running
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._epoch = 0
        self.stats = BatchStats()

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._loop())

    def enqueue(self, x: np.ndarray) -> asyncio.Future[np.ndarray]:
        """Queue x (N, ...); the future answers (N, ...) rows for exactly these inputs.

        Cancelling the future takes the inputs out of the queue if they are still waiting.
        Raises Overloaded at once when the queue is full.
        """
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            # Replaced while this request was on its way: the old version still answers it.
            return asyncio.ensure_future(
                loop.run_in_executor(self._executor, lambda: _checked(self._run(x)))
            )
        n = len(x)
        if self.queued_items + n > self.max_queue and self.queued_items > 0:
            self.stats.rejected += 1
            raise Overloaded(f"queue full ({self.queued_items} inputs waiting)")
        job = _Job(x, loop.create_future(), self._epoch, time.perf_counter_ns())
        self._queue.append(job)
        self.queued_items += n
        self._on_queue(self.queued_items)
        self._wake.set()
        job.future.add_done_callback(lambda f: self._forget(job) if f.cancelled() else None)
        return job.future

    def _forget(self, job: _Job) -> None:
        if self._dequeue(job):  # still waiting: never computed
            self.stats.cancelled += 1

    def _dequeue(self, job: _Job) -> bool:
        try:
            self._queue.remove(job)
        except ValueError:
            return False  # already taken into a batch
        self.queued_items -= len(job.x)
        self._on_queue(self.queued_items)
        return True

    def _take(self) -> list[_Job]:
        """The next batch: oldest first, up to max_batch inputs; callers already gone are
        dropped here, uncomputed, even if their own cleanup has not run yet."""
        jobs: list[_Job] = []
        total = 0
        while self._queue:
            job = self._queue[0]
            if job.future.done():  # cancelled a moment ago
                self._queue.popleft()
                self.queued_items -= len(job.x)
                self.stats.cancelled += 1
                continue
            if job.epoch >= self._epoch:  # queued during this round's wait: next round
                break
            if jobs and (not self.merge or total + len(job.x) > self.max_batch):
                break
            self._queue.popleft()
            jobs.append(job)
            total += len(job.x)
        self.queued_items -= total
        self._on_queue(self.queued_items)
        return jobs

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            # A hang-up is noticed some loop turns after it reaches the socket (read, close,
            # receive, cancel). Only jobs queued before this wait began are taken, so each has
            # waited those turns: a client that had already left is never computed.
            self._epoch += 1
            if self.merge and self.max_wait_s > 0 and self.queued_items < self.max_batch:
                await asyncio.sleep(self.max_wait_s)  # let a fuller batch gather
            for _ in range(LOOP_TURNS_TO_NOTICE_HANGUPS):
                await asyncio.sleep(0)
            if not self._queue:  # everyone left meanwhile
                continue
            jobs = self._take()
            if not jobs:
                continue
            started = time.perf_counter_ns()  # every job's queue time ends here
            x = jobs[0].x if len(jobs) == 1 else np.concatenate([j.x for j in jobs])
            joined = time.perf_counter_ns()
            try:
                y, infer_ns, finite = await loop.run_in_executor(self._executor, self._timed, x)
            except Exception as e:  # the model failed: every caller in the batch learns why
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            self.stats.batches += 1
            self.stats.items += len(x)
            self.stats.last_batch_size = len(x)
            if self._on_batch is not None:
                self._on_batch(len(x), infer_ns / 1e9)
            split = time.perf_counter_ns()
            offset = answered = queue_ns = 0
            for j in jobs:
                n = len(j.x)
                if not j.future.done():  # a caller may have gone while its batch ran
                    rows = y[offset : offset + n]
                    try:
                        j.future.set_result(rows if finite else _checked(rows))
                    except NotFinite as e:
                        j.future.set_exception(e)
                    answered += 1
                    queue_ns += started - j.queued_ns
                offset += n
            if self._statistics is not None:
                self._statistics.batch(
                    len(x),
                    answered,
                    queue_ns,
                    joined - started,
                    infer_ns,
                    time.perf_counter_ns() - split,
                )

    def _timed(self, x: np.ndarray) -> tuple[np.ndarray, int, bool]:
        """The runner's answer, how long it took in nanoseconds, and whether every value of it
        is finite (in the worker thread, so that the event loop checks once a batch at most)."""
        started = time.perf_counter_ns()
        y = self._run(x)
        elapsed = time.perf_counter_ns() - started
        return y, elapsed, bool(np.isfinite(y).all())

    async def close(self) -> None:
        """Finish what is queued, then stop (used when a new version replaces this one)."""
        self._closing = True
        self._wake.set()
        if self._worker is not None:
            await self._worker
