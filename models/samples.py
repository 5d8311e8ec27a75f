"""The synthetic data sets of the tutorials, and each family's example input. Numpy only.

Training draws its curve and points data here; the service regenerates a sample of a model's
training data from the seed in its card (`/models/<name>/data`) and takes its probe and OpenAPI
example inputs from `EXAMPLES`, so it never imports training or torch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

POINTS_CENTRE = 2.0  # the clusters sit at (2, 2) (label 0) and (-2, -2) (label 1), sigma 1


def make_curve(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x ~ U[-1, 1], y = x^2 + 0.2 * U(0, 1); shapes (n, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 1))
    y = x**2 + 0.2 * rng.uniform(0.0, 1.0, size=(n, 1))
    return x.astype(np.float32), y.astype(np.float32)


def curve_truth(x: np.ndarray) -> np.ndarray:
    """The mean the curve model should learn: E[y | x] = x^2 + 0.1."""
    return x**2 + 0.1


def make_points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clusters, sigma 1, centred at (2, 2) (label 0) and (-2, -2) (label 1)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    centres = np.where(labels[:, None] == 0, POINTS_CENTRE, -POINTS_CENTRE)
    x = centres + rng.normal(0.0, 1.0, size=(n, 2))
    return x.astype(np.float32), labels.astype(np.int64)


def example_digit() -> np.ndarray:
    """A plain '1': a bright vertical stroke on black, as MNIST draws it."""
    img = np.zeros((28, 28), dtype=np.float32)
    img[4:24, 13:16] = 255.0
    return img


EXAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "digits": example_digit,
    "points": lambda: np.array([1.5, 2.0]),
    "curve": lambda: np.array([0.5]),
}
SAMPLERS: dict[str, Callable[[int, int], tuple[np.ndarray, np.ndarray]]] = {
    "curve": make_curve,
    "points": make_points,
}
