#!/usr/bin/env bash
# Install the Debian packages of the node tier at the versions pinned in
# hack/kube-assets/versions.env: containerd (CRI), runc, the CNI plugins, iptables and conntrack
# (kube-proxy), mmdebstrap and buildah (images). Nothing is started: the node tier runs its own
# containerd inside its network namespace. Does nothing when all are installed at those versions.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091  # plain KEY=value lines
. "$ROOT/hack/kube-assets/versions.env"

# package name -> apt version pattern
declare -A PINNED=(
  [containerd]=$DEB_CONTAINERD
  [runc]=$DEB_RUNC
  [containernetworking-plugins]=$DEB_CNI_PLUGINS
  [iptables]=$DEB_IPTABLES
  [conntrack]=$DEB_CONNTRACK
  [mmdebstrap]=$DEB_MMDEBSTRAP
  [buildah]=$DEB_BUILDAH
)

log() { printf 'node-deps: %s\n' "$*" >&2; }

installed_as_pinned() {  # package pattern
  local version
  version=$(dpkg-query -W -f '${db:Status-Abbrev}${Version}' "$1" 2>/dev/null) || return 1
  [[ $version == "ii "* ]] || return 1
  # shellcheck disable=SC2053  # the pattern is a glob on purpose
  [[ ${version#ii } == $2 ]]
}

missing=()
for package in "${!PINNED[@]}"; do
  installed_as_pinned "$package" "${PINNED[$package]}" || missing+=("$package=${PINNED[$package]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
[[ $(id -u) -eq 0 ]] || { log "error: installing ${missing[*]} needs root"; exit 1; }
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for package in "${!PINNED[@]}"; do
  installed_as_pinned "$package" "${PINNED[$package]}" ||
    { log "error: $package is not at ${PINNED[$package]} after installing"; exit 1; }
done
