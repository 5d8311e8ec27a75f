# Shared test fixtures. Kept minimal on purpose: other parts of the project add theirs here too.
from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data"


def _idx(array: np.ndarray) -> bytes:
    """An IDX file: zero, zero, dtype 0x08 (uint8), ndim, big-endian dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def fake_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable stand-ins for MNIST: digit k is a bright bar at row 2k+4, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4 : 2 * k + 6, 4:24] = 255
    return images, labels


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write small MNIST IDX files (gzipped or plain) in torchvision's layout; the root."""

    def write(gz: bool = True, n_train: int = 300, n_test: int = 100) -> Path:
        root = tmp_path / ("gz" if gz else "plain")
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for split, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
            images, labels = fake_digits(n, seed)
            for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
                name = f"{split}-{kind}-ubyte"
                if gz:
                    (raw / f"{name}.gz").write_bytes(gzip.compress(_idx(array)))
                else:
                    (raw / name).write_bytes(_idx(array))
        return root

    return write


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST ($MNIST_DATA_DIR, else ../shared/data beside the checkout), or skip."""
    root = Path(os.environ.get("MNIST_DATA_DIR", SHARED_MNIST))
    if not (root / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST not found under {root}/MNIST/raw (set MNIST_DATA_DIR)")
    return root
