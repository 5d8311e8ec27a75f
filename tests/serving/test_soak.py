"""A short soak in the suite (the 60 s one is `make soak`): no errors, memory flat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.soak import drive
from tests.serving.conftest import live_server


@pytest.mark.slow
def test_short_soak_has_no_errors_and_flat_memory(built_repo: Path) -> None:
    with live_server(built_repo, "--log-level", "warning") as (url, proc):
        soak = asyncio.run(drive(url, proc.pid, seconds=12, clients=32))
    gained, slope = soak.growth()
    print(
        f"soak: {soak.requests} requests, statuses {dict(soak.statuses)}, "
        f"failures {dict(soak.failures)}, RSS {soak.rss[0][1]:.1f} -> {soak.rss[-1][1]:.1f} "
        f"MiB, growth after warm-up {gained:+.1f} MiB, slope {slope:+.2f} MiB/min"
    )
    assert soak.requests > 1000
    assert soak.errors == 0
    assert not soak.leaking()
