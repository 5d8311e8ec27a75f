"""Prometheus metrics (prometheus-client), correct with one process or several.

With several uvicorn workers, `python -m serving` sets PROMETHEUS_MULTIPROC_DIR before they start,
each worker writes its samples there, and /metrics on any worker answers for all of them.
"""

from __future__ import annotations

import os

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


async def render(_: Request) -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    return Response(data, media_type=CONTENT_TYPE_LATEST)
