"""API keys, hot reload (admin call and directory watch), refused versions, reload under load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from models import store
from tests.serving.conftest import Service, settings_for, write_model

pytestmark = pytest.mark.anyio
KEY, ADMIN = "user-key-123", "admin-key-456"
BEARER = {"authorization": f"Bearer {KEY}"}
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}


def keyed(repo: Path, **kw: object):
    return settings_for(
        repo, api_keys=[SecretStr(KEY), SecretStr("other")], admin_key=SecretStr(ADMIN), **kw
    )


async def test_api_keys(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = {"x": [0.5]}
    async with Service(keyed(repo)) as svc:
        c = svc.client
        none = await c.post("/predict/curve", json=body)
        wrong = await c.post("/predict/curve", json=body, headers={"authorization": "Bearer x"})
        basic = await c.post("/predict/curve", json=body, headers={"authorization": "Basic eA=="})
        right = await c.post("/predict/curve", json=body, headers=BEARER)
        other = await c.post("/predict/curve", json=body, headers={"authorization": "bearer other"})
        v2 = await c.post("/v2/models/curve/infer", json={})
        admin_with_user_key = await c.post("/admin/reload", headers=BEARER)
        open_paths = [
            await c.get(p)
            for p in (
                "/healthz",
                "/readyz",
                "/models",
                "/v2/health/ready",
                "/metrics",
                "/openapi.json",
            )
        ]
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    assert none.json()["field"] == "authorization"
    assert wrong.status_code == 403 and basic.status_code == 401
    assert right.status_code == 200 and other.status_code == 200
    assert v2.status_code == 401
    assert admin_with_user_key.status_code == 403
    assert all(r.status_code == 200 for r in open_paths)
    out = capsys.readouterr()
    assert KEY not in out.err + out.out and ADMIN not in out.err + out.out


async def test_admin_is_off_without_its_key(repo: Path) -> None:
    async with Service(settings_for(repo)) as svc:
        r = await svc.client.post("/admin/reload", headers=AS_ADMIN)
    assert r.status_code == 404 and "SERVING_ADMIN_KEY" in r.json()["error"]


async def curve_y(svc: Service) -> tuple[str, float]:
    r = await svc.client.post("/predict/curve", json={"x": [0.5]}, headers=BEARER)
    assert r.status_code == 200, r.text
    return r.json()["version"], r.json()["y"][0]


async def test_reload_switches_and_refuses_bad_versions(repo: Path) -> None:
    async with Service(keyed(repo)) as svc:
        before = await curve_y(svc)
        same = await svc.client.post("/admin/reload?model=curve", headers=AS_ADMIN)
        write_model(repo, "curve", seed=7)
        loaded = await svc.client.post("/admin/reload?model=curve", headers=AS_ADMIN)
        after = await curve_y(svc)
        bad = write_model(repo, "curve", seed=8)
        (bad / store.ONNX).write_bytes(b"garbage")
        refused = await svc.client.post("/admin/reload", headers=AS_ADMIN)
        still = await curve_y(svc)
        ready = await svc.client.get("/readyz")
        models = await svc.client.get("/models")
        unknown = await svc.client.post("/admin/reload?model=nope", headers=AS_ADMIN)
    assert same.json()["results"]["curve"] == {"status": "unchanged", "version": "1"}
    assert loaded.status_code == 200 and loaded.json()["results"]["curve"]["version"] == "2"
    assert before[0] == "1" and after[0] == "2" and before[1] != after[1]
    assert refused.status_code == 409
    result = refused.json()["results"]["curve"]
    assert result["status"] == "refused" and result["serving"] == "2"
    assert "SHA-256" in result["error"]
    assert refused.json()["results"]["lenet"]["status"] == "unchanged"
    assert still == after
    assert ready.status_code == 200 and "reason" in ready.json()["models"]["curve"]
    assert "curve" in models.json()["failed"]
    assert unknown.status_code == 404


async def test_watch_loads_new_versions(repo: Path) -> None:
    async with Service(settings_for(repo, watch=True, watch_interval_s=0.05)) as svc:
        write_model(repo, "points", seed=3)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if svc.registry.entries["points"].version == 2:
                break
        bad = write_model(repo, "points", seed=4)
        (bad / store.ONNX).write_bytes(b"garbage")
        for _ in range(200):  # the watcher tries it once, refuses it, and keeps serving 2
            await asyncio.sleep(0.05)
            if svc.registry.refused.get("points") == 3:
                break
        assert svc.registry.entries["points"].version == 2
        assert svc.registry.refused["points"] == 3


async def test_reload_under_steady_load_loses_nothing(repo: Path) -> None:
    x = np.linspace(-1, 1, 8).tolist()
    seen: list[tuple[int, str]] = []
    stop = asyncio.Event()
    async with Service(keyed(repo)) as svc:

        async def client() -> None:
            while not stop.is_set():
                r = await svc.client.post("/predict/curve", json={"x": x}, headers=BEARER)
                seen.append((r.status_code, r.json().get("version", "")))

        clients = [asyncio.create_task(client()) for _ in range(8)]
        await asyncio.sleep(0.3)
        write_model(repo, "curve", seed=9)  # the retrain's output appears ...
        r = await svc.client.post("/admin/reload?model=curve", headers=AS_ADMIN)  # ... and loads
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*clients)
    assert r.status_code == 200
    statuses = [s for s, _ in seen]
    versions = [v for _, v in seen]
    assert statuses.count(200) == len(seen) > 50, set(statuses)
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions.index("2") > 0 and "1" not in versions[versions.index("2") + 8 :]
