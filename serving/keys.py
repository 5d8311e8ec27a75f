"""API keys, whatever protocol carries them: the lists from the settings and the comparison;
and HTTP's answer to a missing or wrong one.

Keys are compared in constant time, every key every time, and are never logged or echoed. The
HTTP front door (serving/http/ingress.py) and the gRPC one (serving/grpc/) both check with these.
"""

from __future__ import annotations

import hmac

from starlette.responses import Response
from starlette.types import Scope

from serving.errors import error_response
from serving.settings import Settings


def keys_of(settings: Settings) -> list[bytes]:
    """The prediction keys; empty when predictions are open."""
    return [k.get_secret_value().encode() for k in settings.api_keys]


def admin_keys_of(settings: Settings) -> list[bytes]:
    """The admin key, as a list; empty when the admin API is off."""
    return [settings.admin_key.get_secret_value().encode()] if settings.admin_key else []


def matches(given: bytes, keys: list[bytes]) -> bool:
    found = False
    for key in keys:  # no early exit: time does not tell which key, or how much, matched
        found |= hmac.compare_digest(given, key)
    return found


def refusal(scope: Scope, keys: list[bytes]) -> Response | None:
    """The HTTP 401/403 answer when the request's Bearer key is missing or not one of `keys`."""
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    challenge = {"WWW-Authenticate": 'Bearer realm="starter-serve"'}
    if header is None or header[:7].lower() != b"bearer ":
        return error_response(
            401, "missing API key: send Authorization: Bearer <key>", "authorization", challenge
        )
    if not matches(header[7:].strip(), keys):
        return error_response(403, "API key not accepted", "authorization")
    return None
