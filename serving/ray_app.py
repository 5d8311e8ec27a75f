"""The service as a Ray Serve application: the app that `make serve` runs, in N replicas.

    python -m serving.ray_app --port 8000 --replicas 2     # a local Ray (ray.init), or the
                                                            # cluster at $RAY_ADDRESS
    serve run deploy/ray/serve-config.yaml                  # operators: the config file

Each replica is one Ray actor that builds `create_app()` (serving/app.py) and serves it through
`@serve.ingress`: the same routes, middleware, answers and errors; Ray's HTTP proxy spreads the
requests over the replicas. Nothing about routes or models is written here. Batching stays the
service's own dynamic batcher, per replica (docs/scaling.md says why).

gRPC: the same inference.GRPCInferenceService, through Ray Serve's own gRPC proxy; the
deployment inherits its RPCs as methods from serving/ray_grpc.py (GrpcMethods, grpc_options).
A replica never starts a gRPC server of its own (grpc_port 0 there).

Settings: a replica reads SERVING_* from its own environment (a local Ray's workers inherit the
one `python -m serving.ray_app` runs in; on a cluster, the pod's or the runtime_env's), then the
overrides the deployment was bound with. API keys only ever come from the environment: they are
never bound as arguments (Ray would keep them in its control store and show them).

This, serving/ray_options.py (flags, deployment options) and serving/ray_grpc.py are the service's
Ray modules; this is the only one that imports ray (the `ray` extra: pip install '.[ray]').
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

if __name__ == "__main__" and not os.environ.get("RAY_ADDRESS"):
    # A Ray of its own on this machine: its processes listen and talk on loopback only, not on
    # the host's address (Ray's single-machine switch; it is read when ray is imported).
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import flags
from serving.app import create_app
from serving.grpc.rpcs import Rpcs
from serving.ray_grpc import GrpcMethods, grpc_options
from serving.ray_options import HIGH_THROUGHPUT, deployment_options, parse_args
from serving.settings import Settings

APP_NAME = "starter-serve"
DEPLOYMENT_NAME = "StarterServe"
# Settings a replica must never be bound with: keys (secrets), and what only uvicorn uses
# (and the service's own gRPC server: Ray's gRPC proxy serves gRPC here).
NOT_BOUND = {"api_keys", "admin_key", "port", "workers", "grpc_port"}
# Requests one replica takes at once. Above the batcher's max_batch_size (64) so that concurrent
# requests can meet in one batch; Ray's own default (5) would cap every batch at 5 requests.
MAX_ONGOING_REQUESTS = 128


def ready_after_load(app: FastAPI) -> FastAPI:
    """Make the app's startup end only once its models are loaded (or failed to load).

    Ray Serve sends traffic to a replica as soon as its ASGI startup returns, and it has no
    readiness probe of its own; the service loads in the background (/readyz says 503 until
    then), so without this a new or restarted replica would answer its first requests 503.
    """
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            await asyncio.shield(a.state.loading)
            yield state

    app.router.lifespan_context = lifespan
    return app


class DropEchoedRequestId:
    """Ray's HTTP proxy gives every request an X-Request-ID (the caller's, else a new one) and
    adds it to the answer; the service echoes the same id. Keep one header, not two."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)

        async def send_once(message: Message) -> None:
            if message["type"] == "http.response.start" and given is not None:
                message["headers"] = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not (k.lower() == b"x-request-id" and v == given)
                ]
            await send(message)

        await self.app(scope, receive, send_once)


def _replica_threads() -> int:
    """Inference threads: the CPUs Ray gave this replica (at least 1), not the machine's.
    Outside a running Ray (the deployment class built directly) 1: asking Ray then would start
    a local Ray as a side effect."""
    if not ray.is_initialized():
        return 1
    with contextlib.suppress(Exception):
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
        return max(1, round(cpus))
    return 1


@serve.deployment(
    name=DEPLOYMENT_NAME,
    max_ongoing_requests=MAX_ONGOING_REQUESTS,
    ray_actor_options={"num_cpus": 1},
    # A replica that is killed or crashes is replaced by the controller; a stop drains first.
    graceful_shutdown_wait_loop_s=2,
    graceful_shutdown_timeout_s=30,
    # No line per request, as under `make serve` (uvicorn's access log is off there too).
    logging_config={"enable_access_log": False},
)
@serve.ingress()
class StarterServe(GrpcMethods):
    """One replica: `create_app()` with its settings, behind Ray Serve's HTTP and gRPC proxies."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        overrides = {k: v for k, v in (settings or {}).items() if k not in NOT_BOUND}
        if not overrides.get("threads") and not os.environ.get("SERVING_THREADS"):
            overrides["threads"] = _replica_threads()
        self.settings = Settings(**overrides, grpc_port=0)  # gRPC: Ray's proxy, not ours

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Called by Ray in the replica after __init__; Ray then runs the app's startup.
        app = create_app(self.settings)
        app.wrap(DropEchoedRequestId)
        self.rpcs = Rpcs(self.settings, lambda: app.state.registry, app.title, app.version)
        return ready_after_load(app)


def bound_settings(settings: Settings) -> dict[str, Any]:
    """What a replica is bound with: the given settings less keys and uvicorn-only fields."""
    return settings.model_dump(mode="json", exclude=NOT_BOUND)


def build(args: dict[str, Any] | None = None) -> Application:
    """Application builder for `serve run` / `serve deploy` (import_path: serving.ray_app:build).

    `args` (the config file's `args:`) are Settings fields, e.g. {"models": ["lenet"]}; the
    replica count, resources and autoscaling come from the config's `deployments:` section.
    """
    given = {k: v for k, v in (args or {}).items() if k not in NOT_BOUND}
    settings = Settings(**given)  # validated here, at deploy time, not in every replica
    # Only what was given: the rest is the replicas' own environment (e.g. a pod's
    # SERVING_MODELS_DIR), not whatever the node that runs this builder has.
    return StarterServe.bind(settings.model_dump(mode="json", include=set(given)))


def app(settings: Settings | None = None, **options: Any) -> Application:
    """The application for `serve.run`, with deployment_options() keyword arguments."""
    deployment = StarterServe.options(**deployment_options(**options))
    return deployment.bind(bound_settings(settings or Settings()))


def _wait_for_stop() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    settings = Settings(
        host=a.host, port=a.port, **{name: getattr(a, name) for name in flags.MODEL_FLAGS}
    )  # validates the flags before anything starts
    remote = bool(os.environ.get("RAY_ADDRESS"))
    if a.high_throughput:
        if remote:
            raise SystemExit(
                "--high-throughput is a setting of the Ray nodes: set "
                + " ".join(f"{k}={v}" for k, v in HIGH_THROUGHPUT.items())
                + " where the cluster runs"
            )
        os.environ.update(HIGH_THROUGHPUT)  # read by the Ray processes started below
    # ray.init() joins $RAY_ADDRESS when it is set; otherwise it starts Ray on this machine,
    # whose workers inherit this environment (SERVING_*, the keys included).
    if remote:
        ray.init(logging_level=logging.WARNING)
    else:
        # "local": a new Ray of our own even if another runs here, on loopback only.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Ray starts its worker processes (the proxy and the replicas) at nice 15 by default,
        # so that drivers come first; on a shared machine they would then serve only when
        # nothing else wants the CPU. A server runs at the priority `make serve` runs at.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(
            address="local",
            include_dashboard=False,
            logging_level=logging.WARNING,
            _node_ip_address="127.0.0.1",
        )
    try:
        serve.start(
            http_options={"host": a.host, "port": a.port}, grpc_options=grpc_options(a.grpc_port)
        )
        serve.run(
            app(
                settings,
                replicas=a.replicas,
                num_cpus=a.num_cpus,
                num_gpus=a.num_gpus,
                min_replicas=a.min_replicas,
                max_replicas=a.max_replicas,
                target_ongoing_requests=a.target_ongoing_requests,
            ),
            name=APP_NAME,
            route_prefix="/",
        )
        gcs = "?"
        with contextlib.suppress(Exception):
            gcs = ray.get_runtime_context().gcs_address
        print(
            f"serving on http://{a.host}:{a.port} with Ray Serve (ray {ray.__version__}, {gcs})",
            flush=True,
        )
        _wait_for_stop()
    finally:
        # Replicas drain (graceful_shutdown_timeout_s) and run the app's shutdown.
        if remote:
            with contextlib.suppress(Exception):
                serve.delete(APP_NAME)
        else:
            with contextlib.suppress(Exception):
                serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    # Run from the importable module, so that Ray pickles the deployment by reference.
    from serving.ray_app import main as _main

    _main()
