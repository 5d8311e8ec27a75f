"""A connection's writes joined into one socket write per loop turn (serving/http/protocol.py).

uvicorn writes a response's status line and headers the moment the app sends
`http.response.start`, and its body on `http.response.body`: two send() calls, and two TCP
segments, for every small JSON answer. Here the writes of one loop turn reach the socket as one
(the way Netty's FlushConsolidationHandler holds flushes while reads are pending); past FLUSH_AT
bytes waiting they go at once, so large or streamed bodies still meet uvicorn's flow control.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

FLUSH_AT = 64 * 1024  # bytes waiting: write them now rather than at the end of the loop turn


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
