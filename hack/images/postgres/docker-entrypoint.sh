#!/usr/bin/env bash
# The part of the official postgres image's entrypoint that builtin clones rely on:
#   * `docker-entrypoint.sh -c name=value ...` runs `postgres -c name=value ...`;
#   * as root, it prepares PGDATA and the socket directory and drops to the postgres user;
#   * an empty PGDATA is initialised: initdb --username=$POSTGRES_USER with $POSTGRES_PASSWORD
#     (scram-sha-256 for host connections, as $POSTGRES_HOST_AUTH_METHOD says), then a server
#     listening on no TCP address creates $POSTGRES_DB and runs /docker-entrypoint-initdb.d/*
#     (.sh, .sql) — so nothing can connect over the network before the database is complete;
#   * a PGDATA holding PG_VERSION (e.g. a replica's pg_basebackup) is started as it is.
set -Eeuo pipefail

if [[ ${1:-} == -* ]]; then
  set -- postgres "$@"
fi
if [[ ${1:-} != postgres ]]; then
  exec "$@"
fi

POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

prepare_directories() {
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" 2>/dev/null || :
  mkdir -p /var/run/postgresql
  chmod 3777 /var/run/postgresql 2>/dev/null || :
}

if [[ $(id -u) == 0 ]]; then
  prepare_directories
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

run_initdb_scripts() {
  local f
  shopt -s nullglob
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh) echo "$0: running $f"; . "$f" ;;
      *.sql) echo "$0: running $f"; psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname "$POSTGRES_DB" -f "$f" ;;
      *) echo "$0: ignoring $f" ;;
    esac
  done
  shopt -u nullglob
}

initialise() {
  if [[ -z ${POSTGRES_PASSWORD:-} && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
    echo "$0: error: the database is uninitialised and POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS are words on purpose, as in the official image
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
    ${POSTGRES_INITDB_ARGS:-}
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
  # The caller's -c settings (config_file, hba_file, ...) apply to the set-up server too; it
  # listens on the socket only.
  local options=""
  if (($# > 1)); then options=$(printf '%q ' "${@:2}"); fi
  pg_ctl -D "$PGDATA" -w -o "$options -c listen_addresses=''" start
  if [[ $POSTGRES_DB != postgres ]]; then
    # psql interpolates :"db" (quoted as an identifier) in its input, not in -c
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname postgres \
      --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  run_initdb_scripts
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "$0: PostgreSQL init process complete; ready for start up."
}

prepare_directories
if [[ ! -s $PGDATA/PG_VERSION ]]; then
  initialise "$@"
fi
exec "$@"
