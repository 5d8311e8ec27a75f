"""Reading a request body at the front door: bounded in size (declared and streamed, chunked
or not) and in time (the gap between two pieces, and the whole), as nginx's
client_max_body_size, client_body_timeout and Envoy's request timeout bound it."""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope

from serving.errors import ApiError, BodyTooLarge

CLOSE = {"Connection": "close"}  # the rest of an unread body is not worth reading
TOO_SLOW = "the request body came too slowly"


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number (None when absent); 400 when it is not one."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            if not (value.isdigit() and len(value) <= 19):
                raise ApiError(400, "invalid Content-Length header", "content-length", CLOSE)
            return int(value)
    return None


def has_body(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"transfer-encoding" or (key == b"content-length" and value != b"0"):
            return True
    return False


async def read_body(
    scope: Scope, receive: Receive, limit: int, idle_s: float | None, total_s: float
) -> bytes:
    """The whole body, or 413 as soon as it is known to pass `limit` (from Content-Length,
    before a byte of it is read, so no `100 Continue` goes out for it), 408 when the client
    pauses longer than `idle_s` or takes longer than `total_s` in all, 499 if it leaves.

    `idle_s` None: the server bounds the body's time itself (serving/http/protocol.py does,
    at no cost to a body that came whole), so no timer is needed here."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    deadline = 0.0 if idle_s is None else asyncio.get_running_loop().time() + total_s
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await (receive() if idle_s is None else _next(receive, idle_s, deadline))
        if message["type"] == "http.disconnect":  # gone before it finished sending
            raise ApiError(499, "client closed the request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _next(receive: Receive, idle_s: float, deadline: float) -> Message:
    timeout_s = min(idle_s, deadline - asyncio.get_running_loop().time())
    try:
        async with asyncio.timeout(max(timeout_s, 0.0)):
            return await receive()
    except TimeoutError:
        raise ApiError(408, TOO_SLOW, "body", CLOSE) from None


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the body already read, then waits on the client as before."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
