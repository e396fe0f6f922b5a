#!/usr/bin/env bash
# The node tier (make test-node): start the one-node cluster (tests/nodeplane.py), run the
# `node` tests inside its network namespace, and tear the node down again — also when a test
# fails or the run is interrupted. The last line is pytest's summary.
#
# Needs what `make test-node` prepares first: scripts/node-deps.sh, the node and helm binaries
# (scripts/kube-assets.sh build node|helm) and the images (.kube/images.list from
# scripts/images.sh). Arguments go to pytest (e.g. -k validations). PGPARITY_KEEP_NODE=1 leaves
# the node running afterwards (stop it with `make node-down`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE=${NODE_STATE:-.kube/node}
IMAGES=${IMAGES_LIST:-.kube/images.list}
PYTHON=${PYTHON:-python3}

[[ -f $IMAGES ]] || { echo "test-node: no $IMAGES; run make images" >&2; exit 2; }
helm=$(scripts/kube-assets.sh build helm 2>/dev/null)/helm

teardown() {
  local status=$? log="$STATE.down.log"
  trap - EXIT INT TERM
  if [[ -n ${PGPARITY_KEEP_NODE:-} ]]; then
    echo "test-node: the node keeps running (make node-down stops it)" >&2
  elif ! "$PYTHON" tests/nodeplane.py down --state-dir "$STATE" >"$log" 2>&1; then
    cat "$log" >&2
    status=1
  fi
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

"$PYTHON" tests/nodeplane.py up --state-dir "$STATE" --images "$IMAGES"
netns=$("$PYTHON" tests/nodeplane.py status --state-dir "$STATE" --field netns)
kubeconfig=$("$PYTHON" tests/nodeplane.py status --state-dir "$STATE" --field kubeconfig)
kubectl=$("$PYTHON" tests/nodeplane.py status --state-dir "$STATE" --field kubectl)
# The archive tests' S3 server listens on the node's IP: Pods reach it there.
export PGPARITY_E2E_S3_ADDRESS=$("$PYTHON" tests/nodeplane.py status --state-dir "$STATE" --field nodeIP)
# Inside the namespace: the API server, Pod and Service addresses and the cluster DNS are there.
ip netns exec "$netns" scripts/run-node-tests.sh "$kubeconfig" "$kubectl" "$helm" "$@"
