"""grpc.health.v1 follows the registry's readiness (what Kubernetes' gRPC readiness probe
reads): NOT_SERVING while models load, SERVING once all are (at once, for the next probe),
NOT_SERVING again while stopping; Watch streams follow."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from serving.grpc.server import HEALTH_POLL_S, GrpcServer
from tests.serving.conftest import free_port, settings_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Registry:
    ready = False


def test_health_follows_readiness(tmp_path: Path) -> None:
    registry = Registry()
    settings = settings_for(tmp_path, grpc_port=free_port())

    async def run() -> list[int]:
        server = GrpcServer(settings, lambda: registry, "starter-serve", "0")  # type: ignore[arg-type]
        await server.start()
        seen = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            async def status() -> int:
                request = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
                return (await health.Check(request, timeout=5)).status

            seen.append(await status())
            registry.ready = True  # a probe right after sees it, without waiting for a poll
            seen.append(await status())
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            registry.ready = False  # and a Watch stream is told within a poll
            started = time.monotonic()
            async for answer in watch:
                if answer.status == NOT_SERVING:
                    break
            watch.cancel()
            assert time.monotonic() - started < 4 * HEALTH_POLL_S
            registry.ready = True
            stopping = asyncio.create_task(server.stop(2.0))
            await asyncio.sleep(0.05)
            try:
                seen.append(await status())
            except grpc.aio.AioRpcError as e:  # already closed: as good as not serving
                assert e.code() == grpc.StatusCode.UNAVAILABLE
                seen.append(NOT_SERVING)
            await stopping
        return seen

    assert asyncio.run(run()) == [NOT_SERVING, SERVING, NOT_SERVING]
