"""What a run produced (`Result`), and the lines it prints: one per epoch, one at the end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass
class Result:
    net: nn.Module  # the network of the best validation epoch (the `build()` network)
    history: list[dict[str, float]]  # one row of metrics per epoch
    best_epoch: int
    test: dict[str, float]
    test_outputs: torch.Tensor  # the network's outputs on the test split, for the plots
    seconds: float


def format_row(row: dict[str, float], desc: str) -> str:
    parts = [f"{desc:<14}", f"lr {row['lr']:.2e}"]
    for split in ("train", "val"):
        parts.append(f"{split} loss {row[f'{split}_loss']:.5f}")
        if f"{split}_accuracy" in row:
            parts.append(f"acc {row[f'{split}_accuracy']:.2%}")
    return "  ".join([*parts, f"{row['seconds']:.1f}s"])


def final_line(name: str, result: Result, folder: Path) -> str:
    metrics = ", ".join(f"{k} {v:.6g}" for k, v in result.test.items())
    return (
        f"== {name}: test {metrics}; best epoch {result.best_epoch} of {len(result.history)}; "
        f"trained in {result.seconds:.1f}s -> {folder}"
    )
