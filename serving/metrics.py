"""Prometheus metrics (prometheus-client), correct with one process or several.

With several uvicorn workers, `python -m serving` sets PROMETHEUS_MULTIPROC_DIR before they start,
each worker writes its samples there, and /metrics on any worker answers for all of them.

Beside the service's own, Triton's per-model metrics under Triton's names and labels (model,
version), fed by serving.engine.statistics: counters of requests and of cumulative microseconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

REQUESTS = Counter(
    "serving_requests_total", "HTTP requests answered", ["endpoint", "model", "status"]
)
LATENCY = Histogram(
    "serving_request_seconds", "Time to answer a request", ["endpoint"], buckets=LATENCY_BUCKETS
)
INFERENCE = Histogram(
    "serving_inference_seconds",
    "Time of one model call (one batch)",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
BATCH = Histogram(
    "serving_batch_size",
    "Inputs per model call",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
QUEUE = Gauge(
    "serving_queue_depth", "Inputs waiting for their model", ["model"], multiprocess_mode="livesum"
)
IN_FLIGHT = Gauge(
    "serving_in_flight", "Prediction requests being handled", multiprocess_mode="livesum"
)
REJECTED = Counter("serving_rejected_total", "Requests not computed", ["model", "reason"])

# The labelled children of REQUESTS and LATENCY for one answered request, by (endpoint, model,
# status): REQUEST_CHILDREN[key] is a plain dict lookup once a label set has been seen (labels()
# takes a lock and builds its key on every call). Label sets are few; past MAX_LABEL_SETS new
# ones are looked up each time rather than kept, so the cache never grows without bound.
MAX_LABEL_SETS = 10_000


class RequestChildren(dict[tuple[str, str, object], tuple[Any, Any]]):
    def __missing__(self, key: tuple[str, str, object]) -> tuple[Any, Any]:
        endpoint, model, status = key
        found = (REQUESTS.labels(endpoint, model, str(status)), LATENCY.labels(endpoint))
        if len(self) < MAX_LABEL_SETS:
            self[key] = found
        return found


REQUEST_CHILDREN = RequestChildren()


MODEL_INFO = Gauge(
    "serving_model_info",
    "The version each model serves (value 1)",
    ["model", "version", "backend", "device"],
    multiprocess_mode="livemax",
)
LOAD_SECONDS = Gauge(
    "serving_model_load_seconds",
    "Time the serving version took to load",
    ["model"],
    multiprocess_mode="livemax",
)


TRITON_NAMES: list[str] = []


def _triton(name: str, doc: str, *extra: str) -> Gauge:
    """A Triton counter. Kept as a gauge summed over processes, which prometheus-client writes
    under the exact name (a Counter would gain `_total`); render() declares it a counter, as
    Triton does. Only ever increased (serving.engine.statistics adds what changed)."""
    TRITON_NAMES.append(name)
    return Gauge(name, doc, ["model", "version", *extra], multiprocess_mode="sum")


NV_SUCCESS = _triton("nv_inference_request_success", "Number of successful inference requests")
NV_FAILURE = _triton(
    "nv_inference_request_failure", "Number of failed inference requests", "reason"
)
NV_COUNT = _triton("nv_inference_count", "Number of inferences performed (batch items)")
NV_EXEC_COUNT = _triton("nv_inference_exec_count", "Number of model executions (batches)")
NV_REQUEST_US = _triton(
    "nv_inference_request_duration_us", "Cumulative inference request duration in microseconds"
)
NV_QUEUE_US = _triton(
    "nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds"
)
NV_INPUT_US = _triton(
    "nv_inference_compute_input_duration_us",
    "Cumulative compute input duration in microseconds",
)
NV_INFER_US = _triton(
    "nv_inference_compute_infer_duration_us",
    "Cumulative compute inference duration in microseconds",
)
NV_OUTPUT_US = _triton(
    "nv_inference_compute_output_duration_us",
    "Cumulative inference compute output duration in microseconds",
)
_RETYPE = [(f"# TYPE {n} gauge\n".encode(), f"# TYPE {n} counter\n".encode()) for n in TRITON_NAMES]
# Called before each scrape (serving.engine.statistics flushes its counts into the metrics).
BEFORE_SCRAPE: list[Callable[[], None]] = []


async def render(_: Request) -> Response:
    for hook in BEFORE_SCRAPE:
        hook()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    for gauge, counter in _RETYPE:
        data = data.replace(gauge, counter)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
