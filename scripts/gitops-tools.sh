#!/usr/bin/env bash
# Locate (or make, once) the tools the GitOps and monitoring tests use, cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/pgparity/tools/ keyed by version:
#   lua         hack/argocd-health: Argo CD's Lua runner (gopher-lua), built with go
#   kstatus     hack/kstatus: sigs.k8s.io/cli-utils' kstatus (what Flux's health checks use)
#   prometheus  promtool and prometheus from Debian's package (apt-get download + dpkg-deb -x:
#               nothing is installed system-wide, no service is started)
#   promcrds    the prometheus-operator CRDs, from the Go module's example/prometheus-operator-crd
#   helm        delegated to scripts/kube-assets.sh build helm
#
# Usage: scripts/gitops-tools.sh [build] SET   # prints the directory holding the tool(s), last
#        scripts/gitops-tools.sh all           # every set (make gitops-tools)
# Versions: hack/kube-assets/versions.env. Progress goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091  # plain KEY=value lines
. "$ROOT/hack/kube-assets/versions.env"
: "${DEB_PROMETHEUS:?missing in versions.env}" "${PROMETHEUS_OPERATOR_VERSION:?missing in versions.env}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pgparity/tools"
HACK="$ROOT/hack"

log() { printf 'gitops-tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
gocmd() { env GO111MODULE=on GOWORK=off CGO_ENABLED=0 "$@"; }

# Run "make_<set> TMPDIR" once per directory: under a lock, into a temporary directory renamed
# into place, so an interrupted run never leaves a directory that looks complete.
cached() {  # set dir
  local set=$1 dir=$2 tmp t0
  if [[ -f $dir/.complete ]]; then printf '%s\n' "$dir"; return 0; fi
  mkdir -p "$CACHE"
  exec 9>"$dir.lock"
  flock -n 9 || { log "another run holds $dir.lock; waiting"; flock 9; }
  if [[ -f $dir/.complete ]]; then printf '%s\n' "$dir"; return 0; fi
  rm -rf "$dir".tmp.*
  tmp=$(mktemp -d "$dir.tmp.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  t0=$(date +%s)
  "make_$set" "$tmp"
  touch "$tmp/.complete"
  chmod 755 "$tmp"
  rm -rf "$dir"
  mv -T "$tmp" "$dir"
  trap - EXIT
  log "$set ready in $(($(date +%s) - t0))s: $dir"
  printf '%s\n' "$dir"
}

go_harness() {  # hack-dir out
  command -v go >/dev/null 2>&1 || die "the 'go' command is required to build hack/$1"
  log "building hack/$1 ..."
  (cd "$HACK/$1" && gocmd GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -ldflags "-s -w" \
    -o "$2/$1" .) >&2
}

make_lua() { go_harness argocd-health "$1"; }
make_kstatus() { go_harness kstatus "$1"; }

make_prometheus() {
  local deb
  command -v apt-get >/dev/null 2>&1 || die "apt-get is required to fetch Debian's prometheus package"
  log "fetching Debian's prometheus=$DEB_PROMETHEUS ..."
  (cd "$1" && apt-get download -qq "prometheus=$DEB_PROMETHEUS" 2>/dev/null) ||
    { [[ $(id -u) -eq 0 ]] && apt-get update -qq && (cd "$1" && apt-get download -qq "prometheus=$DEB_PROMETHEUS"); } ||
    die "cannot download prometheus=$DEB_PROMETHEUS"
  deb=$(ls "$1"/prometheus_*.deb)
  dpkg-deb -x "$deb" "$1/root"
  rm -f "$deb"
  mkdir -p "$1/bin"
  ln -s ../root/usr/bin/prometheus ../root/usr/bin/promtool "$1/bin/"
  "$1/bin/promtool" --version | head -1 >&2
}

make_promcrds() {
  local q dir
  command -v go >/dev/null 2>&1 || die "the 'go' command is required to fetch the prometheus-operator module"
  q=$(mktemp -d)
  (cd "$q" && gocmd GOFLAGS= go mod init q >/dev/null 2>&1)
  dir=$(cd "$q" && gocmd GOFLAGS= go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  rm -rf "$q"
  [[ -d $dir/example/prometheus-operator-crd ]] || die "no example/prometheus-operator-crd in the module"
  cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "$1/"
  chmod 644 "$1"/*.yaml
}

harness_dir() {  # hack-dir; keyed by the harness's sources
  local key
  key=$(cd "$HACK/$1" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
  echo "$CACHE/$1-$key"
}

build() {
  case $1 in
    lua) cached lua "$(harness_dir argocd-health)" ;;
    kstatus) cached kstatus "$(harness_dir kstatus)" ;;
    prometheus) cached prometheus "$CACHE/prometheus-$DEB_PROMETHEUS" ;;
    promcrds) cached promcrds "$CACHE/prometheus-operator-crds-v$PROMETHEUS_OPERATOR_VERSION" ;;
    helm) "$ROOT/scripts/kube-assets.sh" build helm ;;
    *) die "unknown set '$1' (lua, kstatus, prometheus, promcrds, helm)" ;;
  esac
}

case "${1:-}" in
  build) build "${2:?which set}" ;;
  all) for s in lua kstatus prometheus promcrds helm; do build "$s" >/dev/null; done ;;
  lua|kstatus|prometheus|promcrds|helm) build "$1" ;;
  -h|--help|help|"") sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (try --help)" ;;
esac
