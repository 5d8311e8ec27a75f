"""A short soak in the suite (the 60 s one is `make soak`): no errors, memory flat once warm."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.soak import drive
from tests.serving.conftest import live_server


@pytest.mark.slow
def test_short_soak_has_no_errors_and_flat_memory(built_repo: Path) -> None:
    with live_server(built_repo, "--log-level", "warning") as (url, proc):
        warm = asyncio.run(drive(url, proc.pid, seconds=4, clients=32))  # arenas, caches
        soak = asyncio.run(drive(url, proc.pid, seconds=10, clients=32))
    grown = soak.rss[-1][1] - warm.rss[-1][1]
    print(
        f"soak: {soak.requests} requests after {warm.requests} warm-up ones, statuses "
        f"{dict(soak.statuses)}, failures {dict(soak.failures)}, RSS once warm "
        f"{warm.rss[-1][1]:.1f} -> {soak.rss[-1][1]:.1f} MiB ({grown:+.1f})"
    )
    assert soak.requests > 1000
    assert warm.errors == soak.errors == 0
    assert grown < 10  # a leak of even 1 KB per request would show here
