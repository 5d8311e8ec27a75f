"""Attack bench (issue 17, item 8): hostile clients against the real server, and what a normal
client sees beside them.

    python -m bench.attack                  # about 2 minutes -> bench/results/attack.md
    python -m bench.attack --quick          # shorter windows; the slow attacks cut to 10 s
    python -m bench.attack --only big-header,stalled-bodies
    python -m bench.attack --env SERVING_SOME_LIMIT=1 --label "main, hardened"

Starts `python -m serving --host 127.0.0.1 --port P` itself (the command `make serve` runs;
whatever `serving` package imports from the checkout), pinned to the server core; the attackers
and the normal client run in this process, pinned to the other core. Everything goes to
127.0.0.1 only; every attack is bounded in bytes, connections and seconds, and the server is
stopped whatever happens (bench/harness.py).

Each attack speaks raw HTTP/1.1 over plain non-blocking sockets, in chunks, and stops at the
first final (non-1xx) response or when the server closes or resets the connection. It counts
the bytes it handed the kernel ("sent") and, from its own unsent queue (TIOCOUTQ) and the
server socket's unread queue (/proc/net/tcp), the bytes the server had actually read when it
answered ("read"; "≤" where the server's socket was already gone). Beside every attack a
normal client sends predictions one at a time, each on a fresh connection with a deadline
(`POST /predict/points` {"points": [[2, 1.5]]} and `POST /predict/digits` with one digit): its
success rate and the p99 latency of its successful requests are reported beside each attack.

The slow attacks (a header a byte every 0.5 s, a body a byte a second, a chunked body that never
ends, a keep-alive connection held idle, idle connections, classic slowloris) share one window
of --slow-wait seconds (35 by default) and one normal client.

The targets (the hardened server of issue 17) are flags, not the server's internals, so the same
bench measures any version of the server; the verdict column compares each attack against them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import io
import json
import os
import shlex
import socket
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import harness
from bench.harness import Cores, Probe, Server
from bench.overload import cpu_seconds
from bench.serve_bench import check_models
from serving.settings import Settings

KiB, MiB = 1024, 1024 * 1024
POINTS_BODY = b'{"points": [[2, 1.5]]}'
CHUNK_PACE_S = 0.001  # between chunks of the fast floods: bounds the race past the server's cut
# A refused connection is closed lingering (as nginx does): the server reads and drops what is
# still coming for a while, so that the client reads its 4xx instead of a reset. What it drops
# before the client sees the answer counts as read here, so a flood sends pieces of this size,
# and the precision of a "read before the cut" is about one piece.
FLOOD_PIECE = 16 * KiB


def digit_body() -> bytes:
    rng = np.random.default_rng(0)
    return json.dumps({"images": [rng.integers(0, 256, (28, 28)).tolist()]}).encode()


DIGIT_BODY = digit_body()


# --------------------------------------------------------------------------- one raw connection


@dataclass
class Wire:
    """What one attacking connection saw."""

    sent: int = 0  # bytes handed to the kernel
    read: int | None = None  # bytes the server had read when it answered or closed
    read_exact: bool = True  # False: the server's socket was gone; `read` is an upper bound
    interim: list[int] = field(default_factory=list)  # 1xx status codes seen
    status: int | None = None  # the final status code
    retry_after: bool = False
    ended: str = "open"  # answered | closed | reset | open (nothing by the end) | no connection
    at: float | None = None  # seconds from connect to the answer or close
    closed_after: bool = False  # the server closed the connection after its answer

    def answer(self) -> str:
        """Short words: '431 after 0.01 s, closed', '100 Continue, then open', ..."""
        pre = " ".join(f"{c} Continue" if c == 100 else str(c) for c in self.interim)
        pre = f"{pre}, then " if pre else ""
        at = f" after {self.at:.2f} s" if self.at is not None else ""
        if self.ended == "answered":
            return f"{pre}{self.status}{at}{', closed' if self.closed_after else ''}"
        if self.ended in ("closed", "reset"):
            return f"{pre}{self.ended} without an answer{at}"
        return f"{pre}{self.ended}"


def _unsent(sock: socket.socket) -> int:
    with contextlib.suppress(OSError):
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0])
    return 0


def server_unread(server_port: int, client_port: int) -> int | None:
    """Bytes waiting unread in the server's socket for this connection; None: no such socket."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            if f[1] == local and f[2] == remote:
                return int(f[4].split(":")[1], 16)
    return None


class Conn:
    """A raw, non-blocking client connection that counts what it sends and parses answers."""

    def __init__(self, port: int, count_read: bool = True) -> None:
        self.port = port
        self.count_read = count_read  # False: skip /proc/net/tcp (crowds of connections)
        self.wire = Wire()
        self.sock: socket.socket | None = None
        self.done: asyncio.Future[None] | None = None  # set at the final answer or the close
        self.eof = False
        self.buf = b""
        self.responses: list[int] = []  # every final status, for pipelined requests
        self._reader: asyncio.Task[None] | None = None
        self._t0 = 0.0

    async def open(self, timeout: float = 5.0, read: bool = True) -> bool:
        """Connect; `read=False`: never read what the server sends (its answers pile up)."""
        loop = asyncio.get_running_loop()
        self.done = loop.create_future()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (harness.HOST, self.port)), timeout)
        except (OSError, asyncio.TimeoutError):
            sock.close()
            self.wire.ended = "no connection"
            self.done.set_result(None)
            return False
        self.sock = sock
        self._t0 = time.monotonic()
        if read:
            self._reader = loop.create_task(self._read())
        return True

    @property
    def finished(self) -> bool:
        return self.done is None or self.done.done()

    def _snapshot(self, ended: str) -> None:
        """At the answer or close: how much of what was sent the server had read."""
        if self.done is None or self.done.done() or self.sock is None:
            return
        self.wire.ended = ended
        self.wire.at = time.monotonic() - self._t0
        if self.count_read:
            unread = server_unread(self.port, self.sock.getsockname()[1])
            self.wire.read_exact = unread is not None
            self.wire.read = max(0, self.wire.sent - _unsent(self.sock) - (unread or 0))
        self.done.set_result(None)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.sock is not None
        while True:
            try:
                data = await loop.sock_recv(self.sock, 256 * KiB)
            except OSError:
                self._snapshot("reset")
                return
            if not data:
                self.eof = True
                if self.wire.ended == "answered":
                    self.wire.closed_after = True
                self._snapshot("closed")
                return
            self.buf = (self.buf + data)[-64 * KiB :]
            self._parse()

    def _parse(self) -> None:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0 or not self.buf.startswith(b"HTTP/"):
                return
            head, rest = self.buf[:end], self.buf[end + 4 :]
            lines = head.split(b"\r\n")
            try:
                status = int(lines[0].split()[1])
            except (IndexError, ValueError):
                return
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and value.strip().isdigit():
                    length = int(value)
                if name.strip().lower() == b"retry-after":
                    self.wire.retry_after = True
            if 100 <= status < 200:
                self.wire.interim.append(status)
                self.buf = rest
                continue
            if len(rest) < length:
                self._final(status)  # the head is enough to know the answer
                return
            self.buf = rest[length:]
            self._final(status)

    def _final(self, status: int) -> None:
        if self.wire.status is None:
            self.wire.status = status
            self._snapshot("answered")
        self.responses.append(status)

    async def send(self, data: bytes, until: float, stop_at_answer: bool = True) -> bool:
        """Send data, exactly counted; False if it stopped early (answer, close, time up)."""
        loop = asyncio.get_running_loop()
        if self.sock is None:
            return False
        view, n = memoryview(data), 0
        while n < len(view):
            if self.eof or (stop_at_answer and self.finished) or time.monotonic() >= until:
                return False
            try:
                k = self.sock.send(view[n : n + 256 * KiB])
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                fd = self.sock.fileno()
                loop.add_writer(fd, lambda w=writable: w.done() or w.set_result(None))
                try:
                    waits: set[asyncio.Future[None]] = {writable}
                    if stop_at_answer and self.done is not None:
                        waits.add(self.done)
                    await asyncio.wait(
                        waits,
                        timeout=max(0.0, until - time.monotonic()),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    loop.remove_writer(fd)
                continue
            except OSError:
                self._snapshot("reset")
                return False
            n += k
            self.wire.sent += k
        return True

    async def wait(self, seconds: float) -> bool:
        """Wait for the answer or close up to `seconds`; True if it came."""
        if self.done is None:
            return False
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.done), max(0.0, seconds))
        return self.done.done()

    async def linger(self, seconds: float) -> None:
        """After an answer, a moment to see whether the server closes the connection."""
        if self._reader is not None and not self._reader.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), seconds)
        if self.eof and self.wire.ended == "answered":
            self.wire.closed_after = True

    def measure(self) -> None:
        """Still no answer: how much of what was sent the server has read by now."""
        if self.sock is None or self.finished:
            return
        unread = server_unread(self.port, self.sock.getsockname()[1])
        self.wire.read_exact = unread is not None
        self.wire.read = max(0, self.wire.sent - _unsent(self.sock) - (unread or 0))

    def close(self, measure: bool = True) -> None:
        """Abort the connection (first, with `measure`, noting how much the server read)."""
        if measure:  # reads /proc/net/tcp: not for each of a thousand connections
            self.measure()
        if self._reader is not None:
            self._reader.cancel()
        if self.sock is not None:
            # abort (RST) so the server is not left holding our half of a closing connection
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
            self.sock = None
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


def request_head(method: str, path: str, port: int, headers: list[str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {harness.HOST}:{port}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post(path: str, port: int, body: bytes, extra: list[str] | None = None) -> bytes:
    heads = ["Content-Type: application/json", f"Content-Length: {len(body)}", *(extra or [])]
    return request_head("POST", path, port, heads) + body


async def flood(conn: Conn, parts: Iterator[bytes], until: float, pace_s: float) -> None:
    """Send the parts one after another until the answer, the close, the time or the parts end."""
    for part in parts:
        if not await conn.send(part, until):
            return
        if pace_s:
            await conn.wait(pace_s)
            if conn.finished:
                return


async def open_many(port: int, n: int, first: bytes, until: float) -> list[Conn]:
    """n connections, each having sent `first` (in batches, so the listen backlog keeps up)."""
    conns: list[Conn] = []
    for start in range(0, n, 50):
        batch = [Conn(port, count_read=False) for _ in range(min(50, n - start))]
        await asyncio.gather(*(c.open() for c in batch))
        for c in batch:
            if first and c.sock is not None:
                await c.send(first, until)
        conns.extend(batch)
        if time.monotonic() >= until:
            break
    return conns


# --------------------------------------------------------------------------- the normal client


@dataclass
class Normal:
    """A normal client's view of one attack window."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    sent: int = 0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies, 99) * 1000) if self.latencies else float("nan")

    def success(self) -> str:
        return f"{self.ok}/{self.sent}" if self.sent else "–"

    def detail(self) -> str:
        bad = {k: v for k, v in self.statuses.items() if k != "200"}
        return ", ".join(f"{v}×{k}" for k, v in sorted(bad.items()))

    def p99(self) -> str:
        return "–" if not self.latencies else f"{self.p99_ms():.0f} ms"


async def one_request(port: int, path: str, body: bytes) -> str:
    """One POST on a fresh connection; the status code, as text."""
    reader, writer = await asyncio.open_connection(harness.HOST, port)
    try:
        writer.write(post(path, port, body, ["Connection: close"]))
        await writer.drain()
        data = await reader.read(64 * KiB)
        while data and b"\r\n\r\n" not in data:
            more = await reader.read(64 * KiB)
            if not more:
                break
            data += more
        if not data:
            return "closed"
        return data.split(b" ", 2)[1].decode()
    finally:
        writer.close()


async def normal_client(
    port: int, until: float, n: int, interval: float, deadline: float, points_only: bool = False
) -> Normal:
    """Up to n requests one at a time, `interval` apart, each with a deadline, until `until`."""
    out = Normal()
    kinds = [("/predict/points", POINTS_BODY)]
    if not points_only:
        kinds.append(("/predict/digits", DIGIT_BODY))
    for i in range(n):
        t0 = time.monotonic()
        if t0 >= until:
            break
        path, body = kinds[i % len(kinds)]
        out.sent += 1
        try:
            status = await asyncio.wait_for(one_request(port, path, body), deadline)
        except asyncio.TimeoutError:
            status = f"none in {deadline:g} s"
        except OSError as e:
            status = type(e).__name__
        elapsed = time.monotonic() - t0
        if status == "200":
            out.latencies.append(elapsed)
        out.statuses[status] += 1
        await asyncio.sleep(max(0.0, interval - elapsed))
    return out


# --------------------------------------------------------------------------- attacks


@dataclass
class Row:
    attack: str
    did: str  # what the server answered / did
    read: str  # bytes the server read before answering (where relevant)
    normal: Normal
    target: str
    met: bool | None  # None: no target to judge against
    server: str = ""  # server CPU seconds and peak RSS during the attack
    note: str = ""

    def verdict(self) -> str:
        return (
            "not judged (window too short)"
            if self.met is None
            else ("meets" if self.met else "**fails**")
        )


def fmt_bytes(n: int | None, exact: bool = True) -> str:
    if n is None:
        return "–"
    le = "" if exact else "≤ "
    if n >= MiB:
        return f"{le}{n / MiB:.1f} MiB"
    if n >= KiB:
        return f"{le}{n / KiB:.1f} KiB"
    return f"{le}{n} B"


def read_of(w: Wire) -> str:
    sent = f"sent {fmt_bytes(w.sent)}"
    return f"{fmt_bytes(w.read, w.read_exact)} ({sent})" if w.read is not None else sent


@dataclass
class Ctx:
    args: argparse.Namespace
    server: Server

    @property
    def port(self) -> int:
        return self.server.port

    async def beside(
        self,
        attack: Callable[[float], Awaitable[None]],
        window: float,
        settle: float = 0.3,
        n: int | None = None,
        interval: float = 0.1,
        points_only: bool = False,
    ) -> Normal:
        """Run the attack (given its end time) with the normal client beside it for `window` s,
        starting `settle` s after the attack; the attack is cancelled past the window + 10 s."""
        until = time.monotonic() + window
        task = asyncio.get_running_loop().create_task(attack(until))
        await asyncio.sleep(settle)
        normal = await normal_client(
            self.port,
            until,
            n or self.args.normal_n,
            interval,
            self.args.deadline,
            points_only,
        )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, max(0.0, until - time.monotonic()) + 10)
        return normal


def meets_cut(w: Wire, statuses: tuple[int, ...], limit: int) -> bool:
    """Refused with one of the statuses (or a close) having read at most `limit` bytes."""
    refused = w.status in statuses or (w.status is None and w.ended in ("closed", "reset"))
    return refused and w.read is not None and w.read <= limit


async def big_header(ctx: Ctx) -> Row:
    port, limit = ctx.port, ctx.args.header_limit_kib * KiB
    wires: list[Wire] = []

    async def attack(until: float) -> None:
        req = post("/predict/points", port, POINTS_BODY, ["X-Big: " + "a" * (64 * KiB)])
        for _ in range(200):  # the same request again and again through the window
            conn = Conn(port)
            if await conn.open():
                await flood(conn, iter([req]), until, 0)
                await conn.wait(min(5.0, until - time.monotonic()))
                await conn.linger(0.2)
            conn.close()
            wires.append(conn.wire)
            if time.monotonic() >= until:
                return

    normal = await ctx.beside(attack, ctx.args.window)
    w = wires[0]
    did = f"{w.answer()} (×{len(wires)} in the window: {status_mix(wires)})"
    return Row(
        "complete request with a 64 KiB header",
        did,
        read_of(w),
        normal,
        f"431 (total header limit {ctx.args.header_limit_kib} KiB)",
        w.status == 431 and (w.read or 0) <= limit + 64 * KiB,
    )


def status_mix(wires: list[Wire]) -> str:
    c = Counter(str(w.status) if w.status else w.ended for w in wires)
    return ", ".join(f"{v}×{k}" for k, v in c.most_common())


async def endless_header(ctx: Ctx) -> Row:
    port, cap = ctx.port, ctx.args.endless_mib * MiB
    conn = Conn(port)

    async def attack(until: float) -> None:
        if not await conn.open():
            return
        head = f"GET /healthz HTTP/1.1\r\nHost: {harness.HOST}:{port}\r\nX-Big: ".encode()
        chunk = b"a" * FLOOD_PIECE
        parts = iter([head, *[chunk] * (cap // len(chunk))])
        await flood(conn, parts, until, CHUNK_PACE_S)
        await conn.wait(min(2.0, until - time.monotonic()))
        await conn.linger(0.3)

    normal = await ctx.beside(attack, ctx.args.endless_s)
    w = conn.wire
    conn.close()
    did = w.answer()
    if w.ended == "open":
        did = f"no answer: still reading after {fmt_bytes(w.sent)} sent"
    return Row(
        "a header that never ends (`X-Big: aaaa…` streamed)",
        did,
        read_of(w),
        normal,
        f"431 and close before {ctx.args.header_cut_kib} KiB read",
        meets_cut(w, (431,), ctx.args.header_cut_kib * KiB),
    )


async def many_headers(ctx: Ctx) -> Row:
    port = ctx.port
    conn = Conn(port)
    lines = ctx.args.header_lines

    async def attack(until: float) -> None:
        if not await conn.open():
            return
        value = "v" * 70
        heads = [f"X-H{i:06d}: {value}" for i in range(lines)]
        req = post("/predict/points", port, POINTS_BODY, heads)
        parts = iter([req[i : i + FLOOD_PIECE] for i in range(0, len(req), FLOOD_PIECE)])
        await flood(conn, parts, until, CHUNK_PACE_S)
        await conn.wait(min(5.0, until - time.monotonic()))
        await conn.linger(0.3)

    normal = await ctx.beside(attack, ctx.args.window + 2)
    w = conn.wire
    conn.close()
    return Row(
        f"{lines:,} header lines (~{lines * 82 / MiB:.0f} MiB of headers), complete request",
        w.answer() if w.ended != "open" else f"no answer after {fmt_bytes(w.sent)} sent",
        read_of(w),
        normal,
        f"431 past a count and a total size, before {ctx.args.header_cut_kib} KiB read",
        meets_cut(w, (431,), ctx.args.header_cut_kib * KiB),
    )


MULTIPART_HEAD = (
    b"--xBOUNDARYx\r\n"
    b'Content-Disposition: form-data; name="file"; filename="d.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
)


async def huge_body(ctx: Ctx, expect: bool, chunked: bool) -> Row:
    port, cap, limit = ctx.port, ctx.args.body_cap_mib * MiB, ctx.args.upload_limit_mib * MiB
    conn = Conn(port)
    declared = 100_000_000

    async def attack(until: float) -> None:
        if not await conn.open():
            return
        heads = ["Content-Type: multipart/form-data; boundary=xBOUNDARYx"]
        heads.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared}")
        if expect:
            heads.append("Expect: 100-continue")
        await conn.send(request_head("POST", "/predict/digits/image", port, heads), until)
        if expect:  # as curl does: wait up to 1 s for 100 Continue (or the refusal)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not conn.wire.interim and not conn.finished:
                await asyncio.sleep(0.01)
        chunk = b"\x89PNG" + b"a" * (64 * KiB - 4)

        def parts() -> Iterator[bytes]:
            first = MULTIPART_HEAD + chunk
            yield (f"{len(first):x}\r\n".encode() + first + b"\r\n") if chunked else first
            for _ in range(cap // len(chunk)):
                yield (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk

        await flood(conn, parts(), until, CHUNK_PACE_S)
        await conn.wait(min(2.0, until - time.monotonic()))
        await conn.linger(0.3)

    normal = await ctx.beside(attack, ctx.args.body_s)
    w = conn.wire
    conn.close()
    did = w.answer()
    if w.ended == "open":
        pre = "100 Continue, then " if 100 in w.interim else ""
        did = f"{pre}no answer after {fmt_bytes(w.sent)} sent"
    if chunked:
        name = "`POST /predict/digits/image`, chunked body that goes past the limit"
    else:
        name = f"`POST /predict/digits/image`, Content-Length {declared:,}" + (
            ", `Expect: 100-continue`" if expect else ", no Expect"
        )
    target = (
        f"413 after ≤ {ctx.args.upload_limit_mib} MiB (+{ctx.args.read_slack_kib} KiB) read"
        + (", no 100 Continue" if expect else "")
    )
    slack = ctx.args.read_slack_kib * KiB
    met = meets_cut(w, (413,), limit + slack) and w.status == 413 and 100 not in w.interim
    return Row(name, did, read_of(w), normal, target, met)


async def json_chunked(ctx: Ctx) -> Row:
    port, limit = ctx.port, ctx.args.json_limit_mib * MiB
    conn = Conn(port)

    async def attack(until: float) -> None:
        if not await conn.open():
            return
        heads = ["Content-Type: application/json", "Transfer-Encoding: chunked"]
        await conn.send(request_head("POST", "/predict/digits", port, heads), until)
        chunk = b" " * (64 * KiB)
        first = b'{"images": [' + chunk
        parts = [f"{len(first):x}\r\n".encode() + first + b"\r\n"]
        parts += [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * (
            ctx.args.body_cap_mib * MiB // len(chunk)
        )
        await flood(conn, iter(parts), until, CHUNK_PACE_S)
        await conn.wait(min(2.0, until - time.monotonic()))
        await conn.linger(0.3)

    normal = await ctx.beside(attack, ctx.args.body_s)
    w = conn.wire
    conn.close()
    return Row(
        "`POST /predict/digits` (JSON), chunked body past the JSON limit",
        w.answer() if w.ended != "open" else f"no answer after {fmt_bytes(w.sent)} sent",
        read_of(w),
        normal,
        f"413 after ≤ {ctx.args.json_limit_mib} MiB (+{ctx.args.read_slack_kib} KiB) read",
        meets_cut(w, (413,), limit + ctx.args.read_slack_kib * KiB) and w.status == 413,
    )


async def stalled(ctx: Ctx, path: str, upload: bool) -> Row:
    """N connections that send headers and one body byte, then stall."""
    port, n = ctx.port, ctx.args.stalled
    conns: list[Conn] = []
    gate = ctx.args.max_in_flight

    async def attack(until: float) -> None:
        if upload:
            heads = ["Content-Type: multipart/form-data; boundary=xBOUNDARYx"]
            first = MULTIPART_HEAD[:1]
        else:
            heads = ["Content-Type: application/json"]
            first = b"{"
        heads.append("Content-Length: 100000")
        req = request_head("POST", path, port, heads) + first
        conns.extend(await open_many(port, n, req, until))
        while time.monotonic() < until and not all(c.finished for c in conns):
            await asyncio.sleep(0.1)

    # ten normal predictions, within the deadline each, once the stalled ones are in place
    window = ctx.args.stall_s
    normal = await ctx.beside(attack, window, settle=1.5, n=10, interval=0.2)
    wires = [c.wire for c in conns]
    for c in conns:
        c.close(measure=False)
    answered = [w for w in wires if w.ended != "open"]
    refused_fast = sum(1 for w in wires if w.status == 503 and (w.at or 99) < 1.0)
    held = len(wires) - len(answered)
    times = [w.at for w in answered if w.at is not None]
    when = f", by {max(times):.1f} s" if times else ""
    did = (
        f"{held}/{len(wires)} held open for {window:g} s with no answer; "
        f"answered: {status_mix(answered) or 'none'}{when}"
    )
    if upload:
        return Row(
            f"{n} stalled uploads (`/predict/digits/image`: headers + 1 byte): admission",
            did + f"; {refused_fast} refused 503 at once",
            "–",
            normal,
            f"same gate as every route: ≤ {gate} held, the rest 503 + Retry-After at once",
            held <= gate and all(w.retry_after for w in wires if w.status == 503),
        )
    ok = normal.ok == normal.sent == 10 and max(normal.latencies, default=99) <= ctx.args.deadline
    return Row(
        f"{n} connections: headers + one body byte to `{path}`, then stall",
        did,
        "–",
        normal,
        f"10/10 normal predictions within {ctx.args.deadline:g} s each; stalled get 408",
        ok,
    )


def big_png(side: int, noise: bool) -> bytes:
    """A side x side grey PNG with a thick white stroke, on black (small to send, as big to
    decode) or on noise (as big to send as to decode)."""
    from PIL import Image, ImageDraw

    if noise:
        rng = np.random.default_rng(0)
        img = Image.fromarray(rng.integers(0, 96, (side, side), dtype=np.uint8), mode="L")
    else:
        img = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(img)
    w = side // 12
    draw.line([(side // 2, side // 6), (side // 2, side * 5 // 6)], fill=255, width=w)
    draw.line([(side // 3, side // 3), (side // 2, side // 6)], fill=255, width=w)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


async def png_flood(ctx: Ctx, noise: bool) -> Row:
    port, side = ctx.port, ctx.args.png_side
    png = big_png(side, noise)
    body = MULTIPART_HEAD + png + b"\r\n--xBOUNDARYx--\r\n"
    heads = [
        "Content-Type: multipart/form-data; boundary=xBOUNDARYx",
        f"Content-Length: {len(body)}",
    ]
    req = request_head("POST", "/predict/digits/image", port, heads) + body
    uploads: Counter[str] = Counter()
    times: list[float] = []

    async def client(until: float) -> None:
        while time.monotonic() < until:
            conn = Conn(port)
            t0 = time.monotonic()
            if await conn.open():
                await conn.send(req, until + 10)
                await conn.wait(until + 10 - time.monotonic())
            uploads[str(conn.wire.status) if conn.wire.status else conn.wire.ended] += 1
            times.append(time.monotonic() - t0)
            conn.close()

    async def attack(until: float) -> None:
        await asyncio.gather(client(until), client(until))

    window = ctx.args.png_s
    normal = await ctx.beside(
        attack, window, settle=0.5, n=ctx.args.normal_n, interval=window / 40, points_only=True
    )
    mix = ", ".join(f"{v}×{k}" for k, v in uploads.most_common())
    did = (
        f"{sum(uploads.values())} uploads of a {side}×{side} PNG ({fmt_bytes(len(png))}) in "
        f"{window:g} s: {mix}; median {np.median(times):.2f} s each"
    )
    kind = "noisy (incompressible)" if noise else "black with a stroke (compressed)"
    return Row(
        f"two clients posting {side}×{side} PNGs, {kind}, in a loop "
        "(normal client: /predict/points only)",
        did,
        "–",
        normal,
        f"/predict/points p99 ≤ {ctx.args.points_p99_ms:g} ms beside the floods",
        normal.ok == normal.sent and normal.p99_ms() <= ctx.args.points_p99_ms,
    )


async def pipelined(ctx: Ctx) -> Row:
    """One connection sends many pipelined requests and never reads a single answer."""
    port, n = ctx.port, ctx.args.pipelined
    conn = Conn(port)
    req = post("/predict/points", port, POINTS_BODY)
    rss0 = ctx.server.rss()
    peak = [rss0]
    state = {"read": 0, "exact": True, "unanswered": 0}

    async def attack(until: float) -> None:
        if not await conn.open(read=False):
            return
        blob = req * n
        for i in range(0, len(blob), 64 * KiB):
            if not await conn.send(blob[i : i + 64 * KiB], until, stop_at_answer=False):
                break
            peak.append(ctx.server.rss())
        while time.monotonic() < until:
            peak.append(ctx.server.rss())
            await asyncio.sleep(0.2)
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
        unread = server_unread(port, client_port)
        state["exact"] = unread is not None
        state["read"] = max(0, conn.wire.sent - _unsent(conn.sock) - (unread or 0))
        with contextlib.suppress(OSError):  # answers waiting in our own receive queue
            state["unanswered"] = struct.unpack(
                "i", fcntl.ioctl(conn.sock.fileno(), termios.FIONREAD, b"\0" * 4)
            )[0]

    normal = await ctx.beside(attack, ctx.args.window + 1)
    w = conn.wire
    conn.close()
    growth = max(peak) - rss0
    did = (
        f"{fmt_bytes(state['unanswered'])} of answers waiting unread in the attacker's socket; "
        f"the server read ≈ {state['read'] // len(req):,} of {n:,} requests; "
        f"server RSS +{growth / MiB:.0f} MiB"
    )
    return Row(
        f"{n:,} pipelined `/predict/points` requests on one connection, answers never read",
        did,
        f"{fmt_bytes(state['read'], bool(state['exact']))} (sent {fmt_bytes(w.sent)} of "
        f"{fmt_bytes(len(req) * n)})",
        normal,
        f"none in the issue; judged: reading stops (RSS +≤ {ctx.args.rss_growth_mib} MiB), "
        f"normal p99 ≤ {ctx.args.points_p99_ms:g} ms",
        growth <= ctx.args.rss_growth_mib * MiB
        and normal.ok == normal.sent
        and normal.p99_ms() <= ctx.args.points_p99_ms,
    )


# --------------------------------------------------------------------------- the slow window


async def slow_group(ctx: Ctx) -> list[Row]:
    """The slow attacks together in one window of --slow-wait s, one normal client beside."""
    port, wait = ctx.port, ctx.args.slow_wait
    ht, bt, it = ctx.args.header_timeout_s, ctx.args.body_timeout_s, ctx.args.idle_timeout_s
    single = {k: Conn(port) for k in ("header", "body", "chunked", "keepalive")}
    crowds: dict[str, list[Conn]] = {"idle": [], "loris": []}

    async def slow_header(until: float) -> None:
        c = single["header"]
        if not await c.open():
            return
        head = f"GET /healthz HTTP/1.1\r\nHost: {harness.HOST}:{port}\r\nX-Slow: ".encode()
        data = head + b"a" * 10_000
        for i in range(len(data)):
            if not await c.send(data[i : i + 1], until):
                return
            await c.wait(0.5)
            if c.finished or time.monotonic() >= until:
                return

    async def slow_body(until: float) -> None:
        c = single["body"]
        if not await c.open():
            return
        heads = ["Content-Type: application/json", "Content-Length: 1000"]
        await c.send(request_head("POST", "/predict/points", port, heads), until)
        for _ in range(1000):
            if not await c.send(b" ", until):
                return
            await c.wait(1.0)
            if c.finished or time.monotonic() >= until:
                return

    async def slow_chunked(until: float) -> None:
        c = single["chunked"]
        if not await c.open():
            return
        heads = ["Content-Type: application/json", "Transfer-Encoding: chunked"]
        await c.send(request_head("POST", "/predict/points", port, heads), until)
        for _ in range(10_000):
            if not await c.send(b"1\r\n \r\n", until):
                return
            await c.wait(1.0)
            if c.finished or time.monotonic() >= until:
                return

    async def keepalive(until: float) -> None:
        c = single["keepalive"]
        if not await c.open():
            return
        await c.send(post("/predict/points", port, POINTS_BODY), until)
        await c.wait(5.0)
        c.wire = Wire(sent=c.wire.sent)  # from here on: what happens to the idle connection
        c.done = asyncio.get_running_loop().create_future()
        c._t0 = time.monotonic()
        if c.eof:
            c._snapshot("closed")
        await c.wait(until - time.monotonic())

    async def idle(until: float) -> None:
        crowds["idle"].extend(await open_many(port, ctx.args.idle_conns, b"", until))
        while time.monotonic() < until:
            await asyncio.sleep(0.5)

    async def loris(until: float) -> None:
        head = f"GET /healthz HTTP/1.1\r\nHost: {harness.HOST}:{port}\r\nX-a: ".encode()
        conns = await open_many(port, ctx.args.loris_conns, head, until)
        crowds["loris"].extend(conns)
        while time.monotonic() < until:
            await asyncio.sleep(ctx.args.loris_every)
            for c in conns:
                if not c.finished:
                    await c.send(b"b", until)

    async def attack(until: float) -> None:
        await asyncio.gather(
            slow_header(until),
            slow_body(until),
            slow_chunked(until),
            keepalive(until),
            idle(until),
            loris(until),
        )

    normal = await ctx.beside(
        attack, wait, settle=1.0, n=ctx.args.normal_n, interval=max(0.1, wait / 40)
    )
    for c in single.values():
        c.close()
    for crowd in crowds.values():
        for c in crowd:
            c.close(measure=False)
    rows = []

    def timed(w: Wire, limit: float) -> bool | None:
        """Ended within the limit (+1 s); None: still open, but the window was shorter."""
        if w.ended == "open" and wait < limit + 1.0:
            return None
        return w.ended != "open" and w.at is not None and w.at <= limit + 1.0

    def both(a: bool | None, b: bool) -> bool | None:
        return None if a is None else a and b

    def open_for(w: Wire) -> str:
        return w.answer() if w.ended != "open" else f"still open after {wait:g} s"

    shared = "(shared slow window)"
    w = single["header"].wire
    rows.append(
        Row(
            "a header sent one byte every 0.5 s",
            f"{open_for(w)}; {w.sent} B sent",
            read_of(w) if w.read is not None else "–",
            normal,
            f"408 (or close) after a header timeout ≤ {ht:g} s",
            both(timed(w, ht), w.status in (408, None)),
            note=shared,
        )
    )
    w = single["body"].wire
    rows.append(
        Row(
            "`/predict/points` body sent one byte a second (Content-Length 1000)",
            f"{open_for(w)}; {w.sent} B sent",
            read_of(w) if w.read is not None else "–",
            normal,
            f"408 after a body timeout ≤ {bt:g} s (a total deadline: bytes keep coming)",
            both(timed(w, bt), w.status in (408, None)),
            note=shared,
        )
    )
    w = single["chunked"].wire
    rows.append(
        Row(
            "`/predict/points` chunked body that never ends (a 1-byte chunk a second)",
            f"{open_for(w)}; {w.sent} B sent",
            read_of(w) if w.read is not None else "–",
            normal,
            f"408 after a body timeout ≤ {bt:g} s",
            both(timed(w, bt), w.status in (408, None)),
            note=shared,
        )
    )
    w = single["keepalive"].wire
    rows.append(
        Row(
            "keep-alive connection held idle after one answer",
            open_for(w).replace("without an answer ", ""),
            "–",
            normal,
            f"closed after an idle timeout ≤ {it:g} s",
            timed(w, it),
            note=shared,
        )
    )
    for key, label in (
        ("idle", f"{ctx.args.idle_conns} connections that send nothing"),
        (
            "loris",
            f"slowloris: {ctx.args.loris_conns} connections, a partial header each, "
            f"one more byte every {ctx.args.loris_every:g} s",
        ),
    ):
        wires = [c.wire for c in crowds[key]]
        gone = [x for x in wires if x.ended != "open"]
        times = [x.at for x in gone if x.at is not None]
        when = f" (by {max(times):.1f} s; {status_mix(gone)})" if times else ""
        rows.append(
            Row(
                label,
                f"{len(wires) - len(gone)}/{len(wires)} still open after {wait:g} s; "
                f"{len(gone)} closed by the server{when}",
                "–",
                normal,
                f"all closed after a header timeout ≤ {ht:g} s; normal clients unaffected",
                crowd_verdict([timed(x, ht) for x in wires], normal),
                note=shared,
            )
        )
    return rows


def crowd_verdict(each: list[bool | None], normal: Normal) -> bool | None:
    if not each or any(e is False for e in each) or normal.ok != normal.sent:
        return False
    return None if any(e is None for e in each) else True


# --------------------------------------------------------------------------- the run


ATTACKS: dict[str, Callable[[Ctx], Awaitable[Row | list[Row]]]] = {
    "big-header": big_header,
    "endless-header": endless_header,
    "many-headers": many_headers,
    "body-expect": lambda ctx: huge_body(ctx, expect=True, chunked=False),
    "body-declared": lambda ctx: huge_body(ctx, expect=False, chunked=False),
    "body-chunked": lambda ctx: huge_body(ctx, expect=False, chunked=True),
    "json-chunked": json_chunked,
    "stalled-bodies": lambda ctx: stalled(ctx, "/predict/digits", upload=False),
    "upload-admission": lambda ctx: stalled(ctx, "/predict/digits/image", upload=True),
    "png-flood": lambda ctx: png_flood(ctx, noise=False),
    "png-flood-noise": lambda ctx: png_flood(ctx, noise=True),
    "pipelined": pipelined,
    "slow": slow_group,
}


async def settle(ctx: Ctx, limit_s: float = 20.0) -> str:
    """Between attacks: wait until a normal prediction answers and the server's CPU is quiet."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        pids = ctx.server.pids()
        if not pids:
            return "server died"
        cpu0 = cpu_seconds(pids)
        await asyncio.sleep(0.3)
        busy = (cpu_seconds(pids) - cpu0) / 0.3
        try:
            status = await asyncio.wait_for(
                one_request(ctx.port, "/predict/points", POINTS_BODY), 2
            )
        except (OSError, asyncio.TimeoutError):
            status = "none"
        if status == "200" and busy < 0.3:
            return ""
    return f"server not quiet after {limit_s:g} s"


async def run_all(ctx: Ctx, names: list[str]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        note = await settle(ctx)
        if note == "server died":
            print("the server died; restarting it", flush=True)
            ctx.server.stop()
            ctx.server.start()
        pids = ctx.server.pids()
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        peak = [ctx.server.rss()]

        async def sample(peak: list[int] = peak) -> None:
            while True:
                peak.append(ctx.server.rss())
                await asyncio.sleep(0.2)

        sampler = asyncio.get_running_loop().create_task(sample())
        try:
            got = await ATTACKS[name](ctx)
        finally:
            sampler.cancel()
        cpu = cpu_seconds(pids) - cpu0
        took = time.monotonic() - t0
        alive = bool(ctx.server.pids())
        for row in got if isinstance(got, list) else [got]:
            row.server = f"{cpu:.1f} s CPU in {took:.0f} s, peak {harness.fmt_mib(max(peak))}"
            if not alive:
                row.did += " — **the server died**"
            if note and note != "server died":
                row.note = f"{row.note} {note}".strip()
            rows.append(row)
            print(f"[{took:.0f} s] {line(row)}", flush=True)
    return rows


def line(r: Row) -> str:
    return (
        f"{r.attack}: {r.did}; read {r.read}; normal {r.normal.success()} ok, p99 {r.normal.p99()}"
        f"{' (' + r.normal.detail() + ')' if r.normal.detail() else ''} -> {r.verdict()}"
    )


def commit() -> str:
    def git(*a: str) -> str:
        out = subprocess.run(["git", *a], cwd=harness.ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "serving") else ""
    served = git("log", "-1", "--format=%h %s", "--", "serving")[:90]
    return f"{rev} on {branch}; serving/ last changed in {served}{dirty}"


def report(rows: list[Row], args: argparse.Namespace, info: dict[str, str], took: float) -> str:
    command = "python -m bench.attack " + shlex.join(sys.argv[1:])
    env = ", ".join(args.env) if args.env else "defaults (no SERVING_* given)"
    table = [
        "| attack | what the server answered / did | bytes the server read before answering "
        "(attacker sent) | server during it | normal client: success | normal p99 | "
        "hardened target | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        detail = r.normal.detail()
        success = r.normal.success() + (f" ({detail})" if detail else "")
        note = f" {r.note}" if r.note else ""
        table.append(
            f"| {r.attack} | {r.did} | {r.read} | {r.server} | {success}{note} | "
            f"{r.normal.p99()} | {r.target} | {r.verdict()} |"
        )
    met = sum(1 for r in rows if r.met)
    judged = sum(1 for r in rows if r.met is not None)
    lines = [
        f"# Attack bench{': ' + args.label if args.label else ''}",
        "",
        *harness.busy_note(info["load"]),
        f"- Date: {info['date']}",
        f"- Commit: {commit()}",
        f"- Machine: {info['machine']}; {info['os']}; {info['packages']}",
        f"- Server: `python -m serving --host 127.0.0.1 --port P"
        f"{' ' + ' '.join(args.server_arg) if args.server_arg else ''}`, server settings: "
        f"{env}; server on core(s) {args.server_cpus}, attackers and the normal client on "
        f"{args.client_cpus}; load average (1 min) at start {info['load']}, at end "
        f"{harness.loadavg()}",
        f"- Command: `{command.strip()}`; the whole run took {took:.0f} s",
        f"- Normal client: one request at a time on a fresh connection, deadline "
        f"{args.deadline:g} s each, `/predict/points` and `/predict/digits` (one digit) in turn "
        "unless said; success = 200 within the deadline; p99 over its successful requests",
        "- Bytes read: what the attacker handed its kernel, less its unsent queue and the "
        "server socket's unread queue at the moment of the answer (≤: the server's socket was "
        "gone, so the unread part is unknown); what a lingering close drops before the "
        f"attacker sees the answer counts too (floods send {FLOOD_PIECE // KiB} KiB pieces)",
        f"- Verdicts: {met} of {judged} attacks meet the hardened target",
        "",
        *table,
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.attack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="Short windows; slow attacks cut to 10 s.")
    p.add_argument("--only", help=f"Comma-separated attacks, of: {', '.join(ATTACKS)}.")
    p.add_argument("--out", help="Markdown report (default bench/results/attack[-quick].md).")
    p.add_argument("--label", default="", help="What is under test, for the report's title.")
    p.add_argument("--env", action="append", default=[], help="SERVING_X=value for the server.")
    p.add_argument("--server-arg", action="append", default=[], help="Extra server flag.")
    p.add_argument("--models-dir", default=str(harness.ROOT / "models" / "repository"))
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    g = p.add_argument_group("windows and sizes (all bounded)")
    g.add_argument("--window", type=float, default=3.0, help="Seconds of a short attack.")
    g.add_argument("--normal-n", type=int, default=30, help="At most this many normal requests.")
    g.add_argument("--deadline", type=float, default=1.0, help="Normal request deadline, s.")
    g.add_argument("--slow-wait", type=float, default=35.0, help="Seconds of the slow window.")
    g.add_argument("--endless-mib", type=int, default=16, help="Endless header: at most MiB.")
    g.add_argument("--endless-s", type=float, default=6.0, help="Endless header: at most s.")
    g.add_argument("--header-lines", type=int, default=100_000)
    g.add_argument("--body-cap-mib", type=int, default=48, help="Huge bodies: at most MiB.")
    g.add_argument("--body-s", type=float, default=4.0, help="Huge bodies: at most s.")
    g.add_argument("--stalled", type=int, default=200, help="Stalled-body connections.")
    g.add_argument(
        "--stall-s",
        type=float,
        default=Settings().body_idle_timeout_s + 5,
        help="Seconds they are held: past the server's body idle timeout, to see their 408s.",
    )
    g.add_argument("--png-side", type=int, default=4000)
    g.add_argument("--png-s", type=float, default=8.0, help="Seconds of the PNG floods.")
    g.add_argument("--pipelined", type=int, default=20_000, help="Pipelined requests.")
    g.add_argument("--idle-conns", type=int, default=1000)
    g.add_argument("--loris-conns", type=int, default=300)
    g.add_argument("--loris-every", type=float, default=5.0, help="Slowloris byte interval, s.")
    t = p.add_argument_group("the hardened targets (issue 17)")
    t.add_argument("--header-limit-kib", type=int, default=32, help="Total header size limit.")
    t.add_argument("--header-cut-kib", type=int, default=64, help="Endless header cut by then.")
    t.add_argument("--upload-limit-mib", type=int, default=2, help="Upload refused by then.")
    t.add_argument("--json-limit-mib", type=int, default=8, help="JSON body limit.")
    t.add_argument(
        "--read-slack-kib",
        type=int,
        default=256,
        help="Body limits: what one socket read (asyncio: 256 KiB) may take past them.",
    )
    t.add_argument("--header-timeout-s", type=float, default=30.0)
    t.add_argument("--body-timeout-s", type=float, default=30.0)
    t.add_argument("--idle-timeout-s", type=float, default=30.0, help="Keep-alive idle close.")
    t.add_argument("--points-p99-ms", type=float, default=100.0)
    t.add_argument("--rss-growth-mib", type=int, default=32, help="Pipelining: memory bound.")
    t.add_argument("--max-in-flight", type=int, default=128, help="The admission gate's size.")
    args = p.parse_args(argv)
    if args.quick:
        args.window, args.slow_wait = min(args.window, 2.0), min(args.slow_wait, 10.0)
        args.stall_s, args.png_s = min(args.stall_s, 5.0), min(args.png_s, 4.0)
        args.endless_s, args.body_s = min(args.endless_s, 4.0), min(args.body_s, 3.0)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = list(ATTACKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = set(names) - set(ATTACKS)
        if unknown:
            sys.exit(f"--only: unknown {sorted(unknown)}; choose from {', '.join(ATTACKS)}")
    check_models(args.models_dir)
    harness.install_cleanup()
    cores = Cores.parse(args.server_cpus, args.client_cpus)
    os.sched_setaffinity(0, cores.client)
    info = harness.machine()
    scratch = harness.scratch_dir("attack-")
    env = dict(e.split("=", 1) for e in args.env)
    argv_ = [harness.PYTHON, "-m", "serving", "--host", harness.HOST, "--port", "{port}"]
    argv_ += args.server_arg
    if args.models_dir != str(harness.ROOT / "models" / "repository"):
        argv_ += ["--models-dir", args.models_dir]
    server = Server("serving", argv_, Probe("/predict/points", POINTS_BODY), cores, scratch, env)
    t0 = time.monotonic()
    with harness.running(server):
        print(f"server up after {server.cold_start_s:.2f} s", flush=True)
        rows = asyncio.run(run_all(Ctx(args, server), names))
    took = time.monotonic() - t0
    text = report(rows, args, info, took)
    out = Path(args.out or f"bench/results/attack{'-quick' if args.quick else ''}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\n{sum(1 for r in rows if r.met)} of {len(rows)} meet the hardened target")
    print(f"took {took:.0f} s; wrote {out} (server log in {scratch})")


if __name__ == "__main__":
    main()
