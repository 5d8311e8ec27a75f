"""Request ids, access metrics and structured JSON logs.

The front door (ingress.py) takes the caller's X-Request-ID (or makes one) and echoes it on the
answer; the Recorder counts each request by endpoint, model and status.
"""

from __future__ import annotations

import itertools
import logging
import re
import sys
import time
import uuid
import warnings
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Scope

from serving import metrics
from serving.errors import error_response, redact_paths

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
        message = record.getMessage()  # URL paths in access lines; no file path anywhere else
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message if record.name == access.name else redact_paths(message),
        }
        for key in ("request_id", "model", "status", "endpoint", "seconds"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = type(record.exc_info[1]).__name__
        return orjson.dumps(entry).decode()


def setup_logging(level: str) -> None:
    """JSON lines on stderr for the service's loggers, uvicorn's and Python's warnings. An image
    library's warnings are about a client's upload, which the client is answered about: they are
    not the operator's business, and are not logged."""
    warnings.filterwarnings("ignore", module=r"PIL(\..*)?$")
    logging.captureWarnings(True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("serving", "models", "uvicorn.error", "py.warnings"):
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
