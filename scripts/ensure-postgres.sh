#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, postgres, pg_basebackup) are installed.
# pgparity finds them via $PGPARITY_PG_BINDIR, pg_config, or /usr/lib/postgresql/*/bin.
set -euo pipefail

have_server() {
  if [[ -n "${PGPARITY_PG_BINDIR:-}" && -x "${PGPARITY_PG_BINDIR}/initdb" ]]; then return 0; fi
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" && -x "$dir/pg_basebackup" ]] && return 0
  done
  return 1
}

if have_server; then
  exit 0
fi
echo "ensure-postgres: PostgreSQL server binaries not found; installing postgresql-15" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null
# Debian's package starts a cluster of its own; pgparity does not use it.
$SUDO pg_ctlcluster 15 main stop 2>/dev/null || true
have_server || { echo "ensure-postgres: installation did not provide initdb" >&2; exit 1; }
