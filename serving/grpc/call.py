"""One RPC as the RPCs see it, whoever carries it (grpc.aio here, Ray Serve's gRPC proxy through
serving/ray_grpc.py): its metadata, request id, API key, deadline and hang-up."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import Sequence

from serving.errors import ApiError
from serving.keys import matches

PROCESS_ID = uuid.uuid4().hex[:12]  # request ids: this process's prefix and a counter
COUNTER = itertools.count(1)
SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # as over HTTP
REQUEST_ID = "x-request-id"


class Call:
    def __init__(
        self,
        metadata: Sequence[tuple[str, str | bytes]] | None,
        gone: asyncio.Future[None] | None = None,
    ) -> None:
        self.metadata = {k.lower(): v for k, v in metadata or () if isinstance(v, str)}
        # Done when the client cancels or its deadline passes: the engine then drops the work.
        # (The deadline itself is gRPC's to keep: it cancels the call when it passes.)
        self.gone = gone
        given = self.metadata.get(REQUEST_ID, "")
        self.request_id = given if SAFE_ID.match(given) else f"{PROCESS_ID}-{next(COUNTER):x}"
        self.model = ""  # for the metrics, once known

    @staticmethod
    def timeout(limit_s: float, asked_s: float | None = None) -> float:
        """The time the engine may take: the service's limit, or less where the request asks
        (its `timeout` parameter)."""
        return min(limit_s, asked_s) if asked_s else limit_s

    def check_key(self, keys: list[bytes], what: str = "API key") -> None:
        """401 without a key, 403 with a wrong one (both UNAUTHENTICATED over gRPC). A key is
        `authorization: Bearer <key>` or `x-api-key: <key>`, as Triton's clients send them."""
        header = self.metadata.get("authorization")
        if header is not None and header[:7].lower() == "bearer ":
            given = header[7:].strip()
        elif "x-api-key" in self.metadata:
            given = self.metadata["x-api-key"].strip()
        else:
            raise ApiError(
                401,
                f"missing {what}: send metadata authorization: Bearer <key> (or x-api-key)",
                "authorization",
            )
        if not matches(given.encode(), keys):
            raise ApiError(403, f"{what} not accepted", "authorization")
