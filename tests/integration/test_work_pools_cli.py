"""`tideflow work-pool …` and `tideflow work-queue …` as real subprocesses against a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import assert_one_line_error, run_cli

from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path_factory.mktemp("server")) as proc:
        yield proc


def test_work_pool_lifecycle(server: ServerProcess, tmp_path: Path) -> None:
    url = server.api_url
    made = run_cli(url, "work-pool", "create", "cli-pool", "--type", "process")
    assert made.returncode == 0, made.stderr
    assert "tideflow worker start --pool 'cli-pool'" in made.stdout
    listed = run_cli(url, "work-pool", "ls")
    assert "cli-pool" in listed.stdout and "process" in listed.stdout
    assert (
        run_cli(url, "work-pool", "update", "cli-pool", "--concurrency-limit", "3").returncode == 0
    )
    assert run_cli(url, "work-pool", "pause", "cli-pool").returncode == 0
    shown = json.loads(run_cli(url, "work-pool", "inspect", "cli-pool", "--json").stdout)
    assert shown["work_pool"]["is_paused"] is True
    assert shown["work_pool"]["concurrency_limit"] == 3
    assert [q["name"] for q in shown["queues"]] == ["default"] and shown["workers"] == []
    assert run_cli(url, "work-pool", "resume", "cli-pool").returncode == 0
    text = run_cli(url, "work-pool", "inspect", "cli-pool").stdout
    assert "env: object" in text and "stream_output: boolean (default true)" in text
    assert "Workers" in text and "none" in text
    assert run_cli(url, "work-pool", "delete", "cli-pool").returncode == 0
    assert_one_line_error(
        run_cli(url, "work-pool", "inspect", "cli-pool"), "work pool 'cli-pool' not found"
    )


def test_work_pool_errors_are_one_line(server: ServerProcess, tmp_path: Path) -> None:
    url = server.api_url
    assert_one_line_error(
        run_cli(url, "work-pool", "create", "x", "--type", "lambda"),
        "unknown work pool type 'lambda'",
    )
    assert_one_line_error(run_cli(url, "work-pool", "create", "a/b"), "must not contain '/'")
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"job_configuration": {"e": "{{ nope }}"}, "variables": {}}))
    assert_one_line_error(
        run_cli(url, "work-pool", "create", "t", "--base-job-template", str(bad)),
        "declares no 'nope'",
    )
    assert run_cli(url, "work-pool", "create", "dup").returncode == 0
    assert_one_line_error(run_cli(url, "work-pool", "create", "dup"), "already exists")
    assert_one_line_error(run_cli(url, "work-pool", "pause", "ghost"), "'ghost' not found")


def test_work_queue_lifecycle(server: ServerProcess) -> None:
    url = server.api_url
    assert run_cli(url, "work-pool", "create", "qpool").returncode == 0
    made = run_cli(url, "work-queue", "create", "urgent", "--pool", "qpool", "--priority", "1")
    assert made.returncode == 0 and "priority 1" in made.stdout, made.stderr
    assert (
        run_cli(url, "work-queue", "create", "bulk", "-p", "qpool", "--limit", "2").returncode == 0
    )
    upd = run_cli(url, "work-queue", "update", "bulk", "-p", "qpool", "--priority", "9")
    assert upd.returncode == 0, upd.stderr
    assert run_cli(url, "work-queue", "pause", "bulk", "-p", "qpool").returncode == 0
    queues = json.loads(run_cli(url, "work-queue", "ls", "-p", "qpool", "--json").stdout)
    assert [(q["name"], q["priority"], q["is_paused"]) for q in queues] == [
        ("default", 1, False),
        ("urgent", 1, False),
        ("bulk", 9, True),
    ]
    one = json.loads(run_cli(url, "work-queue", "inspect", "bulk", "-p", "qpool").stdout)
    assert one["concurrency_limit"] == 2
    assert run_cli(url, "work-queue", "resume", "bulk", "-p", "qpool").returncode == 0
    assert run_cli(url, "work-queue", "delete", "bulk", "-p", "qpool").returncode == 0
    assert_one_line_error(
        run_cli(url, "work-queue", "delete", "default", "-p", "qpool"), "cannot be deleted"
    )
    assert_one_line_error(
        run_cli(url, "work-queue", "inspect", "bulk", "-p", "qpool"), "no queue named 'bulk'"
    )
    assert_one_line_error(run_cli(url, "work-queue", "ls", "-p", "ghost"), "'ghost' not found")
