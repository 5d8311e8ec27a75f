"""LeNet training time with 1 and 2 DistributedDataParallel processes on this machine.

    python -m bench.train_ddp --data-dir ../shared/data [--epochs 1] [--device cpu]
    (or: make bench-train-ddp)

Each configuration runs `python -m training lenet` (one process) or
`torchrun --standalone --nproc-per-node 2 -m training lenet` as `make train` / `make train-ddp`
would, with lenet's tuned defaults except --epochs, into a temporary model repository (the
committed one is never touched). Reported: the training time the program prints (the epochs
alone: no data loading, export or plots), the wall time of the whole command, and the test
accuracy. --batch-size is per process, so 2 processes train with a global batch twice as large
and half the steps each. The result goes to bench/results/train_ddp.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "train_ddp.md"
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    label: str
    processes: int
    threads: int
    train_s: float
    wall_s: float
    accuracy: float


def run(
    processes: int, threads: int, epochs: int, data_dir: Path, device: str, models: Path
) -> Run:
    flags = ["lenet", "--epochs", str(epochs), "--data-dir", str(data_dir), "--device", device,
             "--models-dir", str(models), "--no-progress", "--threads", str(threads)]  # fmt: skip
    if processes == 1:
        cmd = [sys.executable, "-m", "training", *flags]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={processes}", "-m", "training", *flags]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    m = re.search(r"accuracy ([\d.]+), n \d+; trained in ([\d.]+)s", done.stdout)
    assert m, done.stdout[-2000:]
    label = f"{processes} process{'es' if processes > 1 else ''} x {threads} thread"
    return Run(label + ("s" if threads > 1 else ""), processes, threads, float(m[2]), wall,
               float(m[1]))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.train_ddp", description=__doc__)
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    # (processes, threads each): one process on one core, one on all cores, and DDP on one core
    # per process, so that 2 processes never use more cores than the 1-process row beside them.
    if args.device == "cuda":
        gpus = torch.cuda.device_count()
        configs = [(1, 1)] + ([(2, 1)] if gpus >= 2 else [])  # nccl: one GPU per process
    else:
        configs = sorted({(1, 1), (1, min(2, cores)), (2, 1)})
    load = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (procs, threads) in enumerate(configs):
            r = run(procs, threads, args.epochs, args.data_dir, args.device, Path(tmp) / str(i))
            print(f"{r.label}: train {r.train_s:.1f}s, wall {r.wall_s:.1f}s, acc {r.accuracy:.2%}")
            runs.append(r)
    base = runs[0].train_s
    lines = [
        "# LeNet training time: 1 vs 2 DDP processes",
        "",
        f"{dt.date.today()}, `python -m bench.train_ddp --epochs {args.epochs} "
        f"--device {args.device}`; {platform.processor() or platform.machine()}, {cores} cores, "
        f"torch {torch.__version__}, one-minute load average {load:.2f} at the start.",
        f"lenet's tuned defaults (AdamW, OneCycle, augmentation, batch 128 per process), "
        f"{args.epochs} epoch(s) over 55,000 MNIST images; 2 processes: gloo"
        f"{'/nccl' if args.device == 'cuda' else ''}, each rank a half shard per epoch, a global "
        "batch of 256.",
        "",
        "| configuration | training s | speed-up | wall s (whole command) | test accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(f"| {r.label} | {r.train_s:.1f} | {base / r.train_s:.2f}x | {r.wall_s:.1f} "
                     f"| {r.accuracy:.2%} |")  # fmt: skip
    lines += [
        "",
        "Training s: the epochs alone as the program reports them; wall s adds interpreter and "
        "process-group start-up, data loading, the test, ONNX export and plots (rank 0).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
