"""Static checks of the container images' files (the images themselves are built and run by
.ci/containers.sh and `make docker-gpu-check`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILES = ["Dockerfile.cpu", "Dockerfile.gpu"]


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / name).read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage(name: str) -> list[tuple[str, str]]:
    ins = instructions(name)
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def env(name: str) -> str:
    return " ".join(rest for word, rest in final_stage(name) if word == "ENV")


def requirements(name: str) -> dict[str, str]:
    """name -> the version pinned (first one when markers pin several)."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^ ;\\]+)", line)
        if m:
            pins.setdefault(m.group(1).lower(), m.group(2))
    return pins


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_image_is_an_argument(name: str) -> None:
    ins = instructions(name)
    assert ins[0][0] == "ARG" and ins[0][1].startswith("BASE_IMAGE="), ins[0]
    froms = [rest for word, rest in ins if word == "FROM"]
    assert froms and all(f.split()[0] == "${BASE_IMAGE}" for f in froms), froms


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runtime_stage(name: str) -> None:
    stage = final_stage(name)
    words = [w for w, _ in stage]
    users = [rest for w, rest in stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    expose = [rest for w, rest in stage if w == "EXPOSE"]
    assert expose == ["8000 8001"]  # HTTP, and gRPC (inference.GRPCInferenceService)
    health = " ".join(rest for w, rest in stage if w == "HEALTHCHECK")
    assert "/readyz" in health and "CMD" in health and "curl" not in health
    cmd = [rest for w, rest in stage if w == "CMD"]
    assert json.loads(cmd[-1])[:3] == ["python", "-m", "serving"], "exec form: python is PID 1"
    assert "ENTRYPOINT" not in words
    settings = ("SERVING_HOST=0.0.0.0", "SERVING_PORT=8000", "SERVING_GRPC_PORT=8001")
    for setting in (*settings, "SERVING_MODELS_DIR=/models"):
        assert setting in env(name), setting
    assert any(w == "COPY" and rest.split()[-1] == "/models/" for w, rest in stage)


def test_cpu_image_has_no_torch_and_gpu_image_serves_on_cuda() -> None:
    cpu = requirements("serve-cpu.txt")
    assert "onnxruntime" in cpu
    # (torch's kernel compiler "triton"; tritonclient, the gRPC protos' package, is no part of it)
    heavy = [p for p in cpu if p.startswith(("torch", "nvidia", "cuda")) or p == "triton"]
    assert not heavy, heavy
    assert "SERVING_DEVICE=cpu" in env("Dockerfile.cpu")
    assert "SERVING_DEVICE=cuda" in env("Dockerfile.gpu")
    assert "nvidia/cuda:" in instructions("Dockerfile.gpu")[0][1]


def test_locks_pin_every_dependency_with_hashes() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(specs: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0].lower() for s in specs}

    cpu, gpu = requirements("serve-cpu.txt"), requirements("gpu.txt")
    assert names(project["dependencies"]) <= set(cpu)
    assert names(project["dependencies"]) - {"onnxruntime"} <= set(gpu)
    assert names(project["optional-dependencies"]["train"]) <= set(gpu)
    # one ONNX Runtime only (both install the `onnxruntime` module), and the project's torch
    assert "onnxruntime" not in gpu and "onnxruntime-gpu" in gpu
    torch_pin = next(s for s in project["optional-dependencies"]["torch"] if s.startswith("torch"))
    assert f"torch=={gpu['torch']}" == torch_pin.replace(" ", "")
    major, minor = (int(x) for x in gpu["torch"].split(".")[:2])
    assert gpu["torchvision"].startswith(f"0.{minor + 15}."), "torchvision built for this torch"
    assert major == 2
    for name in ("serve-cpu.txt", "gpu.txt"):
        text = (ROOT / "requirements" / name).read_text()
        blocks = re.findall(r"^[A-Za-z0-9_.\-]+==.*?(?=^\S|\Z)", text, re.M | re.S)
        assert blocks and all("--hash=sha256:" in b for b in blocks), name


def test_dockerignore_keeps_data_caches_venvs_and_git_out() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*", "an allowlist: everything is out unless named"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed.isdisjoint({".git", ".venv", "data", "bench", "tests", ".hypothesis"})
    for name in DOCKERFILES:
        for word, rest in instructions(name):
            if word == "COPY" and "--from" not in rest:
                for src in rest.split()[:-1]:
                    if src.startswith("--"):
                        continue
                    top = src.split("/")[0].split("*")[0]
                    assert top in allowed or src.startswith(tuple(allowed)), (name, src)
