"""Training speed: LeNet to 99.0 % test accuracy, this project's loop against a tutorial's.

    python -m bench.train_speed --data-dir ../shared/data      (or: make bench)

Both loops run in this one process, on the same CPU threads, data and network.
The tutorial loop is the classic one: a per-item Dataset that normalises each image as
torchvision's ToTensor + Normalize would, a DataLoader with batch 64 and shuffling, Adam 1e-3.
The fast loop is `training.train.fit` (whole tensors, indexed batches, OneCycle), with a short
schedule (`FAST`). Their epochs alternate, so that the load of a shared machine weighs on both
alike. After each epoch both are scored on the 10k test set (for this benchmark only); the times
reported are training time up to the first epoch at or above 99.0 %, without the scoring.
Then `python -m training all` runs as `make train` would, into a temporary repository, and is
timed too. The result goes to bench/results/train_speed.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from models import nets
from models.spec import LENET, MNIST_NORMALIZATION
from training import card, config, data, datasets, train

TARGET = 0.99
RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.md"
# The fast loop's settings for this race: lenet's defaults with a OneCycle schedule three epochs
# long, a higher peak rate, no augmentation (it pays off only over longer runs) and, where the
# hardware runs bf16 natively, mixed precision.
FAST = dataclasses.replace(train.DEFAULTS["lenet"], epochs=3, lr=1e-2, augment=False)


class TutorialMNIST(Dataset):
    """One item at a time, as torchvision's MNIST with ToTensor() and Normalize() hands them out."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = np.array(images), np.array(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[i]).float().div(255).unsqueeze(0)  # ToTensor
        return (x - MNIST_NORMALIZATION.mean) / MNIST_NORMALIZATION.std, int(self.labels[i])


class Tutorial:
    """The tutorial loop, one epoch per call, timing its training and not its scoring."""

    def __init__(self, root: Path, seed: int) -> None:
        torch.manual_seed(seed)
        self.train_set = TutorialMNIST(*datasets.load_mnist(root, "train"))
        self.test_set = TutorialMNIST(*datasets.load_mnist(root, "test"))
        shuffle = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(self.train_set, batch_size=64, shuffle=True, generator=shuffle)
        self.test_loader = DataLoader(self.test_set, batch_size=1000)
        self.model = nets.build(LENET)[1:]  # the same LeNet-5 minus its normalisation layer
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def epoch(self) -> tuple[float, float]:
        """Train one epoch; its training seconds and the test accuracy after it."""
        start = time.perf_counter()
        self.model.train()
        for x, y in self.loader:
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.optimizer.step()
        seconds = time.perf_counter() - start
        self.model.eval()
        with torch.no_grad():
            correct = sum(int((self.model(x).argmax(1) == y).sum()) for x, y in self.test_loader)
        return seconds, correct / len(self.test_set)


@dataclass
class Lap:
    """One loop's progress in the race."""

    name: str
    max_epochs: int
    seconds: float = 0.0  # training time so far
    reached: float | None = None  # training time when it first scored >= TARGET
    log: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.reached is not None or len(self.log) >= self.max_epochs

    def record(self, seconds: float, accuracy: float) -> None:
        self.seconds = seconds
        self.log.append(
            f"{self.name} epoch {len(self.log) + 1}: test {accuracy:.2%}, {seconds:.1f}s"
        )
        print(self.log[-1], flush=True)
        if accuracy >= TARGET:
            self.reached = seconds


def race(root: Path, seed: int, max_epochs: int, hp: train.HParams) -> tuple[Lap, Lap]:
    """Both loops, their epochs alternating so that a change in the machine's load hits both."""
    d = data.mnist(root, hp.val_size)
    tutorial = Tutorial(root, seed)
    fast_lap, tutorial_lap = Lap("fast", hp.epochs), Lap("tutorial", max_epochs)

    def tutorial_epoch() -> None:
        seconds, accuracy = tutorial.epoch()
        tutorial_lap.record(tutorial_lap.seconds + seconds, accuracy)

    excluded = 0.0  # scoring and the tutorial's epochs, run between the fast loop's epochs

    def after_epoch(net: torch.nn.Module, epoch: int) -> bool:
        nonlocal excluded
        t = time.perf_counter()
        accuracy = train.evaluate(net, d.test, LENET)[0]["accuracy"]
        fast_lap.record(t - start - excluded, accuracy)
        if not tutorial_lap.done:
            tutorial_epoch()
        excluded += time.perf_counter() - t
        return fast_lap.done

    start = time.perf_counter()
    train.fit(LENET, d, hp, progress=False, log=lambda _: None, after_epoch=after_epoch)
    while not tutorial_lap.done:
        tutorial_epoch()
    return fast_lap, tutorial_lap


def native_bf16() -> bool:
    """Whether bf16 runs on hardware here (AMX or AVX-512 BF16 on the CPU; or the GPU's)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


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
    cpu = card.cpu_name()
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
    p.add_argument("--precision", choices=("auto", *train.PRECISIONS), default="auto",
                   help="the fast loop's (auto: bf16 where hardware runs it)")  # fmt: skip
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
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if native_bf16() else "fp32"
    hp = dataclasses.replace(FAST, seed=args.seed, precision=precision)
    print(f"{machine()}; load average {load:.2f}", flush=True)
    fast, tutorial = race(args.data_dir, args.seed, args.max_epochs, hp)
    ratio = fast.reached / tutorial.reached if fast.reached and tutorial.reached else None
    fmt = lambda s: "not reached" if s is None else f"{s:.1f} s"  # noqa: E731
    verdict = f"ratio {ratio:.2f} (target ≤ 0.33)" if ratio else ""
    print(f"fast loop {fmt(fast.reached)}, tutorial loop {fmt(tutorial.reached)}; {verdict}")
    lines = [
        "# Training speed",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}; one-minute load average at start {load:.2f}",
        f"- command: `python -m bench.train_speed --data-dir {args.data_dir}` (`make bench`)",
        "",
        f"## LeNet to {TARGET:.1%} test accuracy",
        "",
        "Training time only (scoring passes excluded); the two loops' epochs alternate.",
        "",
        "| loop | time to target | |",
        "| --- | --- | --- |",
        "| tutorial: per-item Dataset + DataLoader, batch 64, Adam 1e-3, fp32 "
        f"| {fmt(tutorial.reached)} | |",
        f"| this project: `training.train.fit`, {config.short(hp)}, OneCycle "
        f"| {fmt(fast.reached)} | {verdict} |",
        "",
        "```",
        *fast.log,
        *tutorial.log,
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
