"""What the front door (serving/http/ingress.py) does with each request: its id, its body, its
500 and its record.

- **Id**: the caller's X-Request-ID when it is a sane one, else a new one; echoed on the answer.
- **Body**: read in full, bounded in size (declared and streamed, chunked or not) and in time
  (the gap between two pieces, and the whole), as nginx's client_max_body_size,
  client_body_timeout and Envoy's request timeout bound it.
- **500**: a logged JSON answer naming the request id, for an exception nothing handled.
- **Record**: the Recorder counts each finished request by endpoint, model and status, and
  writes its access line when asked to.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid

from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from serving import metrics
from serving.errors import ApiError, BodyTooLarge, error_response
from serving.logs import access

log = logging.getLogger("serving")

PROCESS_ID = uuid.uuid4().hex[:12]  # request ids: this process's prefix and a counter
COUNTER = itertools.count(1)
SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Raised by the servers around us when a client leaves mid-request (Ray Serve cancels the
# request's task): a hang-up, not a fault. Named, so that ray is never imported here.
HANGUPS = {"TaskCancelledError", "ClientDisconnect", "RequestCancelledError"}
QUIET = {"/metrics", "/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"}
CLOSE = {"Connection": "close"}  # the rest of an unread body is not worth reading
TOO_SLOW = "the request body came too slowly"


def request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is a sane one, else a new id; kept in the scope's state."""
    given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
    rid = given if SAFE_ID.match(given) else f"{PROCESS_ID}-{next(COUNTER):x}"
    scope.setdefault("state", {})["request_id"] = rid
    return rid


# ---- the body ------------------------------------------------------------------------------
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


# ---- the end of it: a 500, the metrics and the access line ---------------------------------
def internal_error(e: Exception, rid: str, path: str) -> Response | None:
    """What to answer for an exception nothing handled: None for a client's hang-up (nobody to
    answer), else a logged JSON 500 that names the request id and nothing else."""
    if type(e).__name__ in HANGUPS:
        return None
    log.error("internal error: %s", type(e).__name__, extra={"request_id": rid, "endpoint": path})
    return error_response(500, f"internal error (request id {rid})")


class Recorder:
    """Counts a finished request by endpoint, model and status, and logs it when asked to."""

    def __init__(self, access_log: bool) -> None:
        self.access_log = access_log

    def record(self, scope: Scope, endpoint: str, status: int, started: float) -> None:
        if endpoint in QUIET:
            return
        state = scope["state"]
        seconds = time.perf_counter() - started
        counter, latency = metrics.REQUEST_CHILDREN[endpoint, state.get("model", ""), status]
        counter.inc()
        latency.observe(seconds)
        if self.access_log:
            access.info(
                "%s %s",
                scope["method"],
                scope["path"],
                extra={
                    "request_id": state["request_id"],
                    "endpoint": endpoint,
                    "status": status,
                    "model": state.get("model", ""),
                    "seconds": round(seconds, 6),
                },
            )
