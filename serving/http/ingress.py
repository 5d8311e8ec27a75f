"""The front door: every HTTP request passes here, once, whatever route it is for.

In order: a request id; the route's gate (serving/api/gates.py) found from the path; the API or
admin key; the body, read in full within its size and time limits (413 before a byte of an
oversized body is read, 408 for a stalled one); admission, counted only once the body is in, so
a slow client never holds a slot; then the route itself, and the metrics and access log line
for it; a JSON 500 (naming the request id, no trace) for anything nothing else answered.

The prediction routes (`direct` gates) are then called straight from here, without FastAPI's
routing and middleware; every other route goes on to FastAPI with the body already read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.spec import specs_in
from serving import metrics
from serving.api.common import DISCONNECTED
from serving.api.gates import OPEN, Gate, body_limit, gate_of
from serving.errors import ApiError, error_response
from serving.http.auth import Keys
from serving.http.body import CLOSE, has_body, read_body, replay
from serving.http.observability import Recorder, internal_error, request_id
from serving.settings import Settings

Endpoint = Callable[..., Awaitable[Response]]
# FastAPI's own pages, which carry no gate of ours: open, like the rest of the documentation.
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@dataclass(frozen=True, slots=True)
class Target:
    template: str  # the route's path template: the endpoint label of metrics and logs
    gate: Gate
    methods: frozenset[str]
    endpoint: Endpoint | None  # called directly when the gate says so


UNMATCHED = Target("unmatched", OPEN, frozenset(), None)


class Routes:
    """Path -> Target: one dict lookup for a fixed path, a regex per templated route else."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.exact: dict[str, Target] = {}
        self.templated: list[tuple[re.Pattern[str], Target]] = []
        self.mounts: list[tuple[str, Target]] = []
        for route in routes:
            if isinstance(route, Mount):
                self.mounts.append((route.path, Target(route.path, OPEN, frozenset(), None)))
                continue
            if not isinstance(route, Route):
                raise TypeError(f"the front door cannot place route {route!r}")
            gate = gate_of(route.endpoint)
            if gate is None:
                if route.path not in FRAMEWORK:
                    raise TypeError(f"route {route.path} has no gate: add @gated(...)")
                gate = OPEN
            target = Target(
                route.path,
                gate,
                frozenset(route.methods or ()),
                route.endpoint if gate.direct else None,
            )
            if "{" in route.path:
                self.templated.append((compile_path(route.path)[0], target))
            else:
                self.exact[route.path] = target

    def find(self, path: str) -> tuple[Target, dict[str, Any]]:
        target = self.exact.get(path)
        if target is not None:
            return target, {}
        for regex, target in self.templated:
            if m := regex.match(path):
                return target, m.groupdict()
        for prefix, target in self.mounts:
            if path.startswith(prefix + "/"):
                return target, {}
        return UNMATCHED, {}


class Ingress:
    def __init__(self, app: ASGIApp, settings: Settings, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.settings = settings
        self.routes = Routes(routes)
        self.keys = Keys(settings)
        self.specs = specs_in(settings.models_dir)
        self.limits: dict[tuple[Gate, str | None], int] = {}  # body limits, worked out once
        self.max_in_flight = settings.max_in_flight
        self.in_flight = 0
        self.recorder = Recorder(settings.access_log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        target, params = self.routes.find(scope["path"])
        scope["state"]["endpoint"] = target.template
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self._answer(scope, receive, send_with_id, target, params)
        except Exception as e:  # an internal fault: a JSON 500 naming the request id, no trace
            fault = internal_error(e, rid, scope["path"])
            if fault is None:  # the client left
                status = status or 499
                return
            if not status:
                await fault(scope, receive, send_with_id)
            status = status or 500
        finally:
            self.recorder.record(scope, target.template, status, started)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, target: Target, params: dict[str, Any]
    ) -> None:
        gate = target.gate
        try:
            if refused := self.keys.refusal(scope, gate.access):
                if has_body(scope):  # not read: not worth keeping the connection for
                    refused.headers.update(CLOSE)
                await refused(scope, receive, send)
                return
            if gate.admit:  # full already: not worth reading the body (or inviting it)
                self._admit(scope)
            s = self.settings
            # Under our own protocol the server bounds the body's time (see read_body).
            idle_s = None if DISCONNECTED in scope.get("extensions", ()) else s.body_idle_timeout_s
            limit = self._limit(gate, params.get("name"))
            body = await read_body(scope, receive, limit, idle_s, s.body_timeout_s)
            if gate.admit:  # the slot itself is taken only once the body is in
                self._admit(scope)
        except ApiError as e:
            await error_response(e.status, e.message, e.field, e.headers)(scope, receive, send)
            return
        scope["state"]["body"] = body
        if not gate.admit:
            await self._route(scope, replay(body, receive), send, target, params)
            return
        self.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            await self._route(scope, replay(body, receive), send, target, params)
        finally:
            self.in_flight -= 1
            metrics.IN_FLIGHT.dec()

    def _limit(self, gate: Gate, model: str | None) -> int:
        key = (gate, model if model in self.specs else None)
        limit = self.limits.get(key)
        if limit is None:
            limit = self.limits[key] = body_limit(gate, self.settings, key[1], self.specs)
        return limit

    def _admit(self, scope: Scope) -> None:
        """503 with Retry-After when max_in_flight predictions are already being answered."""
        if self.in_flight >= self.max_in_flight:
            metrics.REJECTED.labels("", "busy").inc()
            headers = {"Retry-After": "1"}
            if has_body(scope):
                headers.update(CLOSE)
            raise ApiError(503, "the server is busy; retry later", headers=headers)

    async def _route(
        self, scope: Scope, receive: Receive, send: Send, target: Target, params: dict[str, Any]
    ) -> None:
        if target.endpoint is not None and scope["method"] in target.methods:
            try:
                response = await target.endpoint(Request(scope, receive), **params)
            except ApiError as e:
                response = error_response(e.status, e.message, e.field, e.headers)
            await response(scope, receive, send)
            return
        if scope["method"] == "HEAD" and "GET" in target.methods:
            # HEAD is GET without the body; the server (which sees "HEAD") sends no body.
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)
