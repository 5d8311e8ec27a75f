"""Keeping the best epoch, and stopping early when validation stops improving."""

from __future__ import annotations

import torch
from torch import nn


class BestEpoch:
    """The weights of the epoch with the lowest validation loss (a tie goes to the later epoch).

    Validation loss is smoother than accuracy on a few thousand items. With `patience` > 0,
    `should_stop` says when that many epochs in a row brought no improvement.
    """

    def __init__(self, patience: int = 0) -> None:
        self.patience = patience
        self.epoch = 0
        self.loss = float("inf")
        self.state: dict[str, torch.Tensor] | None = None
        self._since = 0

    def update(self, net: nn.Module, epoch: int, val_loss: float) -> bool:
        """Record an epoch; True when it is the best so far (its weights are kept)."""
        if self.state is None or val_loss <= self.loss:
            self.epoch, self.loss, self._since = epoch, val_loss, 0
            self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return True
        self._since += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self._since >= self.patience

    def restore(self, net: nn.Module) -> None:
        """Load the kept weights into `net`."""
        if self.state is None:
            raise RuntimeError("no epoch was recorded")
        net.load_state_dict(self.state)
