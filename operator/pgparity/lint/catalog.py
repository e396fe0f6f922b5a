"""The rule catalogue: a stable id per rule, its default severity, squawk's and eugene's names.

Ids are descriptive kebab-case and never change meaning; each has a page under
``docs/rules/<id>.md`` (the unsafe form, why — which lock, what it blocks, for how long — and the
safe pattern). ``squawk`` and ``eugene`` name the equivalent rules of those tools, so that
acknowledgements and comparisons can be carried over.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum

from pgparity.lint.locks import LockMode
from pgparity.models.report import Severity


class Rule(StrEnum):
    # Locks and rewrites: costly in proportion to the table, so the trace can judge them.
    CREATE_INDEX_NON_CONCURRENTLY = "create-index-non-concurrently"
    DROP_INDEX_NON_CONCURRENTLY = "drop-index-non-concurrently"
    REINDEX_NON_CONCURRENTLY = "reindex-non-concurrently"
    DETACH_PARTITION_NON_CONCURRENTLY = "detach-partition-non-concurrently"
    ADD_UNIQUE_CONSTRAINT = "add-unique-constraint"
    ADD_PRIMARY_KEY = "add-primary-key"
    PRIMARY_KEY_USING_INDEX = "primary-key-using-index"
    ADD_EXCLUSION_CONSTRAINT = "add-exclusion-constraint"
    CHECK_CONSTRAINT_WITHOUT_NOT_VALID = "check-constraint-without-not-valid"
    FOREIGN_KEY_WITHOUT_NOT_VALID = "foreign-key-without-not-valid"
    VALIDATE_IN_SAME_TRANSACTION = "validate-in-same-transaction"
    SET_NOT_NULL = "set-not-null"
    COLUMN_TYPE_CHANGE = "column-type-change"
    ADD_COLUMN_REWRITE = "add-column-rewrite"
    VACUUM_FULL_OR_CLUSTER = "vacuum-full-or-cluster"
    ALTER_DOMAIN_ADD_CONSTRAINT = "alter-domain-add-constraint"
    MISSING_LOCK_TIMEOUT = "missing-lock-timeout"
    MISSING_STATEMENT_TIMEOUT = "missing-statement-timeout"
    WORK_AFTER_DANGEROUS_LOCK = "work-after-dangerous-lock"
    MULTIPLE_ALTER_TABLE = "multiple-alter-table"
    TRUNCATE_CASCADE = "truncate-cascade"
    # Compatibility: breaks the application whatever the table's size.
    ADD_REQUIRED_COLUMN = "add-required-column"
    DROP_COLUMN = "drop-column"
    DROP_TABLE = "drop-table"
    DROP_VIEW = "drop-view"
    DROP_DATABASE = "drop-database"
    DROP_NOT_NULL = "drop-not-null"
    RENAME_COLUMN = "rename-column"
    RENAME_TABLE = "rename-table"
    RENAME_OBJECT = "rename-object"
    ENUM_VALUE_RENAME = "enum-value-rename"
    # Transactions: the migration fails, or commits nothing, or commits in pieces.
    NON_TRANSACTIONAL_IN_TRANSACTION = "non-transactional-in-transaction"
    TRANSACTION_NESTING = "transaction-nesting"
    UNCOMMITTED_TRANSACTION = "uncommitted-transaction"
    NOT_RE_RUNNABLE = "not-re-runnable"
    # Types and schema design.
    PREFER_BIGINT = "prefer-bigint"
    PREFER_IDENTITY = "prefer-identity"
    PREFER_TIMESTAMPTZ = "prefer-timestamptz"
    PREFER_TEXT = "prefer-text"
    CHAR_COLUMN = "char-column"
    JSON_COLUMN = "json-column"
    CREATE_ENUM = "create-enum"
    ENUM_VALUE_ORDER = "enum-value-order"
    CREATE_DOMAIN_WITH_CONSTRAINT = "create-domain-with-constraint"
    IDENTIFIER_TOO_LONG = "identifier-too-long"
    DUPLICATE_COLUMN_ASSIGNMENT = "duplicate-column-assignment"
    UNQUALIFIED_NAME = "unqualified-name"
    # About the input and the acknowledgements themselves.
    SYNTAX_ERROR = "syntax-error"
    INVALID_ACKNOWLEDGEMENT = "invalid-acknowledgement"
    UNUSED_ACKNOWLEDGEMENT = "unused-acknowledgement"


class Category(StrEnum):
    LOCKING = "locking"
    COMPATIBILITY = "compatibility"
    TRANSACTIONS = "transactions"
    TYPES = "types"
    META = "meta"


@dataclass(frozen=True)
class RuleInfo:
    rule: Rule
    category: Category
    severity: Severity
    title: str
    squawk: tuple[str, ...] = ()
    eugene: tuple[str, ...] = ()
    lock: LockMode | None = None  # the lock the rule is about, on the relation it names
    enabled: bool = True  # off by default: opt in with `enable`

    @property
    def docs(self) -> str:
        return f"docs/rules/{self.rule.value}.md"

    @property
    def acknowledgeable(self) -> bool:
        """Meta findings (syntax, acknowledgements) are not acknowledged by comments; config
        can only turn off ``unused-acknowledgement``, for files shared with other tools."""
        return self.category is not Category.META


E, W = Severity.ERROR, Severity.WARNING
AEL, SHARE = LockMode.ACCESS_EXCLUSIVE, LockMode.SHARE
L, C, T, Y, M = (
    Category.LOCKING,
    Category.COMPATIBILITY,
    Category.TRANSACTIONS,
    Category.TYPES,
    Category.META,
)

_RULES = (
    RuleInfo(
        Rule.CREATE_INDEX_NON_CONCURRENTLY,
        L,
        E,
        "CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
        ("require-concurrent-index-creation",),
        ("E6",),
        SHARE,
    ),
    RuleInfo(
        Rule.DROP_INDEX_NON_CONCURRENTLY,
        L,
        W,
        "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
        ("require-concurrent-index-deletion",),
        (),
        AEL,
    ),
    RuleInfo(
        Rule.REINDEX_NON_CONCURRENTLY,
        L,
        E,
        "REINDEX without CONCURRENTLY blocks writes (and reads of the index) for the rebuild",
        ("require-concurrent-reindex",),
        (),
        SHARE,
    ),
    RuleInfo(
        Rule.DETACH_PARTITION_NON_CONCURRENTLY,
        L,
        W,
        "DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent",
        ("require-concurrent-partition-detach",),
        (),
        AEL,
    ),
    RuleInfo(
        Rule.ADD_UNIQUE_CONSTRAINT,
        L,
        E,
        "ADD UNIQUE builds its index under ACCESS EXCLUSIVE",
        ("disallowed-unique-constraint",),
        ("E7",),
        AEL,
    ),
    RuleInfo(
        Rule.ADD_PRIMARY_KEY,
        L,
        E,
        "ADD PRIMARY KEY builds its index (and checks NOT NULL) under ACCESS EXCLUSIVE",
        ("adding-serial-primary-key-field",),
        ("E7",),
        AEL,
    ),
    RuleInfo(
        Rule.PRIMARY_KEY_USING_INDEX,
        L,
        W,
        "ADD PRIMARY KEY USING INDEX may silently SET NOT NULL, scanning the table",
        (),
        ("W14",),
        AEL,
    ),
    RuleInfo(
        Rule.ADD_EXCLUSION_CONSTRAINT,
        L,
        E,
        "an exclusion constraint builds its index under ACCESS EXCLUSIVE; there is no online way",
        (),
        ("E8",),
        AEL,
    ),
    RuleInfo(
        Rule.CHECK_CONSTRAINT_WITHOUT_NOT_VALID,
        L,
        E,
        "a CHECK constraint added without NOT VALID scans the table under ACCESS EXCLUSIVE",
        ("constraint-missing-not-valid",),
        ("E1",),
        AEL,
    ),
    RuleInfo(
        Rule.FOREIGN_KEY_WITHOUT_NOT_VALID,
        L,
        E,
        "a foreign key added without NOT VALID scans the table, blocking writes on both tables",
        ("adding-foreign-key-constraint", "constraint-missing-not-valid"),
        ("E1",),
        LockMode.SHARE_ROW_EXCLUSIVE,
    ),
    RuleInfo(
        Rule.VALIDATE_IN_SAME_TRANSACTION,
        L,
        E,
        "VALIDATE CONSTRAINT in the transaction that added it NOT VALID scans under the add's lock",
        ("constraint-missing-not-valid",),
        (),
        AEL,
    ),
    RuleInfo(
        Rule.SET_NOT_NULL,
        L,
        E,
        "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE",
        ("adding-not-nullable-field",),
        ("E2",),
        AEL,
    ),
    RuleInfo(
        Rule.COLUMN_TYPE_CHANGE,
        L,
        E,
        "changing a column's type rewrites the table under ACCESS EXCLUSIVE (unless binary-"
        "coercible)",
        ("changing-column-type",),
        ("E5",),
        AEL,
    ),
    RuleInfo(
        Rule.ADD_COLUMN_REWRITE,
        L,
        E,
        "a column with a volatile default, serial, identity or GENERATED STORED rewrites the table",
        ("adding-field-with-default",),
        ("E11",),
        AEL,
    ),
    RuleInfo(
        Rule.VACUUM_FULL_OR_CLUSTER,
        L,
        E,
        "VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE",
        ("prefer-repack",),
        (),
        AEL,
    ),
    RuleInfo(
        Rule.ALTER_DOMAIN_ADD_CONSTRAINT,
        L,
        W,
        "ALTER DOMAIN ADD CONSTRAINT checks every column of the domain, in every table",
        ("ban-alter-domain-with-add-constraint",),
        (),
        SHARE,
    ),
    RuleInfo(
        Rule.MISSING_LOCK_TIMEOUT,
        L,
        E,
        "a dangerous lock is requested with no lock_timeout: the application queues behind it",
        ("require-lock-timeout",),
        ("E9",),
    ),
    RuleInfo(
        Rule.MISSING_STATEMENT_TIMEOUT,
        L,
        W,
        "a dangerous lock is taken with no statement_timeout bounding how long it is held",
        ("require-statement-timeout",),
        (),
    ),
    RuleInfo(
        Rule.WORK_AFTER_DANGEROUS_LOCK,
        L,
        W,
        "more statements run while the transaction holds a lock that blocks the application",
        (),
        ("E4", "E16"),
    ),
    RuleInfo(
        Rule.MULTIPLE_ALTER_TABLE,
        L,
        W,
        "several ALTER TABLE statements on one table where one would do",
        (),
        ("W12",),
        AEL,
    ),
    RuleInfo(
        Rule.TRUNCATE_CASCADE,
        L,
        W,
        "TRUNCATE … CASCADE also empties every table that references this one",
        ("ban-truncate-cascade",),
        (),
        AEL,
    ),
    RuleInfo(
        Rule.ADD_REQUIRED_COLUMN,
        C,
        E,
        "a NOT NULL column without a default fails on a table with rows and breaks old inserts",
        ("adding-required-field",),
        (),
        AEL,
    ),
    RuleInfo(
        Rule.DROP_COLUMN,
        C,
        W,
        "dropping a column breaks clients that still use it",
        ("ban-drop-column",),
    ),
    RuleInfo(
        Rule.DROP_TABLE,
        C,
        W,
        "dropping a table breaks clients that still use it",
        ("ban-drop-table",),
    ),
    RuleInfo(
        Rule.DROP_VIEW, C, W, "dropping a view breaks clients that still use it", ("ban-drop-view",)
    ),
    RuleInfo(Rule.DROP_DATABASE, C, E, "dropping a database", ("ban-drop-database",)),
    RuleInfo(
        Rule.DROP_NOT_NULL,
        C,
        W,
        "dropping NOT NULL lets NULLs reach code that never expected them",
        ("ban-drop-not-null",),
    ),
    RuleInfo(
        Rule.RENAME_COLUMN,
        C,
        W,
        "renaming a column breaks the running application during the deploy",
        ("renaming-column",),
    ),
    RuleInfo(
        Rule.RENAME_TABLE,
        C,
        W,
        "renaming a table breaks the running application during the deploy",
        ("renaming-table",),
    ),
    RuleInfo(
        Rule.RENAME_OBJECT,
        C,
        W,
        "renaming a view, index, sequence, type, function or schema breaks code that names it",
        ("renaming-object",),
    ),
    RuleInfo(
        Rule.ENUM_VALUE_RENAME,
        C,
        W,
        "renaming an enum value breaks code and data that use the old label",
    ),
    RuleInfo(
        Rule.NON_TRANSACTIONAL_IN_TRANSACTION,
        T,
        E,
        "a statement PostgreSQL refuses inside a transaction block runs inside one",
        ("ban-concurrent-index-creation-in-transaction",),
    ),
    RuleInfo(
        Rule.TRANSACTION_NESTING,
        T,
        E,
        "BEGIN inside a transaction, or COMMIT/ROLLBACK outside one",
        ("transaction-nesting",),
    ),
    RuleInfo(
        Rule.UNCOMMITTED_TRANSACTION,
        T,
        E,
        "BEGIN without COMMIT: the runner's session ends and everything rolls back",
        ("ban-uncommitted-transaction",),
    ),
    RuleInfo(
        Rule.NOT_RE_RUNNABLE,
        T,
        W,
        "outside a transaction, a statement that fails when the migration is re-run",
        ("prefer-robust-stmts",),
        enabled=False,
    ),
    RuleInfo(
        Rule.PREFER_BIGINT,
        Y,
        W,
        "integer and smallint keys run out; bigint costs 4 bytes more",
        ("prefer-bigint-over-int", "prefer-bigint-over-smallint"),
    ),
    RuleInfo(
        Rule.PREFER_IDENTITY,
        Y,
        W,
        "serial columns: prefer GENERATED … AS IDENTITY",
        ("prefer-identity",),
    ),
    RuleInfo(
        Rule.PREFER_TIMESTAMPTZ,
        Y,
        W,
        "timestamp without time zone loses the offset",
        ("prefer-timestamptz", "prefer-timestamp-tz"),
    ),
    RuleInfo(
        Rule.PREFER_TEXT,
        Y,
        W,
        "varchar(n): widening it later needs ACCESS EXCLUSIVE; prefer text with a CHECK",
        ("prefer-text-field",),
    ),
    RuleInfo(
        Rule.CHAR_COLUMN, Y, W, "char(n) pads with spaces; use text or varchar", ("ban-char-field",)
    ),
    RuleInfo(Rule.JSON_COLUMN, Y, W, "json has no equality; use jsonb", (), ("E3",)),
    RuleInfo(
        Rule.CREATE_ENUM,
        Y,
        W,
        "enum values cannot be removed; consider a lookup table",
        (),
        ("W13",),
    ),
    RuleInfo(
        Rule.ENUM_VALUE_ORDER,
        Y,
        W,
        "ALTER TYPE … ADD VALUE without BEFORE/AFTER appends the value at the end",
        ("require-enum-value-ordering",),
    ),
    RuleInfo(
        Rule.CREATE_DOMAIN_WITH_CONSTRAINT,
        Y,
        W,
        "domain constraints cannot be changed online",
        ("ban-create-domain-with-constraint",),
    ),
    RuleInfo(
        Rule.IDENTIFIER_TOO_LONG,
        Y,
        W,
        "identifiers longer than 63 bytes are silently truncated",
        ("identifier-too-long",),
    ),
    RuleInfo(
        Rule.UNQUALIFIED_NAME,
        Y,
        W,
        "a table, view or index named without its schema lands wherever search_path points",
        ("require-table-schema",),
        enabled=False,
    ),
    RuleInfo(
        Rule.DUPLICATE_COLUMN_ASSIGNMENT,
        Y,
        E,
        "the same column is declared or assigned twice",
        ("ban-duplicate-column-assignments",),
    ),
    RuleInfo(Rule.SYNTAX_ERROR, M, E, "the file does not parse", ("syntax-error",)),
    RuleInfo(
        Rule.INVALID_ACKNOWLEDGEMENT,
        M,
        E,
        "an acknowledgement without a reason, or naming an unknown rule",
    ),
    RuleInfo(
        Rule.UNUSED_ACKNOWLEDGEMENT,
        M,
        W,
        "an acknowledgement that acknowledged nothing",
        ("unused-ignore",),
    ),
)

CATALOG: dict[Rule, RuleInfo] = {info.rule: info for info in _RULES}
assert len(CATALOG) == len(Rule), "every rule has exactly one catalogue entry"


def info(rule: Rule) -> RuleInfo:
    return CATALOG[rule]


def find_rule(name: str) -> Rule | None:
    """A rule by its id; squawk's and eugene's names are accepted too (first match)."""
    try:
        return Rule(name)
    except ValueError:
        pass
    for entry in _RULES:
        if name in entry.squawk or name.upper() in entry.eugene:
            return entry.rule
    return None


def closest_rule(name: str) -> str | None:
    """The rule id nearest to a mistyped ``name``, for did-you-mean messages."""
    matches = difflib.get_close_matches(name, [r.value for r in Rule], n=1, cutoff=0.6)
    return matches[0] if matches else None
