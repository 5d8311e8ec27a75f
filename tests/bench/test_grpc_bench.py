"""bench/grpc_bench.py reads perf_analyzer's summary and one-line failures as they really print."""

from __future__ import annotations

import pytest

from bench.grpc_bench import Outcome, PaRun, ceiling, first_error, parse_pa, targets

# perf_analyzer 2.41.0 against PyTriton, -i grpc -b 64 --concurrency-range 32 (captured here).
PA_OK = """*** Measurement Settings ***
  Batch size: 64
  Service Kind: Triton

Request concurrency: 32
  Client: 
    Request count: 609
    Throughput: 10819.4 infer/sec
    Avg latency: 191127 usec (standard deviation 20339 usec)
    p50 latency: 188193 usec
    p90 latency: 221139 usec
    p95 latency: 225692 usec
    p99 latency: 232276 usec
    Avg gRPC time: 191099 usec ((un)marshal request/response 33 usec + response wait 191066 usec)
  Server: 
    Inference count: 38976
    Execution count: 609
    Successful request count: 609
    Avg request latency: 190574 usec (overhead 7 usec + queue 184883 usec + compute input 65 usec + compute infer 5037 usec + compute output 582 usec)

Inferences/Second vs. Client Average Batch Latency
Concurrency: 32, throughput: 10819.4 infer/sec, latency 191127 usec
"""  # noqa: W291, E501


def test_parse_summary_and_server_section() -> None:
    run = PaRun("grpc", 64, 32)
    parse_pa(PA_OK, run)
    assert run.infer_per_s == 10819.4
    assert run.requests == 609
    assert run.req_per_s is not None and abs(run.req_per_s - 10819.4 / 64) < 1e-9
    assert (run.p50_ms, run.p99_ms) == (188.193, 232.276)
    lines = run.server_section.splitlines()
    assert lines[0] == "Inference count: 38976"
    assert lines[-1].startswith("Avg request latency: 190574 usec (overhead 7 usec")
    assert "Inferences/Second" not in run.server_section


def test_failures_are_one_line() -> None:
    # What perf_analyzer prints against this service today, over HTTP and over gRPC.
    http = "*** Measurement Settings ***\n\nerror: failed to get model config: Not Found\n\n"
    assert first_error(http, 99) == "error: failed to get model config: Not Found"
    unstable = "Request concurrency: 1\n  Pass [1] throughput: 3.0 infer/sec.\nFailed to obtain stable measurement within 4 measurement windows for concurrency 1.\n"  # noqa: E501
    assert first_error(unstable, 2).startswith("Failed to obtain stable measurement")
    assert first_error("", 134) == "no output (exit 134)"
    run = PaRun("http", 1, 1)
    parse_pa(http, run)
    assert run.infer_per_s is None and run.server_section == ""


def test_targets_pending_until_measured() -> None:
    pt = Outcome("pytriton", "")
    pt.runs = [PaRun("grpc", 1, 32, infer_per_s=700.0), PaRun("grpc", 64, 32, infer_per_s=6000.0)]
    ours = Outcome("ours", "")
    ours.runs = [PaRun("grpc", 1, 32, failure="error: nothing listens")]
    rows = targets([ours, pt], {"digits_per_s": 10000.0})
    assert rows[0][1:] == ["not measured", "–"]
    ours.runs = [
        PaRun("grpc", 1, 32, infer_per_s=1500.0),
        PaRun("grpc", 64, 32, infer_per_s=9000.0),
    ]
    rows = {r[0]: r[1:] for r in targets([ours, pt], {"digits_per_s": 10000.0})}
    assert rows["gRPC, 1 digit, c=32: ours / PyTriton (≥ 2x)"] == ["2.1x", "yes"]
    assert rows["grpc, 64 digits, c=32: ours of the physical limit (≥ 85%)"][1] == "yes"
    assert rows["grpc, 64 digits, c=32: ours ahead of PyTriton"][1] == "yes"
    floors = [
        PaRun("grpc", 1, 32, infer_per_s=2800.0),
        PaRun("grpc", 64, 32, infer_per_s=128_000.0),
    ]
    limit = {"digits_per_s": 10000.0, "ms_per_call": 6.4}  # a call of 64: 6.4 ms
    rows = {r[0]: r[1:] for r in targets([ours, pt], limit, floors)}
    measured = rows["gRPC, 1 digit, c=32: ours / PyTriton (≥ 2x)"][0]
    assert measured.startswith("2.1x; a grpc.aio server with no model answers 2,800/s")
    assert measured.endswith("4.00x PyTriton")
    # 64 digits cost at least 0.5 ms (the stack) + 6.4 ms (the model): 9,275 digits/s, 93 %
    measured = rows["grpc, 64 digits, c=32: ours of the physical limit (≥ 85%)"][0]
    assert measured.startswith("90% (9,000 of 10,000 digits/s); at most 93% (9,275) for any")


def test_ceiling_adds_the_stack_and_the_model_on_one_core() -> None:
    limit = {"ms_per_call": 1.0}
    assert ceiling(limit, PaRun("http", 64, 32, infer_per_s=64_000.0)) == pytest.approx(32_000)
    assert ceiling(limit, PaRun("http", 64, 32, failure="did not start")) is None
    assert ceiling({}, PaRun("http", 64, 32, infer_per_s=64_000.0)) is None
