#!/usr/bin/env bash
# Build Dockerfile.cpu on the local test base and smoke-test the running container:
#   it runs as non-root (read-only root fs, no capabilities), becomes healthy (its HEALTHCHECK),
#   answers /readyz and a real /predict/digits request correctly, the same digits over gRPC
#   (ModelInfer on 8001, and grpc.health.v1) with the same answers (smoke_client.py), and stops
#   cleanly on SIGTERM within its grace period (exit 0, no SIGKILL needed).
# Rootful podman with this machine's fixes (podman-env.sh); bases from make-local-bases.sh.
#
#   containers/smoke.sh                 # make container-smoke
# Env: PODMAN_WORK (image storage; default /tmp/starter-serve-podman), IMAGE, BASE_IMAGE,
#      GRACE (seconds given to stop; default 35 = the service's 30 s drain + 5), MNIST_DATA_DIR,
#      PYTHON (for smoke_client.py; default .venv/bin/python, else python3), KEEP_IMAGE=1,
#      MODELS (a model repository to mount read-only over /models instead of the built-in one).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
IMAGE=${IMAGE:-localhost/starter-serve:cpu-smoke}
BASE_IMAGE=${BASE_IMAGE:-localhost/python:3.11-slim}
NAME=${NAME:-starter-serve-smoke-$$}
GRACE=${GRACE:-35}
DATA_DIR=${MNIST_DATA_DIR:-$ROOT/../shared/data}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

. "$HERE/podman-env.sh"
step "bases"
"$HERE/make-local-bases.sh" >/dev/null
podman image exists "$BASE_IMAGE" || fail "no base image $BASE_IMAGE"

step "build Dockerfile.cpu on $BASE_IMAGE"
t0=$SECONDS
podman build --pull=never --format docker --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f Dockerfile.cpu -t "$IMAGE" .
build_s=$((SECONDS - t0))
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
echo "built $IMAGE in ${build_s}s: $((size / 1000000)) MB"

step "image configuration"
cfg() { podman image inspect "$IMAGE" --format "$1"; }
user=$(cfg '{{.Config.User}}')
case "$user" in ""|root|0|0:*|root:*) fail "image runs as root (USER '$user')";; esac
[ -n "$(cfg '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}')" ] \
  || fail "no HEALTHCHECK in the image (built in OCI format?)"
# Read first, then grep: `podman ... | grep -q` under pipefail fails when grep exits at its
# match while podman is still writing (podman then dies of SIGPIPE).
ports=$(cfg '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')
envs=$(cfg '{{range .Config.Env}}{{println .}}{{end}}')
grep -q '8000/tcp' <<<"$ports" || fail "port 8000 not EXPOSEd (EXPOSEd: $ports)"
grep -q '8001/tcp' <<<"$ports" || fail "port 8001 (gRPC) not EXPOSEd (EXPOSEd: $ports)"
grep -qx 'SERVING_MODELS_DIR=/models' <<<"$envs" \
  || fail "SERVING_MODELS_DIR is not /models: $(tr '\n' ' ' <<<"$envs")"
echo "USER $user; HEALTHCHECK $(cfg '{{.Config.Healthcheck.Test}}' | cut -c1-60)...; CMD $(cfg '{{.Config.Cmd}}')"

cleanup() {
  rc=$?
  if podman container exists "$NAME" 2>/dev/null; then
    [ $rc -eq 0 ] || { echo "--- container logs (last 30 lines)"; podman logs "$NAME" 2>&1 | tail -30; }
    podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  fi
  [ -n "${KEEP_IMAGE:-}" ] || podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "run"
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
GRPC_PORT=$(free_port)
t_run=$SECONDS
# --health-interval=disable: no systemd here to run the health checks on a timer; run by hand.
volume=()
[ -z "${MODELS:-}" ] || volume=(-v "$(cd "$MODELS" && pwd):/models:ro")
podman run -d --pull=never --name "$NAME" --health-interval=disable \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges "${volume[@]}" \
  -p "127.0.0.1:$PORT:8000" -p "127.0.0.1:$GRPC_PORT:8001" "$IMAGE" >/dev/null
uid=$(podman exec "$NAME" id -u)
[ "$uid" != 0 ] || fail "the service runs as root in the container"
echo "running as uid $uid, published on 127.0.0.1:$PORT (HTTP) and 127.0.0.1:$GRPC_PORT (gRPC)"

step "readiness"
ready=
for _ in $(seq 1 120); do
  [ "$(podman inspect "$NAME" --format '{{.State.Running}}')" = true ] \
    || fail "container exited: $(podman inspect "$NAME" --format '{{.State.ExitCode}}')"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/readyz" || true)
  if [ "$code" = 200 ]; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || fail "/readyz never answered 200 (last: $code)"
echo "/readyz 200 after $((SECONDS - t_run))s: $(curl -s "http://127.0.0.1:$PORT/readyz")"
podman healthcheck run "$NAME" || fail "HEALTHCHECK says unhealthy (rc $?)"
status=$(podman inspect "$NAME" --format '{{.State.Health.Status}}' 2>/dev/null \
  || podman inspect "$NAME" --format '{{.State.Healthcheck.Status}}')
[ "$status" = healthy ] || fail "health status '$status', not healthy"
echo "HEALTHCHECK: $status"

step "predict (HTTP and gRPC)"
args=()
[ -d "$DATA_DIR/MNIST/raw" ] && args=(--data-dir "$DATA_DIR")
"$PYTHON" "$HERE/smoke_client.py" "http://127.0.0.1:$PORT" --grpc "127.0.0.1:$GRPC_PORT" \
  "${args[@]}" || fail "/predict/digits, or ModelInfer over gRPC"

step "stop (SIGTERM, grace ${GRACE}s)"
t0=$EPOCHREALTIME
podman stop -t "$GRACE" "$NAME" >/dev/null
stop_s=$(python3 -c "print(round($EPOCHREALTIME - $t0, 2))")
code=$(podman inspect "$NAME" --format '{{.State.ExitCode}}')
[ "$code" = 0 ] || fail "exit code $code after SIGTERM (137 = it needed SIGKILL)"
python3 -c "import sys; sys.exit(0 if $stop_s < $GRACE else 1)" \
  || fail "took ${stop_s}s to stop: past the ${GRACE}s grace period"
podman logs "$NAME" 2>&1 | grep -q 'Finished server process' \
  || fail "no 'Finished server process' in the logs: not a graceful uvicorn shutdown"
echo "stopped in ${stop_s}s with exit code 0"

echo
echo "SMOKE OK: image $((size / 1000000)) MB, built in ${build_s}s; smoke test $((SECONDS - t_run))s after start; total ${SECONDS}s"
