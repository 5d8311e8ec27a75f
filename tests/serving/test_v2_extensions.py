"""Triton's extensions over REST, in process: model configuration and statistics (their JSON
parsed by tritonclient's own protobufs, as the gRPC side will build them), the model
repository behind the admin key, and the nv_inference_* metrics."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import numpy as np
import pytest
from google.protobuf.json_format import ParseDict
from pydantic import SecretStr
from tritonclient.grpc import model_config_pb2, service_pb2

from models import store
from models.spec import SPECS
from serving.engine.tensors import outputs_of
from tests.serving.conftest import Service, settings_for, write_model
from tests.serving.test_v2 import decode, json_input

pytestmark = pytest.mark.anyio
ADMIN, USER = "admin-key-789", "user-key-789"
AS_ADMIN = {"authorization": f"Bearer {ADMIN}"}


async def infer(svc: Service, name: str, n: int = 1, seed: int = 0, **headers: str):
    from tests.serving.test_v2 import items

    body = {"inputs": [json_input(name, items(name, n, seed))]}
    return await svc.client.post(f"/v2/models/{name}/infer", json=body, headers=headers)


# ---- model configuration ----------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPECS))
async def test_config_is_a_triton_model_config(built_repo: Path, name: str) -> None:
    spec = SPECS[name]
    async with Service(settings_for(built_repo, max_batch_size=32, max_wait_ms=2.5)) as svc:
        answers = [
            await svc.client.get(f"/v2/models/{name}/config"),
            await svc.client.get(f"/v2/models/{name}/versions/1/config"),
        ]
        other = await svc.client.get(f"/v2/models/{name}/versions/2/config")
    assert other.status_code == 404
    for r in answers:
        assert r.status_code == 200, r.text
        config = r.json()
        proto = ParseDict(config, model_config_pb2.ModelConfig())  # Triton's own field names
        assert proto.name == name and proto.max_batch_size == 32
        assert (proto.platform, proto.backend) == ("onnxruntime_onnx", "onnxruntime")
        assert proto.dynamic_batching.max_queue_delay_microseconds == 2500
        assert proto.version_policy.latest.num_versions == 1
        assert proto.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
        assert proto.instance_group[0].count == 1
        (inp,) = proto.input
        assert inp.name == spec.input.name and list(inp.dims) == list(spec.input.shape)
        assert inp.data_type == model_config_pb2.TYPE_FP32
        assert [o.name for o in proto.output] == [t.name for t in outputs_of(spec)]
        assert list(proto.output[0].dims) == list(spec.output.shape)
        if spec.is_classifier:
            assert proto.output[1].data_type == model_config_pb2.TYPE_INT64
        assert config["input"][0]["data_type"] == "TYPE_FP32"  # the enum's name, as Triton


async def test_config_follows_backend_and_batching(built_repo: Path) -> None:
    async with Service(settings_for(built_repo, backend="torch", batching=False)) as svc:
        config = (await svc.client.get("/v2/models/mlp/config")).json()
    ParseDict(config, model_config_pb2.ModelConfig())
    assert (config["platform"], config["backend"]) == ("pytorch_libtorch", "pytorch")
    assert "dynamic_batching" not in config


# ---- statistics -------------------------------------------------------------------------------
def parse_stats(body: dict) -> service_pb2.ModelStatisticsResponse:
    return ParseDict(body, service_pb2.ModelStatisticsResponse())


async def test_stats_count_what_the_engine_did(built_repo: Path) -> None:
    async with Service(settings_for(built_repo)) as svc:
        before = parse_stats((await svc.client.get("/v2/models/points/stats")).json())
        started_ms = time.time() * 1000
        answers = await asyncio.gather(*(infer(svc, "points", 1 + i % 3, i) for i in range(6)))
        assert all(r.status_code == 200 for r in answers)
        big = {"inputs": [{"name": "points", "shape": [1, 2], "datatype": "FP32"}]}
        big["inputs"][0]["data"] = [3.0e38, -3.0e38]  # the network overflows: a failure
        failed = await svc.client.post("/v2/models/points/infer", json=big)
        refused = await svc.client.post("/v2/models/points/infer", json={"inputs": []})
        r = await svc.client.get("/v2/models/points/versions/1/stats")
        other = await svc.client.get("/v2/models/points/versions/2/stats")
    assert failed.status_code == 400 and refused.status_code == 400 and other.status_code == 404
    (b,) = before.model_stats
    (s,) = parse_stats(r.json()).model_stats
    assert (s.name, s.version) == ("points", "1")
    st = s.inference_stats
    assert st.success.count - b.inference_stats.success.count == 6
    assert st.fail.count - b.inference_stats.fail.count == 1  # a bad request never reached it
    assert st.success.ns > b.inference_stats.success.ns and st.fail.ns > 0
    items = sum(1 + i % 3 for i in range(6)) + 1  # the overflowing item was computed too
    assert s.inference_count - b.inference_count == items
    executions = s.execution_count - b.execution_count
    assert 1 <= executions <= 7
    for d in (st.queue, st.compute_input, st.compute_infer, st.compute_output):
        assert d.count == st.success.count + st.fail.count  # every request answered by a batch
    assert st.compute_infer.ns > 0 and st.queue.ns > 0
    assert sum(bs.compute_infer.count for bs in s.batch_stats) == s.execution_count
    assert sum(bs.batch_size * bs.compute_infer.count for bs in s.batch_stats) == (
        s.inference_count
    )
    assert all(bs.compute_infer.ns > 0 for bs in s.batch_stats)
    assert started_ms - 1 <= s.last_inference <= time.time() * 1000 + 1
    assert isinstance(r.json()["model_stats"][0]["inference_count"], int)  # numbers, not strings


async def test_stats_of_all_models(built_repo: Path) -> None:
    async with Service(settings_for(built_repo)) as svc:
        await infer(svc, "curve", 2)
        body = (await svc.client.get("/v2/models/stats")).json()
    stats = {m.name: m for m in parse_stats(body).model_stats}
    assert set(stats) == set(SPECS)
    assert stats["curve"].inference_count >= 2 and stats["curve"].version == "1"


# ---- metrics ------------------------------------------------------------------------------------
def sample(text: str, metric: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^{metric}{{{re.escape(want)}}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


NV = (
    "nv_inference_request_success",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)


async def test_triton_metrics_grow_with_each_request(built_repo: Path) -> None:
    async with Service(settings_for(built_repo)) as svc:
        first = (await svc.client.get("/metrics")).text
        for i in range(5):
            assert (await infer(svc, "mlp", 2, i)).status_code == 200
        await svc.client.post("/v2/models/mlp/infer", json={"inputs": []})  # never reaches it
        after = (await svc.client.get("/metrics")).text
    for name in (*NV, "nv_inference_request_failure"):
        assert f"# TYPE {name} counter" in after, name
    labels = {"model": "mlp", "version": "1"}
    grew = {n: sample(after, n, **labels) - sample(first, n, **labels) for n in NV}
    assert grew["nv_inference_request_success"] == 5
    assert grew["nv_inference_count"] == 10
    assert 1 <= grew["nv_inference_exec_count"] <= 5
    assert grew["nv_inference_request_duration_us"] > 0
    assert grew["nv_inference_compute_infer_duration_us"] > 0
    assert "nv_inference_count_total" not in after  # Triton's names exactly


async def test_failures_are_counted_with_a_reason(repo: Path) -> None:
    async with Service(settings_for(repo)) as svc:
        entry = svc.registry.entries["points"]
        overflow = {"inputs": [{"name": "points", "shape": [1, 2], "datatype": "FP32"}]}
        overflow["inputs"][0]["data"] = [3.0e38, -3.0e38]
        r = await svc.client.post("/v2/models/points/infer", json=overflow)
        late = {"inputs": [json_input("points", np.ones((1, 2)))], "parameters": {"timeout": 1}}
        slow = await svc.client.post("/v2/models/points/infer", json=late)
        text = (await svc.client.get("/metrics")).text
    assert r.status_code == 400 and slow.status_code == 504
    assert entry.stats.failures == {"BACKEND": 1, "CANCELED": 1}
    for reason in ("BACKEND", "CANCELED"):
        labels = {"model": "points", "version": "1", "reason": reason}
        assert sample(text, "nv_inference_request_failure", **labels) >= 1


# ---- the model repository ---------------------------------------------------------------------
def keyed(repo: Path, **kw: object):
    return settings_for(repo, api_keys=[SecretStr(USER)], admin_key=SecretStr(ADMIN), **kw)


async def test_repository_needs_the_admin_key(repo: Path) -> None:
    async with Service(keyed(repo)) as svc:
        c = svc.client
        for path in ("/v2/repository/index", "/v2/repository/models/lenet/unload"):
            none = await c.post(path)
            user = await c.post(path, headers={"authorization": f"Bearer {USER}"})
            assert none.status_code == 401 and user.status_code == 403, path
        assert "lenet" in svc.registry.entries  # the refused unload did nothing
        assert (await c.post("/v2/repository/index", headers=AS_ADMIN)).status_code == 200
    async with Service(settings_for(repo)) as svc:  # no admin key: the extension is off
        r = await svc.client.post("/v2/repository/index")
        assert r.status_code == 404 and "SERVING_ADMIN_KEY" in r.json()["error"]
        r = await svc.client.post("/v2/repository/models/lenet/unload")
        assert r.status_code == 404 and "lenet" in svc.registry.entries


async def test_unload_then_load(repo: Path) -> None:
    user = {"authorization": f"Bearer {USER}"}
    async with Service(keyed(repo)) as svc:
        c = svc.client
        index = (await c.post("/v2/repository/index", headers=AS_ADMIN)).json()
        ParseDict({"models": index}, service_pb2.RepositoryIndexResponse())
        assert {m["name"]: (m["state"], m["version"]) for m in index} == {
            n: ("READY", "1") for n in SPECS
        }
        r = await c.post("/v2/repository/models/lenet/unload", headers=AS_ADMIN, json={})
        assert r.status_code == 200, r.text
        gone = await infer(svc, "lenet", **user)
        assert gone.status_code == 503 and "lenet" in gone.json()["error"]
        assert (await c.get("/v2/models/lenet/ready")).status_code == 503
        assert (await c.get("/v2/models/lenet/config")).status_code == 503
        assert (await c.get("/v2/health/ready")).status_code == 200  # unloaded on purpose
        index = (await c.post("/v2/repository/index", headers=AS_ADMIN)).json()
        lenet = next(m for m in index if m["name"] == "lenet")
        assert lenet["state"] == "UNAVAILABLE" and lenet["reason"] == "unloaded"
        ready = await c.post("/v2/repository/index", headers=AS_ADMIN, json={"ready": True})
        assert "lenet" not in {m["name"] for m in ready.json()}
        again = await c.post("/v2/repository/models/lenet/unload", headers=AS_ADMIN)
        assert again.status_code == 200  # already unloaded: nothing to do
        r = await c.post("/v2/repository/models/lenet/load", headers=AS_ADMIN)
        assert r.status_code == 200, r.text
        back = await infer(svc, "lenet", **user)
        assert back.status_code == 200 and decode(back)[0]["model_version"] == "1"
        unknown = await c.post("/v2/repository/models/nope/load", headers=AS_ADMIN)
        assert unknown.status_code == 404
        config = await c.post(
            "/v2/repository/models/lenet/load",
            headers=AS_ADMIN,
            json={"parameters": {"config": "{}"}},
        )
        assert config.status_code == 400 and config.json()["field"] == "parameters"


async def test_load_takes_the_newest_version_and_refuses_a_bad_one(repo: Path) -> None:
    async with Service(keyed(repo)) as svc:
        c = svc.client
        write_model(repo, "points", seed=5)
        r = await c.post("/v2/repository/models/points/load", headers=AS_ADMIN)
        assert r.status_code == 200 and svc.registry.entries["points"].version == 2
        bad = write_model(repo, "points", seed=6)
        (bad / store.ONNX).write_bytes(b"garbage")
        r = await c.post("/v2/repository/models/points/load", headers=AS_ADMIN)
        assert r.status_code == 400 and "points" in r.json()["error"]
        assert svc.registry.entries["points"].version == 2  # still serving
        stats = (await c.get("/v2/models/points/stats")).json()["model_stats"][0]
        assert stats["version"] == "2"


async def test_the_watcher_leaves_an_unloaded_model_alone(repo: Path) -> None:
    async with Service(keyed(repo, watch=True, watch_interval_s=0.05)) as svc:
        r = await svc.client.post("/v2/repository/models/curve/unload", headers=AS_ADMIN)
        assert r.status_code == 200
        write_model(repo, "curve", seed=3)
        write_model(repo, "points", seed=3)
        for _ in range(100):  # the watcher loads the new points ...
            await asyncio.sleep(0.05)
            if svc.registry.entries["points"].version == 2:
                break
        assert svc.registry.entries["points"].version == 2
        assert "curve" not in svc.registry.entries  # ... and not the unloaded curve
