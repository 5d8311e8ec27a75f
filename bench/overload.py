"""Overload (issue 11): open-loop load at 2x measured capacity; does the service keep its promise?

    python -m bench.overload            # about 40 s
    python -m bench.overload --quick    # about 20 s
    python -m bench.overload --env SERVING_MAX_QUEUE=128 --factor 3

Phases, all against one server of this service pinned to the server core:
  1. idle: one request at a time for a while; its p50 is the idle value;
  2. capacity: wrk, 32 connections, single-digit JSON; the 2xx rate is the capacity;
  3. overload: an asyncio generator (uvloop, httptools) on the other core sends single-digit
     requests on a fixed schedule at factor x capacity, whatever the answers do (open loop: a late
     answer never delays the next send). Latency is measured from each request's scheduled send
     time, so a generator that falls behind shows up in the figures instead of hiding;
  4. recovery: the moment the last request is due, one request at a time again; the time until
     p50 is back at its idle value (100 ms bins, five in a row within the tolerance) is reported.
The server's resident memory (VmRSS of its process tree) is sampled every 100 ms throughout.

Checked against issue 11: requests beyond the bounded queue get 503 with Retry-After at once, the
p99 of accepted requests stays within the latency budget (default 50 ms), memory stays flat
(growth ≤ 10 %), and p50 is back at its idle value within 2 s of the load stopping.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from bench import harness
from bench.harness import Cores, Server
from bench.serve_bench import default_data_dir, make_bodies, prepare, probe

try:
    import httptools
except ImportError:  # uvicorn[standard] brings it; say so rather than fail obscurely
    sys.exit("httptools is missing: install the project (`make install-dev`).")

RECOVERY_TARGET_S = 2.0
GROWTH_LIMIT = 0.10
BIN_S = 0.1
BINS_IN_A_ROW = 5

# status codes of requests that got no HTTP answer
NOT_SENT, CONN_ERROR, TIMED_OUT = -2, -1, 0


# --------------------------------------------------------------------------- the client


@dataclass
class Log:
    """One row per request: when it was due, sent and answered, and how."""

    due: np.ndarray
    sent: np.ndarray
    done: np.ndarray
    status: np.ndarray
    retry_after: np.ndarray
    fresh: np.ndarray  # sent on a connection opened during the load

    @staticmethod
    def empty(n: int) -> Log:
        return Log(
            np.zeros(n),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.zeros(n, np.int16),
            np.zeros(n, bool),
            np.zeros(n, bool),
        )


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; at most one request in flight."""

    def __init__(self, on_answer: Callable[[Conn, int, int, bool], None]) -> None:
        self.on_answer = on_answer
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.index = -1  # the request in flight, -1: idle
        self.retry_after = False
        self.closed = False
        self.lost: Callable[[Conn], None] = lambda conn: None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def send(self, index: int, request: bytes) -> None:
        assert self.transport is not None and self.index < 0
        self.index = index
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.fail()

    def on_message_begin(self) -> None:
        self.retry_after = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self.retry_after = True

    def on_message_complete(self) -> None:
        index, self.index = self.index, -1
        if index >= 0:
            self.on_answer(self, index, self.parser.get_status_code(), self.retry_after)

    def fail(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        index, self.index = self.index, -1
        if index >= 0:
            self.on_answer(self, index, CONN_ERROR, False)
        self.lost(self)


class Client:
    """A pool of connections to one server that sends prebuilt requests and logs the answers."""

    def __init__(self, port: int, requests: list[bytes], log: Log, max_conns: int) -> None:
        self.port = port
        self.requests = requests
        self.log = log
        self.max_conns = max_conns
        self.idle: list[Conn] = []
        self.conns: set[Conn] = set()
        self.opening = 0
        self.opened_under_load = 0
        self.clock = time.perf_counter
        self.outstanding = 0

    async def open(self) -> Conn:
        loop = asyncio.get_running_loop()
        self.opening += 1
        try:
            _, conn = await loop.create_connection(
                lambda: Conn(self._answered), harness.HOST, self.port
            )
        finally:
            self.opening -= 1
        conn.lost = self._lost
        self.conns.add(conn)
        return conn

    async def fill(self, n: int) -> None:
        conns = await asyncio.gather(*(self.open() for _ in range(n)))
        self.idle.extend(conns)

    def _answered(self, conn: Conn, index: int, status: int, retry_after: bool) -> None:
        self.log.done[index] = self.clock()
        self.log.status[index] = status
        self.log.retry_after[index] = retry_after
        self.outstanding -= 1
        if not conn.closed:
            self.idle.append(conn)

    def _lost(self, conn: Conn) -> None:
        self.conns.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def send(self, index: int) -> None:
        """Send request `index` now on an idle connection, or a new one if none is idle."""
        request = self.requests[index % len(self.requests)]
        self.outstanding += 1
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                self.log.sent[index] = self.clock()
                conn.send(index, request)
                return
        if len(self.conns) + self.opening >= self.max_conns:
            self.log.status[index] = NOT_SENT
            self.outstanding -= 1
            return
        self.opened_under_load += 1
        self.log.fresh[index] = True
        asyncio.get_running_loop().create_task(self._send_on_new(index, request))

    async def _send_on_new(self, index: int, request: bytes) -> None:
        try:
            conn = await self.open()
        except OSError:
            self.log.status[index] = CONN_ERROR
            self.log.done[index] = self.clock()
            self.outstanding -= 1
            return
        self.log.sent[index] = self.clock()
        conn.send(index, request)

    def close(self) -> None:
        for conn in list(self.conns):
            conn.fail()


async def open_loop(client: Client, rate: float, n: int) -> tuple[float, float]:
    """Send n requests, the i-th due at start + i / rate; returns (start, end) on the clock."""
    start = client.clock() + 0.01
    i = 0
    while i < n:
        now = client.clock()
        due = min(n, int((now - start) * rate) + 1)
        while i < due:
            client.log.due[i] = start + i / rate
            client.send(i)
            i += 1
        wait = start + i / rate - client.clock()
        await asyncio.sleep(max(wait, 0))
    return start, start + (n - 1) / rate


async def sequential(
    port: int, request: bytes, seconds: float, clock: Callable[[], float]
) -> list[tuple[float, float, int]]:
    """One request at a time for `seconds`: (sent, latency s, status) each."""
    out: list[tuple[float, float, int]] = []
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[tuple[int, bool]] | None = None

    def answered(conn: Conn, index: int, status: int, retry: bool) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result((status, retry))

    _, conn = await loop.create_connection(lambda: Conn(answered), harness.HOST, port)
    end = clock() + seconds
    try:
        while clock() < end:
            if conn.closed:
                _, conn = await loop.create_connection(lambda: Conn(answered), harness.HOST, port)
            waiter = loop.create_future()
            t0 = clock()
            conn.send(0, request)
            try:
                status, _ = await asyncio.wait_for(waiter, 10)
            except TimeoutError:
                status = TIMED_OUT
                conn.fail()
            out.append((t0, clock() - t0, status))
    finally:
        conn.fail()
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


async def sample_rss(pids: list[int], every_s: float, into: list[tuple[float, int]]) -> None:
    """VmRSS of the server's processes (found once: walking /proc would stall the generator)."""
    while True:
        into.append((time.perf_counter(), harness.rss_bytes(pids)))
        await asyncio.sleep(every_s)


# --------------------------------------------------------------------------- the run


@dataclass
class Findings:
    idle_p50_ms: float = 0.0
    capacity_rps: float = 0.0
    rate: float = 0.0
    log: Log | None = None
    load_start: float = 0.0
    load_end: float = 0.0
    probes: list[tuple[float, float, int]] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    opened_under_load: int = 0
    rss_before: int = 0  # with the connection pool open, just before the load
    client_cpu: float = 0.0  # share of one core the generator used during the load
    server_cpu: float = 0.0  # share of one core the server used during the load
    pool: int = 0


def build_requests(bodies_manifest: Path, port: int, path: str) -> list[bytes]:
    out = []
    for line in bodies_manifest.read_text().splitlines():
        file, *heads = line.split("\t")
        body = Path(file).read_bytes()
        head = [f"POST {path} HTTP/1.1", f"Host: {harness.HOST}:{port}", *heads]
        head.append(f"Content-Length: {len(body)}")
        out.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return out


async def run_phases(
    server: Server, requests: list[bytes], capacity: float, args: argparse.Namespace
) -> Findings:
    f = Findings(capacity_rps=capacity)
    clock = time.perf_counter
    sampler = asyncio.get_running_loop().create_task(sample_rss(server.pids(), 0.1, f.rss))
    try:
        idle = await sequential(server.port, requests[0], args.idle, clock)
        f.idle_p50_ms = float(np.median([lat for _, lat, s in idle if s == 200]) * 1000)
        f.rate = args.factor * capacity
        n = int(f.rate * args.load)
        f.log = Log.empty(n)
        client = Client(server.port, requests, f.log, args.max_conns)
        f.pool = args.pool
        await client.fill(args.pool)
        probe_task: asyncio.Task[list[tuple[float, float, int]]] | None = None
        try:
            f.rss_before = harness.rss_bytes(server.pids())
            cpu0, server0 = time.process_time(), cpu_seconds(server.pids())
            f.load_start, f.load_end = await open_loop(client, f.rate, n)
            wall = max(f.load_end - f.load_start, 1e-9)
            f.client_cpu = (time.process_time() - cpu0) / wall
            f.server_cpu = (cpu_seconds(server.pids()) - server0) / wall
            await asyncio.sleep(max(0.0, f.load_end - clock()))
            probe_task = asyncio.get_running_loop().create_task(
                sequential(server.port, requests[1], args.recover, clock)
            )
            deadline = clock() + args.timeout
            while client.outstanding > 0 and clock() < deadline:
                await asyncio.sleep(0.05)
            f.probes = await probe_task
        finally:
            f.opened_under_load = client.opened_under_load
            client.close()
            if probe_task is not None and not probe_task.done():
                probe_task.cancel()
    finally:
        sampler.cancel()
    return f


# --------------------------------------------------------------------------- the report


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if len(values) else float("nan")


def recovery_s(f: Findings, tolerance: float) -> float | None:
    """Seconds from the load's end to the first of BINS_IN_A_ROW bins with p50 ≤ tolerance."""
    limit = f.idle_p50_ms * tolerance / 1000
    probes = [(t - f.load_end, lat, s) for t, lat, s in f.probes]
    if not probes:
        return None
    n_bins = int(probes[-1][0] / BIN_S) + 1
    ok = []
    for b in range(n_bins):
        lats = [lat for t, lat, s in probes if b * BIN_S <= t < (b + 1) * BIN_S]
        statuses = [s for t, _, s in probes if b * BIN_S <= t < (b + 1) * BIN_S]
        ok.append(bool(lats) and all(s == 200 for s in statuses) and np.median(lats) <= limit)
    for b in range(n_bins - BINS_IN_A_ROW + 1):
        if all(ok[b : b + BINS_IN_A_ROW]):
            return b * BIN_S
    return None


def report(f: Findings, args: argparse.Namespace, info: dict[str, str], cores: Cores) -> str:
    log = f.log
    assert log is not None
    latency = log.done - log.due
    service = log.done - log.sent
    lag = log.sent - log.due
    ok = log.status == 200
    rejected = log.status == 503
    other = ~ok & ~rejected & (log.status > 0)
    n = len(log.status)
    retry = int((rejected & log.retry_after).sum())
    not_sent = int((log.status == NOT_SENT).sum())
    conn_err = int((log.status == CONN_ERROR).sum())
    timed_out = int((log.status == TIMED_OUT).sum())
    acc_p99 = _pct(latency[ok], 99)
    rec = recovery_s(f, args.tolerance)
    during = [r for t, r in f.rss if f.load_start <= t <= f.load_end + 1]
    base_rss = f.rss_before
    peak_rss = max(during) if during else 0
    after_rss = f.rss[-1][1] if f.rss else 0
    growth = (peak_rss - base_rss) / base_rss if base_rss else float("nan")
    dur = f.load_end - f.load_start
    checks = [
        [
            "over-capacity requests answered 503 with Retry-After",
            f"{int(rejected.sum()):,} 503s, {retry:,} with Retry-After; other errors "
            f"{int(other.sum()) + conn_err + timed_out + not_sent:,}",
            "yes" if rejected.sum() and retry == rejected.sum() else "**no**",
        ],
        [
            "503s answered at once",
            f"p50 {_pct(latency[rejected], 50):.1f} ms, p99 {_pct(latency[rejected], 99):.1f} ms",
            "–",
        ],
        [
            f"p99 of accepted requests ≤ budget ({args.budget:g} ms)",
            f"{acc_p99:.1f} ms (p50 {_pct(latency[ok], 50):.1f} ms)",
            "yes" if acc_p99 <= args.budget else "**no**",
        ],
        [
            f"memory flat (growth ≤ {GROWTH_LIMIT:.0%})",
            f"{harness.fmt_mib(base_rss)} before, peak {harness.fmt_mib(peak_rss)} during, "
            f"{harness.fmt_mib(after_rss)} after ({growth:+.1%})",
            "yes" if growth <= GROWTH_LIMIT else "**no**",
        ],
        [
            f"p50 back to idle within {RECOVERY_TARGET_S:g} s",
            "never within the recovery window" if rec is None else f"{rec:.1f} s",
            "yes" if rec is not None and rec <= RECOVERY_TARGET_S else "**no**",
        ],
    ]
    per_second = []
    for s in range(int(np.ceil(dur)) if dur > 0 else 0):
        sel = (log.due >= f.load_start + s) & (log.due < f.load_start + s + 1)
        acc = sel & ok
        rss_s = [r for t, r in f.rss if f.load_start + s <= t < f.load_start + s + 1]
        per_second.append(
            f"| {s} | {int(sel.sum()):,} | {int(acc.sum()):,} | {int((sel & rejected).sum()):,} | "
            f"{int((sel & ~ok & ~rejected).sum()):,} | {_pct(latency[acc], 50):.1f} | "
            f"{_pct(latency[acc], 99):.1f} | {harness.fmt_mib(max(rss_s) if rss_s else None)} |"
        )
    probe_bins = []
    for b in range(int(args.recover / 0.5)):
        lats = [
            lat for t, lat, s in f.probes if b * 0.5 <= t - f.load_end < (b + 1) * 0.5 and s == 200
        ]
        fails = sum(
            1 for t, _, s in f.probes if b * 0.5 <= t - f.load_end < (b + 1) * 0.5 and s != 200
        )
        p50 = f"{np.median(lats) * 1000:.2f}" if lats else "–"
        probe_bins.append(
            f"| {b * 0.5:.1f}–{(b + 1) * 0.5:.1f} s | {len(lats)} | {fails} | {p50} |"
        )
    command = "python -m bench.overload " + " ".join(sys.argv[1:])
    env = ", ".join(args.env) if args.env else "defaults"
    lines = [
        f"# Overload: open-loop load at {args.factor:g}x capacity"
        + ("" if args.server == "ours" else f" ({args.server} server)"),
        "",
        *harness.busy_note(info["load"]),
        f"- Date: {info['date']}",
        f"- Machine: {info['machine']}; {info['os']}",
        f"- Command: `{command.strip()}`; server settings: {env}",
        f"- {cores.label()}; load average (1 min) at start {info['load']}, at end "
        f"{harness.loadavg()}",
        f"- Idle p50 (one request at a time, {args.idle:g} s): {f.idle_p50_ms:.2f} ms",
        f"- Capacity (wrk, 32 connections, {args.capacity_s:g} s): {f.capacity_rps:,.0f} req/s",
        f"- Open loop: {f.rate:,.0f} req/s for {dur:.1f} s = {n:,} requests, single-digit JSON;"
        f" {f.pool} connections opened before, {f.opened_under_load:,} more during the load",
        f"- Answers: {int(ok.sum()):,} × 200 ({ok.sum() / dur:,.0f}/s), {int(rejected.sum()):,} ×"
        f" 503, {int(other.sum()):,} other statuses, {conn_err:,} connection errors, "
        f"{timed_out:,} unanswered after {args.timeout:g} s, {not_sent:,} not sent (no free"
        f" connection of {args.max_conns:,})",
        f"- Generator lag behind schedule: p50 {_pct(lag[~np.isnan(lag)], 50):.2f} ms, p99 "
        f"{_pct(lag[~np.isnan(lag)], 99):.2f} ms (latency counts from the scheduled time; the"
        f" server's own time, from the actual send, has p99 {_pct(service[ok], 99):.1f} ms)",
        f"- Accepted p50 / p99 on connections opened before the load: "
        f"{_pct(latency[ok & ~log.fresh], 50):.1f} / {_pct(latency[ok & ~log.fresh], 99):.1f} ms;"
        f" on connections opened during it (connect time included): "
        f"{_pct(latency[ok & log.fresh], 50):.1f} / {_pct(latency[ok & log.fresh], 99):.1f} ms",
        f"- CPU during the load: server {f.server_cpu:.0%} of a core, generator "
        f"{f.client_cpu:.0%} of a core"
        + (
            " (**the generator was near its limit: it may not have kept the schedule**)"
            if f.client_cpu > 0.9
            else ""
        ),
        "",
        "| promise (issue 11) | measured | kept |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in checks],
        "",
        "## Second by second (by scheduled send time)",
        "",
        "| s | sent | 200 | 503 | other or failed | accepted p50 ms | accepted p99 ms | RSS peak |",
        "|---|---|---|---|---|---|---|---|",
        *per_second,
        "",
        f"## Recovery (one request at a time after the load; idle p50 {f.idle_p50_ms:.2f} ms,"
        f" back when five 100 ms bins in a row are within {args.tolerance:g}x of it)",
        "",
        "| after the load | answered 200 | not 200 | p50 ms |",
        "|---|---|---|---|",
        *probe_bins,
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.overload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="Shorter phases.")
    p.add_argument("--factor", type=float, default=2.0, help="Offered load / capacity.")
    p.add_argument("--capacity", type=float, help="req/s; measured with wrk when not given.")
    p.add_argument("--budget", type=float, default=50.0, help="Latency budget, ms.")
    p.add_argument("--tolerance", type=float, default=1.5, help="Recovered: p50 ≤ this x idle.")
    p.add_argument("--load", type=float, help="Seconds of open-loop load (default 10).")
    p.add_argument("--idle", type=float, default=2.0, help="Seconds of idle measurement.")
    p.add_argument("--recover", type=float, default=5.0, help="Seconds of probes after load.")
    p.add_argument("--timeout", type=float, default=10.0, help="Client timeout, s.")
    p.add_argument("--pool", type=int, default=1024, help="Connections opened before the load.")
    p.add_argument("--max-conns", type=int, default=4096, help="At most this many connections.")
    p.add_argument("--env", action="append", default=[], help="SERVING_X=value for the server.")
    p.add_argument(
        "--server",
        choices=["ours", "floor"],
        default="ours",
        help="floor: the FastAPI floor peer instead, to check the generator keeps its schedule.",
    )
    p.add_argument("--models-dir", default=str(harness.ROOT / "models" / "repository"))
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--out", help="Markdown report (default bench/results/overload[-quick].md).")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    args = p.parse_args(argv)
    args.load = args.load or (4.0 if args.quick else 10.0)
    args.capacity_s = 2.0 if args.quick else 5.0
    if args.quick:
        args.idle, args.recover = min(args.idle, 1.0), min(args.recover, 3.0)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cores = prepare(args)
    env = dict(e.split("=", 1) for e in args.env)
    info = harness.machine()
    scratch = harness.scratch_dir("overload-")
    bodies = make_bodies(scratch / "bodies", args.data_dir)
    if args.server == "floor":
        argv_ = [harness.PYTHON, "-m", "bench.peers.floor_server", "--port", "{port}"]
    else:
        argv_ = [harness.PYTHON, "-m", "serving", "--host", harness.HOST, "--port", "{port}"]
        argv_ += ["--threads", "1", "--models-dir", args.models_dir]
    server = Server(args.server, argv_, probe(bodies), cores, scratch, env=env)
    with harness.running(server):
        print(f"server up after {server.cold_start_s:.2f} s", flush=True)
        capacity = args.capacity
        if capacity is None:
            url = server.url("/predict/digits")
            harness.wrk(url, bodies["digit"], 32, 1, cores)
            r = harness.wrk(url, bodies["digit"], 32, args.capacity_s, cores)
            capacity = (r.requests - r.non_2xx) / r.seconds
            print(f"capacity {capacity:,.0f} req/s (p99 {r.p99_ms:.1f} ms)", flush=True)
        requests = build_requests(bodies["digit"].manifest, server.port, "/predict/digits")
        try:
            import uvloop

            runner: Callable[..., Findings] = uvloop.run
        except ImportError:
            runner = asyncio.run
        findings = runner(run_phases(server, requests, capacity, args))
    text = report(findings, args, info, cores)
    out = Path(args.out or f"bench/results/overload{'-quick' if args.quick else ''}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"wrote {out} (server log in {scratch})")


if __name__ == "__main__":
    main()
