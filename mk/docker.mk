# Container images (Dockerfile.cpu, Dockerfile.gpu). Build with docker where a Docker engine
# runs, else with podman (docker image format, so HEALTHCHECK is kept).
#   make docker-cpu | docker-gpu        build starter-serve:cpu / starter-serve:gpu
#   make docker-cpu BASE_IMAGE=...      another base (same family: Debian/Ubuntu with python3)
#   make container-smoke                what CI runs: build the CPU image on a local base here,
#                                       run it and check it (containers/smoke.sh)
#   make docker-gpu-check               build Dockerfile.gpu's steps on the local Debian base and
#                                       run the result on the CPU (~3 GB of wheels; not in CI)
#   make container-lock                 re-pin requirements/serve-cpu.txt and requirements/gpu.txt
# On the project's VMs (no Docker engine, no registry, podman needing three fixes) use
# container-smoke and docker-gpu-check: they build on local bases with containers/podman-env.sh.
IMAGE_CPU ?= starter-serve:cpu
IMAGE_GPU ?= starter-serve:gpu
CONTAINER_ENGINE ?= $(shell if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; \
	then echo docker; elif command -v podman >/dev/null 2>&1; then echo podman; else echo docker; fi)
CONTAINER_BUILD_FLAGS = $(if $(filter podman,$(CONTAINER_ENGINE)),--format docker) \
	$(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE))

.PHONY: docker-cpu docker-gpu docker-gpu-check container-smoke container-lock

docker-cpu:
	$(CONTAINER_ENGINE) build $(CONTAINER_BUILD_FLAGS) -f Dockerfile.cpu -t $(IMAGE_CPU) .
	@$(CONTAINER_ENGINE) image inspect $(IMAGE_CPU) --format 'built $(IMAGE_CPU): {{.Size}} bytes'

docker-gpu:
	$(CONTAINER_ENGINE) build $(CONTAINER_BUILD_FLAGS) -f Dockerfile.gpu -t $(IMAGE_GPU) .
	@$(CONTAINER_ENGINE) image inspect $(IMAGE_GPU) --format 'built $(IMAGE_GPU): {{.Size}} bytes'

docker-gpu-check:
	containers/gpu-check.sh

container-smoke:
	containers/ensure-podman.sh
	containers/smoke.sh

container-lock:
	containers/lock.sh
