"""Front-door behaviours a deliberate break (a mutant) showed no other test holding: the
header timer armed again for each request on a kept-alive connection, the pipelining cap on
its own (without the head limit a large flood also trips), lingering close, admission checked
again once a body is in, and a model still loading reported as loading."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from serving.engine.registry import Registry
from serving.http.protocol import LINGER_S, MAX_PIPELINED
from serving.settings import Settings
from tests.serving.conftest import live_server, settings_for
from tests.serving.slow_model import publish_slow_curve
from tests.serving.test_front_door import ENV, HEAD_TIMEOUT, connect, get, post, read_answer

IN_FLIGHT = 3
CURVE = post("/predict/curve", b'{"x": [0.5]}')


@pytest.fixture(scope="module")
def port(built_repo: Path) -> Iterator[int]:
    with live_server(built_repo, env=ENV) as (url, _):
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def slow(built_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = Path(shutil.copytree(built_repo, tmp_path_factory.mktemp("slow") / "repo"))
    shutil.rmtree(root / "curve")
    publish_slow_curve(root, layers=24)
    env = {"SERVING_MAX_IN_FLIGHT": str(IN_FLIGHT), "SERVING_BODY_IDLE_TIMEOUT_S": "3"}
    with live_server(root, "--no-batching", env=env) as (url, _):
        yield int(url.rsplit(":", 1)[1])


def test_the_header_timeout_is_armed_again_for_the_next_request(port: int) -> None:
    with connect(port, timeout=HEAD_TIMEOUT * 3) as s:
        s.sendall(get("/healthz"))
        assert read_answer(s)[0] == 200  # kept alive: the next request's head is timed anew
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # and never the blank line
        started = time.monotonic()
        status, _, body = read_answer(s)
        waited = time.monotonic() - started
    assert status == 408 and "head" in json.loads(body)["error"]
    assert HEAD_TIMEOUT * 0.8 < waited < HEAD_TIMEOUT + 1


def test_pipelining_past_the_cap_in_one_small_write_is_cut_off(port: int) -> None:
    """Small requests in one write that fits the head limit: only the pipelining cap stops
    them (a large flood is also cut by the head limit, which hides a missing cap)."""
    one = get("/healthz")
    for count, answered in ((MAX_PIPELINED, True), (MAX_PIPELINED * 2, False)):
        assert len(one) * count < Settings().max_head_bytes
        with connect(port, timeout=10) as s:
            s.sendall(one * count)
            answers = b""
            with contextlib.suppress(OSError):
                while chunk := s.recv(1 << 16):
                    answers += chunk
                    if answers.count(b"HTTP/1.1 200 ") == count:
                        break
        assert (answers.count(b"HTTP/1.1 200 ") == count) is answered, count


def test_pipelined_heads_larger_than_the_head_limit_together_are_each_served(port: int) -> None:
    """The head limit is per request: a read holding many whole heads, more bytes than one
    head may have, is not refused."""
    one = get("/healthz", "x-pad: " + "p" * 2000)
    n = MAX_PIPELINED  # within the pipelining cap
    assert len(one) * n > Settings().max_head_bytes
    answers = b""
    with connect(port) as s:
        s.sendall(one * n)
        while answers.count(b"HTTP/1.1 ") < n and (chunk := s.recv(1 << 16)):
            answers += chunk
    assert answers.count(b"HTTP/1.1 200 OK\r\n") == n, answers[:200]


def test_a_refused_body_still_coming_gets_its_answer_then_a_clean_end(port: int) -> None:
    """Lingering close: the 413 is followed by the end of the stream, not a reset, while the
    client is still sending the body the server never reads."""
    size = 8 * 1024 * 1024
    head = post("/predict/points", b"").replace(b"Content-Length: 0", b"Content-Length: %d" % size)
    with connect(port, timeout=5) as s, ThreadPoolExecutor(1) as pool:
        flood = pool.submit(s.sendall, head + b" " * size)
        status, headers, _ = read_answer(s)
        assert status == 413 and headers["connection"] == "close"
        assert s.recv(65536) == b""  # a reset (ConnectionResetError) here: no lingering close
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            flood.result(timeout=LINGER_S + 5)


def metrics(port: int) -> str:
    with connect(port) as s:
        s.sendall(get("/metrics"))
        return read_answer(s)[2].decode()


def test_a_body_that_ends_when_the_slots_are_full_is_refused(slow: int) -> None:
    """Admission is checked again once the body is in: a request let past the first check
    while its body was still coming is refused if the slots filled meanwhile."""
    with connect(slow, timeout=30) as late:
        late.sendall(CURVE[:-5])  # past the check before the body: nothing is in flight
        time.sleep(0.2)
        busy = [connect(slow, timeout=30) for _ in range(IN_FLIGHT)]
        try:
            for s in busy:
                s.sendall(CURVE)
            deadline = time.monotonic() + 10  # until the slots are taken, as /metrics says
            while f"serving_in_flight {IN_FLIGHT}.0" not in metrics(slow):
                assert time.monotonic() < deadline, "the slow requests never filled the slots"
                time.sleep(0.005)
            late.sendall(CURVE[-5:])
            assert read_answer(late)[0] == 503
            assert [read_answer(s)[0] for s in busy] == [200] * IN_FLIGHT
        finally:
            for s in busy:
                s.close()


def test_when_the_slots_are_full_a_body_is_refused_before_it_is_read(slow: int) -> None:
    """Admission is also checked before the body: with every slot taken, a request that asks
    `Expect: 100-continue` is answered 503 at once, never invited to send its body."""
    busy = [connect(slow, timeout=30) for _ in range(IN_FLIGHT)]
    try:
        for s in busy:
            s.sendall(CURVE)
        deadline = time.monotonic() + 10
        while f"serving_in_flight {IN_FLIGHT}.0" not in metrics(slow):
            assert time.monotonic() < deadline, "the slow requests never filled the slots"
            time.sleep(0.005)
        head = CURVE.split(b"\r\n\r\n")[0] + b"\r\nExpect: 100-continue\r\n\r\n"
        with connect(slow, timeout=30) as asking:
            asking.sendall(head)  # the headers only
            status, headers, _ = read_answer(asking)
        assert status == 503 and headers["connection"] == "close"
        assert [read_answer(s)[0] for s in busy] == [200] * IN_FLIGHT
    finally:
        for s in busy:
            s.close()


@pytest.mark.anyio
async def test_a_model_still_loading_is_neither_ready_nor_said_ready(repo: Path) -> None:
    registry = Registry(settings_for(repo, models=["curve"]))
    release = threading.Event()
    build = registry._build

    def slow_build(name: str, version: int | None) -> Any:
        release.wait(10)
        return build(name, version)

    registry._build = slow_build  # type: ignore[method-assign]
    loading = asyncio.ensure_future(registry.load("curve"))
    try:
        while "curve" not in registry.loading:
            await asyncio.sleep(0.01)
        assert not registry.ready
        assert registry.states()["curve"] == {"state": "loading"}
    finally:
        release.set()
        await loading
    try:
        assert registry.ready and registry.states()["curve"]["state"] == "ready"
    finally:
        await registry.close()
