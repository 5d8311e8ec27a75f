"""`python -m serving [flags]`: run the service with uvicorn. Flags override SERVING_* variables."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile

import uvicorn

from serving import flags
from serving.http.protocol import PINNED, HttpToolsProtocol
from serving.settings import Settings

SERVER_FLAGS = ("host", "port", "grpc_port", "workers")


def parse_args(argv: list[str] | None = None) -> dict[str, object]:
    """The flags given (defaults shown from the environment); keys only ever come from it."""
    defaults = Settings()
    p = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    flags.add(p, SERVER_FLAGS + flags.MODEL_FLAGS + ("watch", "access_log"), defaults)
    return vars(p.parse_args(argv))


def http_protocol() -> type[HttpToolsProtocol] | str:
    """Ours (limits, timeouts, JSON errors: serving/http/protocol.py) under the uvicorn it was
    written for; under any other, uvicorn's own, saying what is then missing."""
    if uvicorn.__version__ == PINNED:
        return HttpToolsProtocol
    print(
        f"warning: uvicorn {uvicorn.__version__} is not {PINNED}, which serving/http/protocol.py"
        " is written for: serving with uvicorn's own protocol, without the request-head limits"
        " and header timeout",
        file=sys.stderr,
    )
    return "httptools"


def main(argv: list[str] | None = None) -> None:
    given = parse_args(argv)
    settings = Settings(**given)  # validates the flags before anything starts
    # Worker processes build the app from the environment: hand the flags down there.
    for key, value in given.items():
        os.environ[f"SERVING_{key.upper()}"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="serving-metrics-")
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal; let that last
    # step be a normal exit (status 0), as orchestrators expect of a graceful stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        http=http_protocol(),
        timeout_keep_alive=int(settings.keepalive_timeout_s),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
