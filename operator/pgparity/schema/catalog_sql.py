"""Catalog queries behind the schema digest.

Each query returns rows of ``(key, definition jsonb)``. Keys name an object by kind and
schema-qualified name, never by OID, so the same schema hashes the same on another server, after
a dump and restore, or when objects were created in another order. Definitions come from the
server's own deparsers (``pg_get_indexdef``, ``pg_get_constraintdef``, …) run with
``search_path = pg_catalog``, so every name in them is schema-qualified. Owners and privileges
are left out: they legitimately differ between production and its clones. Objects that belong
to an extension are represented by the extension and its version alone.
"""

from __future__ import annotations

from pgparity.pg.schemas import user_schema

NOT_FROM_EXTENSION = """
    NOT EXISTS (SELECT 1 FROM pg_depend d
                WHERE d.classid = '{catalog}'::regclass AND d.objid = {oid} AND d.deptype = 'e')
"""


def _user(alias: str) -> str:
    return user_schema(f"{alias}.nspname")


def _own(catalog: str, oid: str) -> str:
    return NOT_FROM_EXTENSION.format(catalog=catalog, oid=oid)


SCHEMAS = f"""
SELECT 'schema:' || quote_ident(n.nspname), '{{}}'::jsonb
FROM pg_namespace n
WHERE {_user("n")} AND {_own("pg_namespace", "n.oid")}
"""

EXTENSIONS = """
SELECT 'extension:' || quote_ident(e.extname),
       jsonb_build_object('version', e.extversion, 'schema', n.nspname)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
"""

TABLES = f"""
SELECT CASE WHEN c.relkind = 'f' THEN 'foreign-table:' ELSE 'table:' END
         || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       jsonb_build_object(
         'schema', n.nspname, 'name', c.relname,
         'kind', c.relkind, 'persistence', c.relpersistence,
         'row_security', c.relrowsecurity, 'options', to_jsonb(c.reloptions),
         'partition_key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
         'partition_of', (SELECT jsonb_build_object('schema', pn.nspname, 'name', pc.relname)
                          FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                          JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                          WHERE i.inhrelid = c.oid AND c.relispartition),
         'partition_bound', CASE WHEN c.relispartition
                                 THEN pg_get_expr(c.relpartbound, c.oid) END,
         'inherits', (SELECT jsonb_agg(quote_ident(pn.nspname) || '.' || quote_ident(pc.relname)
                                       ORDER BY i.inhseqno)
                      FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                      JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                      WHERE i.inhrelid = c.oid AND NOT c.relispartition),
         'columns', (SELECT jsonb_agg(jsonb_build_object(
                        'name', a.attname,
                        'type', format_type(a.atttypid, a.atttypmod),
                        'not_null', a.attnotnull,
                        'default', pg_get_expr(ad.adbin, ad.adrelid),
                        'generated', NULLIF(a.attgenerated, ''),
                        'identity', NULLIF(a.attidentity, ''),
                        'collation', CASE WHEN a.attcollation <> t.typcollation
                                          THEN quote_ident(cn.nspname) || '.'
                                               || quote_ident(co.collname) END)
                      ORDER BY a.attnum)
                     FROM pg_attribute a
                     JOIN pg_type t ON t.oid = a.atttypid
                     LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                     LEFT JOIN pg_collation co ON co.oid = a.attcollation
                     LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND {_user("n")} AND {_own("pg_class", "c.oid")}
"""

VIEWS = f"""
SELECT CASE c.relkind WHEN 'm' THEN 'materialized-view:' ELSE 'view:' END
         || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       jsonb_build_object('schema', n.nspname, 'name', c.relname,
                          'definition', pg_get_viewdef(c.oid, true),
                          'options', to_jsonb(c.reloptions))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {_user("n")} AND {_own("pg_class", "c.oid")}
"""

INDEXES = f"""
SELECT 'index:' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       jsonb_build_object('schema', n.nspname, 'name', c.relname,
                          'table', quote_ident(tn.nspname) || '.' || quote_ident(t.relname),
                          'definition', pg_get_indexdef(c.oid),
                          'valid', i.indisvalid,
                          'constraint', (SELECT con.conname FROM pg_constraint con
                                         WHERE con.conindid = c.oid AND con.conrelid = t.oid
                                         LIMIT 1))
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE {_user("n")} AND {_own("pg_class", "t.oid")}
"""

CONSTRAINTS = f"""
SELECT 'constraint:' || quote_ident(n.nspname) || '.'
         || quote_ident(COALESCE(t.relname, ty.typname)) || '.' || quote_ident(con.conname),
       jsonb_build_object('schema', n.nspname, 'name', con.conname,
                          'on', COALESCE(t.relname, ty.typname),
                          'on_kind', CASE WHEN t.oid IS NULL THEN 'domain' ELSE 'table' END,
                          'type', con.contype,
                          'definition', pg_get_constraintdef(con.oid, true),
                          'validated', con.convalidated,
                          'deferrable', con.condeferrable,
                          'deferred', con.condeferred)
FROM pg_constraint con
JOIN pg_namespace n ON n.oid = con.connamespace
LEFT JOIN pg_class t ON t.oid = con.conrelid AND con.conrelid <> 0
LEFT JOIN pg_type ty ON ty.oid = con.contypid AND con.contypid <> 0
WHERE {_user("n")} AND (t.oid IS NOT NULL OR ty.oid IS NOT NULL)
  AND (con.conparentid = 0 OR con.contype <> 'f')
  AND {_own("pg_class", "COALESCE(t.oid, 0)")} AND {_own("pg_type", "COALESCE(ty.oid, 0)")}
"""

SEQUENCES = f"""
SELECT 'sequence:' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       jsonb_build_object('schema', n.nspname, 'name', c.relname,
                          'type', format_type(s.seqtypid, NULL), 'start', s.seqstart,
                          'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax,
                          'cache', s.seqcache, 'cycle', s.seqcycle,
                          'owned_by', (SELECT quote_ident(tn.nspname) || '.'
                                              || quote_ident(t.relname) || '.'
                                              || quote_ident(a.attname)
                                       FROM pg_depend d
                                       JOIN pg_class t ON t.oid = d.refobjid
                                       JOIN pg_namespace tn ON tn.oid = t.relnamespace
                                       JOIN pg_attribute a ON a.attrelid = t.oid
                                                          AND a.attnum = d.refobjsubid
                                       WHERE d.classid = 'pg_class'::regclass
                                         AND d.objid = c.oid AND d.deptype IN ('a', 'i')
                                         AND d.refclassid = 'pg_class'::regclass
                                       LIMIT 1))
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_user("n")} AND {_own("pg_class", "c.oid")}
"""

FUNCTIONS = f"""
SELECT CASE p.prokind WHEN 'p' THEN 'procedure:' WHEN 'a' THEN 'aggregate:' ELSE 'function:' END
         || quote_ident(n.nspname) || '.' || quote_ident(p.proname)
         || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       jsonb_build_object('schema', n.nspname, 'name', p.proname,
                          'definition', CASE WHEN p.prokind IN ('f', 'p', 'w')
                                             THEN pg_get_functiondef(p.oid) END,
                          'result', pg_get_function_result(p.oid))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_user("n")} AND {_own("pg_proc", "p.oid")}
"""

TRIGGERS = f"""
SELECT 'trigger:' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.'
         || quote_ident(tg.tgname),
       jsonb_build_object('definition', pg_get_triggerdef(tg.oid, true),
                          'enabled', tg.tgenabled)
FROM pg_trigger tg
JOIN pg_class c ON c.oid = tg.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT tg.tgisinternal AND tg.tgparentid = 0 AND {_user("n")} AND {_own("pg_class", "c.oid")}
"""

TYPES = f"""
SELECT CASE t.typtype WHEN 'e' THEN 'enum:' WHEN 'd' THEN 'domain:' ELSE 'type:' END
         || quote_ident(n.nspname) || '.' || quote_ident(t.typname),
       jsonb_build_object(
         'labels', (SELECT jsonb_agg(e.enumlabel ORDER BY e.enumsortorder)
                    FROM pg_enum e WHERE e.enumtypid = t.oid),
         'base_type', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
         'not_null', CASE WHEN t.typtype = 'd' THEN t.typnotnull END,
         'default', t.typdefault,
         'attributes', (SELECT jsonb_agg(jsonb_build_object(
                          'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod))
                          ORDER BY a.attnum)
                        FROM pg_attribute a
                        WHERE t.typtype = 'c' AND a.attrelid = t.typrelid
                          AND a.attnum > 0 AND NOT a.attisdropped))
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'c', 'r', 'm')
  AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND {_user("n")} AND {_own("pg_type", "t.oid")}
"""

POLICIES = f"""
SELECT 'policy:' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.'
         || quote_ident(pol.polname),
       jsonb_build_object('command', pol.polcmd, 'permissive', pol.polpermissive,
                          'using', pg_get_expr(pol.polqual, pol.polrelid),
                          'with_check', pg_get_expr(pol.polwithcheck, pol.polrelid))
FROM pg_policy pol
JOIN pg_class c ON c.oid = pol.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_user("n")}
"""

RULES = f"""
SELECT 'rule:' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.'
         || quote_ident(r.rulename),
       jsonb_build_object('definition', pg_get_ruledef(r.oid, true))
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN' AND {_user("n")} AND {_own("pg_class", "c.oid")}
"""

ALL_OBJECT_QUERIES = (
    SCHEMAS,
    EXTENSIONS,
    TABLES,
    VIEWS,
    INDEXES,
    CONSTRAINTS,
    SEQUENCES,
    FUNCTIONS,
    TRIGGERS,
    TYPES,
    POLICIES,
    RULES,
)
