#!/usr/bin/env bash
# make e2e-kind: the node tier's tests (tests/node) against a kind cluster, for machines with a
# container engine. kind is built from its Go module (scripts/kube-assets.sh build kind), the
# images of `make images` are loaded with `kind load image-archive`, and the same suite runs with
# PGPARITY_E2E_KUBECONFIG pointing at the kind cluster; the cluster is deleted afterwards.
#
# Not run on the development machines (no Docker engine, no registry to pull kindest/node from).
# Settings: KIND_CLUSTER (default pgparity-e2e), KIND_NODE_IMAGE (default from versions.env),
# KIND_EXPERIMENTAL_PROVIDER=podman for podman. Arguments go to pytest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck disable=SC1091  # plain KEY=value lines
. hack/kube-assets/versions.env
CLUSTER=${KIND_CLUSTER:-pgparity-e2e}
NODE_IMAGE=${KIND_NODE_IMAGE:-$KIND_NODE_IMAGE}
IMAGES=${IMAGES_LIST:-.kube/images.list}
KUBECONFIG_FILE=$ROOT/.kube/kind-$CLUSTER.kubeconfig

die() { echo "e2e-kind: error: $*" >&2; exit 1; }

engine=${KIND_EXPERIMENTAL_PROVIDER:-docker}
command -v "$engine" >/dev/null 2>&1 && "$engine" info >/dev/null 2>&1 ||
  die "kind needs a running $engine (none here; the node tier runs without it: make test-node)"
[[ -f $IMAGES ]] || die "no $IMAGES; run make images"

kind=$(scripts/kube-assets.sh build kind)/kind
helm=$(scripts/kube-assets.sh build helm)/helm
kubectl=$(command -v kubectl || echo "$(scripts/kube-assets.sh build plane)/kubectl")

"$kind" create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --kubeconfig "$KUBECONFIG_FILE" --wait 180s
trap '"$kind" delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE"' EXIT
while read -r ref archive; do
  [[ $ref == */pause:* ]] && continue   # kind's nodes bring their own sandbox image
  "$kind" load image-archive "$archive" --name "$CLUSTER"
done <"$IMAGES"

scripts/run-node-tests.sh "$KUBECONFIG_FILE" "$kubectl" "$helm" "$@"
