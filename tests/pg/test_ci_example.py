"""The CI example (examples/ci/): the shell steps of its GitHub Actions workflow, run as the
runner runs them (bash, the step's environment) in a git repository with a pull request's
changes: finding the changed migrations, validating them on a staging DSN or a local primary +
replica, the comment body (one marker, a summary table, each report), the JUnit files, and the
exit status that fails the check. Posting the comment through GitHub's API is the one step not
run here (no network)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg import conninfo

from fix_pg import PgDatabase

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "ci" / "pgparity.yml"
SCRIPT = ROOT / "examples" / "ci" / "validate-migrations.sh"
MARKER = "<!-- pgparity-report -->"
SCHEMA = """CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, g % 100 FROM generate_series(1, 5000) g;
"""
GOOD = "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS note text;\n"
BAD = "ALTER TABLE accounts ADD COLUMN flag boolean;\nALTER TABLE no_such_table ADD c int;\n"


def step(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    found: dict[str, Any] = next(
        s for s in workflow["jobs"]["validate"]["steps"] if s.get("name") == name
    )
    return found


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose pull request (branch pr, base main) adds and changes migrations."""
    repo = tmp_path / "repo"
    (repo / "db" / "migrations").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    (repo / "db" / "schema.sql").write_text(SCHEMA)
    (repo / "db" / "migrations" / "001_old.sql").write_text("SELECT 1;\n")
    (repo / "db" / "migrations" / "002_gone.sql").write_text("SELECT 2;\n")
    (repo / "db" / "migrations" / "003_edited.sql").write_text("SELECT 3;\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "remote", "add", "origin", str(repo))
    git(repo, "fetch", "-q", "origin")
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "db" / "migrations" / "002_gone.sql").unlink()
    (repo / "db" / "migrations" / "003_edited.sql").write_text(GOOD)
    (repo / "db" / "migrations" / "004 new bad.sql").write_text(BAD)
    (repo / "db" / "migrations" / "notes.txt").write_text("not a migration\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pr")
    (repo / "examples" / "ci").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "examples" / "ci" / SCRIPT.name)
    return repo


def run_step(
    repo: Path, name: str, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A step's ``run`` as the runner runs it: bash -e -o pipefail, the step's environment."""
    found = step(name)
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MIGRATIONS": "db/migrations",
        "SCHEMA": "db/schema.sql",
        "GITHUB_BASE_REF": "main",
        "GITHUB_OUTPUT": str(repo / "github-output"),
        **env,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", found["run"]],
        cwd=repo,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_changed_migrations_are_the_added_and_edited_sql_files(repo: Path) -> None:
    done = run_step(repo, "Changed migrations", {})
    assert done.returncode == 0, done.stderr
    assert (repo / "changed.txt").read_text().splitlines() == [
        "db/migrations/003_edited.sql",
        "db/migrations/004 new bad.sql",
    ]
    assert (repo / "github-output").read_text() == "count=2\n"


def validate_env(**env: str) -> dict[str, str]:
    """The Validate step's environment, ``${{ … }}`` filled in as GitHub would."""
    declared = step("Validate")["env"]
    return {
        "PGPARITY_DSN": env.get("dsn", ""),
        "PGPARITY_REPLICA_DSN": env.get("replica_dsn", ""),
        "PGPARITY_SEED_SQL": "db/schema.sql",
        "PGPARITY_ARGS": declared["PGPARITY_ARGS"],
        **{k: v for k, v in env.items() if k.isupper()},
    }


def check_outputs(out: Path) -> str:
    comment = (out / "comment.md").read_text()
    assert comment.startswith(MARKER + "\n")
    assert "| `db/migrations/003_edited.sql` | ✅ VALIDATED |" in comment
    assert "| `db/migrations/004 new bad.sql` | ❌ REJECTED |" in comment
    assert comment.count("<details>") == 2
    assert "no_such_table" in comment  # the rejected one's finding, in its report
    junit = {path.name: ET.parse(path).getroot() for path in (out / "junit").glob("*.xml")}
    assert sorted(junit) == ["001-003_edited.xml", "002-004 new bad.xml"]
    assert int(junit["001-003_edited.xml"].get("failures", "0")) == 0
    bad = junit["002-004 new bad.xml"]
    assert int(bad.get("failures", "0")) + int(bad.get("errors", "0")) >= 1
    assert len(list((out / "json").glob("*.json"))) == 2
    return comment


def test_on_a_local_primary_and_replica_seeded_from_the_schema(repo: Path, workdir: Path) -> None:
    assert run_step(repo, "Changed migrations", {}).returncode == 0
    done = run_step(repo, "Validate", validate_env(PGPARITY_WORKDIR=str(workdir)))
    assert done.returncode == 1, done.stderr  # REJECTED fails the check
    comment = check_outputs(repo / "pgparity-out")
    assert "dry-run on a local primary + replica seeded from `db/schema.sql`" in comment
    assert not list(workdir.glob("pgparity-cluster-*"))  # the local clusters are gone


def test_on_a_staging_clone_never_showing_its_dsn(repo: Path, pg_db: PgDatabase) -> None:
    pg_db.execute(SCHEMA)
    assert run_step(repo, "Changed migrations", {}).returncode == 0
    done = run_step(repo, "Validate", validate_env(dsn=pg_db.dsn, replica_dsn=pg_db.replica_dsn))
    assert done.returncode == 1, done.stderr
    comment = check_outputs(repo / "pgparity-out")
    assert "dry-run on the staging clone" in comment
    password = conninfo.conninfo_to_dict(pg_db.dsn).get("password")
    texts = [done.stdout, done.stderr] + [
        path.read_text() for path in (repo / "pgparity-out").rglob("*") if path.is_file()
    ]
    for text in texts:
        assert pg_db.dsn not in text
        if password:
            assert str(password) not in text


def script(out: Path, *migrations: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        **env,
    }
    return subprocess.run(
        [str(SCRIPT), str(out), *migrations],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_no_verdict_outranks_drift_outranks_rejected(tmp_path: Path, pg_db: PgDatabase) -> None:
    pg_db.execute(SCHEMA)
    good, bad = tmp_path / "good.sql", tmp_path / "bad.sql"
    good.write_text(GOOD)
    bad.write_text(BAD)
    rejected = script(tmp_path / "a", str(good), str(bad), PGPARITY_DSN=pg_db.dsn)
    assert rejected.returncode == 1, rejected.stderr
    drift = "--expect-digest sha256:" + "0" * 64
    drifted = script(
        tmp_path / "b", str(bad), str(good), PGPARITY_DSN=pg_db.dsn, PGPARITY_ARGS=drift
    )
    assert drifted.returncode == 3, drifted.stderr
    assert "❌ REJECTED (schema drift)" in (tmp_path / "b" / "comment.md").read_text()
    missing = script(
        tmp_path / "c", str(bad), str(tmp_path / "missing.sql"), str(good), PGPARITY_DSN=pg_db.dsn
    )
    assert missing.returncode == 2, missing.stderr
    comment = (tmp_path / "c" / "comment.md").read_text()
    assert "⚠️ not validated (exit 2)" in comment
    assert "missing.sql" in comment  # pgparity's one-line error, quoted
    assert len(list((tmp_path / "c" / "junit").glob("*.xml"))) == 2


def test_nothing_to_validate_passes(tmp_path: Path) -> None:
    done = script(tmp_path / "out", PGPARITY_SEED_SQL="schema.sql")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "comment.md").read_text() == (
        f"{MARKER}\n## pgparity: 0 migration(s) dry-run on a local primary + replica seeded "
        "from `schema.sql`\n\nNo migration changed.\n"
    )


def test_without_a_target_it_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGPARITY_")}
    done = subprocess.run(
        [str(SCRIPT), str(tmp_path / "out"), "m.sql"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "set PGPARITY_DSN (a staging clone) or PGPARITY_SEED_SQL (a local run)" in done.stderr


def test_a_comment_too_long_for_github_is_cut_not_lost(tmp_path: Path, pg_db: PgDatabase) -> None:
    pg_db.execute(SCHEMA)
    migration = tmp_path / "m.sql"
    migration.write_text(GOOD)
    out = tmp_path / "out"
    done = script(out, str(migration), PGPARITY_DSN=pg_db.dsn, PGPARITY_COMMENT_LIMIT="600")
    assert done.returncode == 0, done.stderr
    comment = (out / "comment.md").read_text()
    full = (out / "comment.full.md").read_text()
    assert len(full.encode()) > 600
    assert comment.startswith(MARKER)
    assert comment.endswith("the full reports are in the job's artifacts (pgparity-reports).\n")
    assert len(comment.encode()) < 600 + 200
