"""What the seeding pipeline and the policy check need to know of the source's tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgparity.pg.schemas import user_schema
from pgparity.seed.transforms import ColumnInfo

_TABLES = f"""
SELECT c.oid::int8, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),
       pg_relation_size(c.oid)::int8,
       (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8,
       greatest(c.reltuples, 0)::float8,
       (SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0)::int8
        FROM pg_index i WHERE i.indrelid = c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND {user_schema("n.nspname")}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attrelid::int8, a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(bt.typname, t.typname), coalesce(bt.typcategory, t.typcategory), a.attnotnull,
       a.attgenerated <> '', a.attnum,
       -- binary COPY carries element/column type OIDs for arrays and composites: those
       -- of user-defined types differ between servers, so such tables go as text.
       (t.typcategory = 'A' AND t.typelem >= 16384) OR t.typtype = 'c' AS needs_text,
       CASE WHEN coalesce(bt.typcategory, t.typcategory) = 'A' THEN '{}'
            WHEN coalesce(bt.typtype, t.typtype) = 'c' THEN
              '(' || repeat(',', (SELECT count(*)::int - 1 FROM pg_attribute f
                                  WHERE f.attrelid = coalesce(bt.typrelid, t.typrelid)
                                    AND f.attnum > 0 AND NOT f.attisdropped)) || ')'
            WHEN coalesce(bt.typname, t.typname) IN ('bytea', 'xml', 'hstore', 'tsvector')
              THEN ''
       END AS empty_value
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attrelid = ANY (%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Columns of primary keys and unique indexes (each set counts as one key).
_UNIQUE_KEYS = """
SELECT i.indrelid::int8, i.indisprimary,
       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.n)
FROM pg_index i
WHERE i.indrelid = ANY (%s) AND i.indisunique AND i.indexprs IS NULL
"""

_FOREIGN_KEYS = """
SELECT con.conname, con.conrelid::int8, con.confrelid::int8,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.n),
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.n)
FROM pg_constraint con
WHERE con.contype = 'f' AND con.conrelid = ANY (%s)
"""


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class TableInfo:
    oid: int
    schema: str
    name: str
    display: str
    bytes: int
    pages: int
    estimated_rows: float
    columns: list[ColumnInfo] = field(default_factory=list)
    generated: set[str] = field(default_factory=set)
    primary_key: tuple[str, ...] = ()
    unique_keys: list[tuple[str, ...]] = field(default_factory=list)
    needs_text_copy: bool = False
    index_bytes: int = 0  # its indexes on the source: what building them again costs

    @property
    def copied_columns(self) -> list[ColumnInfo]:
        """Generated columns are computed again on the target, from the masked inputs."""
        return [c for c in self.columns if c.name not in self.generated]


@dataclass
class SourceCatalog:
    tables: dict[str, TableInfo]
    foreign_keys: list[ForeignKey]

    def key_columns(self, table: str) -> set[str]:
        """Columns in a primary key, a unique index or a foreign key (either side)."""
        info = self.tables[table]
        found = {c for key in info.unique_keys for c in key} | set(info.primary_key)
        for fk in self.foreign_keys:
            if fk.table == table:
                found |= set(fk.columns)
            if fk.ref_table == table:
                found |= set(fk.ref_columns)
        return found


def read_catalog(conn: psycopg.Connection[Any]) -> SourceCatalog:
    tables = {
        row[3]: TableInfo(
            int(row[0]),
            str(row[1]),
            str(row[2]),
            str(row[3]),
            int(row[4]),
            int(row[5]),
            float(row[6]),
            index_bytes=int(row[7]),
        )
        for row in conn.execute(_TABLES).fetchall()
    }
    by_oid = {t.oid: t for t in tables.values()}
    oids = list(by_oid)
    for (
        relid,
        name,
        type_,
        base,
        category,
        not_null,
        generated,
        attnum,
        text,
        empty,
    ) in conn.execute(_COLUMNS, (oids,)).fetchall():
        table = by_oid[int(relid)]
        table.columns.append(
            ColumnInfo(
                table=table.display,
                name=str(name),
                type=str(type_),
                base_type=str(base),
                category=str(category),
                not_null=bool(not_null),
                attnum=int(attnum),
                empty_value=None if empty is None else str(empty),
            )
        )
        if generated:
            table.generated.add(str(name))
        table.needs_text_copy |= bool(text)
    for relid, primary, columns in conn.execute(_UNIQUE_KEYS, (oids,)).fetchall():
        table = by_oid[int(relid)]
        key = tuple(str(c) for c in columns)
        table.unique_keys.append(key)
        if primary:
            table.primary_key = key
    keys = [
        ForeignKey(
            str(name),
            by_oid[int(rel)].display,
            tuple(cols),
            by_oid[int(ref)].display if int(ref) in by_oid else str(ref),
            tuple(ref_cols),
        )
        for name, rel, ref, cols, ref_cols in conn.execute(_FOREIGN_KEYS, (oids,)).fetchall()
    ]
    return SourceCatalog(tables=tables, foreign_keys=keys)
