"""The files of serving/ and models/ that one `POST /predict/digits` request calls into (issue 18).

    python -m bench.walk            # the files, sorted, and how many
    python -m bench.walk --cold     # the very first request after the start (lazy set-up too)

The service runs as `python -m serving` runs it (serving/__main__.py): uvicorn with the
service's protocol class, create_app() with the settings of the environment, the models of
models/repository; here in a thread of this process, on a free loopback port, gRPC off. Once
/readyz answers 200 (and one request has warmed the path, unless --cold), a profile hook on
every thread records the file of each Python function called (or resumed) while exactly one
request is served: one 28x28 digit of zeros, sent with http.client, answered, its connection
closed. Nothing else reaches the server meanwhile.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from serving.__main__ import http_protocol
from serving.app import create_app
from serving.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WALKED = ("serving", "models")  # the folders whose files are counted
PATH = "/predict/digits"
BODY = json.dumps({"images": [[[0] * 28] * 28]}).encode()  # one MNIST-shaped digit
SETTLE_S = 0.3  # after the client closes: time for the server to see the connection go
READY_TIMEOUT_S = 120.0


class Walk:
    """A profile hook for every thread; it records only while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.files: set[str] = set()

    def hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.on and event == "call":  # a Python function called, or a coroutine resumed
            self.files.add(frame.f_code.co_filename)

    def walked(self) -> list[str]:
        """The recorded files under WALKED, relative to the repository, sorted."""
        found = set()
        for name in self.files:
            path = Path(name).resolve()
            if path.is_relative_to(ROOT) and path.relative_to(ROOT).parts[0] in WALKED:
                found.add(path.relative_to(ROOT).as_posix())
        return sorted(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ask(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request on a connection of its own, closed after the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def wait_ready(port: int, server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the service did not become ready")
        if server.started:
            try:
                if ask(port, "GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
        time.sleep(0.1)


def walk(cold: bool = False) -> list[str]:
    """Start the service, serve one request under the hook, stop; the files it called into."""
    port = free_port()
    settings = Settings(host="127.0.0.1", port=port, grpc_port=0, log_level="warning")
    config = uvicorn.Config(
        functools.partial(create_app, settings),
        factory=True,
        http=http_protocol(),
        timeout_keep_alive=int(settings.keepalive_timeout_s),
        host=settings.host,
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    recorder = Walk()
    # Before the server's thread starts, so that it and every thread it starts carry the hook.
    threading.setprofile(recorder.hook)
    sys.setprofile(recorder.hook)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_ready(port, server, thread)
        if not cold:
            ask(port, "POST", PATH, BODY)
        time.sleep(SETTLE_S)
        recorder.on = True
        status, answer = ask(port, "POST", PATH, BODY)
        time.sleep(SETTLE_S)
        recorder.on = False
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        server.should_exit = True
        thread.join(30)
    if status != 200:
        raise SystemExit(f"{PATH} answered {status}: {answer[:300]!r}")
    return recorder.walked()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.walk", description=__doc__)
    p.add_argument("--cold", action="store_true", help="Walk the first request (no warm-up).")
    args = p.parse_args(argv)
    files = walk(args.cold)
    for name in files:
        print(name)
    counts = {folder: sum(f.startswith(folder + "/") for f in files) for folder in WALKED}
    print(
        f"{len(files)} files: " + ", ".join(f"{n} of {folder}/" for folder, n in counts.items()),
        flush=True,
    )


if __name__ == "__main__":
    main()
