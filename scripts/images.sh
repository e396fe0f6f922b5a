#!/usr/bin/env bash
# Build the images of the node tier offline (the Debian mirror and PyPI are the only sources):
#   pause     localhost/pgparity/pause:3.10                the pod sandbox (hack/images/pause)
#   debian    localhost/pgparity/debian:bookworm-slim      mmdebstrap: the base of the others
#   python    python:3.11-slim-bookworm                    stand-in for the official one (hack/images/python)
#   postgres  localhost/pgparity/postgres:$PG_MAJOR         builtin clones' server (hack/images/postgres)
#   pgparity  localhost/pgparity/pgparity:$VERSION          the repository's own Dockerfile, unchanged
# Each is written as a docker-archive (what `ctr images import` and `kind load image-archive`
# read) under ${XDG_CACHE_HOME:-$HOME/.cache}/pgparity/images/, named by a key over its inputs:
# the recipe (Dockerfile, entrypoint, source files, the shell function that builds it), the key
# of its base, the Debian mirror's release dates as of the last `apt-get update`. A key that
# exists is not built again.
#
# Usage: scripts/images.sh [pgparity]   # all images, or only the pgparity image and its bases
# stdout: one line per image the node imports, "<reference> <archive>"; progress on stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/hack/images
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pgparity/images
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml")
PG_MAJOR=15
SOURCES=/etc/apt/sources.list.d/debian.sources
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
STORE=(--root "$CACHE/buildah/root" --runroot "$CACHE/buildah/run" --storage-driver overlay)

PAUSE_REF=localhost/pgparity/pause:3.10
DEBIAN_REF=localhost/pgparity/debian:bookworm-slim
PYTHON_REF=python:3.11-slim-bookworm
POSTGRES_REF=localhost/pgparity/postgres:$PG_MAJOR
PGPARITY_REF=localhost/pgparity/pgparity:$VERSION

log() { printf 'images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
bah() { buildah "${STORE[@]}" "$@"; }

# sha256 (16 hex digits) over the named files' contents and the extra words given after "--".
key_of() {
  local files=() words=()
  while (($#)) && [[ $1 != -- ]]; do files+=("$1"); shift; done
  (($#)) && shift
  words=("$@")
  {
    ((${#files[@]} == 0)) || (cd "$ROOT" && sha256sum "${files[@]}")
    printf '%s\n' "${words[@]}"
  } | sha256sum | cut -c1-16
}

archive() { echo "$CACHE/$1-$2.tar"; }  # name key

# How NAME is built, as code: part of its key (editing a log line elsewhere rebuilds nothing).
recipe() { declare -f "build_$1" bud save load; }

# The mirror's state: the Date of each InRelease file apt fetched (the base changes with it).
mirror_dates() {
  grep -h '^Date:' /var/lib/apt/lists/*_InRelease 2>/dev/null | sort | tr '\n' ' ' || true
}

# Write image REF to ARCHIVE as a docker-archive (atomically: an interrupted push leaves nothing).
save() {  # ref archive
  rm -f "$2.tmp"
  bah push --quiet "$1" "docker-archive:$2.tmp:$1" >/dev/null
  mv "$2.tmp" "$2"
  log "$1 -> $2 ($(du -h "$2" | cut -f1))"
}

# Leave nothing of buildah behind: no working containers (a failed build leaves one), no images
# of earlier builds (the store would grow by a pgparity image per change; the layers of the
# current ones stay for --layers), no mounts (containers/storage keeps its overlay home mounted
# while it is in use).
release_store() {
  bah rm --all >/dev/null 2>&1 || true
  bah rmi --prune >/dev/null 2>&1 || true
  local mount
  for mount in $(awk -v root="$CACHE/buildah/" 'index($5, root) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$mount" 2>/dev/null || umount --lazy "$mount" || true
  done
}

# Make sure buildah's store holds REF as written in ARCHIVE (the store is only a build cache).
load() {  # ref archive
  local id
  id=$(bah pull --quiet "docker-archive:$2")
  bah tag "$id" "$1"
}

build_pause() {  # key
  local out=$1 work c
  work=$(mktemp -d)
  gcc -Os -static -o "$work/pause" "$SRC/pause/pause.c"
  strip "$work/pause"
  c=$(bah from scratch)
  bah copy "$c" "$work/pause" /pause >/dev/null
  bah config --entrypoint '["/pause"]' --cmd '' "$c"
  bah commit --quiet --rm "$c" "$PAUSE_REF" >/dev/null
  rm -rf "$work"
  save "$PAUSE_REF" "$(archive pause "$out")"
}

build_debian() {  # key
  local out=$1 work c
  work=$(mktemp -d "$CACHE/debian.XXXXXX")
  # minbase with usr merged by a hook (else the usrmerge package pulls in perl), no docs or
  # locales, and apt configured like the official images: no .debs or package lists kept.
  SOURCE_DATE_EPOCH=$DEBIAN_EPOCH mmdebstrap --quiet --variant=minbase \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='printf "%s\n" "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" >"$1/etc/apt/apt.conf.d/docker-clean"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    bookworm "$work/rootfs.tar" "$SOURCES"
  c=$(bah from scratch)
  bah add "$c" "$work/rootfs.tar" / >/dev/null
  bah config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  bah commit --quiet --rm "$c" "$DEBIAN_REF" >/dev/null
  rm -rf "$work"
  save "$DEBIAN_REF" "$(archive debian "$out")"
}

# buildah bud as this machine needs it: runc (crun refuses cgroup v1 hybrid), ulimits below the
# hard limits, the host's network for apt and pip. --layers keeps unchanged steps (the
# PostgreSQL install) across builds.
bud() {  # ref context dockerfile [build args...]
  local ref=$1 context=$2 dockerfile=$3
  shift 3
  nice buildah "${STORE[@]}" bud --pull=never --layers --isolation oci --runtime runc \
    --network host --ulimit nofile=10000:10000 --ulimit nproc=10000:10000 \
    -f "$dockerfile" -t "$ref" "$@" "$context"
}

build_python() {  # key
  load "$DEBIAN_REF" "$(archive debian "$DEBIAN_KEY")"
  bud "$PYTHON_REF" "$SRC/python" "$SRC/python/Dockerfile" --build-arg "BASE=$DEBIAN_REF"
  save "$PYTHON_REF" "$(archive python "$1")"
}

build_postgres() {  # key
  load "$DEBIAN_REF" "$(archive debian "$DEBIAN_KEY")"
  bud "$POSTGRES_REF" "$SRC/postgres" "$SRC/postgres/Dockerfile" \
    --build-arg "BASE=$DEBIAN_REF" --build-arg "PG_MAJOR=$PG_MAJOR"
  save "$POSTGRES_REF" "$(archive postgres "$1")"
}

build_pgparity() {  # key
  local mounts=()
  # pip trusts the host's CA bundle: PyPI may sit behind a TLS-intercepting proxy. (Only here:
  # apt uses plain HTTP, and ca-certificates' postinst cannot write a read-only bundle.)
  [[ -f $CA_BUNDLE ]] && mounts=(-v "$CA_BUNDLE:$CA_BUNDLE:ro")
  load "$PYTHON_REF" "$(archive python "$PYTHON_KEY")"
  bud "$PGPARITY_REF" "$ROOT" "$ROOT/Dockerfile" "${mounts[@]}"
  save "$PGPARITY_REF" "$(archive pgparity "$1")"
}

# Build NAME unless its archive exists; time it. Archives of older keys go, but the newest
# other one stays (switching between two branches does not rebuild every time).
ensure() {  # name key
  local t0 old
  if [[ -f $(archive "$1" "$2") ]]; then
    log "$1 up to date ($(archive "$1" "$2"))"
    return 0
  fi
  t0=$(date +%s)
  log "building $1 (key $2; log in $CACHE/logs/$1.log) ..."
  mkdir -p "$CACHE/logs"
  # errexit is off in a condition, also in a subshell there: run it first, test afterwards.
  set +e
  (set -e; "build_$1" "$2") >"$CACHE/logs/$1.log" 2>&1
  local status=$?
  set -e
  if ((status != 0)); then
    tail -n 30 "$CACHE/logs/$1.log" >&2
    die "building $1 failed; see $CACHE/logs/$1.log"
  fi
  log "built $1 in $(($(date +%s) - t0))s ($(du -h "$(archive "$1" "$2")" | cut -f1))"
  old=$(ls -t "$CACHE/$1"-*.tar | grep -vxF "$(archive "$1" "$2")" | tail -n +2 || true)
  [[ -z $old ]] || rm -f $old
}

# The files the repository's Dockerfile copies (tracked or new, not ignored), as of now.
pgparity_sources() {
  (cd "$ROOT" && git ls-files --cached --others --exclude-standard -- Dockerfile .dockerignore \
    pyproject.toml README.md operator | while read -r f; do [[ -f $f ]] && echo "$f"; done)
}

main() {
  local only=${1:-all}
  [[ $only == all || $only == pgparity ]] || die "unknown image set '$only' (all, pgparity)"
  command -v buildah >/dev/null && command -v mmdebstrap >/dev/null ||
    die "buildah and mmdebstrap are needed (scripts/node-deps.sh installs them)"
  [[ -f $SOURCES ]] || die "no $SOURCES to take the Debian mirror from"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"   # one builder at a time (worktrees share the cache)
  flock -n 9 || { log "another build holds $CACHE/.lock; waiting"; flock 9; }
  trap release_store EXIT

  local dates
  dates=$(mirror_dates)
  DEBIAN_EPOCH=$(date -d "$(grep -h '^Date:' /var/lib/apt/lists/*bookworm_InRelease 2>/dev/null |
    head -1 | cut -d' ' -f2-)" +%s 2>/dev/null || echo 0)
  DEBIAN_KEY=$(key_of -- "$(recipe debian)" "$(cat "$SOURCES")" "$dates")
  PYTHON_KEY=$(key_of hack/images/python/Dockerfile -- "$(recipe python)" "$DEBIAN_KEY")
  local pause_key postgres_key pgparity_key
  pause_key=$(key_of hack/images/pause/pause.c -- "$(recipe pause)" "$(gcc --version | head -1)")
  postgres_key=$(key_of hack/images/postgres/Dockerfile hack/images/postgres/docker-entrypoint.sh \
    -- "$(recipe postgres)" "$DEBIAN_KEY" "$PG_MAJOR")
  mapfile -t sources < <(pgparity_sources)
  pgparity_key=$(key_of "${sources[@]}" -- "$(recipe pgparity)" "$PYTHON_KEY")

  ensure debian "$DEBIAN_KEY"
  ensure python "$PYTHON_KEY"
  ensure pgparity "$pgparity_key"
  if [[ $only == all ]]; then
    ensure pause "$pause_key"
    ensure postgres "$postgres_key"
    echo "$PAUSE_REF $(archive pause "$pause_key")"
    echo "$POSTGRES_REF $(archive postgres "$postgres_key")"
  fi
  echo "$PGPARITY_REF $(archive pgparity "$pgparity_key")"
}

main "$@"
