"""The committed models, served, on the real MNIST test set: JSON digits and photo-like uploads."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import store
from tests.serving.conftest import Service, settings_for
from training.datasets import DataError, load_mnist

pytestmark = [pytest.mark.anyio, pytest.mark.mnist]
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DATA = Path(os.environ.get("MNIST_DATA_DIR", SHARED))  # as tests/conftest.py:mnist_dir


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    try:
        return load_mnist(DATA, "test")
    except DataError:
        pytest.skip(f"real MNIST is not at {DATA}/MNIST/raw (see shared/README.md)")


@pytest.fixture(scope="module")
def committed() -> Path:
    missing = [n for n in ("lenet", "mlp") if not store.versions(store.REPOSITORY, n)]
    if missing:
        pytest.skip(f"no committed artifacts for {missing} under {store.REPOSITORY}")
    return store.REPOSITORY


async def predict_json(svc: Service, images: np.ndarray, model: str) -> np.ndarray:
    digits = []
    for i in range(0, len(images), 1000):
        r = await svc.client.post(
            "/predict/digits", json={"images": images[i : i + 1000].tolist(), "model": model}
        )
        assert r.status_code == 200, r.text
        digits += [p["digit"] for p in r.json()["predictions"]]
    return np.array(digits)


async def predict_upload(svc: Service, files: list[tuple[str, bytes]], model: str) -> np.ndarray:
    digits = []
    for name, data in files:
        r = await svc.client.post(
            f"/predict/digits/image?model={model}", files={"file": (name, data)}
        )
        assert r.status_code == 200, r.text
        digits.append(r.json()["predictions"][0]["digit"])
    return np.array(digits)


def as_person_would(img: np.ndarray, rng: np.random.Generator) -> tuple[str, bytes]:
    """Dark ink on light paper, scaled up, off-centre, with margins, as PNG or JPEG."""
    scale = int(rng.integers(3, 9))
    digit = Image.fromarray(255 - img).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    w, h = digit.width + int(rng.integers(20, 200)), digit.height + int(rng.integers(20, 200))
    paper = Image.new("L", (w, h), int(rng.integers(200, 256)))
    paper.paste(
        digit,
        (int(rng.integers(0, w - digit.width)), int(rng.integers(0, h - digit.height))),
        mask=Image.fromarray(img).resize(digit.size, Image.Resampling.BICUBIC),
    )
    fmt = "PNG" if rng.random() < 0.5 else "JPEG"
    buf = io.BytesIO()
    paper.convert("RGB").save(buf, fmt, quality=90)
    return f"digit.{fmt.lower()}", buf.getvalue()


async def test_lenet_all_10k_through_json(committed: Path, mnist_test: tuple) -> None:
    images, labels = mnist_test
    async with Service(settings_for(committed, models=["lenet"])) as svc:
        digits = await predict_json(svc, images.astype(np.float32), "lenet")
    accuracy = float((digits == labels).mean())
    print(f"lenet through /predict/digits on 10,000 MNIST test digits: {accuracy:.4%}")
    assert accuracy >= 0.993


async def test_uploads_like_a_person_would(committed: Path, mnist_test: tuple) -> None:
    images, labels = mnist_test
    rng = np.random.default_rng(11)
    pick = rng.choice(len(images), 1000, replace=False)
    files = [as_person_would(images[i], rng) for i in pick]
    async with Service(settings_for(committed, models=["lenet"])) as svc:
        digits = await predict_upload(svc, files, "lenet")
    accuracy = float((digits == labels[pick]).mean())
    print(f"lenet through /predict/digits/image on 1,000 photo-like uploads: {accuracy:.2%}")
    assert accuracy >= 0.97


async def test_28px_pngs_answer_as_json_does(committed: Path, mnist_test: tuple) -> None:
    """One preprocessing everywhere: an MNIST digit uploaded as a 28x28 PNG is the same digit."""
    images, _ = mnist_test
    pick = np.random.default_rng(5).choice(len(images), 1000, replace=False)
    files = []
    for i in pick:
        buf = io.BytesIO()
        Image.fromarray(images[i]).save(buf, "PNG")
        files.append(("d.png", buf.getvalue()))
    async with Service(settings_for(committed, models=["lenet"])) as svc:
        uploaded = await predict_upload(svc, files, "lenet")
        direct = await predict_json(svc, images[pick].astype(np.float32), "lenet")
    agreement = float((uploaded == direct).mean())
    print(f"28x28 PNG upload vs JSON agreement on 1,000 digits: {agreement:.2%}")
    assert agreement >= 0.995
