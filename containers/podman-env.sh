# Source this: rootful podman settings that work on these VMs (no systemd, cgroup v1 hybrid,
# no CAP_SYS_RESOURCE). Keeps all image storage under $PODMAN_WORK.
# Adapted from shared/containers/podman-env.sh; the three machine-specific fixes are kept:
#   1. runtime runc (crun fails: "cgroups in hybrid mode not supported")
#   2. default ulimits within our hard limits ("error setting rlimit type 7/6")
#   3. (in make-local-bases.sh) the host's extra CA certificates in the test-only bases
PODMAN_WORK=${PODMAN_WORK:-/tmp/starter-serve-podman}
export PODMAN_WORK
mkdir -p "$PODMAN_WORK"
_nofile=$(ulimit -Hn); [ "$_nofile" = unlimited ] && _nofile=1048576
cat > "$PODMAN_WORK/containers.conf" <<EOC
[containers]
# podman's default rlimits (nofile/nproc 1048576) exceed our hard limits and we lack
# CAP_SYS_RESOURCE -> "error setting rlimit type 7/6: operation not permitted"
default_ulimits = ["nofile=${_nofile}:${_nofile}", "nproc=32768:32768"]
[engine]
# crun 1.8.1 fails: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"
runtime = "runc"
EOC
cat > "$PODMAN_WORK/storage.conf" <<EOC
[storage]
driver = "overlay"
graphroot = "$PODMAN_WORK/storage"
runroot = "$PODMAN_WORK/run"
EOC
export CONTAINERS_CONF="$PODMAN_WORK/containers.conf"
export CONTAINERS_STORAGE_CONF="$PODMAN_WORK/storage.conf"
export BUILDAH_FORMAT=docker   # keep HEALTHCHECK (OCI format drops it)
