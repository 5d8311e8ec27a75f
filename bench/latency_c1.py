"""p50 latency at concurrency 1, batching on vs off (issue 11: within 0.2 ms of each other).

    python -m bench.latency_c1                 # 6 rounds of 3 s windows each, about 1 minute
    python -m bench.latency_c1 --quick         # 2 rounds of 2 s

Both configurations of this service run side by side on the server core; wrk (one connection,
one request at a time, on the other core) measures them in alternating windows, so drift in the
machine's load falls on both alike. The figure is the median over rounds of each window's p50.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from bench import harness
from bench.harness import Server, WrkResult
from bench.serve_bench import default_data_dir, make_bodies, prepare, probe

BUDGET_MS = 0.2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.latency_c1", description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, help="Alternating windows per configuration.")
    p.add_argument("--duration", type=float, help="Seconds per window.")
    p.add_argument("--models-dir", default=str(harness.ROOT / "models" / "repository"))
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--workload", choices=["digit", "point", "v2bin"], default="digit")
    p.add_argument("--out", help="Markdown report (default bench/results/latency_c1[-quick].md).")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")
    return p.parse_args(argv)


PATHS = {"digit": "/predict/digits", "point": "/predict/points", "v2bin": "/v2/models/lenet/infer"}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cores = prepare(args)
    rounds = args.rounds or (2 if args.quick else 6)
    window = args.duration or (2.0 if args.quick else 3.0)
    info = harness.machine()
    scratch = harness.scratch_dir("latency-c1-")
    bodies = make_bodies(scratch / "bodies", args.data_dir)
    base = [harness.PYTHON, "-m", "serving", "--host", harness.HOST, "--port", "{port}"]
    base += ["--threads", "1", "--models-dir", args.models_dir]
    configs = {"batching on": base, "batching off": [*base, "--no-batching"]}
    servers = {
        label: Server(label.replace(" ", "-"), argv, probe(bodies), cores, scratch)
        for label, argv in configs.items()
    }
    results: dict[str, list[WrkResult]] = {label: [] for label in configs}
    body = bodies[args.workload]
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():  # warm-up
            harness.wrk(server.url(PATHS[args.workload]), body, 1, 1, cores)
        for i in range(rounds):
            order = list(servers.items()) if i % 2 == 0 else list(servers.items())[::-1]
            for label, server in order:
                r = harness.wrk(server.url(PATHS[args.workload]), body, 1, window, cores)
                results[label].append(r)
                flag = f", ERRORS {r.error_detail()}" if r.errors else ""
                print(f"round {i + 1} {label}: p50 {r.p50_ms:.3f} ms, p99 {r.p99_ms:.3f} ms{flag}")
    finally:
        for server in servers.values():
            server.stop()

    p50 = {label: statistics.median(r.p50_ms for r in rs) for label, rs in results.items()}
    diff = p50["batching on"] - p50["batching off"]
    met = diff <= BUDGET_MS
    errors = sum(r.errors for rs in results.values() for r in rs)
    rows = []
    for label, rs in results.items():
        rows.append(
            f"| {label} | {p50[label]:.3f} | "
            + ", ".join(f"{r.p50_ms:.3f}" for r in rs)
            + f" | {statistics.median(r.p99_ms for r in rs):.3f} | "
            + f"{statistics.median(r.rps for r in rs):,.0f} | {sum(r.errors for r in rs)} |"
        )
    command = "python -m bench.latency_c1 " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join(
        [
            "# p50 at concurrency 1: batching on vs off",
            "",
            *harness.busy_note(info["load"]),
            f"- Date: {info['date']}",
            f"- Machine: {info['machine']}; {info['os']}",
            f"- Command: `{command.strip()}`",
            f"- Workload: {args.workload} ({PATHS[args.workload]}), one connection; {rounds}"
            f" alternating {window:g} s windows per configuration; {cores.label()}",
            f"- Load average (1 min) at start {info['load']}, at end {harness.loadavg()}",
            "",
            "| configuration | p50 ms (median) | p50 per window | p99 ms (median) | req/s"
            " | errors |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Batching on − off: **{diff:+.3f} ms** (budget ≤ {BUDGET_MS} ms): "
            f"{'met' if met else '**not met**'}; errors: {errors}.",
            "",
        ]
    )
    out = Path(args.out or f"bench/results/latency_c1{'-quick' if args.quick else ''}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\nbatching on − off, p50 at c=1: {diff:+.3f} ms (≤ {BUDGET_MS} ms: {met})")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
