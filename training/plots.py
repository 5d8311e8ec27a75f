"""The PNG plots of a model version, drawn with matplotlib's Agg canvas (no display, no pyplot)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 90


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path


def history(rows: Sequence[dict[str, float]], path: Path, title: str) -> Path:
    """Loss (and accuracy) per epoch on the training and validation splits."""
    epochs = [r["epoch"] for r in rows]
    has_acc = "val_accuracy" in rows[0]
    fig = Figure(figsize=(9 if has_acc else 5, 3.6), layout="constrained")
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=False):
        for split in ("train", "val"):
            ax.plot(epochs, [r[f"{split}_{metric}"] for r in rows], marker=".", label=split)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{title}: {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    return _save(fig, path)


def curve_fit(
    x: np.ndarray, y: np.ndarray, grid: np.ndarray, pred: np.ndarray, truth: np.ndarray, path: Path
) -> Path:
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.scatter(x[:2000, 0], y[:2000, 0], s=3, alpha=0.3, color="gray", label="training data")
    ax.plot(grid[:, 0], truth[:, 0], color="black", ls="--", lw=1, label="true mean x² + 0.1")
    ax.plot(grid[:, 0], pred[:, 0], color="tab:red", lw=1.5, label="model")
    ax.set(xlabel="x", ylabel="y", title="curve: data and fitted line")
    ax.legend()
    return _save(fig, path)


def decision_regions(
    x: np.ndarray,
    y: np.ndarray,
    panels: Sequence[tuple[str, Callable[[np.ndarray], np.ndarray]]],
    labels: Sequence[str],
    path: Path,
) -> Path:
    """Points over the regions each model assigns to each class, one panel per model, side by
    side (each predict: (N, 2) -> P(class 1)); the black line is P = 0.5, the boundary."""
    lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    fig = Figure(figsize=(5.5 * len(panels), 5), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, predict) in zip(axes, panels, strict=True):
        p1 = predict(grid).reshape(gx.shape)
        ax.contourf(gx, gy, p1, levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.5)
        ax.contour(gx, gy, p1, levels=[0.5], colors="black", linewidths=1)
        for c, color in ((0, "tab:blue"), (1, "tab:red")):
            pts = x[y == c][:1000]
            ax.scatter(pts[:, 0], pts[:, 1], s=4, color=color, label=labels[c])
        ax.set(xlabel="x₁", ylabel="x₂", title=f"{title}: decision regions", aspect="equal")
        ax.legend(loc="upper left")
    return _save(fig, path)


def confusion(labels: np.ndarray, preds: np.ndarray, names: Sequence[str], path: Path) -> Path:
    return _save(confusion_figure(labels, preds, names), path)


def confusion_figure(labels: np.ndarray, preds: np.ndarray, names: Sequence[str]) -> Figure:
    k = len(names)
    m = np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    ax.imshow(np.log1p(m), cmap="Blues")
    for i in range(k):
        for j in range(k):
            color = "white" if i == j else "black"
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set(xticks=range(k), yticks=range(k), xticklabels=names, yticklabels=names)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix ({m.sum()} test images)")
    return fig


def misclassified(
    images: np.ndarray, labels: np.ndarray, probs: np.ndarray, path: Path, limit: int = 40
) -> Path:
    """A grid of wrongly classified test digits: true label, predicted label and its probability."""
    preds = probs.argmax(1)
    wrong = np.flatnonzero(preds != labels)[:limit]
    cols = 10
    rows = max(1, -(-len(wrong) // cols))
    fig = Figure(figsize=(cols * 0.9, rows * 1.05 + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong, strict=False):
        ax.imshow(images[i].reshape(28, 28), cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"{labels[i]}→{preds[i]} {probs[i, preds[i]]:.0%}", fontsize=7)
    total = int((preds != labels).sum())
    fig.suptitle(f"misclassified test digits (true→predicted): first {len(wrong)} of {total}")
    return _save(fig, path)
