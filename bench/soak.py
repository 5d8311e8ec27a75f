"""Soak: many concurrent clients on loopback for a while; count errors, watch resident memory.

    python -m bench.soak [--seconds 60] [--clients 64] [--models-dir DIR]   (make soak)

Starts `python -m serving` itself, drives it with keep-alive asyncio clients posting one MNIST-
shaped digit each (and a point and a curve value now and then), samples the server's RSS every
second, and writes bench/results/soak.md. Exit status 1 if any request failed (a 503 with
Retry-After is deliberate backpressure and counted apart) or memory kept growing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Soak:
    seconds: float
    clients: int
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (t, MiB)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.failures.values())

    @property
    def errors(self) -> int:
        return sum(self.failures.values()) + sum(
            n for s, n in self.statuses.items() if s != 200 and s != 503
        )

    def growth(self) -> tuple[float, float]:
        """(MiB gained from the end of the first third to the end, MiB/min over the last two
        thirds by least squares): flat memory shows ~0 for both."""
        t = np.array([p[0] for p in self.rss])
        m = np.array([p[1] for p in self.rss])
        late = t >= t[-1] / 3
        slope = float(np.polyfit(t[late], m[late], 1)[0] * 60) if late.sum() > 2 else 0.0
        return float(m[-1] - m[late][0]), slope

    def leaking(self) -> bool:
        gained, slope = self.growth()
        return gained > 20 or slope > 10


async def drive(url: str, pid: int, seconds: float, clients: int) -> Soak:
    rng = np.random.default_rng(0)
    digit = {"images": [rng.integers(0, 256, (28, 28)).tolist()]}
    bodies = [("/predict/digits", digit)] * 8 + [
        ("/predict/points", {"points": [[1.5, 2.0]]}),
        ("/predict/curve", {"x": [0.25, -0.5]}),
    ]
    soak = Soak(seconds, clients)
    deadline = time.monotonic() + seconds
    started = time.monotonic()

    async def client(k: int) -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as c:
            i = k
            while time.monotonic() < deadline:
                path, body = bodies[i % len(bodies)]
                i += 1
                try:
                    r = await c.post(path, json=body)
                    soak.statuses[r.status_code] += 1
                    if r.status_code == 503 and "retry-after" not in r.headers:
                        soak.failures["503 without Retry-After"] += 1
                except httpx.HTTPError as e:
                    soak.failures[type(e).__name__] += 1

    async def sample() -> None:
        while time.monotonic() < deadline:
            soak.rss.append((time.monotonic() - started, rss_mib(pid)))
            await asyncio.sleep(1.0)

    await asyncio.gather(sample(), *(client(k) for k in range(clients)))
    return soak


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models_dir: str | None) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    cmd = [sys.executable, "-m", "serving", "--port", str(port), "--log-level", "warning"]
    cmd += ["--grpc-port", "0"]  # HTTP only
    if models_dir:
        cmd += ["--models-dir", models_dir]
    if os.path.exists("/usr/bin/taskset"):
        cmd = ["taskset", "-c", "0", *cmd]  # the server on one core, the clients on the other
    proc = subprocess.Popen(cmd)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return url, proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")


def report(soak: Soak, path: Path) -> str:
    gained, slope = soak.growth()
    first, last = soak.rss[0][1], soak.rss[-1][1]
    lines = [
        f"# Soak ({datetime.date.today()}, {platform.node()}, {os.cpu_count()} cores)",
        "",
        "| seconds | clients | requests | req/s | 200 | 503 (backpressure) | errors | "
        "RSS start → end (MiB) | growth after warm-up | slope (MiB/min) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {soak.seconds:g} | {soak.clients} | {soak.requests} | "
        f"{soak.requests / soak.seconds:.0f} | {soak.statuses[200]} | {soak.statuses[503]} | "
        f"{soak.errors} {dict(soak.failures) or ''} | {first:.1f} → {last:.1f} | "
        f"{gained:+.1f} MiB | {slope:+.2f} |",
        "",
        f"Command: `python -m bench.soak --seconds {soak.seconds:g} --clients {soak.clients}`",
    ]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--models-dir")
    p.add_argument("--out", type=Path, default=RESULTS / "soak.md")
    args = p.parse_args()
    url, proc = start_server(args.models_dir)
    try:
        soak = asyncio.run(drive(url, proc.pid, args.seconds, args.clients))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    print(report(soak, args.out))
    return 1 if soak.errors or soak.leaking() else 0


if __name__ == "__main__":
    sys.exit(main())
