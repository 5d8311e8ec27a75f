"""A/B of the hot path: this checkout against another (e.g. the previous main), alternating.

    git worktree add /tmp/base <commit>          # the baseline, any earlier commit
    python -m bench.ab_serve --base /tmp/base    # -> bench/results/ab-serve.md

Each round starts one server, warms it up, measures one digit per request with wrk at c=32
(and the inference-protocol binary request), stops it, then does the same with the other;
which one goes first alternates from round to round, so that a machine getting busier or
quieter during the run weighs on both alike. Same pinning as bench/serve_bench.py (server on
core 0, wrk on core 1), same bodies, same models (each checkout's own committed repository).

`--paired` keeps both servers up the whole run (both pinned to core 0; only the one under load
works) and alternates short windows between them, so that each head window has a base window
right beside it; the result is the median of those adjacent head/base ratios. On a machine whose
speed drifts from one window to the next (this one has swung 2x in seconds), that ratio is
steadier than the ratio of two medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

from bench import harness
from bench.serve_bench import default_data_dir

JSON = {"Content-Type": "application/json"}

# `python -m serving` from the given checkout: its packages first on the path.
RUN = (
    "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "runpy.run_module('serving', run_name='__main__')"
)


def server(tree: Path, name: str, cores: harness.Cores, log_dir: Path) -> harness.Server:
    argv = [sys.executable, "-c", RUN, str(tree), "--port", "{port}", "--threads", "1"]
    argv += ["--models-dir", str(tree / "models" / "repository")]
    probe = harness.Probe("/predict/points", b'{"points": [[1, 2]]}')
    return harness.Server(name, argv, probe, cores, log_dir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ab_serve", description=__doc__)
    p.add_argument("--base", required=True, help="Checkout of the baseline (git worktree).")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--paired", action="store_true", help="Both servers up; alternate windows.")
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--out", default=str(harness.ROOT / "bench" / "results" / "ab-serve.md"))
    a = p.parse_args(argv)
    harness.install_cleanup()
    cores = harness.Cores.parse("0", "1")
    start_load = harness.loadavg()
    scratch = harness.scratch_dir("ab-serve-")
    images = harness.mnist_digits(256, a.data_dir)
    digit = harness.write_bodies(
        scratch, "digit", [(harness.digits_json(images[i : i + 1]), JSON) for i in range(256)], 1
    )
    v2 = harness.write_bodies(
        scratch, "v2", [harness.v2_binary(images[i : i + 1]) for i in range(256)], 1
    )
    trees = {"base": Path(a.base).resolve(), "head": harness.ROOT}
    work = {"digit": ("/predict/digits", digit), "v2": ("/v2/models/lenet/infer", v2)}
    runs: dict[tuple[str, str], list[float]] = {(t, w): [] for t in trees for w in work}
    p99: dict[tuple[str, str], list[float]] = {(t, w): [] for t in trees for w in work}
    errors: list[str] = []

    def measure(label: str, s: harness.Server, name: str, r: int, warmup: float) -> None:
        path, bodies = work[name]
        if warmup:
            harness.wrk(s.url(path), bodies, a.connections, warmup, cores)
        res = harness.wrk(s.url(path), bodies, a.connections, a.duration, cores)
        if res.errors:  # a run with errors measures the errors, not the path
            print(f"{label} {name}: {res.error_detail()}", file=sys.stderr)
            errors.append(f"{label} {name} round {r + 1}: {res.error_detail()}")
        runs[label, name].append(res.rps)
        p99[label, name].append(res.p99_ms)
        print(f"round {r + 1} {label:4} {name:5} {res.rps:8.0f} req/s", flush=True)

    if a.paired:
        with ExitStack() as stack:
            up = {
                t: stack.enter_context(harness.running(server(trees[t], t, cores, scratch)))
                for t in trees
            }
            for name in work:
                for label in trees:  # warm both once; then windows back to back
                    harness.wrk(
                        up[label].url(work[name][0]), work[name][1], a.connections, a.warmup, cores
                    )
                for r in range(a.rounds):
                    for label in list(trees) if r % 2 == 0 else list(reversed(trees)):
                        measure(label, up[label], name, r, 0.0)
    for r in range(0 if a.paired else a.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for label in order:
            with harness.running(server(trees[label], label, cores, scratch)) as s:
                for name in work:
                    measure(label, s, name, r, a.warmup)
    m = harness.machine()
    mode = "both servers up, windows alternating" if a.paired else "one server a round"
    lines = [
        "# A/B of the hot path: this checkout (head) against a baseline, alternating",
        "",
        f"{m['date']}; {m['machine']}; {m['os']}; {m['packages']}; load {start_load} at start",
        f"base: {trees['base']}; head: this checkout; {a.rounds} rounds, {a.duration:g} s "
        f"windows after {a.warmup:g} s warm-up, "
        f"{mode}, c={a.connections}, one MNIST digit a request; "
        f"{cores.label()}.",
        "",
        "| request | base req/s (median) | head req/s (median) | head / base (medians) "
        "| median of adjacent head / base | p99 base, head ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in work:
        b, h = statistics.median(runs["base", name]), statistics.median(runs["head", name])
        pb, ph = statistics.median(p99["base", name]), statistics.median(p99["head", name])
        pairs = statistics.median(
            x / y for x, y in zip(runs["head", name], runs["base", name], strict=True)
        )
        lines.append(
            f"| {name} | {b:,.0f} | {h:,.0f} | {h / b:.3f} | {pairs:.3f} | {pb:.1f}, {ph:.1f} |"
        )
    lines += ["", "Every round (req/s):", ""]
    for (label, name), values in runs.items():
        lines.append(f"- {label} {name}: " + ", ".join(f"{v:,.0f}" for v in values))
    lines += ["", f"Errors: {'; '.join(errors) if errors else 'none'}.", ""]
    lines += harness.busy_note(start_load)
    Path(a.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
