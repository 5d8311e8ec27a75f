"""The models being served: loaded from the repository, verified, probed, swapped atomically.

State lives on disk (the model repository); this object only holds what this process loaded
from it. A load verifies the files against the card's SHA-256, builds the runner, and runs the
spec's example input through it before the new version replaces the old one. A failed load
leaves the old version serving and is reported by name. Requests hold the entry they started
with, so a reload never changes the model under a request in flight. An unload stops serving a
model until it is loaded again (the model-repository extension); the statistics of each version
last as long as the registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models import devices, store
from models.spec import ModelSpec, specs_in
from serving import metrics
from serving.engine.backends import Runner, default_threads, files_for, make_runner
from serving.engine.batching import Batcher
from serving.engine.statistics import ModelStatistics, forget
from serving.errors import ApiError, redact_paths
from serving.settings import Settings

log = logging.getLogger("serving")


@dataclass(eq=False)
class Entry:
    spec: ModelSpec
    version: int
    folder: Path
    card: dict[str, Any]
    runner: Runner
    batcher: Batcher
    load_seconds: float
    stats: ModelStatistics
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "version": str(self.version),
            "family": self.spec.family,
            "task": self.spec.task,
            "backend": self.runner.backend,
            "device": self.runner.device,
            "input": self.card.get("input"),
            "output": self.card.get("output"),
            "labels": list(self.spec.labels),
            "metrics": self.card.get("test_metrics", {}),
            "load_seconds": round(self.load_seconds, 4),
        }


class Registry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.specs = specs_in(settings.models_dir)  # built-in, and variants described by cards
        self.device = devices.resolve(settings.device, settings.backend)
        self.threads = settings.threads or default_threads(settings.workers)
        self.entries: dict[str, Entry] = {}
        self.failures: dict[str, str] = {}
        self.loading: set[str] = set()
        self.refused: dict[str, int | None] = {}  # the version each model last refused
        self.unloaded: set[str] = set()  # unloaded on request: not served until loaded again
        self.statistics: dict[tuple[str, int], ModelStatistics] = {}
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, len(settings.models)), thread_name_prefix="infer"
        )
        # One loader thread per model: a slow load never holds up the others.
        self._load_executor = ThreadPoolExecutor(
            max_workers=max(1, len(settings.models)), thread_name_prefix="load"
        )
        self._locks: dict[str, asyncio.Lock] = {}

    # ---- lookup -------------------------------------------------------------------------
    def get(self, name: str, family: str | None = None) -> Entry:
        spec = self.specs.get(name)
        if spec is None or name not in self.settings.models:
            raise ApiError(
                404, f"unknown model {name!r} (serving: {', '.join(self.settings.models)})", "model"
            )
        if family is not None and spec.family != family:
            raise ApiError(422, f"model {name!r} does not answer {family}", "model")
        entry = self.entries.get(name)
        if entry is None:
            reason = self.failures.get(name) or (
                "unloaded; load it to serve it again" if name in self.unloaded else "still loading"
            )
            raise ApiError(
                503,
                f"model {name!r} is not available: {reason}",
                "model",
                headers={"Retry-After": "1"},
            )
        return entry

    def get_version(self, name: str, version: str | None) -> Entry:
        """The entry serving `name`, if `version` (a protocol's version string) is the one
        served or None; an unknown version is 404, as the protocol asks."""
        entry = self.get(name)
        if version is not None and version != str(entry.version):
            raise ApiError(
                404,
                f"model {name!r} has no version {version!r} (serving {entry.version})",
                "version",
            )
        return entry

    def states(self) -> dict[str, dict[str, str]]:
        """Per configured model: "ready" (with its version), "unloaded" (on request), "loading"
        or "failed" (with the reason); a serving model whose newer version was refused also
        says why."""
        out: dict[str, dict[str, str]] = {}
        for name in self.settings.models:
            entry, reason = self.entries.get(name), self.failures.get(name)
            if entry is not None:
                out[name] = {"state": "ready", "version": str(entry.version)}
            elif name in self.unloaded and reason is None:
                out[name] = {"state": "unloaded"}
            else:
                out[name] = {"state": "loading" if reason is None else "failed"}
            if reason is not None:
                out[name]["reason"] = reason
        return out

    @property
    def ready(self) -> bool:
        """Every configured model is served, but those unloaded on purpose (as Triton's
        readiness counts only the models meant to be loaded)."""
        wanted = [n for n in self.settings.models if n not in self.unloaded]
        return bool(wanted) and all(n in self.entries for n in wanted)

    # ---- loading ------------------------------------------------------------------------
    def _build(self, name: str, version: int | None) -> tuple[Runner, Path, dict[str, Any], int]:
        """Blocking: verify, build the runner, probe it. Raises on any problem."""
        spec = self.specs[name]
        folder = store.version_dir(self.settings.models_dir, name, version)
        card = store.verify(folder, files_for(self.settings.backend))
        if str(card.get("version")) != folder.name:  # a copied or renamed folder
            raise store.ArtifactError(
                f"the card says version {card.get('version')!r}, its folder {folder.name!r}"
            )
        runner = make_runner(spec, folder, self.settings.backend, self.device, self.threads)
        probe = spec.example()[None]
        out = runner(probe)
        if out.shape != (1, *spec.output.shape) or not np.isfinite(out).all():
            raise store.ArtifactError(f"probe input gave a bad answer (shape {out.shape})")
        return runner, folder, card, int(folder.name)

    async def load(self, name: str, version: int | None = None) -> Entry:
        """Load (or reload) one model; on failure the current version, if any, keeps serving."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            self.loading.add(name)
            started = time.perf_counter()
            try:
                runner, folder, card, ver = await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(
                        self._load_executor, self._build, name, version
                    ),
                    self.settings.load_timeout_s,
                )
            except Exception as e:
                reason = (
                    f"{type(e).__name__}: {e}"
                    if not isinstance(e, TimeoutError)
                    else (f"load took longer than {self.settings.load_timeout_s:g} s")
                )
                reason = redact_paths(reason)  # bodies and logs never show the file system
                self.failures[name] = reason
                log.error("model %s refused: %s", name, reason)
                raise
            finally:
                self.loading.discard(name)
            stats = self.statistics.get((name, ver))
            if stats is None:
                stats = self.statistics[name, ver] = ModelStatistics(name, ver)
            entry = Entry(
                self.specs[name],
                ver,
                folder,
                card,
                runner,
                self._batcher(name, runner, stats),
                time.perf_counter() - started,
                stats,
            )
            entry.batcher.start()
            old = self.entries.get(name)
            self.entries[name] = entry  # the swap: new requests see the new version from here
            self.failures.pop(name, None)
            self.unloaded.discard(name)
            if old is not None:
                metrics.MODEL_INFO.remove(
                    name, str(old.version), old.runner.backend, old.runner.device
                )
            metrics.MODEL_INFO.labels(name, str(ver), runner.backend, runner.device).set(1)
            metrics.LOAD_SECONDS.labels(name).set(entry.load_seconds)
            log.info(
                "model %s version %s loaded (%s on %s) in %.3f s",
                name,
                ver,
                runner.backend,
                runner.device,
                entry.load_seconds,
            )
            if old is not None:
                await old.batcher.close()  # requests already queued finish on the old version
            return entry

    async def unload(self, name: str) -> None:
        """Stop serving `name`: new requests are answered 503 until it is loaded again; those
        already queued finish on it. Unloading a model not served changes nothing."""
        async with self._locks.setdefault(name, asyncio.Lock()):
            self.unloaded.add(name)
            old = self.entries.pop(name, None)
            if old is None:
                return
            metrics.MODEL_INFO.remove(name, str(old.version), old.runner.backend, old.runner.device)
            log.info("model %s version %s unloaded", name, old.version)
            await old.batcher.close()

    def _batcher(self, name: str, runner: Runner, stats: ModelStatistics) -> Batcher:
        s = self.settings
        inference, batch = metrics.INFERENCE.labels(name), metrics.BATCH.labels(name)

        def on_batch(size: int, seconds: float) -> None:
            batch.observe(size)
            inference.observe(seconds)

        return Batcher(
            runner,
            self._executor,
            max_batch=s.max_batch_size,
            max_wait_s=s.max_wait_ms / 1000,
            max_queue=s.max_queue,
            merge=s.batching,
            on_batch=on_batch,
            on_queue=metrics.QUEUE.labels(name).set,
            statistics=stats,
        )

    async def reload(self, names: list[str]) -> dict[str, dict[str, str]]:
        """Load the newest version of each model that is not already serving it."""
        results: dict[str, dict[str, str]] = {}
        for name in names:
            newest = (store.versions(self.settings.models_dir, name) or [None])[-1]
            current = self.entries.get(name)
            if current is not None and newest == current.version:
                results[name] = {"status": "unchanged", "version": str(current.version)}
                continue
            try:
                entry = await self.load(name, newest)
                results[name] = {"status": "loaded", "version": str(entry.version)}
            except Exception:
                self.refused[name] = newest
                results[name] = {
                    "status": "refused",
                    "error": self.failures.get(name, ""),
                    "serving": str(current.version) if current else "none",
                }
        return results

    async def watch(self) -> None:
        """Poll the repository; load each new version once (a refused one is not retried)."""
        while True:
            await asyncio.sleep(self.settings.watch_interval_s)
            for name in self.settings.models:
                if name in self.unloaded:  # until someone loads it again
                    continue
                newest = (store.versions(self.settings.models_dir, name) or [None])[-1]
                current = self.entries.get(name)
                if newest is None or self.refused.get(name) == newest:
                    continue
                if current is None or newest > current.version:
                    await self.reload([name])

    async def load_all(self) -> None:
        """Load every configured model at once; failures are kept in self.failures."""
        await asyncio.gather(*(self.load(n) for n in self.settings.models), return_exceptions=True)

    async def close(self) -> None:
        for entry in list(self.entries.values()):
            await entry.batcher.close()
        for stats in self.statistics.values():
            forget(stats)
        self._executor.shutdown(wait=False)
        self._load_executor.shutdown(wait=False)
