"""Every error leaves as JSON: {"error": "<field>: <problem>", "field": "<field>"}.

The `error` string is what the Open Inference Protocol asks for; `field` says where, for clients
that want to point at it. No body ever carries a stack trace, a file path or a key.
"""

from __future__ import annotations

import http
import re

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

JSON = "application/json"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request body is larger than the limit of {limit} bytes",
            "body",
            {"Connection": "close"},  # the rest of an unread body is not worth reading
        )


def error_response(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(message, field), status_code=status, media_type=JSON, headers=headers
    )


def error_body(message: str, field: str | None = None) -> bytes:
    """The one shape of every error body the service sends, from any layer."""
    text = f"{field}: {message}" if field else message
    return orjson.dumps({"error": text, "field": field} if field else {"error": text})


def error_bytes(status: int, message: str, field: str | None = None) -> bytes:
    """A whole HTTP/1.1 answer with the error body, for a connection about to close (what the
    server itself refuses, before any app sees the request: serving/http/protocol.py)."""
    body = error_body(message, field)
    phrase = http.HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: {JSON}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


# A URL's scheme and host (kept: an address to call, not the file system), else a path.
PATH = re.compile(
    r"(?P<url>[A-Za-z][\w+.\-]*://[^\s/]*)"
    r"|(?<![\w.\-])(?:[A-Za-z]:)?(?:[\\/]+[^\\/\s'\"():,]+)+[\\/]?"
)


def _last_part(m: re.Match[str]) -> str:
    if m.group("url"):
        return m.group(0)
    return m.group(0).rstrip("/\\").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]


def redact_paths(text: str) -> str:
    """'/srv/models/lenet/3/model.onnx failed' -> 'model.onnx failed': no file-system layout
    leaves the service in an error body or a log line."""
    return PATH.sub(_last_part, text)


def field_path(loc: tuple[str | int, ...] | list[str | int]) -> str:
    """('images', 0, 3) -> 'images[0][3]'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> Response:
        return error_response(e.status, e.message, e.field, e.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0]
        loc = [p for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return error_response(422, first.get("msg", "invalid"), field_path(loc) or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> Response:
        return error_response(e.status_code, str(e.detail), headers=e.headers)
