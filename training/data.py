"""Each model's data as whole tensors on the training device, and the batches drawn from them.

Everything is loaded once; a batch is a tensor of indices into the training tensors, so there is
no per-item Dataset or DataLoader. Under DDP (issue 10) `epoch_order` is where a
DistributedSampler's indices come in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models import samples
from models.spec import ModelSpec
from training import datasets

MNIST_SPLIT_SEED = 20240601  # fixes which training images are held out for validation
POINTS_SEEDS = {"train": 1, "test": 2}  # the test points are fresh: another seed
CURVE_SEED = 1
CURVE_GRID = 1000  # the curve is tested against its true mean on this many points over [-1, 1]


@dataclass
class Split:
    x: torch.Tensor  # raw inputs, float32, (N, *spec.input.shape)
    y: torch.Tensor  # class indices (int64) or targets (float32, (N, 1))

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Data:
    train: Split
    val: Split
    test: Split
    info: dict[str, object] = field(default_factory=dict)  # for the model card

    def to(self, device: torch.device) -> Data:
        return Data(self.train.to(device), self.val.to(device), self.test.to(device), self.info)


def _split(x: np.ndarray, y: np.ndarray, n_val: int, seed: int) -> tuple[Split, Split]:
    if not 0 < n_val < len(x):
        raise ValueError(f"validation size {n_val} must be between 1 and {len(x) - 1}")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    return Split(xt[train], yt[train]), Split(xt[val], yt[val])


def mnist(root: Path, n_val: int) -> Data:
    """MNIST as raw 0-255 float pixels (N, 1, 28, 28); the validation split comes from train."""
    images, labels = datasets.load_mnist(root, "train")
    test_images, test_labels = datasets.load_mnist(root, "test")
    x = images.astype(np.float32)[:, None]
    train, val = _split(x, labels.astype(np.int64), n_val, MNIST_SPLIT_SEED)
    test = Split(
        torch.from_numpy(test_images.astype(np.float32)[:, None]),
        torch.from_numpy(test_labels.astype(np.int64)),
    )
    info = {
        "source": f"MNIST IDX files in {Path(root) / 'MNIST' / 'raw'}",
        "sha256": datasets.checksum(images, labels, test_images, test_labels),
        "train": len(train),
        "validation": len(val),
        "validation_split_seed": MNIST_SPLIT_SEED,
        "test": len(test),
        "test_set": "official MNIST test set",
    }
    return Data(train, val, test, info)


def points(n_train: int, n_val: int, n_test: int = 10_000) -> Data:
    x, y = samples.make_points(n_train + n_val, POINTS_SEEDS["train"])
    train, val = _split(x, y, n_val, POINTS_SEEDS["train"])
    tx, ty = samples.make_points(n_test, POINTS_SEEDS["test"])
    test = Split(torch.from_numpy(tx), torch.from_numpy(ty))
    info = {
        "source": "models.samples.make_points: Gaussian clusters at (2, 2) and (-2, -2), sigma 1",
        "sha256": datasets.checksum(x, y, tx, ty),
        "train": len(train),
        "validation": len(val),
        "seed": POINTS_SEEDS["train"],
        "test": len(test),
        "test_set": f"fresh points, seed {POINTS_SEEDS['test']}",
    }
    return Data(train, val, test, info)


def curve(n_train: int, n_val: int) -> Data:
    x, y = samples.make_curve(n_train + n_val, CURVE_SEED)
    train, val = _split(x, y, n_val, CURVE_SEED)
    grid = np.linspace(-1.0, 1.0, CURVE_GRID, dtype=np.float32)[:, None]
    test = Split(torch.from_numpy(grid), torch.from_numpy(samples.curve_truth(grid)))
    info = {
        "source": "models.samples.make_curve: x ~ U[-1, 1], y = x^2 + 0.2 U(0, 1)",
        "sha256": datasets.checksum(x, y),
        "train": len(train),
        "validation": len(val),
        "seed": CURVE_SEED,
        "test": len(test),
        "test_set": f"true mean x^2 + 0.1 on a {CURVE_GRID}-point grid over [-1, 1]",
    }
    return Data(train, val, test, info)


def load(
    spec: ModelSpec, val_size: int, train_size: int, root: Path, cache: dict[str, Data]
) -> Data:
    """The data of one model's family (on the CPU); each set is made once per size."""
    key = f"{spec.family}-{val_size}-{train_size if spec.family != 'digits' else 0}"
    if key not in cache:
        if spec.family == "digits":
            cache[key] = mnist(root, val_size)
        elif spec.family == "points":
            cache[key] = points(train_size, val_size)
        else:
            cache[key] = curve(train_size, val_size)
    return cache[key]


def epoch_order(n: int, shuffle: bool, generator: torch.Generator) -> torch.Tensor:
    """The order of the training items in one epoch (a DistributedSampler's job under DDP)."""
    return torch.randperm(n, generator=generator) if shuffle else torch.arange(n)


def batches(order: torch.Tensor, batch_size: int, drop_last: bool) -> Iterator[torch.Tensor]:
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def n_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def augment(
    x: torch.Tensor, degrees: float = 10.0, shift: float = 2.0, scale: float = 0.1
) -> torch.Tensor:
    """Random affine (rotation, scale, shift in pixels) of a batch of images, on its device."""
    n, c, h, w = x.shape
    rand = torch.rand(n, 4, device=x.device) * 2 - 1
    angle = rand[:, 0] * math.radians(degrees)
    factor = 1 + rand[:, 1] * scale
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    tx, ty = rand[:, 2] * (2 * shift / w), rand[:, 3] * (2 * shift / h)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
