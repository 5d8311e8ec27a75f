"""Readiness is honest, bad artifacts are refused without harming the rest, the process stops
cleanly."""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from models import store
from models.spec import SPECS
from tests.serving.conftest import Service, live_server, settings_for

pytestmark = pytest.mark.anyio


async def test_not_ready_without_models(tmp_path: Path) -> None:
    async with Service(settings_for(tmp_path)) as svc:
        ready = await svc.client.get("/readyz")
        alive = await svc.client.get("/healthz")
        predict = await svc.client.post("/predict/curve", json={"x": [0.1]})
    assert alive.status_code == 200
    assert ready.status_code == 503
    states = ready.json()["models"]
    assert set(states) == set(SPECS)  # every built-in model, none loadable
    assert all(s["state"] == "failed" for s in states.values())
    assert "no version" in states["curve"]["reason"]
    assert predict.status_code == 503 and predict.headers["retry-after"]


async def test_zero_models_is_not_ready(repo: Path) -> None:
    async with Service(settings_for(repo, models=[])) as svc:
        assert (await svc.client.get("/readyz")).status_code == 503


@pytest.mark.parametrize("backend", ["onnx", "torch"])
async def test_tampered_model_is_refused_others_serve(
    repo: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = store.version_dir(repo, "mlp")
    target = folder / (store.ONNX if backend == "onnx" else store.STATE_DICT)
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    async with Service(settings_for(repo, backend=backend)) as svc:
        ready = await svc.client.get("/readyz")
        models = await svc.client.get("/models")
        mlp = await svc.client.post("/predict/digits", json={"images": [[0] * 784], "model": "mlp"})
        lenet = await svc.client.post("/predict/digits", json={"images": [[0] * 784]})
    assert ready.status_code == 503 and "SHA-256" in ready.json()["models"]["mlp"]["reason"]
    assert "mlp" not in {m["name"] for m in models.json()["models"]}
    assert "mlp" in models.json()["failed"]
    assert mlp.status_code == 503 and "SHA-256" in mlp.json()["error"]
    assert lenet.status_code == 200
    logs = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(e["level"] == "error" and "model mlp refused" in e["message"] for e in logs)


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (open, (str(self.marker), "w"))


async def test_pickle_payload_never_runs(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folder = store.version_dir(repo, "points")
    import torch

    torch.save({"weights": _Payload(marker)}, folder / store.STATE_DICT)
    card = store.read_card(folder)  # an attacker who can write files can fix the checksum too
    card["sha256"][store.STATE_DICT] = store.sha256(folder / store.STATE_DICT)
    store.write_json(folder / store.CARD, card)
    assert pickle.dumps(_Payload(marker))  # the payload is a real one
    async with Service(settings_for(repo, backend="torch")) as svc:
        ready = await svc.client.get("/readyz")
    assert not marker.exists()
    assert ready.status_code == 503 and ready.json()["models"]["points"]["state"] == "failed"


async def test_metrics_count_requests(repo: Path) -> None:
    async with Service(settings_for(repo)) as svc:
        await svc.client.post("/predict/curve", json={"x": [0.1, 0.2]})
        await svc.client.post("/predict/curve", json={"x": ["bad"]})
        text = (await svc.client.get("/metrics")).text
    assert 'serving_requests_total{endpoint="/predict/curve",model="curve",status="200"}' in text
    assert 'endpoint="/predict/curve",model="",status="422"' in text
    assert 'serving_model_info{backend="onnx",device="cpu",model="curve",version="1"} 1.0' in text
    assert "serving_batch_size_bucket" in text


async def test_request_id_is_echoed(repo: Path) -> None:
    async with Service(settings_for(repo)) as svc:
        given = await svc.client.get("/healthz", headers={"x-request-id": "abc-123"})
        made = await svc.client.get("/healthz", headers={"x-request-id": "bad id\n"})
    assert given.headers["x-request-id"] == "abc-123"
    assert made.headers["x-request-id"] not in ("", "bad id")


def test_real_server_answers_and_stops_cleanly(built_repo: Path) -> None:
    with live_server(built_repo) as (url, proc):
        r = httpx.post(f"{url}/predict/points", json={"points": [[2, 2]]})
        assert r.status_code == 200 and r.json()["model"] == "points"
        assert httpx.get(f"{url}/openapi.json").json()["paths"]["/predict/digits"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_onnx_path_never_imports_torch(built_repo: Path) -> None:
    """Serving with ONNX Runtime stays lean: torch (hundreds of MiB) is never imported."""
    code = f"""
import asyncio, sys
from serving.engine.registry import Registry
from serving.settings import Settings
async def main():
    registry = Registry(Settings(models_dir={str(built_repo)!r}, backend="onnx", device="auto"))
    await registry.load_all()
    assert registry.ready, registry.failures
asyncio.run(main())
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_metrics_add_up_across_worker_processes(built_repo: Path) -> None:
    """With two uvicorn workers, /metrics on either answers for both (multiprocess mode)."""
    with live_server(built_repo, "--workers", "2") as (url, _):
        for _ in range(40):  # the kernel spreads connections over both workers
            with httpx.Client() as c:  # a new connection each time
                assert c.post(f"{url}/predict/curve", json={"x": [0.5]}).status_code == 200
        text = httpx.get(f"{url}/metrics").text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith('serving_requests_total{endpoint="/predict/curve"')
    )
    assert float(line.split()[-1]) == 40.0
    assert text.count("serving_model_info{") >= 4


async def test_exposed_without_a_key_warns(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with Service(settings_for(repo, host="0.0.0.0")):
        pass
    async with Service(settings_for(repo, host="127.0.0.1")):
        pass
    warnings = [line for line in capsys.readouterr().err.splitlines() if "no API key" in line]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0]


async def test_access_log_is_json_with_the_request_id(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with Service(settings_for(repo, access_log=True)) as svc:
        r = await svc.client.post(
            "/predict/curve", json={"x": [0.1]}, headers={"x-request-id": "trace-42"}
        )
        bad = await svc.client.post("/predict/curve", json={"x": ["a"]})
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    access = [e for e in lines if e["logger"] == "serving.access"]
    first = next(e for e in access if e.get("request_id") == "trace-42")
    assert r.status_code == 200 and first["status"] == 200 and first["model"] == "curve"
    assert first["message"] == "POST /predict/curve" and first["seconds"] > 0
    assert any(
        e["status"] == 422 and e["request_id"] == bad.headers["x-request-id"] for e in access
    )
