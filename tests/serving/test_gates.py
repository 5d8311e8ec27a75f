"""Every route passes the front door's gate (issue 17): a walk over all of the app's routes
proves each one asks for its key and refuses an oversized body before reading it; admission is
exact (max_in_flight in, the next one out), counted only once a body is in, and the upload
route is counted like the others. Real servers on sockets."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from serving.api.gates import OPEN, V2_INFER, body_limit, gated
from serving.app import create_app
from serving.engine.pool import Pool
from serving.errors import ApiError
from serving.http.ingress import FRAMEWORK, SEEN_PATH_BYTES, SEEN_PATHS, Routes, Target
from serving.http.protocol import MAX_PIPELINED
from tests.serving.conftest import live_server, settings_for
from tests.serving.slow_model import publish_slow_curve
from tests.serving.test_front_door import connect, post, read_answer

KEY, ADMIN = "user-key-123", "admin-key-456"
KEYS = {"SERVING_API_KEYS": KEY, "SERVING_ADMIN_KEY": ADMIN}


def targets(repo: Path) -> list[Target]:
    """Every route the app serves, as the front door sees it."""
    routes = create_app(settings_for(repo)).front.routes  # type: ignore[attr-defined]
    found = list(routes.exact.values()) + [t for _, t in routes.templated]
    return found + [t for _, t in routes.mounts]


def concrete(template: str) -> str:
    return template.replace("{name}", "lenet").replace("{version}", "1")


def test_a_route_without_a_gate_stops_the_app_from_starting() -> None:
    async def ungated() -> None: ...

    with pytest.raises(TypeError, match="has no gate"):
        Routes([Route("/new", ungated)])
    assert Routes([Route("/docs", ungated)]).exact["/docs"].gate is OPEN  # FastAPI's own pages


def test_the_paths_remembered_are_bounded_in_count_and_length() -> None:
    """The front door remembers matched paths; a client sending endless new ones (or long
    ones) cannot grow that memory past its bound, and a remembered answer is the same."""

    @gated(V2_INFER)
    async def infer() -> None: ...

    routes = Routes([Route("/v2/models/{name}/infer", infer, methods=["POST"])])
    for i in range(SEEN_PATHS + 50):
        target, params = routes.find(f"/v2/models/m{i}/infer")
        assert target.template == "/v2/models/{name}/infer" and params == {"name": f"m{i}"}
    assert len(routes.seen) == SEEN_PATHS
    long = "/v2/models/" + "x" * SEEN_PATH_BYTES + "/infer"
    fresh = Routes([Route("/v2/models/{name}/infer", infer, methods=["POST"])])
    assert fresh.find(long)[1] == {"name": "x" * SEEN_PATH_BYTES} and long not in fresh.seen
    assert fresh.find("/v2/models/a/infer") == fresh.find("/v2/models/a/infer")
    assert "/v2/models/a/infer" in fresh.seen


def test_the_walk_finds_every_route(built_repo: Path) -> None:
    templates = {t.template for t in targets(built_repo)}
    assert FRAMEWORK | {"/predict/digits/image", "/v2/models/{name}/infer", "/admin/reload"} <= (
        templates
    )
    assert len(templates) >= 25


@pytest.fixture(scope="module")
def keyed(built_repo: Path) -> Iterator[str]:
    with live_server(built_repo, env=KEYS) as (url, _):
        yield url


def test_every_route_asks_for_its_key(built_repo: Path, keyed: str) -> None:
    checked = {"predict": 0, "admin": 0, "open": 0}
    with httpx.Client(base_url=keyed, timeout=10) as c:
        for target in targets(built_repo):
            path = concrete(target.template)
            if target.template == "/static":
                path = "/static/app.js"
            method = sorted(target.methods - {"HEAD"} or {"GET"})[0]
            r = c.request(method, path)
            if target.gate.access == "open":
                assert r.status_code not in (401, 403), (path, r.status_code)
            else:
                assert r.status_code == 401 and r.json()["field"] == "authorization", path
                key = ADMIN if target.gate.access == "predict" else KEY  # the other key
                r = c.request(method, path, headers={"authorization": f"Bearer {key}"})
                assert r.status_code == 403, (path, r.status_code)
            checked[target.gate.access] += 1
    assert checked["predict"] >= 6 and checked["admin"] >= 1 and checked["open"] >= 15


def test_every_route_refuses_a_body_past_its_limit_unread(built_repo: Path, keyed: str) -> None:
    port = int(keyed.rsplit(":", 1)[1])
    settings = settings_for(built_repo)
    for target in targets(built_repo):
        if target.template == "/static":
            continue
        limit = body_limit(target.gate, settings, "lenet")
        key = ADMIN if target.gate.access == "admin" else KEY
        method = sorted(target.methods - {"HEAD"} or {"GET"})[0]
        with connect(port) as s:  # the headers only: the answer must come without the body
            s.sendall(
                f"{method} {concrete(target.template)} HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {limit + 1}\r\n\r\n".encode()
            )
            status, headers, _ = read_answer(s)
        assert status == 413 and headers["connection"] == "close", target.template


# ---- admission ---------------------------------------------------------------------------
IN_FLIGHT = 3


@pytest.fixture(scope="module")
def slow(built_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = Path(shutil.copytree(built_repo, tmp_path_factory.mktemp("slow") / "repo"))
    shutil.rmtree(root / "curve")
    publish_slow_curve(root, layers=24)
    env = {
        "SERVING_MAX_IN_FLIGHT": str(IN_FLIGHT),
        "SERVING_BODY_IDLE_TIMEOUT_S": "1",
    }
    with live_server(root, "--no-batching", env=env) as (url, _):
        yield int(url.rsplit(":", 1)[1])


def together(port: int, raws: list[bytes]) -> list[int]:
    """Send every request at once on its own connection; their statuses."""
    socks = [connect(port, timeout=30) for _ in raws]
    try:
        for s, raw in zip(socks, raws, strict=True):
            s.sendall(raw)
        return [read_answer(s)[0] for s in socks]
    finally:
        for s in socks:
            s.close()


CURVE = post("/predict/curve", b'{"x": [0.5]}')


def test_admission_lets_exactly_max_in_flight_in(slow: int) -> None:
    assert together(slow, [CURVE] * IN_FLIGHT) == [200] * IN_FLIGHT
    statuses = together(slow, [CURVE] * (IN_FLIGHT + 1))
    assert sorted(statuses) == [200] * IN_FLIGHT + [503], statuses


def test_the_upload_route_counts_against_admission(slow: int) -> None:
    upload = post("/predict/digits/image", b"--x--\r\n", "multipart/form-data; boundary=x")
    statuses = together(slow, [CURVE] * IN_FLIGHT + [upload])
    assert statuses[-1] == 503 and statuses[:-1] == [200] * IN_FLIGHT, statuses


def test_stalled_bodies_hold_no_slot(slow: int) -> None:
    stalled = []
    for _ in range(IN_FLIGHT * 10):  # headers and one byte of the body, then nothing
        s = connect(slow, timeout=10)
        s.sendall(CURVE[:-5])
        stalled.append(s)
    try:
        for _ in range(10):
            started = time.monotonic()
            with connect(slow, timeout=10) as s:
                s.sendall(CURVE)
                assert read_answer(s)[0] == 200
            assert time.monotonic() - started < 1.0
        assert all(read_answer(s)[0] == 408 for s in stalled)  # and they are let go
    finally:
        for s in stalled:
            s.close()


# ---- the upload pool ---------------------------------------------------------------------
def test_the_decode_pool_refuses_past_its_queue() -> None:
    async def main() -> list[object]:
        pool = Pool("decode", threads=1, queue=1)
        try:
            jobs = [pool.run(time.sleep, 0.3) for _ in range(3)]
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            pool.close()

    results = asyncio.run(main())
    refused = [r for r in results if isinstance(r, ApiError)]
    assert len(refused) == 1 and refused[0].status == 503
    assert refused[0].headers == {"Retry-After": "1"}


def test_too_many_connections_are_closed(built_repo: Path) -> None:
    with live_server(built_repo, env={"SERVING_MAX_CONNECTIONS": "4"}) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        held = [connect(port) for _ in range(4)]
        try:
            with connect(port) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                with pytest.raises((ConnectionError, OSError)):
                    read_answer(s)
            held.pop().close()
            time.sleep(0.2)
            with connect(port) as s:  # a place freed: served again
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                assert read_answer(s)[0] == 200
        finally:
            for s in held:
                s.close()


def test_a_client_that_pipelines_without_reading_is_cut_off(built_repo: Path) -> None:
    with live_server(built_repo) as (url, _), ThreadPoolExecutor(1) as pool:
        port = int(url.rsplit(":", 1)[1])
        with connect(port, timeout=30) as s:
            flood = pool.submit(s.sendall, post("/predict/curve", b'{"x": [0.5]}') * 20_000)
            with contextlib.suppress(OSError):  # cut off while still sending, or just after
                flood.result(timeout=30)
            answers = b""
            with contextlib.suppress(OSError):
                while chunk := s.recv(1 << 16):
                    answers += chunk
        assert answers.count(b"HTTP/1.1 200 ") <= MAX_PIPELINED + 2  # then it was closed
