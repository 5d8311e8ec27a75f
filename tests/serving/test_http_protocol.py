"""The uvicorn protocol `python -m serving` runs: one write per response, answers intact."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import orjson
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from serving.engine.infer import DISCONNECTED
from serving.http.protocol import FLUSH_AT, HttpToolsProtocol, JoinedWrites
from tests.serving.conftest import threaded_uvicorn


class Transport:
    """Records what reaches the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str | None:
        return f"info:{name}" if name == "peername" else None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_writes_in_one_loop_turn_reach_the_socket_as_one() -> None:
    async def main() -> Transport:
        raw = Transport()
        joined = JoinedWrites(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
        joined.write(b"body")
        assert raw.writes == []  # not yet: the loop turn is not over
        await asyncio.sleep(0)
        joined.write(b"next")
        await asyncio.sleep(0)
        assert joined.get_extra_info("peername") == "info:peername"  # the rest is the transport's
        return raw

    assert asyncio.run(main()).writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


def test_large_writes_go_at_once_and_close_sends_what_waits() -> None:
    async def main() -> Transport:
        raw = Transport()
        joined = JoinedWrites(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        joined.write(b"h")
        joined.write(b"x" * FLUSH_AT)  # uvicorn's flow control must see big bodies at once
        assert raw.writes == [b"h" + b"x" * FLUSH_AT]
        joined.write(b"last words")
        joined.close()
        assert raw.writes[-1] == b"last words" and raw.closed
        joined.write(b"too late")  # the peer is gone: dropped, not written to a closed socket
        await asyncio.sleep(0)
        return raw

    assert len(asyncio.run(main()).writes) == 2


def test_an_answer_goes_at_once_when_alone_and_at_the_end_of_the_turn_under_load() -> None:
    """Alone, waiting for the end of the loop turn only adds latency (~60 µs at c=1, measured);
    with other requests in progress, their answers go out together after the turn."""
    seen: dict[str, int] = {}
    release = asyncio.Event()
    raws: dict[str, Transport] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].strip("/")
        await receive()
        if name == "slow":
            await release.wait()
        length = [(b"content-length", b"%d" % len(name))]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        await send({"type": "http.response.body", "body": name.encode()})
        seen[name] = len(raws[name].writes)  # what reached the socket by the time send returned

    async def main() -> None:
        config = uvicorn.Config(app, log_level="warning")
        config.load()
        state = ServerState()

        def connect(name: str) -> HttpToolsProtocol:
            protocol = HttpToolsProtocol(config=config, server_state=state, app_state={})
            raws[name] = Transport()
            protocol.connection_made(raws[name])  # type: ignore[arg-type]
            return protocol

        connect("alone").data_received(request("/alone", b""))
        while "alone" not in seen:
            await asyncio.sleep(0)
        slow, busy = connect("slow"), connect("busy")
        slow.data_received(request("/slow", b""))
        busy.data_received(request("/busy", b""))  # answered while /slow is still in progress
        while "busy" not in seen:
            await asyncio.sleep(0)
        release.set()
        while len(seen) < 3 or not all(raw.writes for raw in raws.values()):
            await asyncio.sleep(0)

    asyncio.run(asyncio.wait_for(main(), 10))
    assert seen == {"alone": 1, "busy": 0, "slow": 1}
    for name, raw in raws.items():  # each answer in one write, status line to body
        assert len(raw.writes) == 1 and raw.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert raw.writes[0].endswith(b"\r\n\r\n" + name.encode()), raw.writes


def test_a_body_the_socket_would_refuse_fails_at_send_and_the_connection_still_closes() -> None:
    async def main() -> Transport:
        raw = Transport()
        joined = JoinedWrites(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        joined.write(b"headers")
        with pytest.raises(TypeError):
            joined.write("text, not bytes")  # type: ignore[arg-type]
        buffer = bytearray(b"reused")
        joined.write(buffer)  # type: ignore[arg-type]
        buffer[:] = b"XXXXXX"  # the app reuses its buffer: what was sent stays sent
        joined.close()
        return raw

    raw = asyncio.run(main())
    assert raw.writes == [b"headersreused"] and raw.closed


def test_a_hang_up_reaches_the_running_request_and_those_pipelined_behind_it() -> None:
    signals: list[asyncio.Future[None]] = []
    started = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        signals.append(scope["extensions"][DISCONNECTED])
        started.set()
        await asyncio.sleep(3600)  # still computing when the client leaves

    async def main() -> None:
        config = uvicorn.Config(app, log_level="warning")
        config.load()
        protocol = HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
        protocol.connection_made(Transport())  # type: ignore[arg-type]
        protocol.data_received(request("/slow", b"") + request("/queued", b""))
        await started.wait()
        running = signals[0]
        assert not running.done()
        protocol.connection_lost(None)
        assert running.done() and len(protocol.unanswered) == 2
        assert all(left.done() for left in protocol.unanswered)

    asyncio.run(asyncio.wait_for(main(), 10))


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what it saw: the path, the body, and whether the hang-up signal is there."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    left = scope.get("extensions", {}).get(DISCONNECTED)
    answer = orjson.dumps(
        {"path": scope["path"], "body": body.decode(), "signal": isinstance(left, asyncio.Future)}
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def request(path: str, body: bytes, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(),
        len(body),
        connection,
        body,
    )


def read_responses(sock: socket.socket, count: int) -> list[dict[str, object]]:
    data, answers = b"", []
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(rest) >= length:
                assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
                answers.append(orjson.loads(rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, "connection closed early"
        data += chunk
    return answers


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with threaded_uvicorn(echo_app, HttpToolsProtocol) as p:
        yield p


def test_keep_alive_and_pipelined_requests_are_answered_in_order(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request("/one", b"1"))
        assert read_responses(sock, 1) == [{"path": "/one", "body": "1", "signal": True}]
        sock.sendall(request("/two", b"2") + request("/three", b"3"))  # one packet, two requests
        assert [a["path"] for a in read_responses(sock, 2)] == ["/two", "/three"]


def test_a_large_body_is_answered_whole(port: int) -> None:
    big = b"y" * (3 * FLUSH_AT)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request("/big", big))
        assert read_responses(sock, 1)[0]["body"] == big.decode()


def test_connection_close_still_gets_its_answer_first(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request("/bye", b"!", close=True))
        assert read_responses(sock, 1)[0]["path"] == "/bye"
        assert sock.recv(1) == b""  # then the server closes
