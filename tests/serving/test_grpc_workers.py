"""Several uvicorn workers all serve the gRPC port: each binds it with SO_REUSEPORT (grpc.aio's
default on Linux), and the kernel spreads new connections over them. Read from /proc, so the
test needs no tool: which process holds each listening and each connected socket."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc

from tests.serving.conftest import free_port, live_server

LISTEN, ESTABLISHED = "0A", "01"


def sockets(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets (v4 and v6) on local `port` in `state`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.add(int(fields[9]))
    return found


def owners(inodes: set[int], pids: list[int]) -> Counter[int]:
    """How many of the sockets each of `pids` holds."""
    held: Counter[int] = Counter()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                held[pid] += 1
    return held


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_every_worker_serves_the_grpc_port(built_repo: Path) -> None:
    port = free_port()
    args = ("--grpc-port", str(port), "--workers", "2", "--models", "lenet")
    with live_server(built_repo, *args) as (_, proc):
        # /readyz answered from one worker; the other may still be starting: wait (bounded).
        deadline = time.monotonic() + 30
        while True:
            workers = [p for p in children(proc.pid) if owners(sockets(port, LISTEN), [p])]
            if len(workers) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(workers) == 2, "each worker listens on the gRPC port itself"
        channels = [
            grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(24)
        ]
        try:
            for channel in channels:  # one new connection each
                stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
                assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live  # loaded or not
            held = owners(sockets(port, ESTABLISHED), workers)
        finally:
            for channel in channels:
                channel.close()
    print(f"24 connections over 2 workers: {sorted(held.values())}")
    assert sum(held.values()) == 24
    assert len(held) == 2, held  # both took some (all 24 on one: chance 2 ** -23)
