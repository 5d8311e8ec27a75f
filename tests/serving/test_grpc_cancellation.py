"""A gRPC call cancelled by its client's deadline is never computed if it was still waiting, as
over HTTP (tests/serving/test_cancellation.py); and past max_in_flight calls are refused at once.

Real sockets: uvicorn runs the app (and with it the gRPC server) in a thread of this process,
so the test records exactly which inputs the model computed and when, while 200 gRPC calls each
carry a 200 ms deadline: long enough for most to reach the queue behind the slow model, which
then must drop them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
from fastapi import FastAPI
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from serving.app import create_app
from tests.serving.conftest import free_port, settings_for, threaded_uvicorn
from tests.serving.slow_model import publish_slow_curve, record_computed

CALLS, DEADLINE_S, BATCH = 200, 0.2, 4

# The impatient clients run in a process of their own (grpc.aio, one channel): every call gets
# a 200 ms deadline. It prints, for each call that ran out of time, when it did (the system-wide
# monotonic clock), and how many were answered.
CROWD = """
import asyncio, json, sys, time
import grpc
from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc
address, n, deadline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
gone, answered = {}, []
async def impatient(stub, i):
    request = pb.ModelInferRequest(model_name="curve")
    x = request.inputs.add(name="x", datatype="FP32", shape=[1, 1])
    x.contents.fp32_contents.append(i / 1000)
    try:
        await stub.ModelInfer(request, timeout=deadline)
        answered.append(i)
    except grpc.aio.AioRpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
        gone[i] = time.monotonic()
async def main():
    async with grpc.aio.insecure_channel(address) as channel:
        await channel.channel_ready()
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        await asyncio.gather(*(impatient(stub, i) for i in range(n)))
asyncio.run(main())
print(json.dumps({"gone": gone, "answered": answered}))
"""


@contextlib.contextmanager
def grpc_service(app: FastAPI) -> Iterator[tuple[str, str]]:
    """The app under uvicorn in a thread, models loaded; its HTTP URL and gRPC address."""
    with threaded_uvicorn(app) as port:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", f"127.0.0.1:{app.state.grpc_port}"


def test_calls_past_their_deadline_are_not_computed(tmp_path: Path) -> None:
    publish_slow_curve(tmp_path, layers=24)
    settings = settings_for(
        tmp_path, models=["curve"], max_batch_size=BATCH, max_in_flight=1000, grpc_port=free_port()
    )
    app = create_app(settings)
    with grpc_service(app) as (url, address):
        batcher = app.state.registry.entries["curve"].batcher
        computed = record_computed(batcher)  # (call number, when its batch started)
        crowd = subprocess.run(
            [sys.executable, "-c", CROWD, address, str(CALLS), str(DEADLINE_S)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        out = json.loads(crowd.stdout)
        gone_at = {int(k): v for k, v in out["gone"].items()}
        left = time.monotonic()
        while batcher.queued_items and time.monotonic() - left < 1.0:
            time.sleep(0.01)
        depth_after = batcher.queued_items
        back_within = time.monotonic() - left
        time.sleep(0.5)  # a batch already running when its calls ran out of time may finish
        metrics = httpx.get(f"{url}/metrics").text
        gone_metric = next(
            (
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith('serving_rejected_total{model="curve",reason="client_gone"}')
            ),
            0.0,
        )
        after_deadline = [i for i, t in computed if i in gone_at and t > gone_at[i]]
        print(
            f"{CALLS} calls with a {DEADLINE_S * 1000:.0f} ms deadline: {len(gone_at)} ran out "
            f"of time, {len(out['answered'])} answered; the model computed {len(computed)} "
            f"inputs, {len(after_deadline)} after their deadline; {batcher.stats.cancelled} "
            f"left the queue uncomputed; queue depth back to {depth_after} in "
            f"{back_within:.3f} s; serving_rejected_total client_gone {gone_metric:g}"
        )
    assert len(gone_at) > CALLS * 0.9  # the model really was too slow for them
    # As over HTTP: at most the one batch formed while the cancellations were being read.
    assert len(after_deadline) <= BATCH, after_deadline
    assert len(computed) < CALLS / 4  # most of the work was never done
    assert batcher.stats.cancelled > 0  # some reached the queue, and left it uncomputed
    # ... told by the `gone` future (the engine's hang-up signal), not by a shutdown
    assert gone_metric >= batcher.stats.cancelled
    assert depth_after == 0 and back_within < 1.0


def test_past_max_in_flight_calls_are_refused_at_once(tmp_path: Path) -> None:
    publish_slow_curve(tmp_path, layers=24)
    settings = settings_for(tmp_path, models=["curve"], max_in_flight=2, grpc_port=free_port())
    app = create_app(settings)

    async def crowd(address: str) -> list[grpc.StatusCode]:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

            async def one(i: int) -> grpc.StatusCode:
                request = pb.ModelInferRequest(model_name="curve")
                t = request.inputs.add(name="x", datatype="FP32", shape=[1, 1])
                t.contents.fp32_contents.append(i / 10)
                try:
                    await stub.ModelInfer(request, timeout=30)
                except grpc.aio.AioRpcError as e:
                    assert "busy" in (e.details() or "")
                    return e.code()
                return grpc.StatusCode.OK

            return await asyncio.gather(*(one(i) for i in range(6)))

    with grpc_service(app) as (_, address):
        codes = asyncio.run(crowd(address))
    assert codes.count(grpc.StatusCode.OK) >= 2, codes
    assert codes.count(grpc.StatusCode.UNAVAILABLE) >= 1, codes
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
