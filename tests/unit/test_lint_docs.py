"""Every rule has its page under docs/rules/, and the page's SQL does what the page says:
the unsafe example raises the rule, the safe pattern does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgparity.lint import CATALOG, LintConfig, Rule, lint_source
from pgparity.lint.catalog import RuleInfo

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"
EVERYTHING = LintConfig(enable=frozenset(CATALOG))
SQL_BLOCK = re.compile(r"```sql\n(.*?)```", re.DOTALL)


def page(entry: RuleInfo) -> str:
    return (DOCS / f"{entry.rule.value}.md").read_text(encoding="utf-8")


def blocks(entry: RuleInfo) -> tuple[str, str]:
    unsafe, safe = SQL_BLOCK.findall(page(entry))[:2]
    return unsafe, safe


@pytest.mark.parametrize("entry", CATALOG.values(), ids=[r.value for r in CATALOG])
def test_every_rule_has_a_page_with_the_unsafe_form_why_and_the_safe_pattern(
    entry: RuleInfo,
) -> None:
    text = page(entry)
    for heading in ("## Unsafe", "## Why", "## Safe"):
        assert heading in text
    for name in (*entry.squawk, *entry.eugene):
        assert f"`{name}`" in text
    if entry.lock is not None:
        assert entry.lock.sql_name in text


@pytest.mark.parametrize("entry", CATALOG.values(), ids=[r.value for r in CATALOG])
def test_the_pages_examples_do_what_the_page_says(entry: RuleInfo) -> None:
    unsafe, safe = blocks(entry)
    raised = {f.rule for f in lint_source("unsafe.sql", unsafe, EVERYTHING).findings if f.active}
    assert entry.rule in raised
    raised = {f.rule for f in lint_source("safe.sql", safe, EVERYTHING).findings if f.active}
    assert entry.rule not in raised
    assert Rule.SYNTAX_ERROR not in raised


def test_the_index_lists_every_rule() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for rule in Rule:
        assert f"[`{rule.value}`]({rule.value}.md)" in index
