"""The gRPC server: grpc.aio in the process and event loop that serve HTTP, started and stopped
by the app's lifespan (serving/app.py).

Besides inference.GRPCInferenceService it serves grpc.health.v1.Health (SERVING once every model
is loaded, for Kubernetes' gRPC probes; both for the whole server, "", and for the inference
service by name) and server reflection (grpcurl needs no .proto files).

Several uvicorn workers each start one of these on the same port: grpc.aio sets SO_REUSEPORT on
Linux (the channel option grpc.so_reuseport, on by default), so each binds it and the kernel
spreads new connections over them. A gRPC connection is long-lived, so it is the connections,
not the calls, that are spread (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from serving.engine.registry import Registry
from serving.grpc import protos
from serving.grpc.rpcs import Rpcs
from serving.grpc.servicer import Servicer
from serving.settings import Settings

log = logging.getLogger("serving")
HEALTH_POLL_S = 0.25  # how often readiness is pushed to Watch streams
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ReadinessHealth(health.aio.HealthServicer):
    """grpc.health.v1 whose status is the registry's readiness: read afresh by every Check (a
    probe right after the models load sees SERVING), pushed to Watch streams by a poll."""

    def __init__(self, ready: Callable[[], bool]) -> None:
        super().__init__()
        self.ready = ready
        self.serving: bool | None = None

    async def sync(self) -> None:
        now = self.ready()
        if now != self.serving:
            self.serving = now
            for service in ("", protos.SERVICE):
                await self.set(service, SERVING if now else NOT_SERVING)  # ignored once stopping

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> Any:
        await self.sync()
        return await super().Check(request, context)


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    def __init__(
        self, settings: Settings, registry: Callable[[], Registry], name: str, version: str
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.server = aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_body_bytes),
                ("grpc.so_reuseport", 1),  # grpc's default on Linux; said, since workers rely on it
            ]
        )
        self.rpcs = Rpcs(settings, registry, name, version)
        protos.add_servicer(Servicer(self.rpcs), self.server)
        self.health = ReadinessHealth(lambda: registry().ready)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (protos.SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(address(settings.host, settings.grpc_port))
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.health.sync()
        await self.server.start()
        self._watch = asyncio.create_task(self._follow_readiness())
        log.info("gRPC inference protocol on %s", address(self.settings.host, self.port))

    async def _follow_readiness(self) -> None:
        while True:
            await self.health.sync()
            await asyncio.sleep(HEALTH_POLL_S)

    async def stop(self, grace_s: float) -> None:
        """NOT_SERVING at once, calls in progress get `grace_s` to finish, then it closes."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
