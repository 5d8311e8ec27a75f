"""The service on Ray Serve (`python -m serving.ray_app`, i.e. `make serve-ray`): 2 replicas on
loopback answer exactly as `python -m serving` does, and a replica killed under a steady stream
of requests is replaced while the application keeps answering.

One local Ray for the whole module (its start is most of the time), started by the real entry
point in its own session; the test process joins it as a second driver only to find and kill a
replica. Afterwards the entry point is stopped with SIGTERM and every process it started must be
gone.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from models.spec import SPECS
from serving.settings import Settings
from tests.serving.conftest import built_repo, free_port, live_server  # noqa: F401 (fixture)

# One machine: Ray's processes (and this test, when it joins them) talk over loopback only, not
# over the host's own address (Ray's switch for single-machine clusters; read at import).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# The entry point's Ray requires a token (~/.ray/auth_token, made by the first local Ray); a
# driver joining it by address presents the token only in token mode.
os.environ.setdefault("RAY_AUTH_MODE", "token")
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
serve = pytest.importorskip("ray.serve", reason="Ray Serve is not installed (ray[serve])")

pytestmark = pytest.mark.slow

KEY = "scale-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
REPLICA_PREFIX = "SERVE_REPLICA::starter-serve#"
START_TIMEOUT_S = 150.0


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class RayService:
    def __init__(
        self, url: str, gcs: str, proc: subprocess.Popen, log: Path, grpc_address: str
    ) -> None:
        self.url, self.gcs, self.proc, self.log = url, gcs, proc, log
        self.grpc_address = grpc_address  # Ray's gRPC proxy


@pytest.fixture(scope="module")
def ray_service(
    built_repo: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RayService]:
    port, grpc_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("ray") / "serve-ray.log"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(SERVING_API_KEYS=KEY, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "serving.ray_app",
                "--port",
                str(port),
                "--grpc-port",
                str(grpc_port),
                "--replicas",
                "2",
                "--num-cpus",
                "0.5",
                "--models-dir",
                str(built_repo),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, not Ray
        )
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    pids: set[int] = set()
    try:
        gcs = ""
        while not gcs:
            if proc.poll() is not None:
                pytest.fail(f"serve-ray exited {proc.returncode}: {log.read_text()[-3000:]}")
            if time.monotonic() - started > START_TIMEOUT_S:
                pytest.fail(f"serve-ray not up in {START_TIMEOUT_S} s: {log.read_text()[-3000:]}")
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("serving on ") and "Ray Serve" in line:
                    gcs = line.rsplit(", ", 1)[1].rstrip(")")
            time.sleep(0.2)
        r = httpx.get(f"{url}/readyz", timeout=5)
        assert r.status_code == 200, r.text
        print(f"\nserve-ray: 2 replicas ready in {time.monotonic() - started:.1f} s")
        pids = descendants(proc.pid)
        yield RayService(url, gcs, proc, log, f"127.0.0.1:{grpc_port}")
    finally:
        pids |= descendants(proc.pid)
        stopping = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + 20
        while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:  # ours: started by the entry point above
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        print(f"serve-ray: stopped in {time.monotonic() - stopping:.1f} s (exit {code})")
        assert code == 0, f"serve-ray did not stop cleanly on SIGTERM: {log.read_text()[-3000:]}"
        assert not left, f"processes left behind by serve-ray: {sorted(left)}"


@pytest.fixture(scope="module")
def single(built_repo: Path) -> Iterator[str]:  # noqa: F811
    """`python -m serving`, one process, same repository and key."""
    with live_server(built_repo, env={"SERVING_API_KEYS": KEY}) as (url, _):
        yield url


def _png(x: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(x.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def requests_to_compare() -> list[tuple[str, str, dict[str, Any]]]:
    rng = np.random.default_rng(7)
    digits = rng.integers(0, 256, size=(3, 28, 28)).astype(float)
    points = [[2.0, 2.0], [-2.0, -2.5], [0.1, -0.3]]
    xs = np.linspace(-1, 1, 5).tolist()
    v2_json = {
        "inputs": [
            {
                "name": SPECS["lenet"].input.name,
                "shape": [2, 1, 28, 28],
                "datatype": "FP32",
                "data": digits[:2].reshape(-1).tolist(),
            }
        ]
    }
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": SPECS["points"].input.name,
                    "shape": [3, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 24},
                }
            ],
            "outputs": [{"name": "probabilities"}],
        }
    )
    v2_binary = head + np.array(points, np.float32).tobytes()
    return [
        ("POST", "/predict/digits", {"json": {"images": digits.tolist()}}),
        ("POST", "/predict/digits", {"json": {"images": digits[:1].tolist(), "model": "mlp"}}),
        ("POST", "/predict/points", {"json": {"points": points}}),
        ("POST", "/predict/curve", {"json": {"x": xs}}),
        ("POST", "/predict/digits/image", {"files": {"file": ("d.png", _png(digits[0]))}}),
        ("POST", "/v2/models/lenet/infer", {"json": v2_json}),
        (
            "POST",
            "/v2/models/points/infer",
            {
                "content": v2_binary,
                "headers": {"Inference-Header-Content-Length": str(len(head))},
            },
        ),
        ("GET", "/v2/models/curve", {}),
        ("GET", "/v2/health/ready", {}),
        ("GET", "/readyz", {}),
        ("GET", "/healthz", {}),
        ("GET", "/models/points", {}),
        # errors: bad input, unknown model, wrong method, too many items, no key
        ("POST", "/predict/digits", {"json": {"images": [[1, 2, 3]]}}),
        ("POST", "/predict/digits", {"json": {"images": digits[:1].tolist(), "model": "nope"}}),
        ("POST", "/predict/points", {"content": b"{not json", "headers": {}}),
        ("POST", "/predict/curve", {"json": {"x": [True]}}),
        ("POST", "/v2/models/nope/infer", {"json": v2_json}),
        ("GET", "/predict/points", {}),
        ("GET", "/no/such/path", {}),
        ("POST", "/predict/points", {"json": {"points": points}, "auth": False}),
    ]


def _send(client: httpx.Client, method: str, path: str, opts: dict[str, Any]) -> httpx.Response:
    opts = dict(opts)
    headers = {**(AUTH if opts.pop("auth", True) else {}), **opts.pop("headers", {})}
    return client.request(method, path, headers=headers, **opts)


def _answer(r: httpx.Response) -> tuple[int, str, Any, str]:
    """What must be equal: status, content type, body (parsed where JSON; binary v2 answers
    as bytes), and the inference header's length."""
    kind = r.headers.get("content-type", "")
    body: Any = r.content
    if kind.startswith("application/json"):
        body = r.json()
        if isinstance(body, dict):
            body.pop("load_seconds", None)  # how long this process took to load the model
    return r.status_code, kind, body, r.headers.get("inference-header-content-length", "")


def test_same_answers_as_the_single_process_service(ray_service: RayService, single: str) -> None:
    with (
        httpx.Client(base_url=ray_service.url, timeout=30) as on_ray,
        httpx.Client(base_url=single, timeout=30) as alone,
    ):
        for method, path, opts in requests_to_compare():
            want, got = _send(alone, method, path, opts), _send(on_ray, method, path, opts)
            assert _answer(got) == _answer(want), (method, path, got.text[:500])
            assert got.headers.get("www-authenticate") == want.headers.get("www-authenticate")
            # one request id, not Ray's and the service's side by side
            assert len(got.headers.get_list("x-request-id")) == 1, got.headers
        # both replicas answer (Ray spreads the requests), each with its own metrics
        metrics = on_ray.get("/metrics", headers=AUTH)
        assert metrics.status_code == 200 and "serving_" in metrics.text


def replica_names() -> set[str]:
    return {
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(REPLICA_PREFIX)
    }


def running_replicas() -> int:
    app = serve.status().applications.get("starter-serve")
    if app is None or app.status != "RUNNING":
        return 0
    return sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())


class Stream:
    """A steady stream of digit predictions from a few client threads, each answer recorded."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url, self.stop = url, threading.Event()
        self.results: list[tuple[float, int | str]] = []
        self.lock = threading.Lock()
        body = {"images": np.full((1, 28, 28), 128.0).tolist()}
        self.body = orjson.dumps(body)
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        headers = {**AUTH, "Content-Type": "application/json"}
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                t = time.monotonic()
                try:
                    outcome: int | str = client.post(
                        "/predict/digits", content=self.body, headers=headers
                    ).status_code
                except httpx.HTTPError as e:
                    outcome = type(e).__name__
                with self.lock:
                    self.results.append((t, outcome))

    def __enter__(self) -> Stream:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)

    def outcomes(self, since: float = 0.0) -> Counter[int | str]:
        with self.lock:
            return Counter(o for t, o in self.results if t >= since)


def test_grpc_through_rays_proxy(ray_service: RayService, single: str) -> None:
    """inference.GRPCInferenceService through Ray Serve's own gRPC proxy: tritonclient.grpc
    gets the answers /predict gives, and the status codes of the service's own gRPC server."""
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(ray_service.grpc_address)
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.get_model_metadata("lenet", as_json=True)["name"] == "lenet"
        x = np.random.default_rng(3).integers(0, 256, size=(3, 1, 28, 28)).astype(np.float32)
        inp = triton.InferInput("pixels", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        grpc_auth = {"authorization": AUTH["Authorization"]}  # gRPC metadata keys: lowercase
        result = client.infer("lenet", [inp], headers=grpc_auth)
        r = httpx.post(
            f"{single}/predict/digits",
            json={"images": x.reshape(3, 28, 28).tolist(), "model": "lenet"},
            headers=AUTH,
        )
        want = np.array([p["probabilities"] for p in r.json()["predictions"]], np.float32)
        np.testing.assert_allclose(result.as_numpy("probabilities"), want, rtol=0, atol=1e-6)
        with pytest.raises(InferenceServerException) as e:
            client.infer("lenet", [inp])  # no key
        assert e.value.status() == "StatusCode.UNAUTHENTICATED"
        with pytest.raises(InferenceServerException) as e:
            client.get_model_metadata("nope")
        assert e.value.status() == "StatusCode.NOT_FOUND"
    finally:
        client.close()


def test_a_killed_replica_is_replaced_while_the_app_keeps_answering(
    ray_service: RayService,
) -> None:
    if ray.is_initialized():  # a Ray this process started itself: not the service's
        ray.shutdown()
    ray.init(address=ray_service.gcs, logging_level="WARNING")
    try:
        before = replica_names()
        assert len(before) == 2 and running_replicas() == 2, (before, serve.status())
        victim = sorted(before)[0]
        with Stream(ray_service.url) as stream:
            time.sleep(2.0)
            killed_at = time.monotonic()
            ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
            deadline = killed_at + 60
            while time.monotonic() < deadline:
                names = replica_names()
                if victim not in names and len(names) == 2 and running_replicas() == 2:
                    break
                time.sleep(0.25)
            back_after = time.monotonic() - killed_at
            time.sleep(2.0)  # the new replica takes its share of the stream
        during = stream.outcomes(since=killed_at)
        total = stream.outcomes()
        failed = sum(n for o, n in during.items() if o != 200)
        print(
            f"\nreplica kill: {sum(during.values())} requests from the kill on, "
            f"{failed} failed {dict(during)}; replaced in {back_after:.1f} s; "
            f"{sum(total.values())} requests in all {dict(total)}"
        )
        now = replica_names()
        assert victim not in now and len(now) == 2, (victim, now, serve.status())
        assert running_replicas() == 2
        assert during[200] > 0 and stream.outcomes(since=killed_at + back_after)[200] > 0
        # Requests that had reached the killed replica are lost with it (Ray Serve retries only
        # requests not yet sent to a replica): at most the few in flight may fail, no more.
        assert failed <= len(stream.threads), dict(during)
    finally:
        ray.shutdown()
    # the new replica serves like the others
    with httpx.Client(base_url=ray_service.url, timeout=10) as client:
        answers = {client.get("/readyz").status_code for _ in range(10)}
    assert answers == {200}


# ---- no Ray started: the options and the config builder -----------------------------------------


def test_deployment_options() -> None:
    from serving.ray_options import deployment_options

    assert deployment_options(replicas=3) == {"num_replicas": 3}
    options = deployment_options(replicas=2, min_replicas=1, max_replicas=4, num_gpus=0.5)
    assert options["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 16,
    }
    assert "num_replicas" not in options  # autoscaling decides
    assert options["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 0.5}


def test_config_builder_validates_and_binds_no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from serving import ray_app

    monkeypatch.setenv("SERVING_API_KEYS", "secret-key")
    assert isinstance(ray_app.build({"models": ["lenet"], "api_keys": "x"}), serve.Application)
    with pytest.raises(ValidationError):
        ray_app.build({"models": ["no-such-model"]})
    bound = ray_app.bound_settings(Settings(models=["lenet"]))
    assert not {"api_keys", "admin_key", "port", "workers"} & set(bound)
    assert bound["models"] == ["lenet"]
