"""uvicorn's httptools protocol, with what a front door needs that uvicorn leaves out.

- **Head limits**, as nginx sets them: the request line (414), each header line, their count
  and the whole head (431); bytes reach the parser only while the head fits. (uvicorn has none:
  a header that never ends is buffered, and re-joined quadratically, for as long as it comes.)
- **Timeouts**: the head's (from the connection or a request's first byte; uvicorn has none
  before a first response), a body's longest gap and whole time: past either, 408 and close. A
  body that came whole with its headers (most do) costs no timer.
- **Bounds**: past `max_connections` a new connection is closed at once; past MAX_PIPELINED
  unanswered requests, the client is disconnected.
- **JSON errors** in the service's one shape for what the server itself refuses.
- **Lingering close**: a refused client's answer is sent, the write side shut, and what still
  comes is read and dropped for LINGER_S, so the client reads the answer instead of a reset.
- **Joined writes** (JoinedWrites): a response's head and body, two send() calls in uvicorn,
  reach the socket as one write per loop turn (as Netty's FlushConsolidationHandler), at once
  past FLUSH_AT bytes or when no other request is in progress.
- **A hang-up signal**: `scope["extensions"][DISCONNECTED]` (the engine's key), a future done
  the moment the client hangs up, so a queued prediction is dropped without a task per request
  waiting on `receive()`.

It subclasses uvicorn's HttpToolsProtocol, which is not a public interface: it is written
against uvicorn PINNED (pyproject pins it), the tests check what it relies on, and
`python -m serving` falls back to uvicorn's own protocol, with a warning, under another version.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http import httptools_impl

from serving.engine.infer import DISCONNECTED
from serving.errors import error_bytes
from serving.http.request import TOO_SLOW
from serving.settings import Settings

PINNED = "0.55.0"
LINGER_S = 2.0  # how long the rest of a refused request is read and dropped
HEAD_PIECE = 4096  # a large read is fed to the parser in pieces of this size while in a head
MAX_PIPELINED = 32  # requests one connection may have waiting behind the one being answered
FLUSH_AT = 64 * 1024  # bytes waiting: write them now rather than at the end of the loop turn
_SETTINGS: dict[int, Settings] = {}  # per uvicorn Config: each server's, found once


def settings_of(config: Config) -> Settings:
    """The Service's settings, from the app a uvicorn Config loaded (through any middleware it
    added; the app keeps them in app.state.settings), for the limits here; defaults when the
    app is not ours."""
    found = _SETTINGS.get(id(config))
    if found is None:
        app: Any = config.loaded_app
        for _ in range(10):
            found = getattr(getattr(app, "state", None), "settings", None)
            if found is not None or not hasattr(app, "app"):
                break
            app = app.app
        found = _SETTINGS[id(config)] = found if isinstance(found, Settings) else Settings()
    return found


class Refused(Exception):
    """Raised from a parser callback: answer `status` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class JoinedWrites:
    """A transport whose writes within one loop turn reach the socket as one. `close` asks
    `linger` first: when it answers True the protocol closes the socket itself, later."""

    __slots__ = ("_closed", "_linger", "_loop", "_pending", "_size", "_transport")

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        linger: Callable[[], bool] = lambda: False,
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._linger = linger
        self._pending: list[bytes] = []
        self._size = 0
        self._closed = False

    def write(self, data: bytes) -> None:
        if not isinstance(data, bytes):  # what the transport would refuse raises here, as there;
            data = bytes(memoryview(data))  # a buffer the app may reuse is copied
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._size = self._pending, [], 0
        if not self._transport.is_closing():  # the peer left: nothing to send it
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._closed = True
        try:
            self.flush()
        finally:
            if not self._linger():
                self._transport.close()

    def is_closing(self) -> bool:
        return self._closed or self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits = settings_of(config)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:  # nginx: worker_connections
            transport.abort()
        self.socket = transport
        self.transport = JoinedWrites(transport, self.loop, self._linger)  # type: ignore[assignment]
        self.unanswered: collections.deque[asyncio.Future[None]] = collections.deque()
        self.reading_head = True  # between a request's first byte (or none yet) and its headers
        self.head_bytes = 0
        self.requests_begun = 0
        self.refusal: Refused | None = None
        self.lingering = False
        self.body_timer: asyncio.TimerHandle | None = None
        self.body_started = self.last_body = 0.0
        # One timer for the heads of this connection, not one per request: it is left running
        # when a head completes, and on firing looks at the head in progress (if any) then.
        self.head_started: float | None = self.loop.time()  # None: no head being read
        self.head_timer: asyncio.TimerHandle | None = self.loop.call_at(
            self.head_started + self.limits.header_timeout_s, self._head_timed_out
        )

    # ---- reading -------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.lingering:  # the rest of a refused request: dropped
            return
        self._feed(data)
        if not self.reading_head and self.body_timer is None and not self.transport.is_closing():
            # A body still to come (most come whole, with their headers: no timer for them).
            self.body_started = self.last_body = self.loop.time()
            self.body_timer = self.loop.call_later(
                self.limits.body_idle_timeout_s, self._body_check
            )

    def _feed(self, data: bytes) -> None:
        """To the parser, never more than the head limit allows. Most reads are fed whole; a
        read larger than the room left for the head goes in pieces, counted as they go."""
        limit = self.limits.max_head_bytes
        while data and not self.transport.is_closing():
            if not self.reading_head:  # a body (and whatever follows it): as it is
                super().data_received(data)
                return
            room = limit - self.head_bytes
            if len(data) <= room:
                self.head_bytes += len(data)
                super().data_received(data)
                return
            if room <= 0:
                self._refuse(431, f"the request head is over {limit} bytes")
                return
            piece, data = data[: min(room, HEAD_PIECE)], data[min(room, HEAD_PIECE) :]
            begun = self.requests_begun
            super().data_received(piece)
            if self.reading_head:  # a new request's head began in the piece: at most all of it
                fed = len(piece)
                self.head_bytes = fed if self.requests_begun != begun else self.head_bytes + fed

    def eof_received(self) -> bool | None:
        if self.lingering:  # the client has stopped sending: done
            self.socket.close()
        return None

    def on_message_begin(self) -> None:
        super().on_message_begin()  # a new scope
        left: asyncio.Future[None] = self.loop.create_future()
        self.scope["extensions"] = {DISCONNECTED: left}
        self.unanswered.append(left)
        self.requests_begun += 1
        self.head_started = self.loop.time()
        if self.head_timer is None:
            self.head_timer = self.loop.call_at(
                self.head_started + self.limits.header_timeout_s, self._head_timed_out
            )

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_request_line_bytes:
            self._refuse_in_parser(
                414, f"the request target is over {self.limits.max_request_line_bytes} bytes"
            )

    def on_headers_complete(self) -> None:
        # The header lines are counted and measured once the head is in (uvicorn has kept
        # them), not one call each: the head's own limit (see _feed) bounds them meanwhile.
        limits = self.limits
        if len(self.headers) > limits.max_headers:
            self._refuse_in_parser(431, f"more than {limits.max_headers} header lines")
        for name, value in self.headers:
            if len(name) + len(value) > limits.max_header_bytes:
                shown = name[:64].decode("latin-1")
                self._refuse_in_parser(
                    431, f"header {shown!r} is over {limits.max_header_bytes} bytes"
                )
        self.reading_head = False
        self.head_bytes = 0
        self.head_started = None  # the head timer, when it fires, finds nothing to time out
        super().on_headers_complete()
        if len(self.pipeline) > MAX_PIPELINED:  # a client that sends and never reads
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self.body_timer is not None:  # a body that came whole with its head is not timed
            self.last_body = self.loop.time()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head = True  # what comes next is the next request's head
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    # ---- answering -------------------------------------------------------------------------
    def on_response_complete(self) -> None:  # uvicorn calls this right after the last write
        if self.unanswered:  # answers go in the order the requests came
            self.unanswered.popleft()
        if len(self.tasks) <= 1:  # no other request in progress: nothing to wait for, send now
            self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:  # uvicorn: the parser refused the bytes
        refusal = self.refusal or Refused(400, "malformed HTTP request")
        self.transport.write(error_bytes(refusal.status, refusal.message))
        self.transport.close()

    def _refuse_in_parser(self, status: int, message: str) -> None:
        self.refusal = Refused(status, message)
        raise self.refusal  # httptools stops; uvicorn then calls send_400_response

    def _refuse(self, status: int, message: str) -> None:
        self.refusal = Refused(status, message)
        self.send_400_response(message)

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.head_started is None or not self.reading_head or self.transport.is_closing():
            return  # no head being read: the next request's first byte sets the timer again
        due = self.head_started + self.limits.header_timeout_s
        if due > self.loop.time():  # a later head than the one the timer was set for
            self.head_timer = self.loop.call_at(due, self._head_timed_out)
            return
        if self.head_bytes:
            self._refuse(408, f"the request head took over {self.limits.header_timeout_s:g} s")
        else:  # nothing was asked: nothing to answer
            self.transport.close()

    def _body_check(self) -> None:
        """Past the idle gap or the whole body's time: 408, and the app hears a hang-up."""
        self.body_timer = None
        if self.reading_head or self.transport.is_closing():
            return
        now, s = self.loop.time(), self.limits
        left = min(self.last_body + s.body_idle_timeout_s, self.body_started + s.body_timeout_s)
        if left > now:
            self.body_timer = self.loop.call_at(left, self._body_check)
            return
        cycle = self.cycle
        if not cycle.response_started:
            self.transport.write(error_bytes(408, TOO_SLOW, "body"))
        cycle.disconnected = True  # what the app sends from now on goes nowhere
        cycle.message_event.set()
        self.transport.close()

    def _linger(self) -> bool:
        """Whether to keep reading (and dropping) for a moment before closing: when the client
        may still be sending the request being refused."""
        if self.lingering:
            return True
        cycle = self.cycle
        sending = (self.reading_head and self.head_bytes > 0) or (
            cycle is not None and cycle.more_body and not cycle.disconnected
        )
        if not sending or self.socket.is_closing() or not self.socket.can_write_eof():
            return False
        self.lingering = True
        self.socket.write_eof()
        self.socket.resume_reading()
        self.loop.call_later(LINGER_S, self.socket.close)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self.head_timer, self.body_timer):
            if timer is not None:
                timer.cancel()
        self.head_timer = self.body_timer = None
        try:  # every request not yet answered: the one running and any pipelined behind it
            for left in self.unanswered:
                if not left.done():
                    left.set_result(None)
        finally:
            super().connection_lost(exc)
