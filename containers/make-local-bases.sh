#!/bin/sh
# Make registry-free base images: localhost/debian:bookworm and localhost/python:3.11-slim.
# Test-only stand-ins for the official bases (no registry can be reached on these machines).
# The host's extra CA certs (TLS-intercepting egress proxy) are added to the test-only bases
# so that pip inside RUN steps can verify https connections to the package index (fix 3).
# Adapted from shared/containers/make-local-bases.sh: skips an image that already exists.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/podman-env.sh"
SUITE=${SUITE:-bookworm}
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
# Read the apt mirrors this host already uses (deb822 or one-line format); nothing hard-coded.
src=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
MIRROR=${MIRROR:-$(printf '%s\n' "$src" | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}')}
SECMIRROR=${SECMIRROR:-$(printf '%s\n' "$src" | awk '/^URIs:/ && $2 ~ /security/ {print $2; exit}')}
[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
[ -n "$SECMIRROR" ] || SECMIRROR=$(awk '$1=="deb" && $2 ~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)

if podman image exists "localhost/debian:$SUITE"; then
  echo "localhost/debian:$SUITE exists"
else
ROOT=$(mktemp -d "$PODMAN_WORK/rootfs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOT" "$MIRROR"
{
  echo "deb $MIRROR $SUITE main"
  echo "deb $MIRROR $SUITE-updates main"
  [ -z "$SECMIRROR" ] || echo "deb $SECMIRROR $SUITE-security main"
} > "$ROOT/etc/apt/sources.list"
if ls "$EXTRA_CA_DIR"/*.crt >/dev/null 2>&1; then
  cp "$EXTRA_CA_DIR"/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates
fi
# slimming as in the official debian:*-slim images
cat > "$ROOT/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOS'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOS
cat > "$ROOT/etc/apt/apt.conf.d/docker-clean" <<'EOS'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT::Install-Recommends "false";
EOS
find "$ROOT/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOT/usr/share/man"/* "$ROOT/usr/share/info"/* "$ROOT/usr/share/locale"/* \
       "$ROOT/var/cache/apt"/*.bin "$ROOT/var/cache/apt/archives"/*.deb "$ROOT/var/lib/apt/lists"/* \
       "$ROOT/var/log"/*.log "$ROOT/var/log/apt"/* "$ROOT/dev"/* "$ROOT/tmp"/* "$ROOT/run"/*
: > "$ROOT/etc/resolv.conf"; : > "$ROOT/etc/hostname"
tar --numeric-owner --xattrs -C "$ROOT" -c . \
  | podman import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "localhost/debian:$SUITE"
rm -rf "$ROOT"
fi
podman image exists localhost/python:3.11-slim && exit 0
podman build --pull=never -t localhost/python:3.11-slim --build-arg "DEBIAN_BASE=localhost/debian:$SUITE" \
  -f "$HERE/python-base.Containerfile" "$HERE"
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}'
