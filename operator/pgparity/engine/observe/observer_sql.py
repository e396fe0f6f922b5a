"""Queries the observer samples with, from its own session, every period (50 ms by default).

The observer's session pins ``search_path = pg_catalog, pg_temp`` at connection time, so these
names resolve in the catalog whatever the database holds.
"""

from __future__ import annotations

# Every session of this database that waits for a lock: since when (pg_locks.waitstart, 14+),
# for which lock, and who is ahead of it (pg_blocking_pids: holders and earlier waiters in the
# queue, which is how a lock queue forms behind a pending ACCESS EXCLUSIVE request).
_LOCK_WAITERS = """
SELECT extract(epoch FROM clock_timestamp())::float8 AS sampled_at,
       a.pid,
       coalesce(nullif(a.application_name, ''), 'pid ' || a.pid) AS application,
       left(a.query, 200) AS query,
       {waitstart} AS waitstart,
       w.mode,
       w.relation,
       pg_blocking_pids(a.pid) AS blockers
FROM pg_stat_activity a
CROSS JOIN LATERAL (
    SELECT {lock_waitstart} l.mode,
           CASE WHEN l.relation IS NULL THEN l.locktype
                ELSE coalesce((SELECT format('%I.%I', n.nspname, c.relname)
                               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                               WHERE c.oid = l.relation), l.relation::text)
           END AS relation
    FROM pg_locks l
    WHERE l.pid = a.pid AND NOT l.granted
    LIMIT 1) w
WHERE a.datname = current_database()
  AND a.pid <> pg_backend_pid()
"""
LOCK_WAITERS = _LOCK_WAITERS.format(
    waitstart="extract(epoch FROM w.waitstart)::float8", lock_waitstart="l.waitstart,"
)
# PostgreSQL 13 and older have no pg_locks.waitstart: who waits is known, since when is not.
LOCK_WAITERS_WITHOUT_WAITSTART = _LOCK_WAITERS.format(waitstart="NULL::float8", lock_waitstart="")
WAITSTART_SINCE = 140000  # server_version_num

# Application names of the sessions that block others, to say who blocked whom.
SESSION_NAMES = """
SELECT pid, coalesce(nullif(application_name, ''), 'pid ' || pid)
FROM pg_stat_activity
WHERE pid = ANY (%s)
"""

# Replication as the primary sees it: bytes not yet replayed by the slowest replica, the
# replay lag PostgreSQL itself measures, how many replicas, and how many of them show no
# position — a role without pg_monitor (pg_read_all_stats) sees the rows, not their columns.
REPLICATION = """
SELECT extract(epoch FROM clock_timestamp())::float8,
       pg_current_wal_lsn()::text,
       coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::int8,
       max(extract(epoch FROM replay_lag))::float8,
       count(*),
       count(*) FILTER (WHERE replay_lsn IS NULL)
FROM pg_stat_replication
"""

# The replica's own replay position (when a replica connection is given).
REPLICA_REPLAY = "SELECT pg_last_wal_replay_lsn()::text"
