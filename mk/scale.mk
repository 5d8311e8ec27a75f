# Scaling past one process (issue 10): Ray Serve, and the Kubernetes/KServe/KubeRay manifests.
#   make serve-ray                      the service on Ray Serve: a local Ray, 2 replicas, port 8000
#   make serve-ray REPLICAS=4 PORT=9000 ARGS='--num-cpus 0.5'
#   RAY_ADDRESS=<head>:6379 make serve-ray          deploy to an existing Ray cluster instead
#   make validate-manifests             deploy/ checked offline (kubernetes-validate --strict)
# The `ray` extra (ray[serve]) is installed on first use; the default service does not need it.
REPLICAS ?= 2

.PHONY: serve-ray validate-manifests

$(VENV)/.ray: pyproject.toml | $(VENV)/.serve
	$(BIN)/python -c 'import ray.serve' 2>/dev/null || $(BIN)/pip install -q -e '.[ray]'
	$(BIN)/python -c 'import ray.serve'
	touch $@

serve-ray: $(VENV)/.ray
	$(BIN)/python -m serving.ray_app --host $(HOST) --port $(PORT) --replicas $(REPLICAS) $(ARGS)

validate-manifests: $(VENV)/.dev
	$(BIN)/python -c 'import kubernetes_validate' 2>/dev/null || \
		$(BIN)/pip install -q 'kubernetes-validate>=1.33'
	$(BIN)/kubernetes-validate --strict --quiet -k 1.33 \
		deploy/k8s/configmap.yaml deploy/k8s/secret.example.yaml deploy/k8s/service.yaml \
		deploy/k8s/deployment-cpu.yaml deploy/k8s/hpa-cpu.yaml deploy/k8s/pdb-cpu.yaml \
		deploy/k8s/gpu/*.yaml
	$(BIN)/python -m pytest -q tests/test_manifests.py $(ARGS)
