"""API keys, checked before any work is done (plain ASGI, so rejected bodies are never read).

Predictions (/predict/*, /v2/models/*/infer) need `Authorization: Bearer <key>` when API keys are
set; /admin/* needs the admin key and does not exist when none is set. Everything else (health,
metadata, metrics, docs, the page) stays open. Keys are compared in constant time and never
logged or echoed.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.errors import error_response
from serving.keys import admin_keys_of, keys_of, matches
from serving.settings import Settings


def _is_prediction(path: str) -> bool:
    return path.startswith("/predict") or (
        path.startswith("/v2/models/") and path.endswith("/infer")
    )


def refusal(scope: Scope, keys: list[bytes]) -> Response | None:
    """The 401/403 answer when the request's Bearer key is missing or not one of `keys`."""
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    challenge = {"WWW-Authenticate": 'Bearer realm="starter-serve"'}
    if header is None or header[:7].lower() != b"bearer ":
        return error_response(
            401, "missing API key: send Authorization: Bearer <key>", "authorization", challenge
        )
    if not matches(header[7:].strip(), keys):
        return error_response(403, "API key not accepted", "authorization")
    return None


class ApiKeys:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.keys = keys_of(settings)
        self.admin = admin_keys_of(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith("/admin"):
                if not self.admin:
                    response = error_response(404, "the admin API is off: set SERVING_ADMIN_KEY")
                    await response(scope, receive, send)
                    return
                if refused := refusal(scope, self.admin):
                    await refused(scope, receive, send)
                    return
            elif self.keys and _is_prediction(path) and (refused := refusal(scope, self.keys)):
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)
