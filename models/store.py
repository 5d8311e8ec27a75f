"""The model repository on disk, laid out as Triton and KServe lay theirs out:

    <root>/<model name>/<version>/{model.pt, model.onnx, card.json, plots/*.png}

A version is written under a hidden temporary name and renamed into place only when complete and
verified, so a reader never sees half a version and a crash leaves the previous ones untouched.
Versions are whole numbers; the highest one serves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent / "repository"
CARD = "card.json"
STATE_DICT = "model.pt"
ONNX = "model.onnx"
log = logging.getLogger("models")


class ArtifactError(Exception):
    """A version on disk is missing, unreadable or fails its checksums."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions(root: Path, name: str) -> list[int]:
    """Complete versions of one model, oldest first. A folder whose name is not a plain ASCII
    number (`v2`, `tmp`, `²`), or that is a link leading out of the repository, is not a
    version: it is skipped with a warning, and the others still count."""
    folder = Path(root) / name
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        if p.name.startswith("."):  # a version being written (publish), or the OS's own
            continue
        if not (p.name.isascii() and p.name.isdigit()):
            _skip(name, p.name, "its name is not a whole number")
        elif p.is_symlink() and not p.resolve().is_relative_to(Path(root).resolve()):
            _skip(name, p.name, "it is a link that leads out of the model repository")
        elif p.is_dir():
            found.append(int(p.name))
    return sorted(found)


_warned: set[tuple[str, str, str]] = set()


def _skip(model: str, folder: str, why: str) -> None:
    if (model, folder, why) not in _warned:  # once, not at every poll of the watcher
        _warned.add((model, folder, why))
        log.warning("model %s: folder %r skipped: %s", model, folder, why)


def version_dir(root: Path, name: str, version: int | None = None) -> Path:
    """The folder of one version (default: the newest)."""
    found = versions(root, name)
    if not found:
        raise ArtifactError(f"model {name!r} has no version under {Path(root) / name}")
    if version is None:
        version = found[-1]
    elif version not in found:
        raise ArtifactError(f"model {name!r} has no version {version}")
    return Path(root) / name / str(version)


def read_card(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / CARD).read_text())
    except (OSError, ValueError) as e:
        raise ArtifactError(f"unreadable model card in {folder}: {e}") from e


def verify(folder: Path, files: tuple[str, ...] = (STATE_DICT, ONNX)) -> dict:
    """Check every listed file against the SHA-256 its card records; return the card."""
    card = read_card(folder)
    sums = card.get("sha256", {})
    for name in files:
        path = Path(folder) / name
        if name not in sums:
            raise ArtifactError(f"{name}: the card records no checksum for it")
        if not path.is_file():
            raise ArtifactError(f"{name}: file missing")
        if sha256(path) != sums[name]:
            raise ArtifactError(f"{name}: SHA-256 does not match the card (tampered or corrupt)")
    return card


def write_json(path: Path, data: object) -> None:
    """Write a JSON file atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def publish(root: Path, name: str, write: Callable[[Path, int], None], keep: int = 2) -> Path:
    """Write a new version through `write(folder, version)` and swap it in once `write` returns.

    `write` must fill the folder completely (and raise if anything fails to verify). On any
    exception the temporary folder is removed and the existing versions stay as they were.
    Returns the folder of the new version. Keeps the newest `keep` versions (0: keep all).
    """
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    version = (versions(root, name) or [0])[-1] + 1
    target = parent / str(version)
    tmp = parent / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        write(tmp, version)
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        try:
            os.rename(tmp, target)  # atomic; refuses to replace a version that already exists
        except OSError as e:
            raise ArtifactError(f"{target} appeared while writing it: two runs at once?") from e
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in versions(root, name)[:-keep] if keep > 0 else []:
        shutil.rmtree(parent / str(old), ignore_errors=True)
    for stale in parent.glob(".tmp-*"):  # left by a run killed outright, over an hour ago
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    return target


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
