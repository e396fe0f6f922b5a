"""The catalog queries the parity floor reads; every one works for a role with only
``pg_read_all_settings`` and ``pg_read_all_stats``, in a read-only transaction.

``SETTINGS`` runs first, before the session pins its search_path (which would show up in
pg_settings as the session's own value); it calls no function and no operator, so a schema in
front of pg_catalog has nothing to stand in for. The rest run with ``search_path = pg_catalog,
pg_temp``.
"""

from __future__ import annotations

SETTINGS = """
SELECT name, setting, unit, vartype, source, context FROM pg_catalog.pg_settings
"""

# Role and database settings (pg_db_role_setting) that apply to the current database and the
# role %(role)s (NULL: no role level). Precedence, highest first (PostgreSQL's
# process_settings): database+role, role, database, all roles (ALTER ROLE ALL SET).
LEVEL_SETTINGS = """
SELECT CASE WHEN s.setdatabase <> 0 AND s.setrole <> 0 THEN 'database-role'
            WHEN s.setrole <> 0 THEN 'role'
            WHEN s.setdatabase <> 0 THEN 'database'
            ELSE 'all-roles' END,
       c.entry
FROM pg_db_role_setting s
CROSS JOIN LATERAL unnest(s.setconfig) AS c(entry)
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
  AND (s.setrole = 0
       OR s.setrole = (SELECT oid FROM pg_roles WHERE rolname = %(role)s))
"""

ROLE_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(role)s)"

DATABASE = """
SELECT current_database(), pg_encoding_to_char(encoding), datcollate, datctype,
       CASE datlocprovider WHEN 'i' THEN 'icu' WHEN 'c' THEN 'libc' ELSE datlocprovider::text END,
       daticulocale, datcollversion, pg_database_collation_actual_version(oid)
FROM pg_database WHERE datname = current_database()
"""

# Collations the schema uses (columns and index keys outside the system schemas), with the
# version of the library the server would sort them with now.
USED_COLLATIONS = """
WITH used AS (
  SELECT a.attcollation AS oid
  FROM pg_attribute a
  JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace
  WHERE a.attcollation <> 0 AND NOT a.attisdropped
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION
  SELECT unnest(i.indcollation::oid[])
  FROM pg_index i
  JOIN pg_class r ON r.oid = i.indrelid JOIN pg_namespace n ON n.oid = r.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
)
SELECT format('%I.%I', n.nspname, c.collname),
       CASE c.collprovider WHEN 'i' THEN 'icu' WHEN 'c' THEN 'libc' ELSE 'default' END,
       coalesce(pg_collation_actual_version(c.oid), c.collversion)
FROM used u JOIN pg_collation c ON c.oid = u.oid JOIN pg_namespace n ON n.oid = c.collnamespace
WHERE c.collprovider <> 'd'
"""

EXTENSIONS = "SELECT extname, extversion FROM pg_extension"

AVAILABLE_VERSIONS = """
SELECT name, version FROM pg_available_extension_versions WHERE name = ANY(%(names)s)
"""

DEFAULT_VERSIONS = """
SELECT name, default_version FROM pg_available_extensions WHERE name = ANY(%(names)s)
"""

# state and sync_state are NULL for roles without pg_read_all_stats: counted apart, so that a
# missing grant reads as "cannot see", never as "no replica".
REPLICATION = """
SELECT count(*) FILTER (WHERE state = 'streaming'),
       count(*) FILTER (WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum')),
       count(*) FILTER (WHERE state IS NULL),
       count(*) FILTER (WHERE state = 'streaming' AND backend_xmin IS NOT NULL),
       pg_is_in_recovery()
FROM pg_stat_replication
"""
