#!/usr/bin/env bash
# Build (or locate) versitygw, the S3-compatible server of the archive tests, from its Go module
# at the version pinned in hack/s3-assets/versitygw/go.mod (Apache-2.0; not MinIO, which is
# AGPL, and no mock). Prints the binary's path (the only stdout line).
#
# The binary lives in ${XDG_CACHE_HOME:-$HOME/.cache}/pgparity/s3/versitygw-<version>/bin; if it
# is there with a stamp matching the module's go.mod and go.sum, nothing is built. Otherwise it
# is built into a temporary directory beside it and renamed into place in one step, so an
# interrupted build never leaves a directory that looks complete. A cold build takes about two
# and a half minutes on two cores (module download ~10 s).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE="$ROOT/hack/s3-assets/versitygw"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pgparity/s3"

log() { printf 's3-assets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

version=$(awk '$1 == "github.com/versity/versitygw" || ($1 == "require" && $2 == "github.com/versity/versitygw") { print ($1 == "require" ? $3 : $2) }' "$MODULE/go.mod")
[[ -n $version ]] || die "no github.com/versity/versitygw requirement in $MODULE/go.mod"
dir="$CACHE/versitygw-$version"
stamp=$(cat "$MODULE/go.mod" "$MODULE/go.sum" | sha256sum | cut -d' ' -f1)

if [[ -x $dir/bin/versitygw && -f $dir/stamp && $(cat "$dir/stamp") == "$stamp" ]]; then
  echo "$dir/bin/versitygw"
  exit 0
fi
command -v go >/dev/null 2>&1 || die "the 'go' command is required to build versitygw"
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.versitygw-$version.XXXXXX")
# shellcheck disable=SC2064
trap "rm -rf '$tmp'" EXIT
log "building versitygw $version (cold: about 2.5 min)"
started=$SECONDS
mkdir -p "$tmp/bin"
(cd "$MODULE" && env GO111MODULE=on GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=readonly \
  nice go build -trimpath -ldflags=-s -o "$tmp/bin/versitygw" github.com/versity/versitygw/cmd/versitygw) >&2
echo "$stamp" >"$tmp/stamp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "built $dir/bin/versitygw in $((SECONDS - started)) s"
echo "$dir/bin/versitygw"
