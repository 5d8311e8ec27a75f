"""The model repository: versions appear whole or not at all, and the card's checksums hold."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from models import store
from models.store import ArtifactError
from tests.conftest import REPO


def _writer(payload: str):
    def write(folder: Path, version: int) -> None:
        (folder / store.STATE_DICT).write_text(f"{payload} pt v{version}")
        (folder / store.ONNX).write_text(f"{payload} onnx v{version}")
        sums = {n: store.sha256(folder / n) for n in (store.STATE_DICT, store.ONNX)}
        store.write_json(folder / store.CARD, {"version": version, "sha256": sums})

    return write


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".tmp-" not in str(p)
    }


def test_publish_numbers_versions_and_keeps_the_newest(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []

    def write(folder: Path, version: int) -> None:
        seen.append((folder.name, version))
        _writer("x")(folder, version)

    for i in range(1, 5):
        target = store.publish(tmp_path, "m", write, keep=2)
        assert target == tmp_path / "m" / str(i)
        assert store.verify(target)["version"] == i
    assert [v for _, v in seen] == [1, 2, 3, 4]
    assert all(name.startswith(".tmp-") for name, _ in seen)  # written under a hidden name
    assert store.versions(tmp_path, "m") == [3, 4]
    assert store.version_dir(tmp_path, "m") == tmp_path / "m" / "4"
    store.publish(tmp_path, "m", write, keep=0)
    store.publish(tmp_path, "m", write, keep=0)
    assert store.versions(tmp_path, "m") == [3, 4, 5, 6]


def test_a_failing_write_leaves_everything_as_it_was(tmp_path: Path) -> None:
    store.publish(tmp_path, "m", _writer("good"))
    before = _snapshot(tmp_path)

    def crash(folder: Path, version: int) -> None:
        (folder / store.STATE_DICT).write_text("half")
        raise RuntimeError("export failed")

    with pytest.raises(RuntimeError, match="export failed"):
        store.publish(tmp_path, "m", crash)
    assert _snapshot(tmp_path) == before
    assert store.versions(tmp_path, "m") == [1]
    assert list((tmp_path / "m").iterdir()) == [tmp_path / "m" / "1"]  # no temporary folder left


def test_a_version_that_appears_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    def racing(folder: Path, version: int) -> None:
        _writer("mine")(folder, version)
        (folder.parent / str(version)).mkdir()
        (folder.parent / str(version) / "theirs").write_text("other run")

    with pytest.raises(ArtifactError, match="two runs at once"):
        store.publish(tmp_path, "m", racing)
    assert (tmp_path / "m" / "1" / "theirs").read_text() == "other run"
    assert not list((tmp_path / "m").glob(".tmp-*"))


KILLED_WRITER = """
    import sys, time
    from pathlib import Path
    from models import store

    def write(folder, version):
        (folder / store.STATE_DICT).write_text("half of version 2")
        print("writing", flush=True)
        time.sleep(60)

    store.publish(Path(sys.argv[1]), "m", write)
"""


def test_sigkill_mid_write_leaves_the_previous_version_intact(tmp_path: Path) -> None:
    store.publish(tmp_path, "m", _writer("good"))
    before = _snapshot(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _snapshot(tmp_path) == before  # the half-written folder is hidden, v1 untouched
    assert store.versions(tmp_path, "m") == [1]
    store.verify(store.version_dir(tmp_path, "m"))
    (stale,) = (tmp_path / "m").glob(".tmp-*")
    # the next run publishes version 2 normally and sweeps leftovers older than an hour
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert store.publish(tmp_path, "m", _writer("next")) == tmp_path / "m" / "2"
    assert not stale.exists()


def test_verify_catches_tampering_and_missing_pieces(tmp_path: Path) -> None:
    folder = store.publish(tmp_path, "m", _writer("good"))
    assert store.verify(folder)["version"] == 1
    (folder / store.ONNX).write_text("tampered")
    with pytest.raises(ArtifactError, match=r"model.onnx: SHA-256 does not match"):
        store.verify(folder)
    (folder / store.ONNX).unlink()
    with pytest.raises(ArtifactError, match="file missing"):
        store.verify(folder)
    store.write_json(folder / store.CARD, {"sha256": {}})
    with pytest.raises(ArtifactError, match="records no checksum"):
        store.verify(folder)
    (folder / store.CARD).write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable model card"):
        store.verify(folder)


def test_version_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="has no version under"):
        store.version_dir(tmp_path, "absent")
    store.publish(tmp_path, "m", _writer("x"))
    with pytest.raises(ArtifactError, match="has no version 7"):
        store.version_dir(tmp_path, "m", 7)


def test_write_json_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    store.write_json(path, {"a": 1})
    store.write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]  # no temporary file left
