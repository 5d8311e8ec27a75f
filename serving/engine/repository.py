"""Triton's model-repository extension over the hot-reload registry, for REST and gRPC alike:
the index of the models this server may serve, load (verify, probe and swap in the newest
version; a failure leaves the version serving, if any) and unload (stop serving it)."""

from __future__ import annotations

from typing import Any

from models import store
from serving.engine.registry import Entry, Registry
from serving.errors import ApiError

READY, UNAVAILABLE, LOADING = "READY", "UNAVAILABLE", "LOADING"


def _known(registry: Registry, name: str) -> None:
    if name not in registry.settings.models:
        known = ", ".join(registry.settings.models)
        raise ApiError(404, f"unknown model {name!r} (this server may serve: {known})", "model")


def index(registry: Registry, ready_only: bool = False) -> list[dict[str, Any]]:
    """Triton's repository index: [{name, version, state, reason}] for each configured model
    (READY, LOADING, or UNAVAILABLE with the reason); only the ready ones if asked."""
    models = []
    for name in registry.settings.models:
        entry = registry.entries.get(name)
        if entry is not None:
            item = {"name": name, "version": str(entry.version), "state": READY, "reason": ""}
        elif ready_only:
            continue
        elif name in registry.loading:
            item = {"name": name, "version": "", "state": LOADING, "reason": ""}
        else:
            reason = registry.failures.get(name) or (
                "unloaded" if name in registry.unloaded else "not loaded"
            )
            newest = (store.versions(registry.settings.models_dir, name) or [None])[-1]
            version = "" if newest is None else str(newest)
            item = {"name": name, "version": version, "state": UNAVAILABLE, "reason": reason}
        models.append(item)
    return models


async def load(registry: Registry, name: str) -> Entry:
    """Serve the newest version of `name` (already serving it: nothing to do). A version that
    fails its checks is refused, 400 with the reason, as Triton answers; the one serving stays."""
    _known(registry, name)
    result = (await registry.reload([name]))[name]
    if result["status"] == "refused":
        raise ApiError(400, f"failed to load {name!r}: {result['error']}", "model")
    return registry.entries[name]


async def unload(registry: Registry, name: str) -> None:
    """Stop serving `name` (not serving it: nothing to do); its requests then answer 503."""
    _known(registry, name)
    await registry.unload(name)
