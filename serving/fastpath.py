"""The hot path: prediction requests skip FastAPI's routing and dependency machinery.

The handlers are the very functions the FastAPI routes call (and that /docs documents); only
the dispatch differs: one dict lookup on the exact path, a Starlette Request, and ApiError
rendered here. It sits inside the request-id/metrics and API-key middleware, so everything
around a request is the same on either path. Anything else goes on to FastAPI.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from serving import metrics
from serving.errors import ApiError, error_response
from serving.routes import predict, v2

Handler = Callable[..., Awaitable[Response]]

EXACT: dict[str, tuple[str, Handler]] = {
    "/predict/digits": ("/predict/digits", predict.predict_digits),
    "/predict/points": ("/predict/points", predict.predict_points),
    "/predict/curve": ("/predict/curve", predict.predict_curve),
}
INFER = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$")


class FastPath:
    """Also admission control: past `max_in_flight` prediction requests at once, the next is
    answered 503 with Retry-After straight away, without reading its body. Under overload the
    cost is parsing, not the model, so this (not the batch queue) is what keeps the latency of
    accepted requests within budget."""

    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            found = EXACT.get(path)
            kwargs: dict[str, str | None] = {}
            if found is None and path.startswith("/v2/models/") and (m := INFER.match(path)):
                template = "/v2/models/{name}" + ("/versions/{version}" if m["version"] else "")
                found = (template + "/infer", v2._infer)
                kwargs = {"name": m["name"], "version": m["version"]}
            if found is not None:
                endpoint, handler = found
                scope.setdefault("state", {})["endpoint"] = endpoint
                if self.in_flight >= self.max_in_flight:
                    metrics.REJECTED.labels("", "busy").inc()
                    busy = error_response(
                        503, "the server is busy; retry later", headers={"Retry-After": "1"}
                    )
                    await busy(scope, receive, send)
                    return
                self.in_flight += 1
                metrics.IN_FLIGHT.inc()
                try:
                    response = await handler(Request(scope, receive), **kwargs)
                except ApiError as e:
                    response = error_response(e.status, e.message, e.field, e.headers)
                finally:
                    self.in_flight -= 1
                    metrics.IN_FLIGHT.dec()
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
