"""What an operator chooses for the Ray Serve app (serving/ray_app.py): its command line and the
deployment's options (replicas, resources, autoscaling). Imports nothing of Ray."""

from __future__ import annotations

import argparse
from typing import Any

from serving import flags
from serving.ray_grpc import DEFAULT_GRPC_PORT
from serving.settings import Settings


def deployment_options(
    replicas: int | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    target_ongoing_requests: float | None = None,
) -> dict[str, Any]:
    """`.options()` for the deployment: a fixed count, or autoscaling when bounds are given."""
    options: dict[str, Any] = {}
    if min_replicas is not None or max_replicas is not None:
        low = 1 if min_replicas is None else min_replicas
        options["autoscaling_config"] = {
            "min_replicas": low,
            "max_replicas": max(low, max_replicas or low),
            "target_ongoing_requests": target_ongoing_requests or 16,
        }
    elif replicas is not None:
        options["num_replicas"] = replicas
    actor: dict[str, float] = {}
    if num_cpus is not None:
        actor["num_cpus"] = num_cpus
    if num_gpus:
        actor["num_gpus"] = num_gpus
    if actor:
        options["ray_actor_options"] = {"num_cpus": 1, **actor}
    return options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = Settings()
    p = argparse.ArgumentParser(
        prog="python -m serving.ray_app",
        description="Run the service as a Ray Serve application (local Ray, or $RAY_ADDRESS).",
    )
    p.add_argument("--host", default=defaults.host, help="Address of Ray's HTTP proxy.")
    p.add_argument("--port", type=int, default=defaults.port)
    p.add_argument(
        "--grpc-port",
        type=int,
        default=DEFAULT_GRPC_PORT,
        help="Port of Ray's gRPC proxy (inference.GRPCInferenceService); 0: no gRPC. Ray binds "
        "it on every interface (it has no host setting for gRPC), whatever --host says.",
    )
    p.add_argument("--replicas", type=int, default=2, help="Fixed number of replicas.")
    p.add_argument("--min-replicas", type=int, help="Autoscale from this many (with --max).")
    p.add_argument("--max-replicas", type=int, help="Autoscale up to this many.")
    p.add_argument(
        "--target-ongoing-requests", type=float, help="Autoscaling target per replica (16)."
    )
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per replica.")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per replica.")
    flags.add(p, flags.MODEL_FLAGS, defaults)
    p.add_argument(
        "--high-throughput",
        action="store_true",
        help="Ray's high-throughput ingress (HAProxy, direct gRPC; Ray >= 2.56) for the local "
        "Ray: several times the requests per second of Ray's Python proxy, but it binds fixed "
        "ports on all interfaces (8404, 9101) and requests in flight on a replica that dies "
        "are lost (docs/scaling.md). On a cluster, set it on the nodes instead.",
    )
    return p.parse_args(argv)


HIGH_THROUGHPUT = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
