"""DistributedDataParallel training: 2 CPU processes under torchrun (gloo) agree with each other
and with a single process, and only rank 0 publishes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from models import store
from training import data, distributed, train

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch built without torch.distributed"
)


def torchrun(args: list[str], cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess[str]:
    """`torchrun --standalone` (a free local rendezvous port) with one CPU thread per process."""
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", *args]  # fmt: skip
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (5, 1)])
def test_shards_split_like_a_distributed_sampler(n: int, world: int) -> None:
    order = torch.arange(n)
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False)
        assert distributed.shard(order, rank, world).tolist() == list(sampler)
    shards = [distributed.shard(order, r, world) for r in range(world)]
    assert {len(s) for s in shards} == {distributed.shard_len(n, world)}  # same steps per rank
    assert set(torch.cat(shards).tolist()) == set(range(n))  # every item seen


def test_one_process_needs_no_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    me, device = distributed.setup(torch.device("cpu"))
    assert (me.rank, me.world_size, me.enabled, device.type) == (0, 1, False, "cpu")
    assert distributed.backend_for(torch.device("cuda")) == "nccl"
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    gen = torch.Generator().manual_seed(0)
    order = data.epoch_order(9, True, gen)
    assert distributed.shard(order, 0, 1) is order  # one process: exactly the old order


WORKER = """
import dataclasses, sys
import torch
from models.spec import SPECS
from training import data, distributed, train

me, device = distributed.setup(torch.device("cpu"))
assert me.enabled and me.world_size == 2, me
hp = dataclasses.replace(train.DEFAULTS["points"], epochs=2, batch_size=32, dropout=0.1)
result = train.fit(SPECS["points"], data.points(300, 100, n_test=200), hp, progress=False)
flat = torch.cat([p.detach().flatten() for p in result.net.parameters()])
torch.save({"params": flat, "history": result.history, "test": result.test},
           f"{sys.argv[1]}/rank{me.rank}.pt")
distributed.cleanup()
"""


def test_two_ranks_end_with_identical_parameters(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    torchrun([str(script), str(tmp_path)], cwd=tmp_path)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(r0["params"], r1["params"])  # bit for bit, after 2 x 5 steps
    assert r0["history"] == [{**row, "seconds": r0_row["seconds"]} for row, r0_row in
                             zip(r1["history"], r0["history"], strict=True)]  # fmt: skip
    assert r0["test"]["accuracy"] > 0.6 and r1["test"] == {}  # only rank 0 tests


def test_two_processes_reach_the_single_process_bar(tmp_path: Path) -> None:
    """`points` under 2-process DDP: >= 99.4 % on 10,000 fresh points, like one process."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert train.main(["points", "--models-dir", str(one), "--no-progress", "--threads", "1"]) == 0
    done = torchrun(["-m", "training", "points", "--models-dir", str(two), "--no-progress"], REPO)
    assert "2 processes (DDP, gloo)" in done.stdout
    assert done.stdout.count("== points: test") == 1  # rank 0 alone reports and publishes
    for repo in (one, two):
        assert store.versions(repo, "points") == [1]
        card = json.loads((repo / "points" / "1" / store.CARD).read_text())
        assert card["test_metrics"]["n"] == 10_000
        assert card["test_metrics"]["accuracy"] >= 0.994, (repo, card["test_metrics"])
    assert json.loads((two / "points" / "1" / store.CARD).read_text())["distributed"] == {
        "processes": 2, "backend": "gloo", "global_batch_size": 256,
    }  # fmt: skip
    assert [p.name for p in (two / "points").iterdir()] == ["1"]  # no stray temporary folders
