"""The training data: MNIST read from its IDX files; the two synthetic sets. Numpy only.

MNIST lives in torchvision's on-disk layout, `<root>/MNIST/raw/<file>[.gz]`, so a folder that
torchvision downloaded works as it is; torchvision itself is used only by `download()`.
The synthetic sets live in `models.samples` (the service regenerates samples of them without
importing training) and are re-exported here.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

# Re-exported for older importers; new code imports models.samples.
from models.samples import curve_truth, make_curve, make_points  # noqa: F401

DATA_DIR_ENV = "MNIST_DATA_DIR"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


class DataError(Exception):
    """MNIST is missing or unreadable; the message says where it was expected and how to get it."""


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def _how_to_get(root: Path) -> str:
    return (
        f"MNIST is expected in {root / 'MNIST' / 'raw'}/ as the four IDX files "
        f"({', '.join(FILES['train'] + FILES['test'])}, gzipped or not). Point --data-dir "
        f"(or ${DATA_DIR_ENV}) at the folder that holds MNIST/raw/, or run with --download "
        "on a machine with internet and torchvision."
    )


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (gzip or plain) into a uint8 array, checking magic number and length."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip raises these for truncated or non-gzip data
        raise DataError(f"{path}: cannot read ({e})") from e
    if len(data) < 8:
        raise DataError(f"{path}: truncated (only {len(data)} bytes)")
    found = int.from_bytes(data[0:4], "big")
    if found != magic:
        raise DataError(
            f"{path}: wrong magic number {found} (expected {magic}); "
            "not an MNIST IDX file of this kind"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(
            f"{path}: truncated or padded ({len(data)} bytes, expected {expected} for shape {dims})"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    raw = root / "MNIST" / "raw"
    for candidate in (raw / f"{stem}.gz", raw / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"missing {stem}. {_how_to_get(root)}")


def load_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 of the 'train' or 'test' split."""
    root = Path(root)
    images_file, labels_file = FILES[split]
    images = read_idx(_find(root, images_file), IMAGES_MAGIC)
    labels = read_idx(_find(root, labels_file), LABELS_MAGIC)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{split} images have shape {images.shape}, expected (N, 28, 28)")
    if len(images) != len(labels):
        raise DataError(f"{split}: {len(images)} images but {len(labels)} labels")
    if labels.max(initial=0) > 9:
        raise DataError(f"{split}: label {labels.max()} outside 0-9")
    return images, labels


def checksum(*arrays: np.ndarray) -> str:
    """SHA-256 of the decoded content, so the card names exactly the data a model saw."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def download(root: Path) -> None:
    """Fetch MNIST with torchvision (internet needed) into torchvision's layout under root."""
    try:
        from torchvision.datasets import MNIST
    except Exception as e:  # ImportError, or a torchvision built for another torch
        raise DataError(
            f"--download needs an importable torchvision ({e}). {_how_to_get(root)}"
        ) from e
    for train in (True, False):
        MNIST(str(root), train=train, download=True)
