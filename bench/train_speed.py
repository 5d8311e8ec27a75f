"""Training speed: LeNet to 99.0 % test accuracy, this project's loop against a tutorial's.

    python -m bench.train_speed --data-dir ../shared/data      (or: make bench)

Both loops run in this one process, one after the other, on the same machine, data and network.
The tutorial loop is the classic one: a per-item Dataset that normalises each image as
torchvision's ToTensor + Normalize would, a DataLoader with batch 64 and shuffling, Adam 1e-3.
The fast loop is `training.train.fit` (whole tensors, indexed batches, OneCycle), with a short
schedule (`FAST`). After each epoch both are scored on the 10k test set (for this benchmark only);
the times reported are training time up to the first epoch at or above 99.0 %, excluding those
scoring passes. Then `python -m training all` runs as `make train` would, into a temporary
repository, and is timed too. The result goes to bench/results/train_speed.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from models import nets
from models.spec import LENET, MNIST_NORMALIZATION
from training import data, datasets, train

TARGET = 0.99
RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.md"
# The fast loop's settings for this race: lenet's defaults with a OneCycle schedule three epochs
# long, a higher peak rate and no augmentation (which pays off only over longer runs).
FAST = dataclasses.replace(train.DEFAULTS["lenet"], epochs=3, lr=1e-2, augment=False)


class TutorialMNIST(Dataset):
    """One item at a time, as torchvision's MNIST with ToTensor() and Normalize() hands them out."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[i]).float().div(255).unsqueeze(0)  # ToTensor
        return (x - MNIST_NORMALIZATION.mean) / MNIST_NORMALIZATION.std, int(self.labels[i])


def tutorial(root: Path, max_epochs: int, seed: int) -> tuple[float | None, list[str]]:
    """The tutorial loop; returns the training seconds to TARGET (None if never) and its log."""
    torch.manual_seed(seed)
    train_set = TutorialMNIST(*datasets.load_mnist(root, "train"))
    test_set = TutorialMNIST(*datasets.load_mnist(root, "test"))
    loader = DataLoader(train_set, batch_size=64, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)
    model = nets.build(LENET)[1:]  # the same LeNet-5, minus its built-in normalisation layer
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    elapsed, log = 0.0, []
    for epoch in range(1, max_epochs + 1):
        start = time.perf_counter()
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        elapsed += time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in test_loader)
        accuracy = correct / len(test_set)
        log.append(f"tutorial epoch {epoch}: test accuracy {accuracy:.2%}, {elapsed:.1f}s")
        print(log[-1], flush=True)
        if accuracy >= TARGET:
            return elapsed, log
    return None, log


def fast(root: Path, seed: int) -> tuple[float | None, list[str]]:
    """training.train.fit with the FAST settings, scored on the test set after each epoch."""
    d = data.mnist(root, FAST.val_size)
    hp = dataclasses.replace(FAST, seed=seed)
    log: list[str] = []
    state = {"start": time.perf_counter(), "scoring": 0.0, "reached": None}

    def after_epoch(net: torch.nn.Module, epoch: int) -> bool:
        t = time.perf_counter()
        elapsed = t - state["start"] - state["scoring"]
        accuracy = train.evaluate(net, d.test, LENET)[0]["accuracy"]
        log.append(f"fast epoch {epoch}: test accuracy {accuracy:.2%}, {elapsed:.1f}s")
        print(log[-1], flush=True)
        state["scoring"] += time.perf_counter() - t
        if accuracy >= TARGET:
            state["reached"] = elapsed
        return accuracy >= TARGET

    state["start"] = time.perf_counter()
    train.fit(LENET, d, hp, progress=False, log=lambda _: None, after_epoch=after_epoch)
    return state["reached"], log


def make_train(root: Path) -> tuple[float, dict[str, float], str]:
    """`python -m training all` into a throwaway repository: wall time and per-model seconds."""
    with tempfile.TemporaryDirectory() as repo:
        cmd = [sys.executable, "-m", "training", "all", "--data-dir", str(root)]
        start = time.perf_counter()
        run = subprocess.run(
            [*cmd, "--models-dir", repo, "--no-progress"], capture_output=True, text=True
        )
        wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"python -m training all failed:\n{run.stderr}")
    found = re.findall(r"== (\w+): test (.*); trained in ([\d.]+)s", run.stdout)
    return (
        wall,
        {name: float(s) for name, _, s in found},
        "\n".join(f"{name}: test {metrics}" for name, metrics, _ in found),
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"model name\s*: (.*)", Path("/proc/cpuinfo").read_text())
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} threads){gpu}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.train_speed", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data-dir", type=Path, default=datasets.default_data_dir())
    p.add_argument("--max-epochs", type=int, default=15, help="tutorial loop gives up after these")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="as for training (0: the idle cores)")
    p.add_argument("--skip-make-train", action="store_true")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    load = os.getloadavg()[0]
    try:
        datasets.load_mnist(args.data_dir, "test")
    except datasets.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(train.pick_threads(args.threads))  # the same for both loops
    print(f"{machine()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    fast_s, fast_log = fast(args.data_dir, args.seed)
    tut_s, tut_log = tutorial(args.data_dir, args.max_epochs, args.seed)
    ratio = fast_s / tut_s if fast_s and tut_s else None
    fmt = lambda s: "not reached" if s is None else f"{s:.1f} s"  # noqa: E731
    print(f"fast loop {fmt(fast_s)}, tutorial loop {fmt(tut_s)}"
          + (f", ratio {ratio:.2f} (target <= 0.33)" if ratio else ""))  # fmt: skip
    lines = [
        "# Training speed",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}; load average at start {load:.2f}",
        f"- command: `python -m bench.train_speed --data-dir {args.data_dir}` (`make bench`)",
        "",
        f"## LeNet to {TARGET:.1%} test accuracy (training time, scoring passes excluded)",
        "",
        "| loop | time | |",
        "| --- | --- | --- |",
        f"| tutorial: per-item Dataset + DataLoader, batch 64, Adam 1e-3 | {fmt(tut_s)} | |",
        f"| this project: `training.train.fit`, {train._short(FAST)}, OneCycle | {fmt(fast_s)} "
        f"| {f'ratio {ratio:.2f} (target ≤ 0.33)' if ratio else ''} |",
        "",
        "```",
        *fast_log,
        *tut_log,
        "```",
    ]
    if not args.skip_make_train:
        wall, per_model, metrics = make_train(args.data_dir)
        print(f"python -m training all: {wall:.1f}s wall; per model {per_model}")
        lines += [
            "",
            "## `make train` (all four models, `python -m training all`)",
            "",
            f"Wall time {wall:.1f} s (target ≤ 300 s), including start-up, data, export and plots.",
            "",
            "| model | training seconds |",
            "| --- | --- |",
            *(f"| {name} | {s:.1f} |" for name, s in per_model.items()),
            "",
            "```",
            metrics,
            "```",
        ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
