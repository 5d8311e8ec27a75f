"""The front door on a real socket (issue 17): limits on the request head and body, timeouts,
admission counted only once a body is in, every route gated, JSON for every refusal.

Each limit is tried at its value (let through) and one past it (refused), so that a limit moved
off by one, or removed, fails here. The server is `python -m serving` as operators run it, with
short timeouts so the tests stay quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.api.gates import body_limit, predict_json
from serving.app import create_app
from serving.http.protocol import LINGER_S
from serving.settings import Settings
from tests.serving.conftest import live_server, settings_for

HEAD_TIMEOUT = 1.0
BODY_IDLE = 0.6
BODY_TOTAL = 2.0
ENV = {
    "SERVING_HEADER_TIMEOUT_S": str(HEAD_TIMEOUT),
    "SERVING_BODY_IDLE_TIMEOUT_S": str(BODY_IDLE),
    "SERVING_BODY_TIMEOUT_S": str(BODY_TOTAL),
}
LIMITS = Settings()


@pytest.fixture(scope="module")
def port(built_repo: Path) -> Iterator[int]:
    with live_server(built_repo, env=ENV) as (url, _):
        yield int(url.rsplit(":", 1)[1])


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answer(s: socket.socket, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers, body (by Content-Length; none when `head_only`)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    while not head_only and len(body) < int(headers.get("content-length", 0)):
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed {len(body)} bytes into the body")
        body += chunk
    return int(lines[0].split()[1]), headers, body


def ask(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(port) as s:
        s.sendall(raw)
        return read_answer(s)


def get(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: t", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post(path: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


# ---- the request head --------------------------------------------------------------------
def test_request_line_limit_at_and_past(port: int) -> None:
    n = LIMITS.max_request_line_bytes
    at = "/healthz?" + "a" * (n - len("/healthz?"))
    assert ask(port, get(at))[0] == 200
    status, headers, body = ask(port, get(at + "a"))
    assert status == 414 and headers["content-type"] == "application/json"
    assert str(n) in json.loads(body)["error"]


def test_header_line_limit_at_and_past(port: int) -> None:
    n = LIMITS.max_header_bytes
    assert ask(port, get("/healthz", "x-a: " + "b" * (n - 3)))[0] == 200
    status, _, body = ask(port, get("/healthz", "x-a: " + "b" * (n - 2)))
    assert status == 431 and "'x-a'" in json.loads(body)["error"]


def test_header_count_limit_at_and_past(port: int) -> None:
    n = LIMITS.max_headers  # Host is one of them
    assert ask(port, get("/healthz", *(f"x-{i}: 1" for i in range(n - 1))))[0] == 200
    status, _, body = ask(port, get("/healthz", *(f"x-{i}: 1" for i in range(n))))
    assert status == 431 and f"more than {n} header lines" in json.loads(body)["error"]


def test_whole_head_limit_at_and_past(port: int) -> None:
    n = LIMITS.max_head_bytes
    base = len(get("/healthz", *(f"x-{i}: " for i in range(5))))
    room = n - base  # spread over 5 headers, each under the per-line limit
    values = [room // 5 + (1 if i < room % 5 else 0) for i in range(5)]
    at = get("/healthz", *(f"x-{i}: " + "v" * values[i] for i in range(5)))
    assert len(at) == n and ask(port, at)[0] == 200
    past = get("/healthz", *(f"x-{i}: " + "v" * (values[i] + (i == 0)) for i in range(5)))
    assert ask(port, past)[0] == 431


def test_a_header_that_never_ends_is_cut_before_64_kib(port: int) -> None:
    with connect(port) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ")
        sent, answer = 0, b""
        s.setblocking(False)
        while not answer and sent < 1 << 20:  # 4 KiB at a time until the server answers
            s.sendall(b"a" * 4096)
            sent += 4096
            time.sleep(0.002)
            with contextlib.suppress(BlockingIOError):
                answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 431 ") and sent < 64 * 1024, (sent, answer[:40])
        s.settimeout(LINGER_S + 2)  # what still comes is dropped, then the connection closes
        started = time.monotonic()
        with contextlib.suppress(OSError):
            while s.recv(65536):
                pass
        assert time.monotonic() - started < LINGER_S + 1


def test_header_timeout(port: int) -> None:
    with connect(port) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # and never the blank line
        s.settimeout(HEAD_TIMEOUT / 2)
        with pytest.raises(TimeoutError):  # still waiting for the rest, as it should
            s.recv(1)
        s.settimeout(HEAD_TIMEOUT * 3)
        status, _, body = read_answer(s)
        assert status == 408 and "head" in json.loads(body)["error"] and closed(s)


def test_a_header_sent_a_byte_at_a_time_is_cut_at_the_header_timeout(port: int) -> None:
    with connect(port) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        s.setblocking(False)
        answer = b""
        while not answer and time.monotonic() - started < HEAD_TIMEOUT * 5:
            s.sendall(b"X")
            time.sleep(0.1)
            with contextlib.suppress(BlockingIOError):
                answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert HEAD_TIMEOUT * 0.9 < time.monotonic() - started < HEAD_TIMEOUT + 1


def test_an_idle_connection_is_closed_at_the_header_timeout(port: int) -> None:
    with connect(port, timeout=HEAD_TIMEOUT * 3) as s:
        started = time.monotonic()
        assert closed(s) and time.monotonic() - started < HEAD_TIMEOUT * 2


def test_malformed_request_answers_json_400(port: int) -> None:
    status, headers, body = ask(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400 and headers["content-type"] == "application/json"
    assert "malformed" in json.loads(body)["error"]


# ---- the body ----------------------------------------------------------------------------
POINTS_LIMIT = body_limit(predict_json("points"), LIMITS)


def padded(size: int) -> bytes:
    """A JSON points body of exactly `size` bytes (spaces are JSON whitespace)."""
    body = b'{"points": [[1, 2]]}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_body_limit_at_and_past_from_content_length(port: int) -> None:
    assert ask(port, post("/predict/points", padded(POINTS_LIMIT)))[0] == 200
    with connect(port) as s:  # the headers alone: the answer must not wait for the body
        head = post("/predict/points", padded(POINTS_LIMIT + 1)).split(b"\r\n\r\n")[0]
        s.sendall(head + b"\r\nExpect: 100-continue\r\n\r\n")
        status, headers, body = read_answer(s)
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["field"] == "body"


def chunked(path: str, parts: list[bytes]) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + body + b"0\r\n\r\n"


def test_body_limit_at_and_past_while_streaming_chunked(port: int) -> None:
    body = padded(POINTS_LIMIT)
    parts = [body[i : i + 10_000] for i in range(0, len(body), 10_000)]
    assert ask(port, chunked("/predict/points", parts))[0] == 200
    parts[-1] = parts[-1][:-1] + b" }"
    assert ask(port, chunked("/predict/points", parts))[0] == 413


def test_a_100_mb_upload_is_refused_before_a_byte_is_read(port: int) -> None:
    head = (
        "POST /predict/digits/image HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000000\r\n\r\n"
    )
    with connect(port) as s:
        s.sendall(head.encode())
        status, _, body = read_answer(s)  # not "100 Continue"
    assert status == 413 and str(LIMITS.max_upload_bytes) in json.loads(body)["error"]


def test_body_idle_timeout(port: int) -> None:
    with connect(port) as s:
        s.sendall(post("/predict/points", b'{"points": [[1, 2]]}')[:-5])
        started = time.monotonic()
        status, _, body = read_answer(s)
        waited = time.monotonic() - started
    assert status == 408 and json.loads(body)["field"] == "body"
    assert BODY_IDLE * 0.8 < waited < BODY_IDLE + 1


def test_body_total_timeout(port: int) -> None:
    raw = post("/predict/points", padded(400))
    with connect(port) as s:
        s.sendall(raw[:-300])
        started = time.monotonic()
        s.setblocking(False)
        answer = b""
        for byte in raw[-300:]:  # a byte every BODY_IDLE / 3: never idle, never done in time
            s.sendall(bytes([byte]))
            time.sleep(BODY_IDLE / 3)
            with contextlib.suppress(BlockingIOError):
                if answer := s.recv(65536):
                    break
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:40]
    assert BODY_TOTAL * 0.9 < time.monotonic() - started < BODY_TOTAL + 1


# ---- the rest ----------------------------------------------------------------------------
def test_head_works_where_get_does(port: int) -> None:
    for path in ("/healthz", "/readyz", "/models", "/v2", "/v2/models/lenet", "/metrics", "/"):
        with connect(port) as s:
            s.sendall(get(path))
            got = read_answer(s)[0]
            s.sendall(get(path).replace(b"GET", b"HEAD", 1))
            status, headers, _ = read_answer(s, head_only=True)
            s.settimeout(0.2)
            with pytest.raises(TimeoutError):  # no body follows a HEAD answer
                s.recv(1)
        assert status == got == 200, path
        assert int(headers.get("content-length", "1")) > 0 or "transfer-encoding" in headers


def test_readyz_says_per_model(port: int) -> None:
    status, _, body = ask(port, get("/readyz"))
    models = json.loads(body)["models"]
    assert status == 200 and models["lenet"] == {"state": "ready", "version": "1"}


def test_under_another_server_the_front_door_bounds_the_body_itself(built_repo: Path) -> None:
    """Without our protocol (Ray Serve's proxy, a test client) the body timeouts are the
    front door's own: a body that stalls is answered 408 all the same."""

    async def main() -> list[dict]:
        app = create_app(settings_for(built_repo, body_idle_timeout_s=BODY_IDLE))
        sent: list[dict] = []
        calls = 0

        async def receive() -> dict:
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": b'{"points"', "more_body": True}
            await asyncio.sleep(3600)  # the rest never comes
            return {}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/predict/points",
            "headers": [(b"content-type", b"application/json")],
            "query_string": b"",
            "state": {},
        }
        async with app.router.lifespan_context(app):
            started = time.monotonic()
            await asyncio.wait_for(app(scope, receive, send), 10)
            assert BODY_IDLE * 0.8 < time.monotonic() - started < BODY_IDLE + 1
        return sent

    sent = asyncio.run(main())
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["field"] == "body"
