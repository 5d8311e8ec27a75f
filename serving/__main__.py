"""`python -m serving [flags]`: run the service with uvicorn. Flags override SERVING_* variables."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile

import uvicorn

from serving.http.protocol import PINNED, HttpToolsProtocol
from serving.settings import Settings


def parse_args(argv: list[str] | None = None) -> dict[str, object]:
    """The flags given (defaults shown from the environment); keys only ever come from it."""
    defaults = Settings()
    p = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    p.add_argument("--host", default=defaults.host)
    p.add_argument("--port", type=int, default=defaults.port)
    p.add_argument(
        "--grpc-port",
        type=int,
        default=defaults.grpc_port,
        help="Port of the gRPC inference protocol (KServe v2 / Triton); 0: off.",
    )
    p.add_argument("--workers", type=int, default=defaults.workers)
    p.add_argument("--models-dir", default=str(defaults.models_dir))
    p.add_argument("--models", nargs="+", default=defaults.models, help="Models to serve.")
    p.add_argument("--backend", choices=["onnx", "torch"], default=defaults.backend)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=defaults.device)
    p.add_argument("--threads", type=int, default=defaults.threads)
    p.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size)
    p.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms)
    p.add_argument(
        "--no-batching", dest="batching", action="store_false", default=defaults.batching
    )
    p.add_argument(
        "--watch",
        action="store_true",
        default=defaults.watch,
        help="Load new versions as they appear in the models directory.",
    )
    p.add_argument("--log-level", default=defaults.log_level)
    p.add_argument(
        "--access-log",
        action="store_true",
        default=defaults.access_log,
        help="One JSON log line per request, with its request id.",
    )
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
    flags = parse_args(argv)
    settings = Settings(**flags)  # validates the flags before anything starts
    # Worker processes build the app from the environment: hand the flags down there.
    for key, value in flags.items():
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
