"""API keys, checked at the front door before any work is done (a refused body is never read).

Each route's gate (serving/api/gates.py) says which key it needs: predictions need
`Authorization: Bearer <key>` when API keys are set; admin routes need the admin key and do not
exist when none is set. Everything else (health, metadata, metrics, docs, the page) stays open.
Keys are compared in constant time and never logged or echoed.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from serving.errors import error_response
from serving.keys import admin_keys_of, keys_of, matches
from serving.settings import Settings


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


class Keys:
    """The keys a gate's access asks for: none (open), a prediction key or the admin key."""

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
