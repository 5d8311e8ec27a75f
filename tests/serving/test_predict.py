"""Every /predict endpoint answers what the model itself answers, in input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models import store
from models.spec import SPECS
from tests.serving.conftest import Service, settings_for

pytestmark = pytest.mark.anyio


def direct(repo: Path, name: str, x: np.ndarray) -> np.ndarray:
    """The model run by hand with ONNX Runtime, no service involved."""
    spec = SPECS[name]
    session = ort.InferenceSession(str(store.version_dir(repo, name) / store.ONNX))
    return session.run(None, {spec.input.name: x.astype(np.float32)})[0]


def digits(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28)).astype(np.float32)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
@pytest.mark.parametrize("model", ["lenet", "mlp"])
async def test_digits_match_the_model(repo: Path, backend: str, model: str) -> None:
    x = digits(5)
    async with Service(settings_for(repo, backend=backend)) as svc:
        r = await svc.client.post("/predict/digits", json={"images": x.tolist(), "model": model})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == model and body["version"] == "1"
    probs = np.array([p["probabilities"] for p in body["predictions"]])
    want = direct(repo, model, x[:, None])
    np.testing.assert_allclose(probs, want, atol=1e-4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert [p["digit"] for p in body["predictions"]] == want.argmax(axis=1).tolist()


async def test_flat_images_and_default_model(repo: Path) -> None:
    x = digits(3, seed=1)
    async with Service(settings_for(repo)) as svc:
        flat = await svc.client.post("/predict/digits", json={"images": x.reshape(3, 784).tolist()})
        square = await svc.client.post("/predict/digits", json={"images": x.tolist()})
    assert flat.status_code == square.status_code == 200
    assert flat.json() == square.json()
    assert flat.json()["model"] == "lenet"


async def test_points_and_curve_match_the_model(repo: Path) -> None:
    pts = np.array([[2.0, 2.0], [-2.0, -2.5], [0.1, -0.3], [5.0, 1.0]])
    xs = np.linspace(-1, 1, 7)
    async with Service(settings_for(repo)) as svc:
        rp = await svc.client.post("/predict/points", json={"points": pts.tolist()})
        rc = await svc.client.post("/predict/curve", json={"x": xs.tolist()})
    assert rp.status_code == rc.status_code == 200
    probs = np.array([p["probabilities"] for p in rp.json()["predictions"]])
    np.testing.assert_allclose(probs, direct(repo, "points", pts), atol=1e-6)
    assert [p["label"] for p in rp.json()["predictions"]] == probs.argmax(axis=1).tolist()
    y = np.array(rc.json()["y"])
    np.testing.assert_allclose(y, direct(repo, "curve", xs[:, None]).ravel(), atol=1e-6)


async def test_backends_agree(repo: Path) -> None:
    x = digits(8, seed=2)
    answers = []
    for backend in ("onnx", "torch"):
        async with Service(settings_for(repo, backend=backend)) as svc:
            r = await svc.client.post("/predict/digits", json={"images": x.tolist()})
            c = await svc.client.post("/predict/curve", json={"x": [-0.5, 0.25]})
            answers.append((r.json()["predictions"], c.json()["y"]))
    (d1, c1), (d2, c2) = answers
    np.testing.assert_allclose(
        [p["probabilities"] for p in d1], [p["probabilities"] for p in d2], atol=1e-4
    )
    np.testing.assert_allclose(c1, c2, atol=1e-4)


async def test_many_concurrent_requests_each_get_their_own_answer(repo: Path) -> None:
    import asyncio

    x = digits(40, seed=3)
    want = direct(repo, "lenet", x[:, None])
    async with Service(settings_for(repo, max_batch_size=16)) as svc:
        rs = await asyncio.gather(
            *[
                svc.client.post("/predict/digits", json={"images": x[i : i + 1 + i % 3].tolist()})
                for i in range(0, 38)
            ]
        )
        batches = svc.registry.entries["lenet"].batcher.stats.batches
    for i, r in enumerate(rs):
        got = np.array([p["probabilities"] for p in r.json()["predictions"]])
        np.testing.assert_allclose(got, want[i : i + 1 + i % 3], atol=1e-5)
    assert batches < 38  # requests were merged into fewer model calls


async def test_models_lists_what_is_served(repo: Path) -> None:
    async with Service(settings_for(repo)) as svc:
        r = await svc.client.get("/models")
        one = await svc.client.get("/models/mlp")
        missing = await svc.client.get("/models/nope")
    assert r.status_code == 200
    names = {m["name"]: m for m in r.json()["models"]}
    assert set(names) == set(SPECS)
    lenet = names["lenet"]
    assert lenet["version"] == "1" and lenet["backend"] == "onnx" and lenet["device"] == "cpu"
    assert lenet["input"]["shape"] == [-1, 1, 28, 28]
    assert one.json()["name"] == "mlp"
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


async def test_training_data_sample(repo: Path) -> None:
    for name in ("curve", "points"):  # the test repo's cards carry no data seed
        card = store.read_card(store.version_dir(repo, name))
        card["data"] = {"seed": 3, "train": 50, "validation": 10}
        store.write_json(store.version_dir(repo, name) / store.CARD, card)
    async with Service(settings_for(repo, backend="onnx")) as svc:
        c = await svc.client.get("/models/curve/data?n=20")
        p = await svc.client.get("/models/points/data", params={"n": 30})
        mnist = await svc.client.get("/models/lenet/data")
        bad = await svc.client.get("/models/curve/data?n=0")
    x, y = np.array(c.json()["x"]), np.array(c.json()["y"])
    assert len(x) == 20 and np.all(np.abs(x) <= 1)
    assert np.all((y >= x**2 - 1e-6) & (y <= x**2 + 0.2 + 1e-6))
    assert len(p.json()["points"]) == 30 and set(p.json()["labels"]) <= {0, 1}
    assert mnist.status_code == 404 and bad.status_code == 422
