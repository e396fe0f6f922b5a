"""Static lint for migrations: PostgreSQL's own parser, no database.

Pure code (pglast only): the engine and the CLI use it; it uses nothing that talks to a
server. Each finding names the relation and the lock it is about, so that ``validate`` can
join it with what the trace measured on a clone and confirm or dismiss it.
"""

from pgparity.lint.catalog import CATALOG, Category, Rule, RuleInfo
from pgparity.lint.config import LintConfig, find_config, load_config
from pgparity.lint.findings import FileReport, LintFinding, LintRun
from pgparity.lint.runner import lint_paths, lint_source

__all__ = [
    "CATALOG",
    "Category",
    "FileReport",
    "LintConfig",
    "LintFinding",
    "LintRun",
    "Rule",
    "RuleInfo",
    "find_config",
    "lint_paths",
    "lint_source",
    "load_config",
]
