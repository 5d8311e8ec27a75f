"""CPU-heavy steps of a request (decoding an uploaded image) off the event loop, in a few
threads of their own with a short queue: past it the caller is answered 503 at once, so a
flood of large uploads never delays the JSON predictions the event loop is answering.

The threads run at a lower priority (nice) than the event loop's, so that on a busy core the
scheduler gives the loop its turn first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from serving import metrics
from serving.errors import ApiError

T = TypeVar("T")
NICENESS = 10


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # Linux: a thread's own nice value
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


class Pool:
    def __init__(self, name: str, threads: int, queue: int) -> None:
        self.name = name
        self.capacity = threads + queue  # running plus waiting
        self.pending = 0
        self._executor = ThreadPoolExecutor(
            threads, thread_name_prefix=name, initializer=_lower_priority
        )

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self.pending >= self.capacity:
            metrics.REJECTED.labels("", f"{self.name}_busy").inc()
            raise ApiError(
                503, f"too many {self.name} jobs at once; retry later", headers={"Retry-After": "1"}
            )
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self.pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
