"""The deployment manifests, checked offline: the built-in kinds against the Kubernetes schemas
(kubernetes-validate --strict, which ships them), the custom resources (KServe InferenceService,
KubeRay RayService) by their required fields and their pod specs against the same schemas, and
everything against the service itself: probes on routes that exist, ports that agree, names that
resolve, settings that Settings accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.routing import Route

from serving.app import create_app
from serving.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.33"  # the oldest Kubernetes these manifests are meant for (sleep preStop: 1.30+)
SERVE_CONFIG = DEPLOY / "ray" / "serve-config.yaml"
BUILT_IN = {"v1", "apps/v1", "autoscaling/v2", "policy/v1"}
NOT_RESOURCES = {"kustomization.yaml"}


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if path == SERVE_CONFIG or path.name in NOT_RESOURCES:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


DOCS = list(documents())
BUILT_IN_DOCS = [(p, d) for p, d in DOCS if d["apiVersion"] in BUILT_IN]
IDS = [f"{p.relative_to(DEPLOY)}:{d['kind']}/{d['metadata']['name']}" for p, d in BUILT_IN_DOCS]
CUSTOM = {("serving.kserve.io/v1beta1", "InferenceService"), ("ray.io/v1", "RayService")}


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in DOCS if d["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """(label, pod spec) of every pod the manifests make."""
    specs = [
        (f"Deployment/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in of_kind("Deployment")
    ]
    for isvc in of_kind("InferenceService"):
        specs.append((f"InferenceService/{isvc['metadata']['name']}", isvc["spec"]["predictor"]))
    for rs in of_kind("RayService"):
        cluster = rs["spec"]["rayClusterConfig"]
        specs.append(("RayService/head", cluster["headGroupSpec"]["template"]["spec"]))
        for group in cluster["workerGroupSpecs"]:
            specs.append((f"RayService/{group['groupName']}", group["template"]["spec"]))
    return specs


@pytest.fixture(scope="module")
def kv() -> Any:
    return pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed (pip install kubernetes-validate)",
    )


@pytest.fixture(scope="module")
def routes() -> dict[str, set[str]]:
    """Path -> methods of the application every image runs: its OpenAPI document, plus the
    routes left out of it (no models are needed to list them)."""
    app = create_app(Settings(models_dir=ROOT / "no-models-needed"))
    found = {
        path: {method.upper() for method in operations}
        for path, operations in app.openapi()["paths"].items()
    }
    for route in app.routes:
        if isinstance(route, Route):
            found.setdefault(route.path, set()).update(route.methods or ())
    return found


# ---- schemas ------------------------------------------------------------------------------------


def test_every_manifest_is_found() -> None:
    kinds = {d["kind"] for _, d in DOCS}
    assert {
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "InferenceService",
        "RayService",
    } <= kinds
    for _, doc in DOCS:  # anything else would go unchecked
        assert doc["apiVersion"] in BUILT_IN or (doc["apiVersion"], doc["kind"]) in CUSTOM


@pytest.mark.parametrize(("path", "doc"), BUILT_IN_DOCS, ids=IDS)
def test_built_in_kinds_are_valid_strictly(kv: Any, path: Path, doc: dict[str, Any]) -> None:
    try:
        kv.validate(doc, K8S_VERSION, strict=True)
    except kv.ValidationError as e:
        where = ".".join(str(p) for p in e.absolute_path)
        pytest.fail(f"{path.relative_to(ROOT)}: {where}: {e.message}")


# ComponentExtensionSpec fields KServe adds to a predictor next to the inlined PodSpec.
KSERVE_EXTENSION = {
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "scaleMetricType",
    "autoScaling",
    "containerConcurrency",
    "timeout",
    "canaryTrafficPercent",
    "logger",
    "batcher",
    "labels",
    "annotations",
    "deploymentStrategy",
}


@pytest.mark.parametrize(("label", "spec"), pod_specs(), ids=[lbl for lbl, _ in pod_specs()])
def test_pod_specs_of_custom_resources_are_valid_strictly(
    kv: Any, label: str, spec: dict[str, Any]
) -> None:
    """The pods inside InferenceService and RayService (and the Deployments', again) against
    the Pod schema: a typo in a container, probe or security context fails here."""
    pod_spec = {k: v for k, v in spec.items() if k not in KSERVE_EXTENSION}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": pod_spec}
    try:
        kv.validate(pod, K8S_VERSION, strict=True)
    except kv.ValidationError as e:
        pytest.fail(f"{label}: {'.'.join(str(p) for p in e.absolute_path)}: {e.message}")


# ---- custom resources ---------------------------------------------------------------------------

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_inference_service_required_fields() -> None:
    (isvc,) = of_kind("InferenceService")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert DNS_LABEL.match(isvc["metadata"]["name"])
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    # a custom predictor: one container named kserve-container, with an image
    assert container["name"] == "kserve-container" and container["image"] == "starter-serve:cpu"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PROTOCOL"] == "v2"  # how a custom container declares the v2 protocol
    assert int(env["SERVING_PORT"]) == container["ports"][0]["containerPort"] == 8000
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["h2c"] == int(env["SERVING_GRPC_PORT"]) == 8001  # KServe's name for gRPC
    assert predictor["minReplicas"] <= predictor["maxReplicas"]
    mode = isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    assert mode in {"RawDeployment", "Standard", "Serverless", "Knative"}


def test_ray_service_required_fields() -> None:
    (rs,) = of_kind("RayService")
    assert rs["apiVersion"] == "ray.io/v1"
    cluster = rs["spec"]["rayClusterConfig"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", cluster["rayVersion"])
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        assert "rayStartParams" in group  # required by KubeRay before 1.3
        assert group["template"]["spec"]["containers"][0]["image"] == "starter-serve:ray"
    for group in cluster["workerGroupSpecs"]:
        assert DNS_LABEL.match(group["groupName"])
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    # the Serve proxy's port is the one named "serve" (KubeRay's serve Service targets it)
    serve_port = yaml.safe_load(rs["spec"]["serveConfigV2"])["http_options"]["port"]
    for group in groups:
        ports = {
            p["name"]: p["containerPort"]
            for p in group["template"]["spec"]["containers"][0]["ports"]
        }
        assert ports["serve"] == serve_port
        assert ports["grpc"] == yaml.safe_load(rs["spec"]["serveConfigV2"])["grpc_options"]["port"]


def test_ray_service_runs_the_committed_serve_config() -> None:
    (rs,) = of_kind("RayService")
    assert yaml.safe_load(rs["spec"]["serveConfigV2"]) == yaml.safe_load(SERVE_CONFIG.read_text())


def test_serve_config() -> None:
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    (application,) = config["applications"]
    assert application["import_path"] == "serving.ray_app:build"
    (deployment,) = application["deployments"]
    assert deployment["name"] == "StarterServe"
    scaling = deployment["autoscaling_config"]
    assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"]
    assert scaling["target_ongoing_requests"] > 0
    assert {"num_cpus", "num_gpus"} <= set(deployment["ray_actor_options"])
    Settings(**{k: v for k, v in application["args"].items()})  # args are Settings fields


def test_serve_config_against_ray() -> None:
    """With Ray installed: the config is valid for Ray Serve, names our deployment, and its
    builder makes the application."""
    pytest.importorskip("ray.serve", reason="Ray is not installed (pip install '.[ray]')")
    from ray.serve.schema import ServeDeploySchema

    from serving import ray_app

    config = yaml.safe_load(SERVE_CONFIG.read_text())
    ServeDeploySchema.model_validate(config)
    (rs,) = of_kind("RayService")
    import ray

    assert rs["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__
    (application,) = config["applications"]
    assert application["deployments"][0]["name"] == ray_app.DEPLOYMENT_NAME
    built = ray_app.build(application["args"])
    assert built is not None


# ---- the manifests against the service ------------------------------------------------------


def containers() -> list[tuple[str, dict[str, Any]]]:
    return [(label, c) for label, spec in pod_specs() for c in spec["containers"]]


def is_ray(label: str) -> bool:
    return label.startswith("RayService/")


@pytest.mark.parametrize(("label", "container"), containers(), ids=[lbl for lbl, _ in containers()])
def test_probes_point_at_routes_on_the_service_port(
    routes: dict[str, set[str]], label: str, container: dict[str, Any]
) -> None:
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    probes = [container.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")]
    assert container.get("livenessProbe") and container.get("readinessProbe"), label
    for probe in filter(None, probes):
        if "grpc" in probe:  # grpc.health.v1 on the gRPC port (serving/grpc/server.py)
            assert not is_ray(label) and probe["grpc"]["port"] == ports["grpc"] == 8001, label
            assert probe["grpc"].get("service", "") in {"", "inference.GRPCInferenceService"}
            continue
        get = probe["httpGet"]
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        if is_ray(label):
            # Ray's own endpoints: the node's agent, and the Serve proxy's health
            assert (get["path"], port) in {("/api/healthz", 52365), ("/-/healthz", ports["serve"])}
            continue
        assert port == 8000, (label, get)
        assert "GET" in routes.get(get["path"], set()), f"{label}: no GET {get['path']}"
    if not is_ray(label) and "httpGet" in container["readinessProbe"]:
        ready = container["readinessProbe"]["httpGet"]["path"]
        assert ready in {"/readyz", "/v2/health/ready"}  # ready = models loaded, not just alive


def test_container_ports_agree_with_the_configuration() -> None:
    config = one("ConfigMap", "starter-serve-config")["data"]
    dockerfile = (ROOT / "Dockerfile.cpu").read_text()
    for name in ("Dockerfile.cpu", "Dockerfile.gpu"):
        exposed = re.search(r"^EXPOSE (.+)$", (ROOT / name).read_text(), re.M)
        assert exposed, name
        assert {config["SERVING_PORT"], config["SERVING_GRPC_PORT"]} <= set(exposed[1].split())
    assert "EXPOSE" in dockerfile
    for label, container in containers():
        if is_ray(label) or label.startswith("InferenceService/"):
            continue
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {
            "http": int(config["SERVING_PORT"]),
            "grpc": int(config["SERVING_GRPC_PORT"]),
        }, label
    service = one("Service", "starter-serve")
    targets = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
    assert targets == {"http": "http", "grpc": "grpc"}
    for deployment in of_kind("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert set(targets.values()) <= {p["name"] for p in container["ports"]}


def test_selectors_and_references_resolve() -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    service = one("Service", "starter-serve")
    for name, d in deployments.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert service["spec"]["selector"].items() <= labels.items(), name
    for hpa in of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for pdb in of_kind("PodDisruptionBudget"):
        wanted = pdb["spec"]["selector"]["matchLabels"].items()
        matched = [
            n
            for n, d in deployments.items()
            if wanted <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, (pdb["metadata"]["name"], matched)
    secret = one("Secret", "starter-serve-keys")
    for label, container in containers():
        for ref in container.get("envFrom", []):
            assert one("ConfigMap", ref["configMapRef"]["name"])
        for env in container.get("env", []):
            if key_ref := env.get("valueFrom", {}).get("secretKeyRef"):
                assert key_ref["name"] == secret["metadata"]["name"], label
                assert key_ref["key"] in secret["stringData"], label


def test_config_map_holds_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    data = one("ConfigMap", "starter-serve-config")["data"]
    fields = set(Settings.model_fields)
    for key, value in data.items():
        assert key.startswith("SERVING_") and key[8:].lower() in fields, key
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.host == "0.0.0.0" and settings.workers == 1


def test_pods_run_locked_down() -> None:
    for label, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, label
        assert spec["securityContext"]["runAsUser"] == 10001, label  # the images' user
        mounts = set()
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, label
            assert sc["readOnlyRootFilesystem"] is True, label
            assert sc["capabilities"]["drop"] == ["ALL"], label
            assert container["resources"]["requests"] and container["resources"]["limits"], label
            mounts |= {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{label}: a read-only root needs a writable /tmp"


def test_gpu_deployment_asks_for_a_gpu() -> None:
    gpu = one("Deployment", "starter-serve-gpu")
    (container,) = gpu["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "starter-serve:gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "SERVING_DEVICE", "value": "cuda"} in container["env"]


def test_kustomization_lists_existing_files() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert all((DEPLOY / "k8s" / name).is_file() for name in listed), listed
    assert "secret.example.yaml" not in listed  # keys are never applied from git
