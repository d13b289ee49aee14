"""Events with ``follows`` on a real server: a follower posted before its leader waits for it (and is
evaluated after it), survives a kill -9 while waiting, and is evaluated anyway after FOLLOW_WAIT."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

from tideflow.client import SyncClient
from tideflow.schemas.events import Event
from tideflow.server.triggers.follows import FOLLOW_WAIT
from tideflow.testing import ServerProcess

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0)
RESOURCE = {"tideflow.resource.id": "follows.thing"}


def _event(name: str, seconds: float, follows: uuid.UUID | None = None) -> Event:
    return Event(
        event=name,
        occurred=T0 + dt.timedelta(seconds=seconds),
        resource=RESOURCE,  # type: ignore[arg-type]
        follows=follows,
    )


def _wait(what: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout} s")


def _gate(client: SyncClient) -> uuid.UUID:
    # Fires only when the leader (``after``) was evaluated before the follower (``expect``).
    automation = client.create_automation(
        {"name": "leader-then-follower",
         "trigger": {"type": "event", "after": ["x.leader"], "expect": ["x.follower"],
                     "match": {"tideflow.resource.id": "follows.thing"}, "within": 3600},
         "actions": [{"type": "do-nothing"}]}
    )  # fmt: skip
    return automation.id


def test_follower_posted_first_waits_for_its_leader_and_fires_once(database_url: str) -> None:
    with ServerProcess(database_url) as server, SyncClient(server.api_url) as client:
        auto = _gate(client)
        leader = _event("x.leader", 0)
        follower = _event("x.follower", 1, follows=leader.id)
        client.emit_events([follower])
        time.sleep(1.0)  # without the wait, the engine would evaluate the follower alone here
        assert client.automation_history(auto) == []
        client.emit_events([leader])
        [firing] = _wait(lambda: client.automation_history(auto), 10)
        assert firing.triggering_event_id == follower.id
        time.sleep(1.0)
        assert len(client.automation_history(auto)) == 1


def test_parked_follower_survives_a_kill_and_fires_once_after_restart(database_url: str) -> None:
    with ServerProcess(database_url) as server:
        with SyncClient(server.api_url) as client:
            auto = _gate(client)
            leader = _event("x.leader", 0)
            follower = _event("x.follower", 1, follows=leader.id)
            client.emit_events([follower])
            # Later events move the checkpoint (written every 2 s) while the follower waits.
            client.emit_events([_event("x.other", 2)])
            time.sleep(3.0)
            client.emit_events([_event("x.other", 3)])
            time.sleep(0.5)
        server.kill()
        server.start()
        with SyncClient(server.api_url) as client:
            client.emit_events([leader])
            [firing] = _wait(lambda: client.automation_history(auto), 10)
            assert firing.triggering_event_id == follower.id
            time.sleep(1.0)
            assert len(client.automation_history(auto)) == 1


def test_follower_whose_leader_never_comes_is_evaluated_after_the_wait(database_url: str) -> None:
    with ServerProcess(database_url) as server, SyncClient(server.api_url) as client:
        auto = client.create_automation(
            {"name": "follower", "trigger": {"type": "event", "expect": ["x.follower"]},
             "actions": [{"type": "do-nothing"}]}
        ).id  # fmt: skip
        posted = time.monotonic()
        client.emit_events([_event("x.follower", 1, follows=uuid.uuid4())])
        time.sleep(FOLLOW_WAIT.total_seconds() / 2)
        assert client.automation_history(auto) == []
        [firing] = _wait(lambda: client.automation_history(auto), FOLLOW_WAIT.total_seconds() + 10)
        assert time.monotonic() - posted >= FOLLOW_WAIT.total_seconds()
        assert firing.triggering_event_id is not None


def test_a_follower_of_a_runs_state_id_is_ordered_after_its_event_without_waiting(
    database_url: str,
) -> None:
    # Prefect's state events carry the state's id, so a ported hook writes follows=state.id; here
    # that state's event has its own id, and the follower is ordered after it at once instead of
    # waiting FOLLOW_WAIT for an event that never comes. Once naming the run, once not.
    from tideflow.schemas import FlowRunCreate
    from tideflow.schemas.states import Completed, Running

    with ServerProcess(database_url) as server, SyncClient(server.api_url) as client:
        automation = client.create_automation(
            {"name": "after-the-run", "trigger": {
                "type": "event", "after": ["tideflow.flow-run.Completed"], "expect": ["hook.done"],
                "for_each": ["tideflow.resource.id"], "within": 3600},
             "actions": [{"type": "do-nothing"}]}
        )  # fmt: skip
        for names_the_run in (True, False):
            run = client.create_flow_run(FlowRunCreate(flow_name="hooked"))
            client.set_flow_run_state(run.id, Running())
            done = client.set_flow_run_state(run.id, Completed()).state
            assert done is not None
            resource = f"tideflow.flow-run.{run.id}"
            related = [{"tideflow.resource.id": resource, "tideflow.resource.role": "flow-run"}]
            follower = Event(
                event="hook.done",
                resource={"tideflow.resource.id": resource},  # type: ignore[arg-type]
                related=related if names_the_run else [],  # type: ignore[arg-type]
                follows=done.id,
            )
            sent = time.monotonic()
            client.emit_events([follower])
            firings = _wait(
                lambda f=follower: [
                    h for h in client.automation_history(automation.id)
                    if h.triggering_event_id == f.id
                ],
                FOLLOW_WAIT.total_seconds() * 3,
            )  # fmt: skip
            waited = time.monotonic() - sent
            assert len(firings) == 1
            assert waited < FOLLOW_WAIT.total_seconds() * 0.6, f"the follower waited {waited:.1f} s"
        assert "for the event it follows" not in server.output_tail(100_000)
