"""Fixtures for the service: a model repository of its own (random weights, real exports)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
import uvicorn
from starlette.types import ASGIApp

from models import nets, store
from models.spec import SPECS
from serving.app import create_app
from serving.engine.registry import Registry
from serving.settings import Settings
from training.export import export_onnx


def write_model(root: Path, name: str, seed: int = 0) -> Path:
    """Publish one version of `name` with random weights: .pt, checked .onnx and a card."""
    spec = SPECS[name]
    torch.manual_seed(seed)
    net = nets.build(spec).eval()

    def write(folder: Path, version: int) -> None:
        torch.save(net.state_dict(), folder / store.STATE_DICT)
        export_onnx(net, spec, folder / store.ONNX)
        store.write_json(
            folder / store.CARD,
            {
                **spec.card_fields(),
                "version": version,
                "test_metrics": {"seed": seed},
                "sha256": {f: store.sha256(folder / f) for f in (store.STATE_DICT, store.ONNX)},
            },
        )

    return store.publish(root, name, write, keep=0)


@pytest.fixture(scope="session")
def built_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    for name in SPECS:
        write_model(root, name)
    return root


@pytest.fixture
def repo(built_repo: Path, tmp_path: Path) -> Path:
    """A private copy per test, free to tamper with."""
    return Path(shutil.copytree(built_repo, tmp_path / "repo"))


def settings_for(root: Path, **overrides: object) -> Settings:
    """Settings for a test's service; gRPC off unless the test asks for a port (the default,
    8001, would be shared by every test and every checkout on the machine)."""
    return Settings(**{"models_dir": root, "threads": 1, "grpc_port": 0, **overrides})


class Service:
    """The ASGI app with its lifespan running, and an httpx client on it."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://test"
        )

    async def __aenter__(self) -> Service:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        await self.app.state.loading
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(None, None, None)

    @property
    def registry(self) -> Registry:
        return self.app.state.registry


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def threaded_uvicorn(
    app: ASGIApp, http: type[asyncio.Protocol] | str = "httptools"
) -> Iterator[int]:
    """uvicorn serving `app` in a thread of this process on a free loopback port (yielded),
    listening; stopped after."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def live_server(
    models_dir: Path, *args: str, env: dict[str, str] | None = None, ready_timeout: float = 60.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python -m serving` as a real process on a free loopback port, ready; stopped after.
    gRPC is off unless `args` give --grpc-port."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving",
            "--port",
            str(port),
            "--models-dir",
            str(models_dir),
            "--threads",
            "1",
            *([] if "--grpc-port" in args else ["--grpc-port", "0"]),
            *args,
        ],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not become ready")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def server(built_repo: Path) -> Iterator[str]:
    """Base URL of a real server on the random-weights repository (one per test module)."""
    with live_server(built_repo) as (url, _):
        yield url
