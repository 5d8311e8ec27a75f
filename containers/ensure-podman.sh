#!/usr/bin/env bash
# Make sure rootful podman (with runc, the CNI plugins, iptables) and debootstrap are here,
# installing Debian's packages when they are missing. Never skips: exits 1 saying exactly why
# when they cannot be had or podman cannot run a container.
set -euo pipefail
say() { echo "ensure-podman: $*" >&2; }
need=(podman runc debootstrap iptables)
missing=()
for cmd in "${need[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd"); done
[ -e /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
if [ ${#missing[@]} -gt 0 ]; then
  say "missing: ${missing[*]}; installing Debian's podman runc containernetworking-plugins iptables debootstrap"
  if [ "$(id -u)" -ne 0 ]; then
    say "FAIL: not root, so cannot install them (and rootful podman needs root anyway)"; exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "FAIL: no apt-get on this machine to install them with"; exit 1
  fi
  log=$(mktemp); trap 'rm -f "$log"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -q && apt-get install -y -q --no-install-recommends \
      podman runc containernetworking-plugins iptables debootstrap; } >"$log" 2>&1; then
    say "FAIL: apt-get could not install them; last lines:"; tail -n 15 "$log" >&2; exit 1
  fi
fi
if [ "$(id -u)" -ne 0 ]; then
  say "FAIL: rootful podman needs root (uid $(id -u))"; exit 1
fi
say "$(podman --version), runc $(runc --version | awk 'NR==1{print $3}')"
