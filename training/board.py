"""TensorBoard logs of a run, written with torch's own `SummaryWriter` (`--tensorboard DIR`).

Under DIR/<model name>/: per epoch the scalars loss/{train,val}, accuracy/{train,val} and lr;
the model graph; at the end the test metrics, and for a classifier the confusion matrix and a
grid of sample test predictions as images. `tensorboard --logdir DIR` shows them. Needs the
`tensorboard` package (the dev extra); training without the flag never imports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from models import nets
from models.spec import ModelSpec
from training import plots
from training.data import Data
from training.summary import Result


def _image(fig: Figure) -> np.ndarray:
    """A matplotlib figure as an (H, W, 3) uint8 image."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class Board:
    def __init__(self, root: Path, spec: ModelSpec) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.spec = spec
        self.writer = SummaryWriter(log_dir=str(Path(root) / spec.name))

    def epoch(self, row: dict[str, float]) -> None:
        step = int(row["epoch"])
        for split in ("train", "val"):
            for metric in ("loss", "accuracy"):
                if f"{split}_{metric}" in row:
                    self.writer.add_scalar(f"{metric}/{split}", row[f"{split}_{metric}"], step)
        self.writer.add_scalar("lr", row["lr"], step)
        self.writer.flush()

    def finish(self, result: Result, d: Data) -> None:
        """The graph, the test metrics and (classifiers) the confusion matrix and samples."""
        net = result.net.eval()
        example = d.test.x[:2]
        try:
            self.writer.add_graph(net, example)
        except Exception as e:  # the graph is a nicety; tracing must not fail a training run
            self.writer.add_text("graph", f"could not trace the graph: {e}")
        for key, value in result.test.items():
            self.writer.add_scalar(f"test/{key}", value, len(result.history))
        if not self.spec.is_classifier:
            self.writer.flush()
            return
        probs = nets.probabilities(result.test_outputs.float(), self.spec).cpu().numpy()
        labels = d.test.y.cpu().numpy()
        confusion = plots.confusion_figure(labels, probs.argmax(1), self.spec.labels)
        self.writer.add_image("confusion", _image(confusion), dataformats="HWC")
        self.writer.add_image("predictions", _samples(self.spec, d, probs), dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _samples(spec: ModelSpec, d: Data, probs: np.ndarray, n: int = 16) -> np.ndarray:
    """The first n test items with the predicted label and its probability (and the truth)."""
    x, y = d.test.x[:n].cpu().numpy(), d.test.y[:n].cpu().numpy()
    fig = Figure(figsize=(8, 2.4), layout="constrained")
    if spec.family == "digits":
        axes = fig.subplots(2, n // 2).ravel()
        for ax, img, true, p in zip(axes, x, y, probs[:n], strict=True):
            ax.imshow(img.reshape(28, 28), cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(f"{p.argmax()} {p.max():.0%} ({true})", fontsize=7)
            ax.axis("off")
    else:
        ax = fig.subplots()
        colors = np.where(probs[:n].argmax(1) == y, "tab:green", "tab:red")
        ax.scatter(x[:, 0], x[:, 1], c=colors)
        for (px, py), p in zip(x, probs[:n], strict=True):
            ax.annotate(f"{p.argmax()} {p.max():.0%}", (px, py), fontsize=7)
        ax.set(title="test points: predicted label and P (green: right)")
    return _image(fig)
