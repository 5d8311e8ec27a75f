"""The service's logs: JSON lines on stderr, set up once per process by create_app().

Every logger of the service ("serving", "models"), uvicorn's and Python's warnings write through
the one JsonFormatter; the front door's access lines (serving/http/request.py) go to `access`.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import orjson

from serving.errors import redact_paths

access = logging.getLogger("serving.access")  # one line per request, when enabled


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Written here rather than pulling in a logging library: it is
    a dozen lines, and orjson is already a dependency. Never prints tracebacks (they carry
    file paths); the error's type and message are logged instead."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()  # URL paths in access lines; no file path anywhere else
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message if record.name == access.name else redact_paths(message),
        }
        for key in ("request_id", "model", "status", "endpoint", "seconds"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = type(record.exc_info[1]).__name__
        return orjson.dumps(entry).decode()


def setup_logging(level: str) -> None:
    """JSON lines on stderr for the service's loggers, uvicorn's and Python's warnings. An image
    library's warnings are about a client's upload, which the client is answered about: they are
    not the operator's business, and are not logged."""
    warnings.filterwarnings("ignore", module=r"PIL(\..*)?$")
    logging.captureWarnings(True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("serving", "models", "uvicorn.error", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(level.upper())
