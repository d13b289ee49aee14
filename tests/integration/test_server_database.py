"""`tideflow server database upgrade|downgrade|reset` on SQLite and PostgreSQL: revisions before and
after, confirmation (yes, no, no stdin), data really dropped by reset, readable errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from tideflow.cli.main import app
from tideflow.server.storage import mask_url, migrate
from tideflow.server.storage.migrate import alembic_config
from tideflow.testing import in_process_client

runner = CliRunner()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def revision(url: str) -> str | None:
    return asyncio.run(migrate.current(url))


def masked(url: str) -> str:
    return mask_url(url)


async def _add_flow_and_count(url: str) -> int:
    async with in_process_client(url) as client:
        await client.create_flow("kept-until-reset")
        return len(await client.read_flows())


async def _count_flows(url: str) -> int:
    async with in_process_client(url) as client:
        return len(await client.read_flows())


def test_upgrade_downgrade_reset_cycle(database_url: str) -> None:
    head = head_revision()
    result = runner.invoke(app, ["server", "database", "upgrade", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"upgrade: {masked(database_url)} revision (empty) -> {head}"
    assert revision(database_url) == head

    again = runner.invoke(app, ["server", "database", "upgrade", "--database-url", database_url])
    assert again.exit_code == 0 and again.stdout.strip().endswith(f"revision {head} -> {head}")

    assert asyncio.run(_add_flow_and_count(database_url)) == 1
    reset = runner.invoke(
        app, ["server", "database", "reset", "--database-url", database_url, "--yes"]
    )
    assert reset.exit_code == 0, reset.output
    assert reset.stdout.strip() == f"reset: {masked(database_url)} revision {head} -> {head}"
    assert asyncio.run(_count_flows(database_url)) == 0

    down = runner.invoke(
        app, ["server", "database", "downgrade", "--database-url", database_url], input="y\n"
    )
    assert down.exit_code == 0, down.output
    assert "Downgrade" in down.stdout and "[y/N]" in down.stdout
    assert down.stdout.strip().endswith(
        f"downgrade: {masked(database_url)} revision {head} -> (empty)"
    )
    assert revision(database_url) is None


def test_destructive_commands_need_a_yes(database_url: str) -> None:
    runner.invoke(app, ["server", "database", "upgrade", "--database-url", database_url])
    head = head_revision()
    for command in ("reset", "downgrade"):
        no_stdin = runner.invoke(
            app, ["server", "database", command, "--database-url", database_url]
        )
        assert no_stdin.exit_code == 1
        assert (
            no_stdin.stderr.strip()
            == "Error: no answer on stdin: pass --yes to go ahead without asking"
        )
        declined = runner.invoke(
            app, ["server", "database", command, "--database-url", database_url], input="n\n"
        )
        assert declined.exit_code == 1
        assert declined.stderr.strip() == "Error: aborted; the database was not changed"
    assert revision(database_url) == head


def test_default_database_is_the_settings_one() -> None:
    home = os.environ["TIDEFLOW_HOME"]
    url = f"sqlite+aiosqlite:///{home}/tideflow.db"
    result = subprocess.run(
        [sys.executable, "-m", "tideflow", "server", "database", "upgrade"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"upgrade: {url} revision (empty) -> {head_revision()}"
    # A real subprocess with no stdin refuses a reset.
    refused = subprocess.run(
        [sys.executable, "-m", "tideflow", "server", "database", "reset"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "Error: no answer on stdin: pass --yes to go ahead without asking"
    )
    assert revision(url) == head_revision()


def test_unknown_revision_is_one_line(database_url: str) -> None:
    result = runner.invoke(
        app, ["server", "database", "upgrade", "--database-url", database_url, "--revision", "nope"]
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot upgrade the database")
    assert "'nope'" in lines[0]


def test_unreachable_database_masks_the_password() -> None:
    url = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:1/nowhere"
    result = runner.invoke(app, ["server", "database", "upgrade", "--database-url", url])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "postgresql+asyncpg://postgres:***@127.0.0.1:1/nowhere" in lines[0]
    assert "s3cret" not in result.output


def test_unsupported_database_url() -> None:
    result = runner.invoke(app, ["server", "database", "upgrade", "--database-url", "mysql://x/y"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: unsupported database URL 'mysql://x/y'")
