"""The application factory. Every entry point (uvicorn, its workers, Ray Serve, the images) calls
create_app(); nothing about the service is set up anywhere else.

    uvicorn --factory serving.app:create_app        # settings from SERVING_* variables
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from serving import errors, metrics
from serving.api import admin, models, page, predict, v2
from serving.api.gates import OPEN, gated
from serving.engine.pool import Pool
from serving.engine.registry import Registry
from serving.http.ingress import Service
from serving.logs import setup_logging
from serving.settings import Settings

log = logging.getLogger("serving")
# On shutdown, after uvicorn has drained HTTP (up to 30 s; gRPC keeps serving meanwhile): gRPC
# calls still in progress get this long to finish, so that the whole stop stays within the 35 s
# the images and manifests allow (docker run --stop-timeout 35, terminationGracePeriodSeconds).
GRPC_GRACE_S = 5.0

DESCRIPTION = """Predictions from the classic PyTorch starter models: MNIST digits (LeNet-5 and an
MLP), two Gaussian clusters of 2-D points, and a fitted y = x² curve. Every error answers JSON
`{"error": "<field>: <problem>", "field": "<field>"}`."""


def _warn_if_exposed(settings: Settings) -> None:
    try:
        loopback = ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = settings.host == "localhost"
    if not loopback and not settings.api_keys:
        log.warning(
            "listening on %s with no API key: anyone who can reach it can use it; "
            "set SERVING_API_KEYS",
            settings.host,
        )


async def _load_then_freeze(registry: Registry) -> None:
    """Load the models, then move everything alive so far (modules, models, the app) out of
    the garbage collector's sight: its full collections then scan only per-request objects,
    which keeps their pauses, and so the latency tail, short. A young collection every 10,000
    new objects rather than 700 runs every few dozen requests rather than every few: a little
    more throughput for no measurable memory (bench/results/soak.md)."""
    await registry.load_all()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def create_app(settings: Settings | None = None) -> Service:
    settings = settings or Settings()
    setup_logging(settings.log_level)
    _warn_if_exposed(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = Registry(settings)
        app.state.registry = registry
        app.state.decoder = Pool("decode", settings.decode_threads, settings.decode_queue)
        # Load in the background: /healthz answers at once, /readyz says 503 until loaded.
        app.state.loading = asyncio.create_task(_load_then_freeze(registry))
        if settings.workers > 1:
            # Workers share the port: one answering while it loads would refuse what its
            # siblings could serve and contradict their /readyz. So each listens (HTTP and
            # gRPC) only once its models are in, as gunicorn's workers load before they accept.
            await asyncio.shield(app.state.loading)
        grpc_server = None
        if settings.grpc_port:
            # Imported only when on: a service with gRPC off never loads grpc. Binding raises at
            # once on a taken port; with one worker, before the load has begun.
            from serving.grpc.server import GrpcServer

            grpc_server = GrpcServer(settings, lambda: registry, app.title, app.version)
            await grpc_server.start()
        app.state.grpc_port = grpc_server.port if grpc_server else None
        tasks = [app.state.loading]
        if settings.watch:
            tasks.append(asyncio.create_task(registry.watch()))
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(GRPC_GRACE_S)
            for task in tasks:
                task.cancel()
            app.state.decoder.close()
            await registry.close()

    app = Service(
        settings, title="starter-serve", version="0.1.0", description=DESCRIPTION, lifespan=lifespan
    )
    errors.install(app)
    app.add_api_route("/metrics", gated(OPEN)(metrics.render), include_in_schema=False)
    app.mount("/static", page.static_files, name="static")
    app.open([predict.router, models.router, v2.router, admin.router, page.router])
    return app
