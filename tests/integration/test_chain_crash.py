"""Crash tests: the server dies abruptly (os._exit, like kill -9) after the upstream Completed, at
named points around the downstream run's creation; after a restart the downstream run exists
exactly once and runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from chain_helpers import ready, runs_of, serving, wait_for

from tideflow.client import SyncClient
from tideflow.testing import ServerProcess, free_port

UP = "upstream-flow/upstream_deployment"
DOWN = "downstream-flow/downstream_deployment"


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("point", ["after-firing-commit", "before-action-commit"])
def test_downstream_run_created_exactly_once_across_a_crash(tmp_path: Path, point: str) -> None:
    home, port = tmp_path / "server", free_port()
    first = ServerProcess(home=home, port=port, env={"TIDEFLOW_TEST_CRASH_AT": point})
    first.start()
    second = ServerProcess(home=home, port=port)
    try:
        with serving("event_driven_deployments.py", first.api_url, log=tmp_path / "serve.log"):
            with SyncClient(first.api_url) as client:
                up, down = ready(client, UP), ready(client, DOWN)
                client.create_flow_run_from_deployment(up.id)
            assert first.proc is not None
            assert first.proc.wait(timeout=60) == 17  # died at the named point
            db = home / "tideflow.db"
            runs = _rows(
                db, f"SELECT count(*) FROM flow_runs WHERE deployment_id = '{down.id.hex}'"
            )
            actions = _rows(db, "SELECT status FROM automation_actions")
            if point == "before-action-commit":
                # Died inside the transaction that records the firing and creates the run: nothing
                # of it is stored; the replay after the restart must fire again.
                assert (runs, actions) == ([(0,)], [])
            else:
                # Died right after that commit: the firing and the run are stored together.
                assert (runs, actions) == ([(1,)], [("executed",)])

            second.start()  # the same database and port; the serve() process reconnects
            with SyncClient(second.api_url) as client:
                [run] = wait_for(
                    "the downstream run", lambda: runs_of(client, down.id, "COMPLETED")
                )
                assert len(runs_of(client, down.id)) == 1
                [auto] = [a for a in client.read_automations()
                          if a.owner_resource == f"tideflow.deployment.{down.id}"]  # fmt: skip
                [firing] = client.automation_history(auto.id)
                [action] = firing.actions
                assert (action.status, action.flow_run_id) == ("executed", run.id)
    finally:
        second.stop()
        first.stop()
