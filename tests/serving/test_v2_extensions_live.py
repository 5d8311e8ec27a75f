"""Triton's extensions with Triton's own client, tritonclient.http, against the real server
process on a socket: configuration, statistics, repository index, load and unload (with the
admin key); and the nv_inference_* metrics summed over worker processes."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tritonclient.http as triton
from google.protobuf.json_format import ParseDict
from tritonclient.grpc import model_config_pb2, service_pb2
from tritonclient.utils import InferenceServerException

from models.spec import SPECS
from tests.serving.conftest import free_port, live_server
from tests.serving.test_v2 import items
from tests.serving.test_v2_extensions import sample

ADMIN = "live-admin-key"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def client(built_repo: Path) -> Iterator[triton.InferenceServerClient]:
    with live_server(built_repo, env={"SERVING_ADMIN_KEY": ADMIN}) as (url, _):
        c = triton.InferenceServerClient(url=url.removeprefix("http://"), network_timeout=30)
        yield c
        c.close()


def infer(client: triton.InferenceServerClient, name: str, n: int) -> triton.InferResult:
    x = items(name, n, seed=n)
    inp = triton.InferInput(SPECS[name].input.name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return client.infer(name, [inp])


def test_get_model_config(client: triton.InferenceServerClient) -> None:
    for version in ("", "1"):
        config = client.get_model_config("lenet", version)
        proto = ParseDict(config, model_config_pb2.ModelConfig())
        assert proto.max_batch_size == 64 and list(proto.input[0].dims) == [1, 28, 28]
        assert [o.name for o in proto.output] == ["probabilities", "label"]
    with pytest.raises(InferenceServerException) as e:
        client.get_model_config("lenet", "2")
    assert e.value.status() == "404"


def test_get_inference_statistics(client: triton.InferenceServerClient) -> None:
    def success(name: str) -> int:
        stats = client.get_inference_statistics(name)
        (s,) = ParseDict(stats, service_pb2.ModelStatisticsResponse()).model_stats
        return s.inference_stats.success.count

    before = success("mlp")
    for n in (1, 2, 3):
        infer(client, "mlp", n)
    assert success("mlp") == before + 3
    every = client.get_inference_statistics()
    assert {m["name"] for m in every["model_stats"]} == set(SPECS)
    one = client.get_inference_statistics("mlp", "1")
    assert one["model_stats"][0]["batch_stats"], one


def test_repository_index_load_and_unload(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as e:
        client.get_model_repository_index()  # no key
    assert e.value.status() == "401"
    index = client.get_model_repository_index(headers=AS_ADMIN)
    ParseDict({"models": index}, service_pb2.RepositoryIndexResponse())
    assert {m["name"] for m in index if m["state"] == "READY"} == set(SPECS)
    with pytest.raises(InferenceServerException) as e:
        client.unload_model("curve", headers={"authorization": "Bearer wrong"})
    assert e.value.status() == "403" and client.is_model_ready("curve")
    client.unload_model("curve", headers=AS_ADMIN)
    assert not client.is_model_ready("curve")
    with pytest.raises(InferenceServerException) as e:
        infer(client, "curve", 1)
    assert e.value.status() == "503" and "curve" in e.value.message()
    client.load_model("curve", headers=AS_ADMIN)
    assert client.is_model_ready("curve")
    assert infer(client, "curve", 2).as_numpy("y").shape == (2, 1)


def test_metrics_are_summed_over_worker_processes(built_repo: Path) -> None:
    with live_server(built_repo, "--workers", "2") as (url, _):
        n, workers = 40, set()
        with httpx.Client(base_url=url, timeout=30) as c:
            for i in range(n):  # new connections: both workers answer some
                x = items("points", 1, seed=i)
                body = {"inputs": [{"name": "points", "shape": [1, 2], "datatype": "FP32"}]}
                body["inputs"][0]["data"] = x.reshape(-1).tolist()
                r = httpx.post(f"{url}/v2/models/points/infer", json=body, timeout=30)
                assert r.status_code == 200, r.text
                workers.add(r.headers["x-request-id"].split("-")[0])  # the process's prefix
            time.sleep(1.5)  # each worker adds its counts within half a second
            text = c.get("/metrics").text
    assert len(workers) == 2, workers
    labels = {"model": "points", "version": "1"}
    assert sample(text, "nv_inference_request_success", **labels) == n
    assert sample(text, "nv_inference_count", **labels) == n
    assert "# TYPE nv_inference_request_success counter" in text
    assert sample(text, "nv_inference_exec_count", **labels) == n  # one request at a time


def perf_analyzer() -> Path | None:
    """Triton's perf_analyzer where ../shared/tools/perf-analyzer.sh has fetched it already."""
    found = Path(os.environ.get("PA_DIR", "/tmp/perf-analyzer")) / "pa"
    return found if found.exists() else None


@pytest.mark.skipif(perf_analyzer() is None, reason="perf_analyzer not fetched (shared/tools)")
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer_runs_and_reads_the_server_statistics(
    built_repo: Path, protocol: str
) -> None:
    """perf_analyzer reads the config (batch size, input dims and data type) before it starts
    and the statistics for its Server: section, over HTTP (/config, /stats) and over gRPC
    (ModelConfig, ModelStatistics); both must be what it expects."""
    grpc_port = free_port()
    with live_server(built_repo, "--grpc-port", str(grpc_port)) as (url, _):
        address = url.removeprefix("http://") if protocol == "http" else f"127.0.0.1:{grpc_port}"
        run = subprocess.run(
            [
                str(perf_analyzer()),
                "-m",
                "lenet",
                "-u",
                address,
                "-i",
                protocol,
                "-b",
                "2",
                "--input-data",
                "zero",
                "--measurement-mode",
                "count_windows",
                "--measurement-request-count",
                "100",
                "--stability-percentage",
                "100",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    server = run.stdout.split("Server:", 1)[1]
    inferences = int(re.search(r"Inference count: (\d+)", server).group(1))
    requests = int(re.search(r"Successful request count: (\d+)", server).group(1))
    # batch 2, from the statistics; a request in flight at either snapshot may be counted as
    # computed (inference_count, at its batch) before it counts as answered (success)
    assert requests > 0 and abs(inferences - 2 * requests) <= 2 * 2
    assert "compute infer" in server
