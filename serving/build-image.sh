#!/usr/bin/env bash
# Build the serving image with podman (`make image`).
#
# Without BASE_IMAGE, the base is made locally: Debian bookworm with python3, bootstrapped with
# debootstrap and imported as localhost/debian-python:bookworm (once; later runs reuse it). This
# works where no registry can be pulled from. With a normal network, the plain
# `docker build -f serving/Dockerfile .` builds the same image on python:3.12-slim.
#
# Environment overrides:
#   IMAGE       image to build (default localhost/ml-endpoints:latest)
#   BASE_IMAGE  base image for both stages; when set, no local base is made
#   EXTRAS      package extras installed in the image (default: the Dockerfile's)
#   ML_ENDPOINTS_BUILD_CACHE  where containers.conf is written (default ~/.cache/ml-endpoints)
#   CONTAINERS_CONF           use this podman configuration instead of writing one
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${IMAGE:-localhost/ml-endpoints:latest}"
LOCAL_BASE="localhost/debian-python:bookworm"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_DIR="${ML_ENDPOINTS_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-endpoints}"

log() { echo "build-image: $*" >&2; }

# podman defaults that fail on this machine kind: crun (cgroup hybrid mode) and raising rlimits.
if [ -z "${CONTAINERS_CONF:-}" ]; then
  mkdir -p "$CACHE_DIR"
  export CONTAINERS_CONF="$CACHE_DIR/containers.conf"
  {
    echo '[containers]'
    echo 'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]'
    if command -v runc >/dev/null; then
      echo '[engine]'
      echo 'runtime = "runc"'
    fi
  } >"$CONTAINERS_CONF.tmp"
  mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
fi

make_local_base() {
  if podman image exists "$LOCAL_BASE"; then
    log "reusing $LOCAL_BASE"
    return
  fi
  command -v debootstrap >/dev/null || {
    log "debootstrap is needed to make $LOCAL_BASE (apt-get install debootstrap), or set BASE_IMAGE"
    exit 1
  }
  local rootfs
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/ml-endpoints-rootfs.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: the variable is local
  trap "rm -rf '$rootfs'" EXIT
  log "making $LOCAL_BASE with debootstrap (once; 1-3 minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" \
    "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
    tail -n 20 "$rootfs.log" >&2
    log "debootstrap failed; full log: $rootfs.log"
    exit 1
  }
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$LOCAL_BASE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
}

if [ -z "${BASE_IMAGE:-}" ]; then
  make_local_base
  BASE_IMAGE="$LOCAL_BASE"
fi

build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
if [ -n "${EXTRAS:-}" ]; then
  build_args+=(--build-arg "EXTRAS=$EXTRAS")
fi
# pip inside the build trusts what the host trusts (a TLS-intercepting proxy, a private index).
# Mounted at build time only: nothing of it lands in the image.
mounts=()
for file in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
  if [ -f "$file" ]; then
    mounts+=(-v "$file:$file:ro")
  fi
done

log "building $IMAGE on $BASE_IMAGE"
# --format docker: the OCI format has no HEALTHCHECK.
podman build \
  --format docker \
  --layers \
  "${build_args[@]}" \
  "${mounts[@]}" \
  --tag "$IMAGE" \
  --file "$REPO/serving/Dockerfile" \
  "$REPO"
log "built $IMAGE"
