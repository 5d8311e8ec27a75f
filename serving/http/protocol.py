"""uvicorn's httptools protocol, with two changes for the prediction hot path.

uvicorn writes a response's status line and headers the moment the app sends
`http.response.start`, and its body on `http.response.body`: two send() calls, and two TCP
segments, for every small JSON answer. Here a connection's writes are joined: a finished answer
goes out in one write at once when no other request is in progress, and otherwise at the end of
the event loop's turn, once every answer of that turn is built (the way Netty's
FlushConsolidationHandler holds flushes while reads are pending). Past 64 KiB waiting, writes go
at once, so large or streamed bodies still meet uvicorn's flow control. Measured with wrk on one
core, one digit (bench/results/serve.md for the full run): c=32 6,800 -> 7,600 req/s (joined
but always sent at once: ~6,900); c=1 p50 unchanged at ~0.41 ms (always at the end of the turn:
0.48 ms).

And each request's scope carries `scope["extensions"][DISCONNECTED]`, a future done the moment
its client hangs up (uvicorn's `connection_lost`), so a queued prediction is dropped without a
task per request waiting on `receive()` for the same news (serving/api/common.py). Under
any other server that key is absent and serving/api/common.py waits on `receive()` as before.
Everything else is uvicorn's own code.

`python -m serving` passes `http=HttpToolsProtocol` to uvicorn (its option for a protocol class).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from uvicorn.protocols.http import httptools_impl

from serving.api.common import DISCONNECTED

FLUSH_AT = 64 * 1024  # bytes waiting: write them now rather than at the end of the loop turn


class JoinedWrites:
    """A transport whose writes within one loop turn reach the socket as one."""

    __slots__ = ("_loop", "_pending", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

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
        try:
            self.flush()
        finally:
            self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = JoinedWrites(transport, self.loop)  # type: ignore[assignment]
        self.unanswered: collections.deque[asyncio.Future[None]] = collections.deque()

    def on_response_complete(self) -> None:  # uvicorn calls this right after the last write
        if self.unanswered:  # answers go in the order the requests came
            self.unanswered.popleft()
        if len(self.tasks) <= 1:  # no other request in progress: nothing to wait for, send now
            self.transport.flush()
        super().on_response_complete()

    def on_message_begin(self) -> None:
        super().on_message_begin()  # a new scope
        left: asyncio.Future[None] = self.loop.create_future()
        self.scope["extensions"] = {DISCONNECTED: left}
        self.unanswered.append(left)

    def connection_lost(self, exc: Exception | None) -> None:
        try:  # every request not yet answered: the one running and any pipelined behind it
            for left in self.unanswered:
                if not left.done():
                    left.set_result(None)
        finally:
            super().connection_lost(exc)
