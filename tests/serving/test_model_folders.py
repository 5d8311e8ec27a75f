"""Odd folders in the model repository (issue 17): a version folder named `²`, `v2` or `tmp`,
one that links out of the repository, or one whose card names another version never stops the
real versions from serving, nor a reload or the watcher; and logs never carry a file path."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from models import store
from serving.errors import redact_paths
from tests.serving.conftest import Service, live_server, settings_for, write_model

pytestmark = pytest.mark.anyio


def spoil(repo: Path, outside: Path) -> None:
    """Every kind of folder that is not a version, beside the real version 1 of lenet."""
    for name in ("²", "v2", "tmp", "٣"):  # superscript two and Arabic-Indic three are digits
        shutil.copytree(repo / "lenet" / "1", repo / "lenet" / name)
    shutil.copytree(repo / "lenet" / "1", outside / "7")
    (repo / "lenet" / "7").symlink_to(outside / "7", target_is_directory=True)


def test_versions_skips_what_is_not_a_version(repo: Path, tmp_path: Path) -> None:
    spoil(repo, tmp_path)
    inside = repo / "lenet" / "8"  # a link that stays inside the repository is a version
    inside.symlink_to(repo / "lenet" / "1", target_is_directory=True)
    assert store.versions(repo, "lenet") == [1, 8]


async def test_a_spoiled_repository_still_serves_reloads_and_watches(
    repo: Path, tmp_path: Path
) -> None:
    spoil(repo, tmp_path / "elsewhere")
    settings = settings_for(repo, watch=True, watch_interval_s=0.05, admin_key=SecretStr("admin"))
    async with Service(settings) as svc:
        ready = await svc.client.get("/readyz")
        digit = await svc.client.post("/predict/digits", json={"images": [[0] * 784]})
        write_model(repo, "curve", seed=5)  # a new version: the watcher must still see it
        for _ in range(200):
            await asyncio.sleep(0.05)
            if svc.registry.entries["curve"].version == 2:
                break
        reload = await svc.client.post("/admin/reload", headers={"authorization": "Bearer admin"})
    assert ready.status_code == 200 and ready.json()["models"]["lenet"]["version"] == "1"
    assert digit.status_code == 200 and digit.json()["version"] == "1"
    assert svc.registry.entries["curve"].version == 2
    assert reload.status_code == 200 and reload.json()["results"]["lenet"]["status"] == "unchanged"


async def test_a_card_that_names_another_version_is_refused(repo: Path) -> None:
    shutil.copytree(repo / "curve" / "1", repo / "curve" / "2")  # its card still says 1
    async with Service(settings_for(repo)) as svc:
        ready = await svc.client.get("/readyz")
    curve = ready.json()["models"]["curve"]
    assert curve["state"] == "failed" and "card says version 1" in curve["reason"]


def test_the_real_server_starts_on_a_spoiled_repository(repo: Path, tmp_path: Path) -> None:
    spoil(repo, tmp_path / "elsewhere")
    with live_server(repo) as (url, proc):
        r = httpx.post(f"{url}/predict/digits", json={"images": [[0] * 784]})
        assert r.status_code == 200 and r.json()["version"] == "1"
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    skipped = [json.loads(line) for line in out.splitlines() if "skipped" in line]
    assert {"'²'", "'v2'", "'tmp'", "'7'"} <= {m["message"].split()[3] for m in skipped}
    assert str(tmp_path) not in out and str(repo) not in out  # no file path is ever logged


LOGGING = """
import logging, warnings
from serving.logs import setup_logging
setup_logging("info")
logging.getLogger("serving").error("cannot read /srv/models/lenet/3/model.onnx: gone")
warnings.warn_explicit("odd chunk in a client's PNG", UserWarning, "x.py", 1, "PIL.PngImagePlugin")
warnings.warn_explicit("an operator should see this", UserWarning, "/srv/y.py", 2, "other")
"""


def test_logs_carry_no_path_and_no_image_library_warning() -> None:
    # In a process of its own: pytest takes over the warnings machinery in its own.
    run = subprocess.run([sys.executable, "-c", LOGGING], capture_output=True, text=True)
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert lines[0]["message"] == "cannot read model.onnx: gone"
    assert "PNG" not in run.stderr and "/srv" not in run.stderr
    assert any("an operator should see this" in e["message"] for e in lines), run.stderr


def test_a_url_in_a_log_line_is_not_taken_for_a_path() -> None:
    """uvicorn's start-up line names the address to call: it must reach the operator whole."""
    assert redact_paths("Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C)") == (
        "Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C)"
    )
    assert redact_paths("see http://host/srv/models/x") == "see http://host/srv/models/x"
    assert redact_paths("open /srv/models/lenet/3/model.onnx") == "open model.onnx"
    # ... and a path that starts with // (or sits in a file: URL) is still a path.
    assert "srv" not in redact_paths("Load //srv/models/lenet/3/model.onnx failed")
    assert "srv" not in redact_paths("see file:///srv/models/x.onnx")
    assert redact_paths("/srv//models/lenet/3/model.onnx") == "model.onnx"
