"""Serving benchmark (issue 5): this service against peer servers, one at a time, same machine.

    python -m bench.serve_bench                      # full run, about 7 minutes
    python -m bench.serve_bench --quick              # short windows, under 2 minutes
    python -m bench.serve_bench --only ours,floor --out bench/results/mine.md

Each server is spawned pinned to the server core, waited on until a real prediction answers 200
(that wait is its cold start), then driven by wrk (bench/lua/post.lua, one thread, pinned to the
other core) with each workload: a warm-up, then a fixed measured window; the gRPC workloads are
driven by Triton's perf_analyzer (-i grpc, pinned the same way; bench/grpc_bench.py runs it) and
PyTriton (bench/peers/pytriton_server.py, from .venv-pytriton) serves the v2 and gRPC ones. Its
resident memory (the VmRSS of its process tree) is read after its last workload, then it is
stopped. The report is a markdown table with the date and machine, the ratios the targets need
and which targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from bench import grpc_bench, harness
from bench.harness import BodySet, Cores, Probe, Server, WrkResult

# Issue 5's targets (1 core, LeNet, single-digit JSON /predict/digits at c=32 unless said).
TARGET_RPS = 6000
TARGET_VS_LITSERVE = 10.0
TARGET_VS_FLOOR = 2.0
TARGET_P99_C32_MS = 15.0
TARGET_P50_C1_MS = 0.5
TARGET_DIGITS_PER_CORE = 50_000
TARGET_COLD_START_S = 1.0
TARGET_RSS_MIB = 150
TARGET_BATCHING_C1_MS = 0.2  # issue 11: p50 at c=1, batching on minus off

# 64-digit requests at c=8 keep 512 digits in flight, plenty to fill one core; at c=32 the
# service's default bounded queue (max_queue 1024 inputs) would answer some of them 503.
BIG_BATCH = 64
BIG_CONNS = 8


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    path: str
    bodies: str
    connections: int
    grpc: bool = False  # driven by perf_analyzer -i grpc (batch = the body set's items), not wrk


WORKLOADS = [
    Workload("digit-c1", "1 digit, JSON, c=1", "/predict/digits", "digit", 1),
    Workload("digit-c32", "1 digit, JSON, c=32", "/predict/digits", "digit", 32),
    Workload("digit-c64", "1 digit, JSON, c=64", "/predict/digits", "digit", 64),
    Workload(
        "digits64",
        f"{BIG_BATCH} digits, JSON, c={BIG_CONNS}",
        "/predict/digits",
        "digits64",
        BIG_CONNS,
    ),
    Workload("v2-binary", "1 digit, v2 binary, c=32", "/v2/models/lenet/infer", "v2bin", 32),
    Workload(
        "v2-binary64",
        f"{BIG_BATCH} digits, v2 binary, c={BIG_CONNS}",
        "/v2/models/lenet/infer",
        "v2bin64",
        BIG_CONNS,
    ),
    Workload("grpc-c32", "1 digit, gRPC (perf_analyzer), c=32", "", "grpc1", 32, grpc=True),
    Workload(
        "grpc-64",
        f"{BIG_BATCH} digits, gRPC raw contents (perf_analyzer), c={BIG_CONNS}",
        "",
        "grpc64",
        BIG_CONNS,
        grpc=True,
    ),
    Workload("point-c32", "1 point, JSON, c=32", "/predict/points", "point", 32),
]
PEER_WORKLOADS = ("digit-c1", "digit-c32", "digit-c64", "digits64")
V2_WORKLOADS = ("v2-binary", "v2-binary64", "grpc-c32", "grpc-64")  # what PyTriton can serve
QUICK_SKIPS = ("digit-c64",)  # --quick leaves it out to stay under two minutes


@dataclass(frozen=True)
class Contender:
    name: str
    group: str  # what --only selects by
    what: str
    argv: list[str]
    workloads: tuple[str, ...]
    needs: str | None = None  # a module that must be importable
    needs_file: str | None = None  # a file that must exist (another venv's python)
    grpc_port: int | None = None  # where it serves gRPC, if it does
    v2_probe: bool = False  # probe with a v2 binary request (it has no /predict/digits)


def contenders(
    models_dir: str,
    ls_batch: int,
    ls_timeout: float,
    ls_fast_queue: bool,
    pytriton_python: str = str(grpc_bench.PYTRITON_PYTHON),
) -> list[Contender]:
    py = harness.PYTHON
    ours = [py, "-m", "serving", "--host", harness.HOST, "--port", "{port}", "--threads", "1"]
    ours += ["--models-dir", models_dir]
    ours_grpc = None
    if grpc_bench.serving_has_grpc():
        ours_grpc = harness.free_port()
        ours += ["--grpc-port", str(ours_grpc)]
    pt_grpc = harness.free_port()
    pytriton = [pytriton_python, "-m", "bench.peers.pytriton_server", "--host", harness.HOST]
    pytriton += ["--port", "{port}", "--grpc-port", str(pt_grpc), "--models-dir", models_dir]
    peer = ["--host", harness.HOST, "--port", "{port}", "--models-dir", models_dir]
    litserve = [py, "-m", "bench.peers.litserve_server", *peer]
    queue = ""
    if ls_fast_queue:  # its ZeroMQ queue: a little faster here, so the fairer comparison
        litserve.append("--fast-queue")
        queue = ", fast_queue"
    all_workloads = tuple(w.key for w in WORKLOADS)
    return [
        Contender(
            "ours",
            "ours",
            "this service (ONNX Runtime, 1 thread)",
            ours,
            all_workloads,
            grpc_port=ours_grpc,
        ),
        Contender(
            "ours-nobatch",
            "ours",
            "this service, --no-batching",
            [*ours, "--no-batching"],
            ("digit-c1", "digit-c32"),
        ),
        Contender(
            "tutorial",
            "tutorial",
            "FastAPI + pydantic body + torch eager per request",
            [py, "-m", "bench.peers.tutorial_server", *peer],
            PEER_WORKLOADS,
            "torch",
        ),
        Contender(
            "litserve",
            "litserve",
            f"LitServe, torch eager, no batching{queue}",
            litserve,
            PEER_WORKLOADS,
            "litserve",
        ),
        Contender(
            "litserve-batch",
            "litserve",
            f"LitServe, torch eager, max_batch_size {ls_batch}, batch_timeout {ls_timeout:g} s"
            + queue,
            [*litserve, "--batch", str(ls_batch), "--batch-timeout", str(ls_timeout)],
            PEER_WORKLOADS,
            "litserve",
        ),
        Contender(
            "floor",
            "floor",
            "FastAPI floor: pydantic parse, no model, constant answer",
            [py, "-m", "bench.peers.floor_server", "--host", harness.HOST, "--port", "{port}"],
            PEER_WORKLOADS,
        ),
        Contender(
            "pytriton",
            "pytriton",
            "PyTriton 0.7.0 (Triton server + Python model), ONNX Runtime 1 thread, "
            "dynamic batching, max_batch_size 64",
            pytriton,
            V2_WORKLOADS,
            needs_file=pytriton_python,
            grpc_port=pt_grpc,
            v2_probe=True,
        ),
    ]


@dataclass
class Run:
    workload: str
    result: WrkResult | None = None
    failure: str | None = None


@dataclass
class Outcome:
    name: str
    what: str
    cold_start_s: float | None = None
    rss: int | None = None
    runs: dict[str, Run] = field(default_factory=dict)
    failure: str | None = None


# --------------------------------------------------------------------------- bodies


def make_bodies(folder: Path, data_dir: str) -> dict[str, BodySet]:
    """The request bodies of every workload: real MNIST test digits, points of both clusters."""
    digits = harness.mnist_digits(2048, data_dir)
    json_ct = {"Content-Type": "application/json"}
    single = [(harness.digits_json(digits[i : i + 1]), json_ct) for i in range(100)]
    big = [
        (harness.digits_json(digits[i * BIG_BATCH : (i + 1) * BIG_BATCH]), json_ct)
        for i in range(16)
    ]
    binary = [harness.v2_binary(digits[i : i + 1]) for i in range(100)]
    binary64 = [harness.v2_binary(digits[i * BIG_BATCH : (i + 1) * BIG_BATCH]) for i in range(16)]
    rng = np.random.default_rng(0)
    centres = np.where(rng.random((100, 1)) < 0.5, 2.0, -2.0)
    points = centres + rng.normal(size=(100, 2))
    point = [(harness.points_json(points[i : i + 1]), json_ct) for i in range(100)]
    return {
        "digit": harness.write_bodies(folder, "digit", single, 1),
        "digits64": harness.write_bodies(folder, "digits64", big, BIG_BATCH),
        "v2bin": harness.write_bodies(folder, "v2bin", binary, 1),
        "v2bin64": harness.write_bodies(folder, "v2bin64", binary64, BIG_BATCH),
        # perf_analyzer sends its own zero-filled inputs; these say only the batch
        "grpc1": BodySet(folder / "none", 0, 1, 4 * 28 * 28),
        "grpc64": BodySet(folder / "none", 0, BIG_BATCH, 4 * 28 * 28 * BIG_BATCH),
        "point": harness.write_bodies(folder, "point", point, 1),
    }


def probe(bodies: dict[str, BodySet], v2: bool = False) -> Probe:
    key = "v2bin" if v2 else "digit"
    first = bodies[key].manifest.read_text().splitlines()[0].split("\t")
    if not v2:
        return Probe("/predict/digits", Path(first[0]).read_bytes())
    headers = dict(h.split(": ", 1) for h in first[1:])
    return Probe("/v2/models/lenet/infer", Path(first[0]).read_bytes(), headers)


def grpc_run(
    pa: str | None, port: int | None, w: Workload, items: int, cores: Cores, measure_s: float
) -> WrkResult:
    """perf_analyzer -i grpc: windows of a third of the measured time until 3 agree (≤ 6)."""
    if pa is None:
        raise RuntimeError("no perf_analyzer (../shared/tools/perf-analyzer.sh is not here)")
    if port is None:
        raise RuntimeError("no gRPC port: `python -m serving --help` lists no --grpc-port yet")
    run = grpc_bench.PaRun("grpc", items, w.connections)
    window = max(500, int(measure_s * 1000 / 3))
    grpc_bench.run_pa(pa, f"{harness.HOST}:{port}", run, cores, window, 6, 30)
    if run.failure or run.req_per_s is None or run.p50_ms is None or run.p99_ms is None:
        raise RuntimeError(f"perf_analyzer: {run.failure}")
    seconds = run.requests / run.req_per_s if run.requests else 0.0
    return WrkResult(
        run.requests, seconds, run.p50_ms, run.p99_ms, run.p99_ms, {200: run.requests}, {}
    )


# --------------------------------------------------------------------------- running


def bench_one(
    c: Contender,
    bodies: dict[str, BodySet],
    cores: Cores,
    log_dir: Path,
    warmup_s: float,
    measure_s: float,
    skip: tuple[str, ...] = (),
    pa: str | None = None,
) -> Outcome:
    out = Outcome(c.name, c.what)
    if c.needs and find_spec(c.needs) is None:
        hint = " (`.venv/bin/pip install litserve`)" if c.needs == "litserve" else ""
        out.failure = f"skipped: {c.needs} is not installed{hint}"
        print(f"[{c.name}] {out.failure}", file=sys.stderr)
        return out
    if c.needs_file and not Path(c.needs_file).exists():
        out.failure = f"skipped: {c.needs_file} is not there (`make .venv-pytriton/.ok`)"
        print(f"[{c.name}] {out.failure}", file=sys.stderr)
        return out
    server = Server(c.name, c.argv, probe(bodies, c.v2_probe), cores, log_dir)
    print(f"[{c.name}] starting: {c.what}", flush=True)
    try:
        out.cold_start_s = server.start()
        print(f"[{c.name}] first prediction after {out.cold_start_s:.2f} s", flush=True)
        for w in WORKLOADS:
            if w.key not in c.workloads or w.key in skip:
                continue
            run = Run(w.key)
            url = server.url(w.path)
            try:
                if w.grpc:
                    items = bodies[w.bodies].items
                    run.result = grpc_run(pa, c.grpc_port, w, items, cores, measure_s)
                else:
                    if warmup_s > 0:
                        harness.wrk(url, bodies[w.bodies], w.connections, warmup_s, cores)
                    run.result = harness.wrk(url, bodies[w.bodies], w.connections, measure_s, cores)
                print(f"[{c.name}] {w.label}: {_line(run.result, bodies[w.bodies])}", flush=True)
            except (RuntimeError, OSError) as e:
                run.failure = str(e)
                print(f"[{c.name}] {w.label}: FAILED {e}", file=sys.stderr)
            out.runs[w.key] = run
        out.rss = server.rss()
    except harness.ServerFailed as e:
        out.failure = str(e)
        print(f"[{c.name}] FAILED: {e}\n{server.log_tail()}", file=sys.stderr)
    finally:
        server.stop()
    return out


def _line(r: WrkResult, b: BodySet) -> str:
    s = f"{r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms"
    if b.items > 1:
        s += f", {r.rps * b.items:,.0f} digits/s"
    if r.errors:
        s += f", ERRORS {r.errors} ({r.error_detail()})"
    return s


# --------------------------------------------------------------------------- report


def _result(outcomes: dict[str, Outcome], name: str, workload: str) -> WrkResult | None:
    o = outcomes.get(name)
    run = o.runs.get(workload) if o else None
    return run.result if run else None


def ratios(outcomes: dict[str, Outcome], n_cores: int) -> tuple[list[str], list[list[str]]]:
    """The lines of ratios, and the rows of the targets table."""
    lines: list[str] = []
    targets: list[list[str]] = []

    def target(name: str, value: float | None, goal: float, fmt: str, higher: bool) -> None:
        if value is None:
            targets.append([name, "not measured", "–"])
            return
        met = value >= goal if higher else value <= goal
        targets.append([name, fmt.format(value), "yes" if met else "**no**"])

    ours = _result(outcomes, "ours", "digit-c32")
    ls = {n: r for n in ("litserve", "litserve-batch") if (r := _result(outcomes, n, "digit-c32"))}
    floor = _result(outcomes, "floor", "digit-c32")
    vs_ls = vs_floor = None
    if ours and ls:
        best = max(ls, key=lambda n: ls[n].rps)
        vs_ls = ours.rps / ls[best].rps
        lines.append(
            f"ours / LitServe best (c=32, 1 digit): **{vs_ls:.1f}x** "
            f"({ours.rps:,.0f} vs {best} {ls[best].rps:,.0f} req/s)"
        )
    if ours and floor:
        vs_floor = ours.rps / floor.rps
        lines.append(
            f"ours / FastAPI floor (c=32, 1 digit): **{vs_floor:.2f}x** "
            f"({ours.rps:,.0f} vs {floor.rps:,.0f} req/s)"
        )
    per_core = []
    for name, o in outcomes.items():
        r = _result(outcomes, name, "digits64")
        if r and o.runs["digits64"].result:
            per_core.append(f"{name} {r.rps * BIG_BATCH / n_cores:,.0f}")
    if per_core:
        lines.append(
            f"digits/s per core, {BIG_BATCH}-digit requests ({n_cores} server core): "
            + ", ".join(per_core)
        )
    for key, label in (
        ("v2-binary", "1 digit, v2 binary, c=32"),
        ("v2-binary64", f"{BIG_BATCH} digits, v2 binary"),
        ("grpc-c32", "1 digit, gRPC, c=32"),
        ("grpc-64", f"{BIG_BATCH} digits, gRPC"),
    ):
        mine, theirs = _result(outcomes, "ours", key), _result(outcomes, "pytriton", key)
        if mine and theirs and theirs.rps:
            lines.append(
                f"ours / PyTriton ({label}): **{mine.rps / theirs.rps:.1f}x** "
                f"({mine.rps:,.0f} vs {theirs.rps:,.0f} req/s)"
            )
    on = _result(outcomes, "ours", "digit-c1")
    off = _result(outcomes, "ours-nobatch", "digit-c1")
    diff = None
    if on and off:
        diff = on.p50_ms - off.p50_ms
        lines.append(
            f"batching on vs off, p50 at c=1: {on.p50_ms:.3f} vs {off.p50_ms:.3f} ms "
            f"(difference {diff:+.3f} ms; `python -m bench.latency_c1` measures it interleaved)"
        )

    target(f"req/s, c=32 (≥ {TARGET_RPS:,})", ours and ours.rps, TARGET_RPS, "{:,.0f}", True)
    target(
        f"× LitServe best (≥ {TARGET_VS_LITSERVE:g})", vs_ls, TARGET_VS_LITSERVE, "{:.1f}x", True
    )
    target(f"× FastAPI floor (≥ {TARGET_VS_FLOOR:g})", vs_floor, TARGET_VS_FLOOR, "{:.2f}x", True)
    target(
        f"p99 at c=32 (≤ {TARGET_P99_C32_MS:g} ms)",
        ours and ours.p99_ms,
        TARGET_P99_C32_MS,
        "{:.2f} ms",
        False,
    )
    target(
        f"p50 at c=1 (≤ {TARGET_P50_C1_MS:g} ms)",
        on and on.p50_ms,
        TARGET_P50_C1_MS,
        "{:.3f} ms",
        False,
    )
    big = _result(outcomes, "ours", "digits64")
    target(
        f"digits/s per core, {BIG_BATCH}-digit requests (≥ {TARGET_DIGITS_PER_CORE:,})",
        big and big.rps * BIG_BATCH / n_cores,
        TARGET_DIGITS_PER_CORE,
        "{:,.0f}",
        True,
    )
    o = outcomes.get("ours")
    target(
        f"cold start to first prediction (≤ {TARGET_COLD_START_S:g} s)",
        o and o.cold_start_s,
        TARGET_COLD_START_S,
        "{:.2f} s",
        False,
    )
    target(
        f"resident memory (≤ {TARGET_RSS_MIB} MiB)",
        o and o.rss and o.rss / 2**20,
        TARGET_RSS_MIB,
        "{:.0f} MiB",
        False,
    )
    target(
        f"batching on − off, p50 at c=1 (≤ {TARGET_BATCHING_C1_MS:g} ms)",
        diff,
        TARGET_BATCHING_C1_MS,
        "{:+.3f} ms",
        False,
    )
    errors = [
        sum(r.result.errors for r in outcomes[n].runs.values() if r.result)
        for n in ("ours", "ours-nobatch")
        if n in outcomes and outcomes[n].runs
    ]
    target("errors in our runs (= 0)", sum(errors) if errors else None, 0, "{:.0f}", False)
    return lines, targets


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def report(
    outcomes: dict[str, Outcome],
    info: dict[str, str],
    command: str,
    settings: str,
    bodies: dict[str, BodySet],
    n_cores: int,
) -> str:
    lines = [
        "# Serving benchmark",
        "",
        *harness.busy_note(info["load"]),
        f"- Date: {info['date']}",
        f"- Machine: {info['machine']}; {info['os']}",
        f"- Packages: {info['packages']}",
        f"- Command: `{command}`",
        f"- {settings}",
        f"- Load average (1 min) at start {info['load']}, at end {harness.loadavg()}",
        "",
        "## Throughput and latency",
        "",
    ]
    rows = []
    for w in WORKLOADS:
        items = bodies[w.bodies].items
        for name, o in outcomes.items():
            run = o.runs.get(w.key)
            if run is None:
                continue
            if run.result is None:
                rows.append([w.label, name, "failed", "", "", "", run.failure or ""])
                continue
            r = run.result
            errors = "0" if not r.errors else f"**⚠ {r.errors:,} ({r.error_detail()})**"
            rows.append(
                [
                    w.label,
                    name,
                    f"{r.rps:,.0f}",
                    f"{r.rps * items:,.0f}" if items > 1 else "",
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    errors,
                ]
            )
    lines += _table(["workload", "server", "req/s", "digits/s", "p50 ms", "p99 ms", "errors"], rows)
    lines += ["", "## Servers", ""]
    srv = []
    for name, o in outcomes.items():
        cold = "–" if o.cold_start_s is None else f"{o.cold_start_s:.2f} s"
        srv.append([name, o.what, cold, harness.fmt_mib(o.rss), o.failure or ""])
    lines += _table(
        ["server", "what", "cold start to first prediction", "resident memory at end", "note"],
        srv,
    )
    ratio_lines, targets = ratios(outcomes, n_cores)
    lines += ["", "## Ratios", ""] + [f"- {r}" for r in ratio_lines]
    lines += ["", "## Targets (issue 5; batching at c=1 from issue 11)", ""]
    lines += _table(["target", "measured", "met"], targets)
    lines += [
        "",
        "Errors are non-2xx answers plus socket errors (connect, read, write, timeout); a run with"
        " any is flagged ⚠. Resident memory is the sum of VmRSS over the server's process tree"
        " after its last workload. Cold start runs from process spawn to the first 200 on a real"
        " prediction. Digits are MNIST test images sent as 28x28 integer lists.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def default_data_dir() -> str:
    env = os.environ.get("MNIST_DATA_DIR")
    if env:
        return env
    shared = harness.shared_dir()
    if shared and (shared / "data" / "MNIST" / "raw").is_dir():
        return str(shared / "data")
    return str(harness.ROOT / "data")


def check_models(models_dir: str) -> None:
    from models.store import versions

    if not versions(Path(models_dir), "lenet"):
        sys.exit(
            f"no LeNet under {models_dir}: train one (`make train MODEL=lenet`) or pass "
            "--models-dir with a repository of <name>/<version>/ artifacts."
        )


def select(all_: list[Contender], only: str | None) -> list[Contender]:
    if not only:
        return all_
    wanted = {s.strip() for s in only.split(",") if s.strip()}
    known = {c.name for c in all_} | {c.group for c in all_}
    unknown = wanted - known
    if unknown:
        sys.exit(f"--only: unknown {sorted(unknown)}; choose from {sorted(known)}")
    return [c for c in all_ if c.name in wanted or c.group in wanted]


def prepare(args: argparse.Namespace) -> Cores:
    """What every serving benchmark does first: wrk is there, the models are there, servers
    are stopped whatever happens, and this process keeps off the server's core."""
    harness.need_wrk()
    check_models(args.models_dir)
    harness.install_cleanup()
    cores = Cores.parse(args.server_cpus, args.client_cpus)
    os.sched_setaffinity(0, cores.client)
    return cores


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.serve_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="1 s warm-up, 2 s windows, no c=64 runs.")
    p.add_argument("--only", help="Comma-separated servers or groups (ours, litserve, ...).")
    p.add_argument("--out", help="Markdown report (default bench/results/serve[-quick].md).")
    p.add_argument("--models-dir", default=str(harness.ROOT / "models" / "repository"))
    p.add_argument("--data-dir", default=default_data_dir(), help="Where MNIST is.")
    p.add_argument("--warmup", type=float, help="Warm-up seconds per run (default 4).")
    p.add_argument("--duration", type=float, help="Measured seconds per run (default 12).")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    p.add_argument("--perf-analyzer", help="For gRPC (default: ../shared/tools' wrapper).")
    p.add_argument(
        "--pytriton-python", default=str(grpc_bench.PYTRITON_PYTHON), help="PyTriton's venv."
    )
    p.add_argument("--litserve-batch", type=int, default=32, help="LitServe max_batch_size.")
    p.add_argument("--litserve-timeout", type=float, default=0.002, help="batch_timeout, s.")
    p.add_argument(
        "--litserve-fast-queue",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="LitServe's fast_queue (ZeroMQ).",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cores = prepare(args)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 4.0)
    measure = args.duration if args.duration is not None else (2.0 if args.quick else 12.0)
    out = Path(args.out or f"bench/results/serve{'-quick' if args.quick else ''}.md")
    chosen = select(
        contenders(
            args.models_dir,
            args.litserve_batch,
            args.litserve_timeout,
            args.litserve_fast_queue,
            str(args.pytriton_python),
        ),
        args.only,
    )
    pa = None
    if any(w.grpc for w in WORKLOADS):
        try:
            pa = grpc_bench.find_perf_analyzer(args.perf_analyzer)
        except grpc_bench.NoPerfAnalyzer as e:
            print(f"note: {e}; the gRPC workloads are skipped", file=sys.stderr)
    if find_spec("litserve") is None and any(c.needs == "litserve" for c in chosen):
        print(
            "note: litserve is not installed, so the LitServe peers are skipped; install it "
            "with `.venv/bin/pip install litserve` to compare against them.",
            file=sys.stderr,
        )
    info = harness.machine()
    scratch = harness.scratch_dir("serve-bench-")
    bodies = make_bodies(scratch / "bodies", args.data_dir)
    outcomes: dict[str, Outcome] = {}
    for c in chosen:
        skip = QUICK_SKIPS if args.quick else ()
        outcomes[c.name] = bench_one(c, bodies, cores, scratch, warmup, measure, skip, pa)
    settings = (
        f"Each run: {warmup:g} s warm-up, then {measure:g} s measured; wrk 1 thread, "
        f"{cores.label()}; 127.0.0.1, keep-alive connections; models from "
        f"{args.models_dir} (newest version)"
    )
    command = "python -m bench.serve_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(outcomes, info, command.strip(), settings, bodies, len(cores.server))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps({"info": info, "outcomes": [asdict(o) for o in outcomes.values()]}, indent=1)
    )
    ratio_lines, targets = ratios(outcomes, len(cores.server))
    print("\n" + "\n".join(ratio_lines))
    print("\n".join(f"{t[0]}: {t[1]} (met: {t[2].strip('*')})" for t in targets))
    shutil.rmtree(scratch / "bodies", ignore_errors=True)
    print(f"\nwrote {out} (server logs in {scratch})")


if __name__ == "__main__":
    main()
