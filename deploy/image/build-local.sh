#!/usr/bin/env bash
# Builds the fleet's image with no container daemon and no registry:
#  1. mmdebstrap makes a Debian root (Essential packages, CA certificates and `passwd`,
#     no docs or locales) from the package mirror, cached between runs;
#  2. buildah imports it as a local base image;
#  3. buildah builds deploy/Dockerfile on that base with a binary built beforehand,
#     and prints the image's size.
#
# Usage: deploy/image/build-local.sh [--binary PATH] [--tag NAME]
#   --binary  the `cep` to ship (default target/dist/cep: cargo build --profile dist --locked)
#   --tag     the image's name (default localhost/cep:latest)
# Environment: CEP_IMAGE_CACHE, where the Debian root is kept (default ~/.cache/cep-image);
# CEP_IMAGE_SUITE, the Debian release (default bookworm, which the binary must match:
# it links the build machine's glibc).
# Needs root (or a user namespace set up for buildah), buildah and mmdebstrap.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
binary=$root/target/dist/cep
tag=localhost/cep:latest
suite=${CEP_IMAGE_SUITE:-bookworm}
cache=${CEP_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cep-image}

while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-local.sh: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
done
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "build-local.sh: \`$tool\` is missing (apt-get install $tool)" >&2; exit 2; }
done
[ -x "$binary" ] || {
  echo "build-local.sh: no binary at $binary; build it first (cargo build --profile dist --locked) or pass --binary" >&2
  exit 2
}

mkdir -p "$cache"
base_tar=$cache/$suite-essential.tar
if [ ! -s "$base_tar" ]; then
  echo "making a $suite root with mmdebstrap (cached in $cache)" >&2
  mmdebstrap --quiet --format=tar --variant=essential --include=ca-certificates,passwd \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$suite" "$base_tar.partial"
  mv "$base_tar.partial" "$base_tar"
fi
base=localhost/cep-base:$suite-$(sha256sum "$base_tar" | cut -c1-12)
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$base_tar" / >/dev/null
  buildah commit --quiet --rm "$ctr" "$base" >/dev/null
fi

# A context of its own: the binary (stripped) and the configuration, nothing else.
context=$(mktemp -d)
errors=$(mktemp)
trap 'rm -rf "$context" "$errors"' EXIT
strip -o "$context/cep" "$binary" 2>/dev/null || cp "$binary" "$context/cep"
cp "$root/config.yaml" "$context/config.yaml"
bud() {
  buildah bud --quiet --isolation chroot \
    --build-arg RUNTIME_BASE="$base" --build-arg CEP_BINARY=prebuilt --build-arg PREBUILT=cep \
    -f "$root/deploy/Dockerfile" -t "$tag" "$context" >/dev/null 2>"$errors"
}
# A RUN step re-executes buildah from a sealed in-memory copy; the kernel can refuse the
# seal for a moment (EBUSY, "sealing memfd copy"). That one failure is tried again once;
# any other fails the build at once.
if ! bud; then
  if grep -q 'sealing memfd copy' "$errors"; then
    echo "buildah could not seal its copy (EBUSY); building again" >&2
    bud || { cat "$errors" >&2; exit 1; }
  else
    cat "$errors" >&2
    exit 1
  fi
fi
echo "$tag $(buildah images --format '{{.Size}}' "$tag" | head -1)"
