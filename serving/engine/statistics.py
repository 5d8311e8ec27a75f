"""Triton's inference statistics, per model and version, and its nv_inference_* metrics.

One object per model version counts what the engine does, with plain integer additions on the
event loop (the only thread that touches them, so no locks): per request its outcome and time
in the engine (serving.engine.infer), per batch its size, each request's queue time (enqueue to
batch start) and the batch's compute times (serving.engine.batching: compute_input the concat,
compute_infer the runner call, compute_output the split). As in Triton, each request of a batch
counts the whole batch's compute times, and batch_stats count executions per batch size.

`model_stats` answers Triton's statistics extension (REST and gRPC alike). The Prometheus
metrics are fed from the same counts: a flush adds what changed since the last one, at most
half a second after a change (a timer on the loop, never per request) and before every scrape,
so they stay exact with several worker processes too (prometheus-client's multiprocess files).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from serving import metrics

if TYPE_CHECKING:
    from serving.engine.registry import Entry

FLUSH_DELAY_S = 0.5
# Triton's reasons for a failed request (the metric's `reason` label).
REJECTED, CANCELED, BACKEND, OTHER = "REJECTED", "CANCELED", "BACKEND", "OTHER"
REASON_OF_STATUS = {503: REJECTED, 504: CANCELED, 499: CANCELED, 400: BACKEND, 422: BACKEND}


class ModelStatistics:
    """The counts of one model version; durations in nanoseconds, as Triton keeps them."""

    __slots__ = (
        "_children",
        "_flush_pending",
        "_flushed",
        "batches",
        "compute_infer_ns",
        "compute_input_ns",
        "compute_output_ns",
        "computed",
        "execution_count",
        "fail_count",
        "fail_ns",
        "failures",
        "inference_count",
        "last_inference",
        "name",
        "queue_ns",
        "success_count",
        "success_ns",
        "version",
    )

    def __init__(self, name: str, version: int) -> None:
        self.name, self.version = name, str(version)
        self.success_count = self.success_ns = 0
        self.fail_count = self.fail_ns = 0
        self.failures: dict[str, int] = {}  # fail_count by Triton's reason
        self.computed = 0  # requests answered from a batch: the count of queue and compute_*
        self.queue_ns = self.compute_input_ns = self.compute_infer_ns = self.compute_output_ns = 0
        self.inference_count = self.execution_count = 0
        self.last_inference = 0  # ms since the epoch
        self.batches: dict[int, list[int]] = {}  # size -> [executions, input, infer, output ns]
        self._flush_pending = False
        self._flushed: dict[Any, int] = {}
        self._children: dict[Any, Any] = {}
        _ALL.append(self)

    # ---- the hooks ------------------------------------------------------------------------
    def success(self, ns: int) -> None:
        self.success_count += 1
        self.success_ns += ns
        if not self._flush_pending:
            self._schedule_flush()

    def fail(self, ns: int, reason: str) -> None:
        self.fail_count += 1
        self.fail_ns += ns
        self.failures[reason] = self.failures.get(reason, 0) + 1
        if not self._flush_pending:
            self._schedule_flush()

    def batch(
        self, size: int, requests: int, queue_ns: int, input_ns: int, infer_ns: int, output_ns: int
    ) -> None:
        """One execution of `size` inputs that answered `requests` requests (their queue times
        summed in queue_ns)."""
        self.execution_count += 1
        self.inference_count += size
        self.last_inference = time.time_ns() // 1_000_000
        self.computed += requests
        self.queue_ns += queue_ns
        self.compute_input_ns += requests * input_ns
        self.compute_infer_ns += requests * infer_ns
        self.compute_output_ns += requests * output_ns
        per_size = self.batches.get(size)
        if per_size is None:
            per_size = self.batches[size] = [0, 0, 0, 0]
        per_size[0] += 1
        per_size[1] += input_ns
        per_size[2] += infer_ns
        per_size[3] += output_ns

    # ---- Triton's statistics JSON ---------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """One entry of Triton's `model_stats`, with its field names; counts as integers."""
        n = self.computed
        return {
            "name": self.name,
            "version": self.version,
            "last_inference": self.last_inference,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": _duration(self.success_count, self.success_ns),
                "fail": _duration(self.fail_count, self.fail_ns),
                "queue": _duration(n, self.queue_ns),
                "compute_input": _duration(n, self.compute_input_ns),
                "compute_infer": _duration(n, self.compute_infer_ns),
                "compute_output": _duration(n, self.compute_output_ns),
                "cache_hit": _duration(0, 0),
                "cache_miss": _duration(0, 0),
            },
            "batch_stats": [
                {
                    "batch_size": size,
                    "compute_input": _duration(c, i),
                    "compute_infer": _duration(c, f),
                    "compute_output": _duration(c, o),
                }
                for size, (c, i, f, o) in sorted(self.batches.items())
            ],
            "memory_usage": [],
        }

    # ---- the metrics ----------------------------------------------------------------------
    def _schedule_flush(self) -> None:
        self._flush_pending = True
        try:
            asyncio.get_running_loop().call_later(FLUSH_DELAY_S, self.flush)
        except RuntimeError:  # no loop (called from a thread): flush now
            self.flush()

    def flush(self) -> None:
        """Add to the nv_inference_* metrics what changed since the last flush."""
        self._flush_pending = False
        labels = (self.name, self.version)
        us = 1000
        current: list[tuple[Any, Any, int]] = [
            (metrics.NV_SUCCESS, labels, self.success_count),
            (metrics.NV_COUNT, labels, self.inference_count),
            (metrics.NV_EXEC_COUNT, labels, self.execution_count),
            (metrics.NV_REQUEST_US, labels, self.success_ns // us),
            (metrics.NV_QUEUE_US, labels, self.queue_ns // us),
            (metrics.NV_INPUT_US, labels, self.compute_input_ns // us),
            (metrics.NV_INFER_US, labels, self.compute_infer_ns // us),
            (metrics.NV_OUTPUT_US, labels, self.compute_output_ns // us),
        ]
        current += [(metrics.NV_FAILURE, (*labels, r), c) for r, c in self.failures.items()]
        for metric, label_values, value in current:
            key = (metric, label_values)
            delta = value - self._flushed.get(key, 0)
            if delta:
                child = self._children.get(key)
                if child is None:
                    child = self._children[key] = metric.labels(*label_values)
                child.inc(delta)
                self._flushed[key] = value


def _duration(count: int, ns: int) -> dict[str, int]:
    return {"count": count, "ns": ns}


_ALL: list[ModelStatistics] = []  # every version's counts in this process, for the scrape


def flush_all() -> None:
    for stats in _ALL:
        stats.flush()


def forget(stats: ModelStatistics) -> None:
    """Stop tracking counts that will change no more (their registry closed), flushed first."""
    stats.flush()
    if stats in _ALL:
        _ALL.remove(stats)


metrics.BEFORE_SCRAPE.append(flush_all)


def model_stats(entry: Entry) -> dict[str, Any]:
    """Triton's statistics response for one model: {"model_stats": [its version's stats]}."""
    return {"model_stats": [entry.stats.as_dict()]}


def models_stats(entries: Iterable[Entry]) -> dict[str, Any]:
    """Triton's statistics response for several models (all of them: registry.entries)."""
    return {"model_stats": [e.stats.as_dict() for e in entries]}
