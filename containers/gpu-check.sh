#!/usr/bin/env bash
# make docker-gpu-check: build Dockerfile.gpu's steps on the local Debian base (no registry
# here, so not on nvidia/cuda) and run the result on the CPU: the pinned CUDA wheels install,
# torch/torchvision/onnxruntime-gpu import and match, ONNX Runtime's CUDA provider finds every
# library it needs but the driver's (libcuda.so.1, which the NVIDIA toolkit mounts on a GPU
# host), `make train` would run no install, and the service serves (SERVING_DEVICE=cpu) and
# answers a real digit. Downloads ~3 GB of wheels: not in CI.
# Env: PODMAN_WORK, IMAGE, BASE_IMAGE (default localhost/debian:bookworm), KEEP_IMAGE=1, PYTHON,
#      MODELS (a model repository to mount read-only over /models instead of the built-in one).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
IMAGE=${IMAGE:-localhost/starter-serve:gpu-check}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm}
NAME=starter-serve-gpu-check-$$
DATA_DIR=${MNIST_DATA_DIR:-$ROOT/../shared/data}
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
fail() { echo "FAIL: $*" >&2; exit 1; }

"$HERE/ensure-podman.sh"
. "$HERE/podman-env.sh"
"$HERE/make-local-bases.sh" >/dev/null
echo "== build Dockerfile.gpu on $BASE_IMAGE"
t0=$SECONDS
podman build --pull=never --format docker --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f Dockerfile.gpu -t "$IMAGE" .
build_s=$((SECONDS - t0))
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
echo "built $IMAGE in ${build_s}s: $((size / 1000000)) MB"
cleanup() {
  podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  [ -n "${KEEP_IMAGE:-}" ] || podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== inside the image"
podman run --rm --pull=never -e SERVING_DEVICE=cpu "$IMAGE" bash -c '
set -e
python - <<EOF
import torch, torchvision, onnxruntime as ort
print("torch", torch.__version__, "built for CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version())
print("torchvision", torchvision.__version__, "(ops load:", torchvision.ops.nms(torch.rand(4, 4) * 0 + torch.tensor([0., 0., 1., 1.]), torch.rand(4), 0.5).numel() > 0, ")")
print("onnxruntime", ort.__version__, ort.get_device(), "providers", ort.get_available_providers())
assert torch.version.cuda and torch.version.cuda.startswith("13"), torch.version.cuda
assert torchvision.__version__.split("+")[0] == "0.28.0"
print("cuda available here:", torch.cuda.is_available(), "(no GPU on this machine)")
EOF
lib=$(python -c "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), \"capi\", \"libonnxruntime_providers_cuda.so\"))")
missing=$(ldd "$lib" | awk "/not found/ {print \$1}" | grep -vx libcuda.so.1 || true)
[ -z "$missing" ] || { echo "ONNX Runtime CUDA provider misses: $missing"; exit 1; }
for so in libcudnn.so.9 libcufft.so.12 libcublasLt.so.13 libnvrtc.so.13; do
  ldconfig -p | grep -q "$so" || { echo "$so not known to the dynamic linker"; exit 1; }
done
echo "ONNX Runtime CUDA provider: every library found but libcuda.so.1 (the host driver)"
make -n train | grep -q "python -m training all --data-dir /data" || { make -n train; exit 1; }
[ "$(make -n train | grep -c "pip install")" = 0 ] || { echo "make train would install"; exit 1; }
echo "make train: $(make -n train | tail -1)"
id
' || fail "checks inside the image"

echo "== serve on the CPU"
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
volume=()
[ -z "${MODELS:-}" ] || volume=(-v "$(cd "$MODELS" && pwd):/models:ro")
podman run -d --pull=never --name "$NAME" --health-interval=disable -e SERVING_DEVICE=cpu "${volume[@]}" \
  -p "127.0.0.1:$PORT:8000" "$IMAGE" >/dev/null
t_run=$SECONDS
for _ in $(seq 1 180); do
  [ "$(podman inspect "$NAME" --format '{{.State.Running}}')" = true ] \
    || { podman logs "$NAME" 2>&1 | tail -20; fail "container exited"; }
  curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/readyz" && break
  sleep 0.5
done
echo "/readyz after $((SECONDS - t_run))s: $(curl -s "http://127.0.0.1:$PORT/readyz")"
podman healthcheck run "$NAME" || fail "HEALTHCHECK"
args=()
[ -d "$DATA_DIR/MNIST/raw" ] && args=(--data-dir "$DATA_DIR")
"$PYTHON" "$HERE/smoke_client.py" "http://127.0.0.1:$PORT" "${args[@]}" || fail "/predict/digits"
podman stop -t 35 "$NAME" >/dev/null
[ "$(podman inspect "$NAME" --format '{{.State.ExitCode}}')" = 0 ] || fail "exit code after SIGTERM"
echo "GPU CHECK OK: image $((size / 1000000)) MB on $BASE_IMAGE, built in ${build_s}s"
