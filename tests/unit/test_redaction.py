"""Passwords never appear in output: known DSNs' passwords and anything shaped like one."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from psycopg import conninfo

from pgparity.errors import UsageError
from pgparity.models.report import Finding, Rule, Severity
from pgparity.pg.connection import parse_dsn
from pgparity.redaction import (
    Context,
    install_log_redaction,
    remember_dsn,
    sanitize,
    sanitize_strings,
)

# (DSN, the secret as its author meant it). Each is malformed in its own way, so libpq refuses it
# and may quote part of it in its message.
MALFORMED = [
    ("postgresql://u:Pct%zzSecret1@127.0.0.1/db", "Pct%zzSecret1"),
    ("postgresql://u:Space Secret2@127.0.0.1/db", "Space Secret2"),
    ("postgresql://u:At@Secret3@127.0.0.1/db?bogus=1", "At@Secret3"),
    ("postgresql://u:Colon:Secret4@[::1/db", "Colon:Secret4"),
    ("postgresql://u@127.0.0.1/db?password=QuerySecret5&bogus=1", "QuerySecret5"),
    ("host=127.0.0.1 password='Quoted Secret6", "Quoted Secret6"),
    ("host=127.0.0.1 password='it\\'s Secret7' bogus=1", "it's Secret7"),
    ("host=127.0.0.1 password=PlainSecret8 bogus", "PlainSecret8"),
    ("host=127.0.0.1 password=UnicodeСекрет9 bogus=1", "UnicodeСекрет9"),
    ("postgresql://u:Пароль%Secret10@127.0.0.1/db", "Пароль%Secret10"),
]


def _pieces(secret: str) -> list[str]:
    """The secret and every piece of it at least 4 characters long between delimiters."""
    import re

    return [secret] + [p for p in re.split(r"[\s@:/?#&%]", secret) if len(p) >= 4]


class TestKnownPasswords:
    @pytest.mark.parametrize(("dsn", "secret"), MALFORMED)
    def test_parse_errors_never_quote_the_password(self, dsn: str, secret: str) -> None:
        with pytest.raises(UsageError) as caught:
            parse_dsn(dsn)
        message = str(caught.value)
        assert message.startswith("cannot parse DSN")
        for piece in _pieces(secret):
            assert piece not in message, (piece, message)
        assert caught.value.__cause__ is None  # psycopg's exception holds the raw text

    @pytest.mark.parametrize(("dsn", "secret"), MALFORMED)
    def test_a_remembered_dsn_is_removed_from_any_text(self, dsn: str, secret: str) -> None:
        remember_dsn(dsn)
        text = f"something failed for {dsn} (password {secret})"
        for context in Context:
            cleaned = sanitize(text, context)
            for piece in _pieces(secret):
                assert piece not in cleaned, (piece, cleaned)

    def test_a_parsed_dsn_is_remembered(self) -> None:
        dsn = conninfo.make_conninfo(host="h", password="Remembered Secret!'\\")
        parse_dsn(dsn)
        assert sanitize("server said: Remembered Secret!'\\ is wrong") == (
            "server said: *** is wrong"
        )


class TestPasswordShapes:
    """Passwords pgparity was never told about are recognised by their shape."""

    @pytest.mark.parametrize(
        ("text", "secret"),
        [
            ("could not connect: postgresql://u:Uri1Secret@h:5432/db", "Uri1Secret"),
            ("postgres://u:Uri2@Secret@h/db failed", "Uri2@Secret"),
            ("POSTGRESQL://admin:Uri3Secret@h", "Uri3Secret"),
            ("see postgresql://h/db?sslmode=require&password=Query4Secret", "Query4Secret"),
            ("dsn host=h password=Kv5Secret user=u", "Kv5Secret"),
            ("dsn host=h password = 'Kv6 Secret with spaces' user=u", "Kv6 Secret with spaces"),
            ("dsn host=h password='Kv7 \\' escaped' user=u", "Kv7 \\' escaped"),
            ("dsn host=h password='Kv8 unterminated", "Kv8 unterminated"),
            ("PGPASSWORD=Env9Secret psql", "Env9Secret"),
            ('{"dsn": "host=h password=Json10Secret"}', "Json10Secret"),
        ],
    )
    def test_messages(self, text: str, secret: str) -> None:
        cleaned = sanitize(text)
        assert secret not in cleaned
        assert "***" in cleaned

    def test_json_stays_json(self) -> None:
        import json

        text = json.dumps({"a": "host=h password=JsonSecret", "b": 1})
        assert json.loads(sanitize(text)) == {"a": "host=h password=***", "b": 1}

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE users SET password = 'x' WHERE id = 1",
            "UPDATE users SET password = crypt('x', gen_salt('bf'))",
            "ALTER TABLE users ADD COLUMN password text",
            "SELECT * FROM users WHERE password=$1",
        ],
    )
    def test_documents_keep_sql_that_is_not_a_connection_string(self, sql: str) -> None:
        assert sanitize(sql, Context.DOCUMENT) == sql

    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT dblink_connect('host=db port=5432 password=Doc1Secret')",
            "SELECT dblink_connect('password=Doc2Secret host=db')",
            "SELECT dblink_exec('postgresql://u:Doc3Secret@db/x', 'DELETE FROM t')",
            "SELECT dblink_connect('dbname=x user=u password=''Doc4 Secret''')",
            "SELECT * FROM dblink('host=db password=Doc5Secret', 'SELECT 1')",
            "SELECT dblink_connect('c1', 'user=u password=Doc6Secret')",
            "CALL connect(E'sslmode=require password=Doc7Secret')",
            "SELECT x FROM dblink('password=Doc8Secret dbname=shop', 'SELECT 1')",
        ],
    )
    def test_documents_hide_connection_strings_in_sql(self, sql: str) -> None:
        assert "Secret" not in sanitize(sql, Context.DOCUMENT)


@dataclass(frozen=True)
class _Inner:
    text: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class _Outer:
    inner: _Inner
    severity: Severity
    extra: dict[str, str]


def test_sanitize_strings_walks_dataclasses_documents_and_keeps_enums() -> None:
    value = _Outer(
        _Inner("postgresql://u:Walk1Secret@h", ("host=h password=Walk2Secret",)),
        Severity.ERROR,
        {"k": "postgresql://u:Walk3Secret@h"},
    )
    cleaned = sanitize_strings(value)
    assert "Secret" not in repr(cleaned)
    assert cleaned.severity is Severity.ERROR
    finding = Finding(rule=Rule.NOT_EXECUTED, severity=Severity.WARNING, statement=1, message="m")
    assert sanitize_strings(finding) == finding


def test_log_records_are_sanitized(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent
    remember_dsn("host=h password=LogKnownSecret")
    logger = logging.getLogger("kopf.objects")
    with caplog.at_level(logging.INFO):
        logger.info("cannot sample %s: %s", "clone", "postgresql://u:LogUriSecret@h/db")
        logger.warning("password is LogKnownSecret")
        try:
            raise RuntimeError("host=h password=LogTraceSecret")
        except RuntimeError:
            logger.exception("failed")
    text = caplog.text
    assert "LogUriSecret" not in text
    assert "LogKnownSecret" not in text
    assert "LogTraceSecret" not in text
    assert "cannot sample clone" in text


def test_status_patches_and_events_are_sanitized(monkeypatch: pytest.MonkeyPatch) -> None:
    import kopf

    from pgparity.handlers import common

    new = {
        "message": "cannot connect to postgresql://u:StatusSecret@h/db",
        "conditions": [{"type": "Ready", "message": "host=h port=1 password=CondSecret"}],
        "statements": [{"sql": "UPDATE users SET password = 'shown'"}],
    }
    text = repr(common.status_changes({}, new))
    assert "StatusSecret" not in text
    assert "CondSecret" not in text
    assert "password = 'shown'" in text
    events: list[str] = []
    # A boundary stand-in: posting an Event needs a running operator and API server (the kube
    # tier posts real ones); this checks what the handler hands to kopf.
    monkeypatch.setattr(kopf, "event", lambda *_, message, **__: events.append(message))
    common.announce({}, {}, {"phase": "Failed"}, reason="r", message="dsn password=EventSecret")
    assert events == ["dsn password=***"]
