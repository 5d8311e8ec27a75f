"""What the serving benchmarks share: servers as pinned child processes that are always stopped,
the request bodies, wrk runs with the Lua script in bench/lua, resident memory and the machine.

Every server runs on 127.0.0.1 in its own session (process group), pinned to the server cores;
the load generator and this process run on the client cores. `stop_all` (also run at exit and on
SIGINT/SIGTERM/SIGHUP) sends SIGTERM to each server's whole process tree, then SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "lua"
PYTHON = sys.executable
HOST = "127.0.0.1"
V2_HEADER = "Inference-Header-Content-Length"


# --------------------------------------------------------------------------- cores and machine


@dataclass(frozen=True)
class Cores:
    server: frozenset[int]
    client: frozenset[int]

    @staticmethod
    def parse(server: str, client: str) -> Cores:
        """CPU lists like "0" or "0,2"; on a one-core machine both share it (and we say so)."""
        have = os.sched_getaffinity(0)
        s = frozenset(int(c) for c in server.split(",")) & have
        c = frozenset(int(c) for c in client.split(",")) & have
        if not s or not c:
            print(f"warning: cores {server}/{client} not available; not pinning", file=sys.stderr)
            return Cores(frozenset(have), frozenset(have))
        return Cores(s, c)

    def label(self) -> str:
        return f"server on core(s) {_cpus(self.server)}, load generator on {_cpus(self.client)}"


def _cpus(cores: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cores))


def machine() -> dict[str, str]:
    """Date and machine, for the head of every report."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.1f} GiB RAM"
    versions = []
    for pkg in ("onnxruntime", "torch", "fastapi", "uvicorn", "pydantic", "litserve"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{pkg} {metadata.version(pkg)}")
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{model}, {os.cpu_count()} cores{mem}",
        "os": f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "packages": ", ".join(versions),
        "load": loadavg(),
    }


def loadavg() -> str:
    """The 1-minute load average: a busy machine makes every number here noisy."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def busy_note(start_load: str) -> list[str]:
    """Report lines warning that the machine had other work at the start (load ≥ 0.5)."""
    try:
        busy = float(start_load) >= 0.5
    except ValueError:
        busy = False
    if not busy:
        return []
    return [
        f"**⚠ The machine was busy (1-minute load average {start_load} before the run):"
        " these figures are noisy; run again on a quiet machine before quoting them.**",
        "",
    ]


def shared_dir() -> Path | None:
    """The project's ../shared (MNIST, tools), seen from this checkout or, in a git worktree
    elsewhere, from the main checkout it belongs to; None where there is none."""
    candidates = [ROOT.parent / "shared"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        common = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        if common:
            candidates.append(Path(common).parent.parent / "shared")
    return next((c for c in candidates if c.is_dir()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def need_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (Debian) and run again.")
    return path


# --------------------------------------------------------------------------- processes


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (alive now)."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_bytes(pids: Sequence[int]) -> int:
    """Sum of VmRSS over the processes (pages shared between them count once per process)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


def _pin(cores: frozenset[int]):
    def pin() -> None:
        os.sched_setaffinity(0, cores)

    return pin


_LIVE: list[Server] = []


@dataclass
class Probe:
    """A real prediction: the server is up when this answers 200."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


class ServerFailed(RuntimeError):
    pass


@dataclass
class Server:
    """One server under test, spawned into its own session and pinned to the server cores."""

    name: str
    argv: list[str]
    probe: Probe
    cores: Cores
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    cold_start_s: float | None = None
    _known: set[int] = field(default_factory=set)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def start(self, timeout_s: float = 120.0) -> float:
        """Spawn, then wait for the first 200 on a real prediction; returns that cold start."""
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        # No gRPC port unless asked for (--grpc-port): servers run one after another, and the
        # default 8001 is shared silently between processes (SO_REUSEPORT).
        env = {**os.environ, "SERVING_GRPC_PORT": "0", **self.env, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("wb")
        _LIVE.append(self)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_pin(self.cores.server),
        )
        log.close()
        while True:
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.name} exited with {self.proc.returncode}")
            if self._predict_ok():
                self.cold_start_s = time.perf_counter() - t0
                self._known.update(process_tree(self.proc.pid))
                return self.cold_start_s
            if time.perf_counter() - t0 > timeout_s:
                raise ServerFailed(f"{self.name} gave no 200 within {timeout_s:g} s")
            self._known.update(process_tree(self.proc.pid))
            time.sleep(0.005)

    def _predict_ok(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("POST", self.probe.path, self.probe.body, self.probe.headers)
            response = conn.getresponse()
            response.read()
            return response.status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def pids(self) -> list[int]:
        if self.proc is None or self.proc.poll() is not None:
            return []
        tree = process_tree(self.proc.pid)
        self._known.update(tree)
        return tree

    def rss(self) -> int:
        return rss_bytes(self.pids())

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM to the process group (and any known descendant), then SIGKILL; idempotent."""
        if self.proc is None:
            return
        self.pids()
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        self._signal_known(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and not self._alive_known():
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        self._signal_known(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self in _LIVE:
            _LIVE.remove(self)
        self.proc = None

    def _alive_known(self) -> bool:
        return any(_is_alive(p) for p in self._known if p != os.getpid())

    def _signal_known(self, sig: signal.Signals) -> None:
        for pid in self._known:
            if pid != os.getpid() and _is_alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _is_alive(pid: int) -> bool:
    """Alive and not a zombie (a zombie child of ours is reaped by its Popen)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def stop_all() -> None:
    for server in list(_LIVE):
        server.stop(grace_s=5.0)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    print(f"\n{signal.Signals(signum).name}: stopping the servers", file=sys.stderr)
    stop_all()
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Stop every server at exit, on Ctrl-C, on SIGTERM and on SIGHUP."""
    atexit.register(stop_all)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


@contextlib.contextmanager
def running(server: Server, timeout_s: float = 120.0) -> Iterator[Server]:
    try:
        server.start(timeout_s)
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- request bodies


def mnist_digits(n: int, data_dir: str) -> np.ndarray:
    """n MNIST test digits (uint8 [n, 28, 28]); a fixed random set where MNIST is not found."""
    try:
        from training.datasets import load_mnist

        images, _ = load_mnist(data_dir, "test")
        return np.asarray(images[:n], dtype=np.uint8)
    except Exception as e:  # no MNIST here: the same sizes of body still measure the path
        print(f"note: MNIST test set not loaded ({e}); using random digits", file=sys.stderr)
        return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def digits_json(images: np.ndarray) -> bytes:
    """{"images": [28x28 lists of ints]}: what every /predict/digits client sends."""
    return json.dumps({"images": images.astype(int).tolist()}, separators=(",", ":")).encode()


def points_json(points: np.ndarray) -> bytes:
    return json.dumps({"points": np.round(points, 4).tolist()}, separators=(",", ":")).encode()


def v2_binary(images: np.ndarray, input_name: str = "pixels") -> tuple[bytes, dict[str, str]]:
    """An Open Inference Protocol request with the input as binary tensor data (FP32)."""
    x = images.astype("<f4").reshape(len(images), 1, 28, 28)
    head = {
        "inputs": [
            {
                "name": input_name,
                "shape": list(x.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": x.nbytes},
            }
        ]
    }
    text = json.dumps(head, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/octet-stream", V2_HEADER: str(len(text))}
    return text + x.tobytes(), headers


@dataclass(frozen=True)
class BodySet:
    """Bodies written to files, one manifest line each: `file<TAB>Header: value<TAB>...`."""

    manifest: Path
    count: int
    items: int  # inputs per request
    mean_bytes: int


def write_bodies(
    folder: Path, key: str, bodies: Sequence[tuple[bytes, dict[str, str]]], items: int
) -> BodySet:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (body, headers) in enumerate(bodies):
        path = folder / f"{key}-{i}.body"
        path.write_bytes(body)
        heads = "\t".join(f"{k}: {v}" for k, v in headers.items())
        lines.append(f"{path}\t{heads}")
    manifest = folder / f"{key}.manifest"
    manifest.write_text("\n".join(lines) + "\n")
    mean = int(sum(len(b) for b, _ in bodies) / len(bodies))
    return BodySet(manifest, len(bodies), items, mean)


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def error_detail(self) -> str:
        parts = [f"{n}x{code}" for code, n in sorted(self.statuses.items()) if code >= 300]
        parts += [f"{n} {kind}" for kind, n in self.socket_errors.items() if n]
        return ", ".join(parts)


def wrk(
    url: str,
    bodies: BodySet,
    connections: int,
    seconds: float,
    cores: Cores,
    threads: int = 1,
    timeout_s: float = 5.0,
) -> WrkResult:
    """One closed-loop wrk run with bench/lua/post.lua; the Lua done() prints one JSON line."""
    argv = [
        need_wrk(),
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(LUA / "post.lua"),
        url,
        "--",
        str(bodies.manifest),
    ]
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=seconds + timeout_s + 60,
        preexec_fn=_pin(cores.client),
        check=False,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")
    data = json.loads(line)
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        statuses={int(k): int(v) for k, v in data["statuses"].items()},
        socket_errors={k: int(v) for k, v in data["errors"].items()},
    )


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def fmt_mib(n: int | None) -> str:
    return "–" if n is None else f"{n / 2**20:.0f} MiB"
