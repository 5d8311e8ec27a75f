"""Triton's own load generator, perf_analyzer, over HTTP and gRPC (issue 19): this service and
PyTriton, one server at a time, plus the physical limit (ONNX Runtime alone at batch 64) and the
floors (servers with no model, bench/peers/http_noop.py and grpc_noop.py, at c=32).

    python -m bench.grpc_bench                  # full run, about 4 minutes
    python -m bench.grpc_bench --quick          # short windows, under 2 minutes
    python -m bench.grpc_bench --only pytriton --out bench/results/mine.md

perf_analyzer (from ../shared/tools/perf-analyzer.sh, or --perf-analyzer) runs pinned to the client
core with `--input-data zero` (its random data holds NaNs, which a correct server refuses), for
each protocol (`-i http`, `-i grpc`), batch 1 and 64 (`-b 64` reads max_batch_size from the
model's config) and concurrency 1 and 32. Each run is its own perf_analyzer process: windows of
--window ms until three in a row agree within --stability percent (at most --trials windows).
A run that fails is reported as its one-line error and the bench goes on.

Servers run pinned to the server core (bench/harness.py): this service as `python -m serving
--threads 1` (with --grpc-port when `python -m serving --help` lists it), and PyTriton
(bench/peers/pytriton_server.py) from its own venv, since nvidia-pytriton 0.7.0 needs numpy < 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import harness
from bench.harness import Cores, Probe, Server

PROTOCOLS = ("http", "grpc")
BATCHES = (1, 64)
CONCURRENCIES = (1, 32)
MODEL = "lenet"
PYTRITON_PYTHON = harness.ROOT / ".venv-pytriton" / "bin" / "python"
# 32 requests of 64 digits keep 2,048 inputs queued: past this service's default bounded queue
# (max_queue 1024, answered 503), so the bench raises it for this service alone.
OURS_ENV = {"SERVING_MAX_QUEUE": "4096"}


@dataclass(frozen=True)
class Contender:
    name: str
    what: str
    argv: list[str]
    grpc_port: int
    grpc_note: str = ""  # why gRPC will fail, when we know it before trying
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class PaRun:
    protocol: str
    batch: int
    concurrency: int
    infer_per_s: float | None = None  # perf_analyzer's throughput: inferences (digits) per second
    requests: int = 0  # its Client: request count
    p50_ms: float | None = None
    p99_ms: float | None = None
    avg_ms: float | None = None
    server_section: str = ""
    command: str = ""
    failure: str | None = None
    unstable: bool = False  # no 3 windows agreed: the figures are 3 fixed windows instead
    seconds: float = 0.0

    @property
    def req_per_s(self) -> float | None:
        return None if self.infer_per_s is None else self.infer_per_s / self.batch


@dataclass
class Outcome:
    name: str
    what: str
    cold_start_s: float | None = None
    rss: int | None = None
    version: str = ""
    runs: list[PaRun] = field(default_factory=list)
    failure: str | None = None


# --------------------------------------------------------------------------- perf_analyzer


class NoPerfAnalyzer(RuntimeError):
    pass


def find_perf_analyzer(given: str | None) -> str:
    """--perf-analyzer, else the shared fetch script's wrapper (it downloads on first use)."""
    if given:
        return given
    shared = harness.shared_dir()
    script = shared / "tools" / "perf-analyzer.sh" if shared else None
    if script is None or not script.exists():
        raise NoPerfAnalyzer(
            "perf_analyzer: ../shared/tools/perf-analyzer.sh is not here; pass --perf-analyzer "
            "PATH (tritonclient[all] 2.41.0's manylinux wheel holds bin/perf_analyzer)."
        )
    out = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
    )
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise NoPerfAnalyzer(f"{script} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return lines[-1]


def pa_version(pa: str) -> str:
    out = subprocess.run([pa, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else "?"


_NUM = r"([0-9.]+)"


def parse_pa(text: str, run: PaRun) -> None:
    """perf_analyzer's summary: the Client: figures, and the Server: section verbatim."""
    if m := re.search(rf"Throughput: {_NUM} infer/sec", text):
        run.infer_per_s = float(m.group(1))
    if m := re.search(r"Request count: ([0-9]+)", text):
        run.requests = int(m.group(1))
    for key, attr in (("p50", "p50_ms"), ("p99", "p99_ms"), ("Avg", "avg_ms")):
        if m := re.search(rf"{key} latency: {_NUM} usec", text):
            setattr(run, attr, float(m.group(1)) / 1000)
    if m := re.search(r"^  Server: *\n((?:    .*\n?)+)", text, re.MULTILINE):
        run.server_section = "\n".join(ln.strip() for ln in m.group(1).splitlines())


def first_error(text: str, rc: int) -> str:
    """The line that says why: perf_analyzer's `error: ...`, else its last non-empty line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if ln.lower().startswith("error") or "failed" in ln.lower():
            return ln[:300]
    return (lines[-1][:300] if lines else "no output") + f" (exit {rc})"


def run_pa(
    pa: str, url: str, run: PaRun, cores: Cores, window_ms: int, trials: int, stability: int
) -> PaRun:
    argv = [
        pa,
        "-m",
        MODEL,
        "-u",
        url,
        "-i",
        run.protocol,
        "--input-data",
        "zero",
        "-b",
        str(run.batch),
        "--concurrency-range",
        str(run.concurrency),
        "--measurement-interval",
        str(window_ms),
        "--max-trials",
        str(trials),
        "--stability-percentage",
        str(stability),
    ]
    run.command = " ".join(["perf_analyzer", *argv[1:]])
    t0 = time.perf_counter()
    text, rc = _pa(argv, cores, trials * window_ms)
    if "Failed to obtain stable measurement" in text:
        # A busy machine: take three fixed windows rather than nothing, and say so.
        run.unstable = True
        text, rc = _pa(
            [*argv[:-4], "--max-trials", "3", "--stability-percentage", "1000"],
            cores,
            3 * window_ms,
        )
    parse_pa(text, run)
    if rc != 0 or run.infer_per_s is None:
        run.infer_per_s = None
        run.failure = first_error(text, rc)
    run.seconds = time.perf_counter() - t0
    return run


def _pa(argv: list[str], cores: Cores, budget_ms: int) -> tuple[str, int]:
    limit = budget_ms / 1000 * 3 + 30  # a window can overrun by a slow request
    try:
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=limit,
            preexec_fn=harness._pin(cores.client),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"error: perf_analyzer gave no result within {limit:.0f} s", -1
    return out.stdout + out.stderr, out.returncode


# --------------------------------------------------------------------------- the physical limit


def ort_child(models_dir: str, seconds: float, batch: int, data_dir: str) -> None:
    """In a child pinned to the server core: this service's ONNX Runtime session alone, calling
    it back to back on one batch of real digits; prints one JSON line."""
    import numpy as np

    from models.spec import LENET
    from models.store import version_dir
    from serving.engine.backends import OnnxRunner

    runner = OnnxRunner(LENET, version_dir(Path(models_dir), LENET.name), "cpu", threads=1)
    x = harness.mnist_digits(batch, data_dir).astype(np.float32).reshape(batch, 1, 28, 28)
    end = time.perf_counter() + min(1.0, seconds / 4)
    while time.perf_counter() < end:  # warm-up
        runner(x)
    calls, t0 = 0, time.perf_counter()
    end = t0 + seconds
    while (now := time.perf_counter()) < end:
        runner(x)
        calls += 1
    elapsed = now - t0
    print(json.dumps({"batch": batch, "calls": calls, "seconds": elapsed}))


def ort_limit(models_dir: str, data_dir: str, cores: Cores, seconds: float) -> dict[str, Any]:
    argv = [harness.PYTHON, "-m", "bench.grpc_bench", "--ort-child", "--models-dir", models_dir]
    argv += ["--data-dir", data_dir, "--duration", str(seconds)]
    out = subprocess.run(
        argv,
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        preexec_fn=harness._pin(cores.server),
        check=False,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
    if out.returncode != 0 or line is None:
        return {"detail": (out.stderr.strip() or out.stdout.strip())[-300:]}
    data = json.loads(line)
    data["digits_per_s"] = data["calls"] * data["batch"] / data["seconds"]
    data["ms_per_call"] = data["seconds"] / data["calls"] * 1000
    return data


# Each protocol's server with no model: its module and the stack it shares with this service.
NO_MODEL = {
    "http": ("bench.peers.http_noop", "uvicorn (httptools, uvloop)"),
    "grpc": ("bench.peers.grpc_noop", "grpc.aio (uvloop)"),
}


def measure_floors(
    pa: str, cores: Cores, log_dir: Path, window_ms: int, trials: int, stability: int
) -> list[PaRun]:
    """What a server with no model at all (bench/peers/http_noop.py, grpc_noop.py) answers on
    the server core at c=32, 1 and 64 digits a request: the cost of the protocol stack alone.
    No service on the same stack answers more there; with the model's own time added
    (the physical limit's ms a call), it is the most one could reach (see `ceiling`)."""
    runs = []
    for protocol in PROTOCOLS:
        module, _ = NO_MODEL[protocol]
        port = harness.free_port()
        argv = [harness.PYTHON, "-m", module, "--host", harness.HOST, "--port", str(port)]
        with (log_dir / f"{protocol}-noop.log").open("wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=harness.ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=harness._pin(cores.server),
            )
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection((harness.HOST, port), 1),
                ):
                    break
                time.sleep(0.05)
            else:
                proc.kill()
            for batch in BATCHES:
                run = PaRun(protocol, batch, 32)
                if proc.poll() is not None:
                    run.failure = f"{module} did not start"
                else:
                    run_pa(pa, f"{harness.HOST}:{port}", run, cores, window_ms, trials, stability)
                print(f"[{protocol}, no model] {_label(run)}: {_line(run)}", flush=True)
                runs.append(run)
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
    return runs


def ceiling(limit: dict[str, Any], floor: PaRun | None) -> float | None:
    """The most digits/s a server on the floor's stack could answer on one core: every request
    costs at least the stack (the no-model server's 1 / requests/s) plus the model (the physical
    limit's time a call), one after the other on the one core."""
    if floor is None or not floor.req_per_s or "ms_per_call" not in limit:
        return None
    return floor.batch / (1 / floor.req_per_s + limit["ms_per_call"] / 1000)


# --------------------------------------------------------------------------- servers


def serving_has_grpc() -> bool:
    out = subprocess.run(
        [harness.PYTHON, "-m", "serving", "--help"],
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--grpc-port" in out.stdout


def contenders(models_dir: str, pytriton_python: Path) -> list[Contender]:
    ours_grpc = harness.free_port()
    ours = [harness.PYTHON, "-m", "serving", "--host", harness.HOST, "--port", "{port}"]
    ours += ["--threads", "1", "--models-dir", models_dir]
    note = ""
    if serving_has_grpc():
        ours += ["--grpc-port", str(ours_grpc)]
    else:
        note = "python -m serving has no --grpc-port yet"
    pt_grpc = harness.free_port()
    pytriton = [str(pytriton_python), "-m", "bench.peers.pytriton_server", "--host", harness.HOST]
    pytriton += ["--port", "{port}", "--grpc-port", str(pt_grpc), "--models-dir", models_dir]
    return [
        Contender(
            "ours",
            "this service (ONNX Runtime, 1 thread, dynamic batching; SERVING_MAX_QUEUE=4096)",
            ours,
            ours_grpc,
            note,
            OURS_ENV,
        ),
        Contender(
            "pytriton",
            "PyTriton 0.7.0: Triton server + Python model, ONNX Runtime 1 thread, "
            "dynamic batching (max_batch_size 64, no delay)",
            pytriton,
            pt_grpc,
        ),
    ]


def probe(data_dir: str) -> Probe:
    """A real v2 prediction (binary tensor data), which both servers accept."""
    body, headers = harness.v2_binary(harness.mnist_digits(1, data_dir))
    return Probe(f"/v2/models/{MODEL}/infer", body, headers)


def server_version(server: Server) -> str:
    import http.client

    conn = http.client.HTTPConnection(harness.HOST, server.port, timeout=5)
    try:
        conn.request("GET", "/v2")
        data = json.loads(conn.getresponse().read())
        return f"{data.get('name', '?')} {data.get('version', '?')}"
    except (OSError, ValueError):
        return "?"
    finally:
        conn.close()


def bench_one(
    c: Contender,
    pa: str,
    cores: Cores,
    log_dir: Path,
    data_dir: str,
    window_ms: int,
    trials: int,
    stability: int,
) -> Outcome:
    out = Outcome(c.name, c.what)
    if not Path(c.argv[0]).exists():
        out.failure = f"skipped: {c.argv[0]} is not there (`make .venv-pytriton/.ok`)"
        print(f"[{c.name}] {out.failure}", file=sys.stderr)
        return out
    server = Server(c.name, c.argv, probe(data_dir), cores, log_dir, env=c.env)
    print(f"[{c.name}] starting: {c.what}", flush=True)
    try:
        out.cold_start_s = server.start()
        out.version = server_version(server)
        print(f"[{c.name}] first prediction after {out.cold_start_s:.2f} s", flush=True)
        for protocol in PROTOCOLS:
            port = server.port if protocol == "http" else c.grpc_port
            for batch in BATCHES:
                for conc in CONCURRENCIES:
                    run = PaRun(protocol, batch, conc)
                    run_pa(pa, f"{harness.HOST}:{port}", run, cores, window_ms, trials, stability)
                    if run.failure and protocol == "grpc" and c.grpc_note:
                        run.failure += f"; {c.grpc_note}"
                    print(f"[{c.name}] {_label(run)}: {_line(run)}", flush=True)
                    out.runs.append(run)
        out.rss = server.rss()
    except harness.ServerFailed as e:
        out.failure = str(e)
        print(f"[{c.name}] FAILED: {e}\n{server.log_tail()}", file=sys.stderr)
    finally:
        server.stop()
    return out


def _label(r: PaRun) -> str:
    return f"{r.protocol} b={r.batch} c={r.concurrency}"


def _line(r: PaRun) -> str:
    if r.failure:
        return f"FAILED {r.failure}"
    assert r.infer_per_s is not None and r.p50_ms is not None and r.p99_ms is not None
    s = f"{r.infer_per_s:,.0f} digits/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms"
    return s + (" (unstable: 3 fixed windows)" if r.unstable else "")


# --------------------------------------------------------------------------- report

TARGET_GRPC_VS_PYTRITON = 2.0  # issue 19: one digit per request at c=32 over gRPC
TARGET_OF_LIMIT = 0.85  # issue 19: 64 digits per request, of the ONNX session alone


def _find(outcomes: list[Outcome], name: str, protocol: str, batch: int, conc: int) -> PaRun | None:
    for o in outcomes:
        if o.name == name:
            for r in o.runs:
                if (r.protocol, r.batch, r.concurrency) == (
                    protocol,
                    batch,
                    conc,
                ) and r.infer_per_s:
                    return r
    return None


def _floor(floors: list[PaRun], protocol: str, batch: int) -> PaRun | None:
    return next((f for f in floors if (f.protocol, f.batch) == (protocol, batch)), None)


def targets(
    outcomes: list[Outcome], limit: dict[str, Any], floors: list[PaRun] | None = None
) -> list[list[str]]:
    """Issue 19's bench targets: [target, measured, met]. Where a no-model server was measured,
    `measured` also says the most its stack allows on this core."""
    floors = floors or []
    rows = []
    ours, theirs = (_find(outcomes, n, "grpc", 1, 32) for n in ("ours", "pytriton"))
    name = f"gRPC, 1 digit, c=32: ours / PyTriton (≥ {TARGET_GRPC_VS_PYTRITON:g}x)"
    if ours and theirs and ours.infer_per_s and theirs.infer_per_s:
        ratio = ours.infer_per_s / theirs.infer_per_s
        measured = f"{ratio:.1f}x"
        floor = _floor(floors, "grpc", 1)
        if floor is not None and floor.infer_per_s:
            measured += (
                f"; a grpc.aio server with no model answers {floor.infer_per_s:,.0f}/s here, "
                f"{floor.infer_per_s / theirs.infer_per_s:.2f}x PyTriton"
            )
        rows.append([name, measured, "yes" if ratio >= TARGET_GRPC_VS_PYTRITON else "**no**"])
    else:
        rows.append([name, "not measured", "–"])
    phys = limit.get("digits_per_s")
    for protocol in PROTOCOLS:
        ours, theirs = (_find(outcomes, n, protocol, 64, 32) for n in ("ours", "pytriton"))
        name = f"{protocol}, 64 digits, c=32: ours of the physical limit (≥ {TARGET_OF_LIMIT:.0%})"
        if ours and ours.infer_per_s and phys:
            share = ours.infer_per_s / phys
            measured = f"{share:.0%} ({ours.infer_per_s:,.0f} of {phys:,.0f} digits/s)"
            most = ceiling(limit, _floor(floors, protocol, 64))
            if most is not None:
                measured += (
                    f"; at most {most / phys:.0%} ({most:,.0f}) for any server on "
                    f"{NO_MODEL[protocol][1]} here: the model's time a call plus the "
                    "no-model server's a request"
                )
            rows.append([name, measured, "yes" if share >= TARGET_OF_LIMIT else "**no**"])
        else:
            rows.append([name, "not measured", "–"])
        name = f"{protocol}, 64 digits, c=32: ours ahead of PyTriton"
        if ours and theirs and ours.infer_per_s and theirs.infer_per_s:
            ahead = ours.infer_per_s > theirs.infer_per_s
            rows.append(
                [
                    name,
                    f"{ours.infer_per_s:,.0f} vs {theirs.infer_per_s:,.0f} digits/s",
                    "yes" if ahead else "**no**",
                ]
            )
        else:
            rows.append([name, "not measured", "–"])
    return rows


def git_commit() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=harness.ROOT, capture_output=True, text=True, check=False
        )
        return out.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return head + (" (with uncommitted changes)" if dirty else "")


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _ms(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def report(
    outcomes: list[Outcome],
    info: dict[str, str],
    limit: dict[str, Any],
    command: str,
    settings: str,
    pa: str,
    stability: int,
    floors: list[PaRun] | None = None,
) -> str:
    lines = [
        "# perf_analyzer over HTTP and gRPC (issue 19)",
        "",
        *harness.busy_note(info["load"]),
        f"- Date: {info['date']}",
        f"- Commit: {git_commit()}",
        f"- Machine: {info['machine']}; {info['os']}",
        f"- Packages: {info['packages']}",
        f"- Load generator: {pa}",
        f"- Command: `{command}`",
        f"- {settings}",
        f"- Load average (1 min) at start {info['load']}, at end {harness.loadavg()}",
        "",
    ]
    ours = next((o for o in outcomes if o.name == "ours"), None)
    if ours and any(r.failure for r in ours.runs):
        lines += [
            "**This service's rows are pending**: perf_analyzer needs `GET /v2/models/lenet/config`"
            " (HTTP) and the `inference.GRPCInferenceService` on --grpc-port (gRPC), which issue 19"
            " adds; until then each of its runs fails with the one-line error shown.",
            "",
        ]
    lines += ["## Physical limit", ""]
    if "digits_per_s" in limit:
        lines.append(
            f"ONNX Runtime session alone (this service's OnnxRunner, 1 thread), batch "
            f"{limit['batch']:.0f}, back to back on the server core for {limit['seconds']:.1f} s:"
            f" **{limit['digits_per_s']:,.0f} digits/s** ({limit['ms_per_call']:.3f} ms a call)."
        )
    else:
        lines.append(f"not measured: {limit.get('detail', '?')}")
    if floors:
        lines += ["", "## The floors: servers with no model", ""]
        lines += [
            "The protocol stack alone, on the server core at c=32 (bench/peers/http_noop.py, "
            "grpc_noop.py: the request read whole, zeros answered at once). No service on the "
            "same stack answers more; with the physical limit's time a call added, a request "
            "of 64 digits can cost no less.",
            "",
        ]
        rows = []
        for f in floors:
            module, stack = NO_MODEL[f.protocol]
            what = f"{stack}: {module}"
            if f.failure or not f.req_per_s:
                rows.append([f.protocol, what, str(f.batch), "", "", f"failed: {f.failure}"])
                continue
            rows.append(
                [
                    f.protocol,
                    what,
                    str(f.batch),
                    f"{f.req_per_s:,.0f}",
                    f"{1000 / f.req_per_s:.3f}",
                    _ms(f.p50_ms),
                ]
            )
        head = ["protocol", "stack", "batch", "req/s", "ms a request (1 / req/s)", "p50 ms"]
        lines += _table(head, rows)
    lines += ["", "## Throughput and latency (perf_analyzer's Client: figures)", ""]
    rows = []
    for o in outcomes:
        if o.failure:
            rows.append([o.name, "", "", "", "", "", "", "", o.failure])
        for r in o.runs:
            if r.failure:
                rows.append([o.name, r.protocol, str(r.batch), str(r.concurrency)] + [""] * 4)
                rows[-1].append(f"failed: {r.failure}")
                continue
            assert r.infer_per_s is not None and r.req_per_s is not None
            vs = ""
            if "digits_per_s" in limit:
                vs = f"{r.infer_per_s / limit['digits_per_s']:.0%}"
            if r.unstable:
                vs += f" ⚠ unstable: no 3 windows within {stability}%; 3 fixed windows"
            rows.append(
                [
                    o.name,
                    r.protocol,
                    str(r.batch),
                    str(r.concurrency),
                    f"{r.infer_per_s:,.0f}",
                    f"{r.req_per_s:,.0f}",
                    _ms(r.p50_ms),
                    _ms(r.p99_ms),
                    vs.strip(),
                ]
            )
    lines += _table(
        [
            "server",
            "protocol",
            "batch",
            "concurrency",
            "digits/s",
            "req/s",
            "p50 ms",
            "p99 ms",
            "of physical limit / note",
        ],
        rows,
    )
    lines += ["", "## Targets (issue 19)", ""]
    lines += _table(["target", "measured", "met"], targets(outcomes, limit, floors))
    lines += ["", "## Servers", ""]
    srv = []
    for o in outcomes:
        cold = "–" if o.cold_start_s is None else f"{o.cold_start_s:.2f} s"
        srv.append([o.name, o.what, o.version or "–", cold, harness.fmt_mib(o.rss)])
    lines += _table(["server", "what", "GET /v2", "cold start", "resident memory at end"], srv)
    lines += ["", "## perf_analyzer's Server: sections (the server's own statistics)", ""]
    for o in outcomes:
        for r in o.runs:
            if r.server_section:
                lines += [f"{o.name}, {_label(r)}:", "", "```", r.server_section, "```", ""]
    lines += [
        "## Commands",
        "",
        "Each run, against the server's HTTP or gRPC port:",
        "",
        "```",
        *sorted(
            {re.sub(r"-u \S+", "-u 127.0.0.1:PORT", r.command) for o in outcomes for r in o.runs}
        ),
        "```",
        "",
        "digits/s is perf_analyzer's `Throughput` (inferences/s: requests/s x batch); p50 and p99"
        " are its client-side request latencies. Cold start runs from process spawn to the first"
        " 200 on a real v2 prediction; resident memory sums VmRSS over the server's process tree"
        " (PyTriton: its Python process, tritonserver and the Python-backend stub).",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from bench.serve_bench import default_data_dir

    p = argparse.ArgumentParser(
        prog="python -m bench.grpc_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="700 ms windows, at most 4 of them.")
    p.add_argument("--only", help="Comma-separated servers: ours, pytriton.")
    p.add_argument("--out", help="Markdown report (default bench/results/grpc[-quick].md).")
    p.add_argument("--models-dir", default=str(harness.ROOT / "models" / "repository"))
    p.add_argument("--data-dir", default=default_data_dir(), help="Where MNIST is.")
    p.add_argument("--perf-analyzer", help="perf_analyzer (default: ../shared/tools' wrapper).")
    p.add_argument("--pytriton-python", default=str(PYTRITON_PYTHON), type=Path)
    p.add_argument("--window", type=int, help="perf_analyzer window, ms (default 2000).")
    p.add_argument("--trials", type=int, help="Windows at most per run (default 6).")
    p.add_argument("--stability", type=int, default=30, help="perf_analyzer -s, percent.")
    p.add_argument("--duration", type=float, help="Physical-limit seconds (default 5).")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    p.add_argument("--ort-child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    duration = args.duration if args.duration is not None else (2.0 if args.quick else 5.0)
    if args.ort_child:
        ort_child(args.models_dir, duration, 64, args.data_dir)
        return
    from bench.serve_bench import check_models

    check_models(args.models_dir)
    try:
        pa = find_perf_analyzer(args.perf_analyzer)
    except NoPerfAnalyzer as e:
        sys.exit(str(e))
    harness.install_cleanup()
    cores = Cores.parse(args.server_cpus, args.client_cpus)
    os.sched_setaffinity(0, cores.client)
    window = args.window or (700 if args.quick else 2000)
    trials = args.trials or (4 if args.quick else 6)
    chosen = contenders(args.models_dir, args.pytriton_python)
    if args.only:
        wanted = {s.strip() for s in args.only.split(",") if s.strip()}
        unknown = wanted - {c.name for c in chosen}
        if unknown:
            sys.exit(f"--only: unknown {sorted(unknown)}; choose from ours, pytriton")
        chosen = [c for c in chosen if c.name in wanted]
    info = harness.machine()
    out = Path(args.out or f"bench/results/grpc{'-quick' if args.quick else ''}.md")
    scratch = harness.scratch_dir("grpc-bench-")
    print(f"physical limit: ONNX Runtime alone, batch 64, {duration:g} s", flush=True)
    limit = ort_limit(args.models_dir, args.data_dir, cores, duration)
    if "digits_per_s" in limit:
        print(f"physical limit: {limit['digits_per_s']:,.0f} digits/s", flush=True)
    outcomes = [
        bench_one(c, pa, cores, scratch, args.data_dir, window, trials, args.stability)
        for c in chosen
    ]
    no_model = []
    if any(c.name == "ours" for c in chosen):
        no_model = measure_floors(pa, cores, scratch, window, trials, args.stability)
    settings = (
        f"Each run: perf_analyzer windows of {window} ms until 3 agree within {args.stability}%"
        f" (at most {trials}), `--input-data zero`, synchronous requests; {cores.label()};"
        f" 127.0.0.1; models from {args.models_dir} (newest version)"
    )
    command = "python -m bench.grpc_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(
        outcomes, info, limit, command.strip(), settings, pa_version(pa), args.stability, no_model
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "info": info,
                "limit": limit,
                "floors": [asdict(f) for f in no_model],
                "outcomes": [asdict(o) for o in outcomes],
            },
            indent=1,
        )
    )
    print(f"\nwrote {out} (server logs in {scratch})")


if __name__ == "__main__":
    main()
