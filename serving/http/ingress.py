"""The front door: every HTTP request passes here, once, whatever route it is for.

Service is the app (FastAPI) with the front door in front of all of it; create_app()
(serving/app.py) makes one. Ingress is the front door.

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

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.spec import specs_in
from serving import metrics
from serving.api.gates import OPEN, Gate, body_limit, gate_of
from serving.engine.infer import DISCONNECTED
from serving.errors import ApiError, error_response
from serving.http.request import (
    CLOSE,
    Recorder,
    has_body,
    internal_error,
    read_body,
    replay,
    request_id,
)
from serving.keys import admin_keys_of, keys_of, refusal
from serving.settings import Settings

Endpoint = Callable[..., Awaitable[Response]]


class Keys:
    """The key a gate's access asks for, checked before any work is done (a refused body is
    never read): predictions need `Authorization: Bearer <key>` when API keys are set; admin
    routes need the admin key and do not exist when none is set; everything else stays open."""

    def __init__(self, settings: Settings) -> None:
        self.predict = keys_of(settings)
        self.admin = admin_keys_of(settings)

    def refusal(self, scope: Scope, access: str) -> Response | None:
        if access == "predict":
            return refusal(scope, self.predict) if self.predict else None
        if access == "admin":
            if not self.admin:
                return error_response(404, "the admin API is off: set SERVING_ADMIN_KEY")
            return refusal(scope, self.admin)
        return None


# FastAPI's own pages, which carry no gate of ours: open, like the rest of the documentation.
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@dataclass(frozen=True, slots=True)
class Target:
    template: str  # the route's path template: the endpoint label of metrics and logs
    gate: Gate
    methods: frozenset[str]
    endpoint: Endpoint | None  # called directly when the gate says so


UNMATCHED = Target("unmatched", OPEN, frozenset(), None)
# Paths matched once are remembered (most requests ask for a few paths), within a bound.
SEEN_PATHS = 4096
SEEN_PATH_BYTES = 256


class Routes:
    """Path -> Target: one dict lookup for a fixed path, a regex per templated route else."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.exact: dict[str, Target] = {}
        self.templated: list[tuple[re.Pattern[str], Target]] = []
        self.mounts: list[tuple[str, Target]] = []
        self.seen: dict[str, tuple[Target, dict[str, Any]]] = {}  # paths already matched
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
        found = self.seen.get(path)
        if found is None:
            found = self._match(path)
            if len(path) <= SEEN_PATH_BYTES and len(self.seen) < SEEN_PATHS:
                self.seen[path] = found  # the params dict is shared: only ever read
        return found

    def _match(self, path: str) -> tuple[Target, dict[str, Any]]:
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


class Service(FastAPI):
    """FastAPI with the front door (Ingress) in front of all of it: every request passes it
    first, and only then, where its route asks, FastAPI's own stack."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state.settings = settings
        self.front: ASGIApp = super().__call__  # until open() puts the front door there

    def open(self, routers: list[APIRouter]) -> None:
        """Include the routers and put the front door in front, gating every route."""
        for router in routers:
            self.include_router(router)
        routes = [r for r in self.routes if isinstance(r, Route | Mount)]
        self.front = Ingress(
            super().__call__,
            self.state.settings,
            routes + [route for router in routers for route in router.routes],
        )

    def wrap(self, middleware: Callable[[ASGIApp], ASGIApp]) -> None:
        """Put one more ASGI layer in front of everything (e.g. Ray Serve's header fix-up)."""
        self.front = middleware(self.front)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["app"] = self
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class Ingress:
    def __init__(self, app: ASGIApp, settings: Settings, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.settings = settings
        self.routes = Routes(routes)
        self.keys = Keys(settings)
        self.specs = specs_in(settings.models_dir)
        self.limits: dict[tuple[str, str | None], int] = {}  # body limits, worked out once
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
        header = (b"x-request-id", rid.encode())
        status = 0

        async def send_with_id(message: Message) -> None:  # for the routes FastAPI answers
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            response = await self._answer(scope, receive, send_with_id, target, params)
            if response is not None:  # ours to send (FastAPI sent the others itself)
                response.raw_headers.append(header)
                status = response.status_code
                await response(scope, receive, send)
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
    ) -> Response | None:
        """The answer to send, or None when the route (through FastAPI) has sent it on `send`."""
        gate = target.gate
        try:
            if refused := self.keys.refusal(scope, gate.access):
                if has_body(scope):  # not read: not worth keeping the connection for
                    refused.headers.update(CLOSE)
                return refused
            if gate.admit and self.in_flight >= self.max_in_flight:
                self._busy(scope)  # full already: not worth reading the body (or inviting it)
            s = self.settings
            # Under our own protocol the server bounds the body's time (see read_body).
            idle_s = None if DISCONNECTED in scope.get("extensions", ()) else s.body_idle_timeout_s
            limit = self._limit(target, params.get("name"))
            body = await read_body(scope, receive, limit, idle_s, s.body_timeout_s)
            if gate.admit and self.in_flight >= self.max_in_flight:
                self._busy(scope)  # the slot itself is taken only once the body is in
        except ApiError as e:
            return error_response(e.status, e.message, e.field, e.headers)
        scope["state"]["body"] = body
        direct = target.endpoint is not None and scope["method"] in target.methods
        if gate.admit:
            self.in_flight += 1
            metrics.IN_FLIGHT.inc()
        try:
            if direct:  # the hot path, its body from the scope's state, one await level near
                return await target.endpoint(Request(scope, receive), **params)  # type: ignore[misc]
            return await self._forward(scope, receive, send, target, body)
        except ApiError as e:
            if not direct:  # FastAPI answers its own routes' errors
                raise
            return error_response(e.status, e.message, e.field, e.headers)
        finally:
            if gate.admit:
                self.in_flight -= 1
                metrics.IN_FLIGHT.dec()

    def _limit(self, target: Target, model: str | None) -> int:
        key = (target.template, model if model in self.specs else None)
        limit = self.limits.get(key)
        if limit is None:
            limit = self.limits[key] = body_limit(target.gate, self.settings, key[1], self.specs)
        return limit

    def _busy(self, scope: Scope) -> None:
        """503 with Retry-After: max_in_flight predictions are already being answered."""
        metrics.REJECTED.labels("", "busy").inc()
        headers = {"Retry-After": "1"}
        if has_body(scope):
            headers.update(CLOSE)
        raise ApiError(503, "the server is busy; retry later", headers=headers)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, target: Target, body: bytes
    ) -> None:
        """On to FastAPI, which reads the body already read from a replay and sends itself."""
        if scope["method"] == "HEAD" and "GET" in target.methods:
            # HEAD is GET without the body; the server (which sees "HEAD") sends no body.
            scope = {**scope, "method": "GET"}
        await self.app(scope, replay(body, receive), send)
