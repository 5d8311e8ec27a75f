"""Request ids, access metrics and structured JSON logs.

RequestContext is plain ASGI middleware (no BaseHTTPMiddleware: it would copy every body and
break client-disconnect detection). It takes the caller's X-Request-ID (or makes one), echoes it
on the answer, and counts the request by endpoint, model and status.
"""

from __future__ import annotations

import itertools
import logging
import re
import sys
import time
import uuid
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import metrics
from serving.errors import error_response

log = logging.getLogger("serving")
access = logging.getLogger("serving.access")  # one line per request, when enabled

PROCESS_ID = uuid.uuid4().hex[:12]  # request ids: this process's prefix and a counter
COUNTER = itertools.count(1)
# Raised by the servers around us when a client leaves mid-request (Ray Serve cancels the
# request's task): a hang-up, not a fault. Named, so that ray is never imported here.
HANGUPS = {"TaskCancelledError", "ClientDisconnect", "RequestCancelledError"}
SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
QUIET = {"/metrics", "/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Written here rather than pulling in a logging library: it is
    a dozen lines, and orjson is already a dependency. Never prints tracebacks (they carry
    file paths); the error's type and message are logged instead."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "model", "status", "endpoint", "seconds"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = type(record.exc_info[1]).__name__
        return orjson.dumps(entry).decode()


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("serving", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(level.upper())


def request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is a sane one, else a new id; kept in the scope's state."""
    given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
    rid = given if SAFE_ID.match(given) else f"{PROCESS_ID}-{next(COUNTER):x}"
    scope.setdefault("state", {})["request_id"] = rid
    return rid


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
        self._cache: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _children(self, endpoint: str, model: str, status: int) -> tuple[Any, Any]:
        """The labelled metric children, looked up once per label set."""
        key = (endpoint, model, status)
        found = self._cache.get(key)
        if found is None:
            found = (
                metrics.REQUESTS.labels(endpoint, model, str(status)),
                metrics.LATENCY.labels(endpoint),
            )
            if len(self._cache) < 10_000:  # label sets are few; never grow without bound
                self._cache[key] = found
        return found

    def record(self, scope: Scope, endpoint: str, status: int, started: float) -> None:
        if endpoint in QUIET:
            return
        state = scope["state"]
        seconds = time.perf_counter() - started
        counter, latency = self._children(endpoint, state.get("model", ""), status)
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


class RequestContext:
    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.recorder = Recorder(access_log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        header = (b"x-request-id", rid.encode())
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as e:  # an internal fault: answer 500 here, log no traceback
            response = internal_error(e, rid, scope["path"])
            if response is None:  # the client left
                status = status or 499
                return
            if not status:
                await response(scope, receive, send_with_id)
            status = status or 500
        finally:
            route = scope.get("route")
            state = scope["state"]
            endpoint = state.get("endpoint") or getattr(route, "path", None) or "unmatched"
            self.recorder.record(scope, endpoint, status, started)
