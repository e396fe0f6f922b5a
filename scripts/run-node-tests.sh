#!/usr/bin/env bash
# Run the node tier's tests (tests/node) against a cluster, with the images of `make images`:
# what `make test-node` (inside the node's network namespace) and `make e2e-kind` share.
#
# Usage: scripts/run-node-tests.sh KUBECONFIG KUBECTL HELM [pytest arguments...]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
IMAGES=${IMAGES_LIST:-.kube/images.list}
[[ $# -ge 3 ]] || { echo "usage: $0 KUBECONFIG KUBECTL HELM [pytest arguments...]" >&2; exit 2; }
[[ -f $IMAGES ]] || { echo "run-node-tests: no $IMAGES; run make images" >&2; exit 2; }
kubeconfig=$1 kubectl=$2 helm=$3
shift 3

image_of() { awk -v name="$1" '$1 ~ name {print $1}' "$IMAGES"; }
postgres_image=$(image_of '/pgparity/postgres:')
export PGPARITY_E2E_KUBECONFIG=$kubeconfig
export PGPARITY_E2E_IMAGE=$(image_of '/pgparity/pgparity:')
export PGPARITY_E2E_POSTGRES_IMAGE=${postgres_image%:*}   # the repository: clones add the tag
export PGPARITY_E2E_KUBECTL=$kubectl
export PGPARITY_E2E_HELM=$helm
exec .venv/bin/pytest -m node tests/node "$@"
