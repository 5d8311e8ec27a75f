"""Load and failure behaviour (issues 7 and 11): graceful stop with work in flight, timeouts that
leave the model alone, slow loads that hold nobody up, bounded queues, clean error bodies."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from models import store
from serving.app import create_app
from tests.serving.conftest import Service, live_server, settings_for
from tests.serving.slow_model import publish_slow_curve

pytestmark = pytest.mark.anyio
LEAKS = re.compile(r"Traceback|File \"|/tmp/|/work/|/home/|site-packages|secret-key")


@pytest.fixture
def slow_repo(built_repo: Path, tmp_path: Path) -> Path:
    """The test repository with `curve` replaced by a deliberately slow model."""
    root = Path(shutil.copytree(built_repo, tmp_path / "slow"))
    shutil.rmtree(root / "curve")
    publish_slow_curve(root, layers=12)
    return root


def test_sigterm_finishes_requests_in_flight(slow_repo: Path) -> None:
    with live_server(slow_repo) as (url, proc), ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(httpx.post, f"{url}/predict/curve", json={"x": [i / 10] * 4}, timeout=30)
            for i in range(8)
        ]
        deadline = time.monotonic() + 20
        while "serving_in_flight 8.0" not in httpx.get(f"{url}/metrics").text:
            assert time.monotonic() < deadline, "the eight requests never all arrived"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # all eight are in the server, most still queued
        answers = [f.result() for f in futures]
        code = proc.wait(timeout=30)
    assert [r.status_code for r in answers] == [200] * 8
    assert code == 0


async def test_timeout_is_504_and_the_model_keeps_serving(slow_repo: Path) -> None:
    async with Service(settings_for(slow_repo, models=["curve"], request_timeout_s=0.01)) as svc:
        late = await svc.client.post("/predict/curve", json={"x": [0.5] * 8})
        svc.app.state.settings.request_timeout_s = 30.0
        later = await svc.client.post("/predict/curve", json={"x": [0.5]})
        ready = await svc.client.get("/readyz")
    assert late.status_code == 504 and late.headers["retry-after"]
    assert later.status_code == 200 and ready.status_code == 200


async def test_slow_load_holds_up_no_other_model(slow_repo: Path) -> None:
    publish_slow_curve(slow_repo, layers=400)  # version 2: its probe alone takes seconds
    app = create_app(settings_for(slow_repo, models=["curve", "points"], load_timeout_s=0.5))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with app.router.lifespan_context(app):
        registry = app.state.registry
        for _ in range(200):
            if "points" in registry.entries:
                break
            await asyncio.sleep(0.01)
        points = await client.post("/predict/points", json={"points": [[1, 1]]})
        loading = "curve" in registry.loading
        await app.state.loading
        ready = await client.get("/readyz")
    await client.aclose()
    assert points.status_code == 200 and loading  # answered while curve was still loading
    assert "load took longer than 0.5 s" in ready.json()["models"]["curve"]["reason"]
    assert ready.status_code == 503  # curve is configured but could not be loaded


@pytest.mark.parametrize("workers", [1, 2])
async def test_several_workers_each_listen_only_once_loaded(built_repo: Path, workers: int) -> None:
    """One worker answers while it loads (/healthz at once, /readyz 503). Workers share the port,
    so there each one's startup, after which uvicorn accepts, waits for its models."""
    app = create_app(settings_for(built_repo, workers=workers))
    async with app.router.lifespan_context(app):
        ready_at_startup = app.state.registry.ready
        await app.state.loading
    assert ready_at_startup == (workers > 1)


async def test_full_queue_answers_503_at_once(slow_repo: Path) -> None:
    settings = settings_for(slow_repo, models=["curve"], max_queue=4, max_batch_size=2)
    async with Service(settings) as svc:

        async def one() -> tuple[int, float, str]:
            started = time.perf_counter()
            r = await svc.client.post("/predict/curve", json={"x": [0.1, 0.2]})
            return r.status_code, time.perf_counter() - started, r.headers.get("retry-after", "")

        results = await asyncio.gather(*(one() for _ in range(12)))
        metrics = (await svc.client.get("/metrics")).text
    refused = [(t, ra) for code, t, ra in results if code == 503]
    assert {code for code, _, _ in results} == {200, 503} and len(refused) >= 4
    slowest_ok = max(t for code, t, _ in results if code == 200)
    assert all(ra == "1" and t < slowest_ok / 2 for t, ra in refused)  # refused at once
    assert 'serving_rejected_total{model="curve",reason="overloaded"}' in metrics


async def test_no_error_leaks_trace_path_or_key(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (store.version_dir(repo, "mlp") / store.ONNX).write_bytes(b"corrupt")
    card = store.read_card(store.version_dir(repo, "mlp"))
    card["sha256"][store.ONNX] = store.sha256(store.version_dir(repo, "mlp") / store.ONNX)
    store.write_json(store.version_dir(repo, "mlp") / store.CARD, card)
    settings = settings_for(
        repo,
        api_keys=[SecretStr("secret-key")],
        max_items=2,
        max_body_bytes=2048,
        request_timeout_s=5,
    )
    auth = {"authorization": "Bearer secret-key"}
    async with Service(settings) as svc:
        c = svc.client
        entry = svc.registry.entries["points"]

        def broken(x: np.ndarray) -> np.ndarray:
            raise RuntimeError("/work/secret/path exploded")

        entry.batcher._run = broken
        answers = [
            await c.post(
                "/predict/curve", content=b"{", headers={**auth, "content-type": "application/json"}
            ),
            await c.post("/predict/curve", json={"x": [1, 2, 3]}, headers=auth),  # 413 items
            await c.post("/predict/curve", json={"x": [0.1] * 600}, headers=auth),  # 413 body
            await c.post("/predict/curve", content=b"x", headers=auth),  # 415
            await c.post("/predict/curve", json={"x": ["a"]}, headers=auth),  # 422
            await c.post("/predict/curve", json={"x": [1]}),  # 401
            await c.post(
                "/predict/curve", json={"x": [1]}, headers={"authorization": "Bearer secret-keyX"}
            ),  # 403
            await c.post(
                "/predict/digits", json={"images": [[0] * 784], "model": "x"}, headers=auth
            ),  # 404
            await c.post(
                "/predict/digits", json={"images": [[0] * 784], "model": "mlp"}, headers=auth
            ),  # 503, failed load
            await c.post("/predict/points", json={"points": [[1, 2]]}, headers=auth),  # 500
            await c.get("/readyz"),
            await c.get("/models"),
            await c.post("/v2/models/curve/infer", json={"inputs": []}, headers=auth),  # 400
        ]
    statuses = [r.status_code for r in answers]
    assert statuses[:10] == [400, 413, 413, 415, 422, 401, 403, 404, 503, 500]
    for r in answers:
        assert not LEAKS.search(r.text), (r.status_code, r.text)
    logs = capsys.readouterr()
    assert "refused" in logs.err and "internal error" in logs.err  # it did log, cleanly
    assert not LEAKS.search(logs.err + logs.out), logs.err[-2000:]


async def test_admission_cap_answers_503_before_reading(slow_repo: Path) -> None:
    settings = settings_for(slow_repo, models=["curve"], max_in_flight=2)
    async with Service(settings) as svc:
        results = await asyncio.gather(
            *(svc.client.post("/predict/curve", json={"x": [0.5]}) for _ in range(8))
        )
        after = await svc.client.post("/predict/curve", json={"x": [0.5]})
        metrics = (await svc.client.get("/metrics")).text
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) >= 2 and codes.count(503) >= 4, codes
    busy = next(r for r in results if r.status_code == 503)
    assert "busy" in busy.json()["error"] and busy.headers["retry-after"] == "1"
    assert after.status_code == 200  # the slots were given back
    assert 'reason="busy"' in metrics
