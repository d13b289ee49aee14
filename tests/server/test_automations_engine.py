"""The trigger engine on a real database: firings, actions exactly once, replay, deadlines, index."""

from __future__ import annotations

import datetime as dt
import logging
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from automation_helpers import T0, event, harness

from tideflow.schemas.events import Event
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage.tables import (
    automation_actions,
    automation_buckets,
    events,
    flow_runs,
)
from tideflow.server.triggers import state as trigger_state
from tideflow.server.triggers.actions import idempotency_key
from tideflow.server.triggers.engine import TriggerEngine
from tideflow.server.triggers.follows import FOLLOW_WAIT

pytestmark = pytest.mark.anyio

COMPLETED = "tideflow.flow-run.Completed"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def chain(deployment_id: UUID, **trigger: object) -> dict[str, object]:
    return {
        "name": "chain",
        "trigger": {"type": "event", "expect": [COMPLETED], **trigger},
        "actions": [{"type": "run-deployment", "deployment_id": str(deployment_id)}],
    }


async def test_event_fires_and_run_deployment_creates_one_linked_run(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment(parameters={"table": "x"})
        auto = await h.create(
            chain(dep.id, match_related={"tideflow.resource.name": "upstream"})
            | {"actions": [{"type": "run-deployment", "deployment_id": str(dep.id),
                            "parameters": {"rows": "{{ event.payload.rows }}"}}]}
        )  # fmt: skip
        up = event(COMPLETED, related=[{"tideflow.resource.id": "tideflow.deployment.x",
                                        "tideflow.resource.role": "deployment",
                                        "tideflow.resource.name": "upstream"}],
                   payload={"rows": 42})  # fmt: skip
        other = event(COMPLETED, related=[{"tideflow.resource.id": "tideflow.deployment.y",
                                           "tideflow.resource.role": "deployment",
                                           "tideflow.resource.name": "elsewhere"}])  # fmt: skip
        await h.emit(up, other)
        await h.engine.run_once()

        firings = await h.firings(auto.id)
        assert [f["triggering_event_id"] for f in firings] == [up.id]
        runs = await h.runs(dep.id)
        assert len(runs) == 1
        run = runs[0]
        assert run["parameters"] == {"table": "x", "rows": 42}  # native int from the template
        assert run["state_type"] == "SCHEDULED"
        assert run["triggering_event_id"] == up.id
        assert run["idempotency_key"] == idempotency_key(auto.id, firings[0]["id"], 0)
        assert run["created_by"] == {"type": "automation", "id": f"tideflow.automation.{auto.id}",
                                     "name": "chain"}  # fmt: skip
        [action] = await h.actions(auto.id)
        assert (action["status"], action["flow_run_id"]) == ("executed", run["id"])
        [triggered] = await h.events_named("tideflow.automation.triggered")
        roles = {
            r["tideflow.resource.role"]: r["tideflow.resource.id"] for r in triggered["related"]
        }
        assert roles == {"automation": f"tideflow.automation.{auto.id}",
                         "triggering-event": f"tideflow.event.{up.id}"}  # fmt: skip
        [executed] = await h.events_named("tideflow.automation.action.executed")
        ids = {r["tideflow.resource.id"] for r in executed["related"]}
        assert f"tideflow.flow-run.{run['id']}" in ids
        assert len(await h.events_named("tideflow.automation.action.triggered")) == 1


async def test_replay_after_restart_creates_nothing_twice(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        auto = await h.create(chain(dep.id))
        first = event(COMPLETED)
        await h.emit(first)
        await h.engine.run_once()
        await h.engine.close()
        # A restarted engine replays everything since its checkpoint (and the overlap before it).
        engine = h.new_engine()
        missed = event(COMPLETED, occurred=T0 + dt.timedelta(seconds=1))
        await h.emit(missed)
        await engine.run_once()
        assert len(await h.firings(auto.id)) == 2
        assert len(await h.runs(dep.id)) == 2
        assert {r["triggering_event_id"] for r in await h.runs(dep.id)} == {first.id, missed.id}


async def test_events_committed_while_no_engine_ran_are_replayed(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        auto = await h.create(chain(dep.id))
        await h.emit(event("tideflow.flow-run.Running"))
        await h.engine.run_once()  # sets the checkpoint
        await h.engine.close()
        # The server "was down": events stored without an engine subscribed to see them.
        stored = event(COMPLETED, occurred=T0 + dt.timedelta(seconds=5))
        await h.emit(stored)
        engine = h.new_engine()
        await engine.run_once()
        assert [f["triggering_event_id"] for f in await h.firings(auto.id)] == [stored.id]
        assert len(await h.runs(dep.id)) == 1


async def test_pending_action_left_by_a_stopped_engine_runs_once_at_start(
    database_url: str,
) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        auto = await h.create(chain(dep.id))
        await h.emit(event(COMPLETED))
        await h.engine.run_once()
        # Roll the world back to "firing committed, action not yet run": what a crash leaves.
        async with h.database.write() as session:
            import sqlalchemy as sa

            await session.execute(sa.delete(flow_runs))
            await session.execute(
                sa.update(automation_actions).values(status="pending", flow_run_id=None)
            )
        await h.engine.close()
        engine = h.new_engine()
        await engine.run_once()
        await engine.run_once()
        assert len(await h.runs(dep.id)) == 1
        [action] = await h.actions(auto.id)
        assert action["status"] == "executed"


async def test_failing_template_fails_the_action_and_creates_nothing(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        auto = await h.create(
            chain(dep.id)
            | {"actions": [{"type": "run-deployment", "deployment_id": str(dep.id),
                            "parameters": {"x": "{{ event.payload.missing.deeper }}"}},
                           {"type": "do-nothing"}]}
        )  # fmt: skip
        await h.emit(event(COMPLETED))
        await h.engine.run_once()
        actions = sorted(await h.actions(auto.id), key=lambda a: a["action_index"])
        assert [a["status"] for a in actions] == ["failed", "executed"]
        assert "parameters.x" in actions[0]["detail"]
        assert await h.runs(dep.id) == []
        [failed] = await h.events_named("tideflow.automation.action.failed")
        assert "parameters.x" in failed["payload"]["reason"]
        # The engine goes on: the next event still fires.
        await h.emit(event(COMPLETED, occurred=T0 + dt.timedelta(seconds=1)))
        await h.engine.run_once()
        assert len(await h.firings(auto.id)) == 2


async def test_unknown_deployment_parameter_fails_with_the_reason(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment(
            parameter_openapi_schema={"type": "object", "properties": {"n": {"type": "integer"}},
                                      "additionalProperties": False}
        )  # fmt: skip
        auto = await h.create(
            chain(dep.id)
            | {"actions": [{"type": "run-deployment", "deployment_id": str(dep.id),
                            "parameters": {"n": "{{ event.payload.n }}"}}]}
        )  # fmt: skip
        await h.emit(event(COMPLETED, payload={"n": "not a number"}))
        await h.engine.run_once()
        [action] = await h.actions(auto.id)
        assert action["status"] == "failed" and "n" in action["detail"]
        assert await h.runs(dep.id) == []


async def test_inferred_deployment_and_schedule_after(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        await h.create(
            {"name": "again", "trigger": {"type": "event", "expect": ["custom.go"]},
             "actions": [{"type": "run-deployment", "source": "inferred", "schedule_after": 60}]}
        )  # fmt: skip
        await h.emit(event("custom.go", related=[{"tideflow.resource.id": f"tideflow.deployment.{dep.id}",
                                                  "tideflow.resource.role": "deployment"}]))  # fmt: skip
        await h.engine.run_once()
        [run] = await h.runs(dep.id)
        assert run["next_scheduled_start_time"] == T0 + dt.timedelta(seconds=60)


async def test_after_then_expect_in_one_batch_is_evaluated_in_occurred_order(
    database_url: str,
) -> None:
    async with harness(database_url) as h:
        auto = await h.create(
            {"name": "pair", "trigger": {"type": "event", "after": ["a.start"], "expect": ["a.end"],
                                          "for_each": ["tideflow.resource.id"]},
             "actions": [{"type": "do-nothing"}]}
        )  # fmt: skip
        start = event("a.start", occurred=T0)
        end = event("a.end", occurred=T0 + dt.timedelta(seconds=1))
        await h.emit(end, start)  # committed out of order, evaluated in the order they happened
        await h.engine.run_once()
        assert len(await h.firings(auto.id)) == 1


async def test_proactive_deadline_fires_from_the_heap_then_resolves(database_url: str) -> None:
    async with harness(database_url) as h:
        auto = await h.create(
            {"name": "silence", "trigger": {"type": "event", "expect": [COMPLETED],
                                             "posture": "Proactive", "within": 10},
             "actions": [{"type": "do-nothing"}], "actions_on_resolve": [{"type": "do-nothing"}]}
        )  # fmt: skip
        await h.engine.run_once()
        h.clock.advance(9)
        await h.engine.run_once()
        assert await h.firings(auto.id) == []
        h.clock.advance(2)
        await h.engine.run_once()
        [fired] = await h.firings(auto.id)
        assert fired["kind"] == "fired" and fired["occurred"] == T0 + dt.timedelta(seconds=10)
        await h.emit(event(COMPLETED, occurred=h.clock.now))
        await h.engine.run_once()
        kinds = sorted(f["kind"] for f in await h.firings(auto.id))
        assert kinds == ["fired", "resolved"]
        assert len(await h.events_named("tideflow.automation.resolved")) == 1
        assert {a["status"] for a in await h.actions(auto.id)} == {"executed"}


async def test_bucket_state_survives_a_restart(database_url: str) -> None:
    async with harness(database_url) as h:
        auto = await h.create(
            {"name": "two", "trigger": {"type": "event", "expect": ["x.y"], "threshold": 2},
             "actions": [{"type": "do-nothing"}]}
        )  # fmt: skip
        await h.emit(event("x.y"))
        await h.engine.run_once()
        await h.engine.close()
        engine = h.new_engine()
        await engine.run_once()
        state = engine.state_of(auto.id)
        assert state is not None and sum(len(b) for b in state.buckets.values()) == 1
        await h.emit(event("x.y", occurred=T0 + dt.timedelta(seconds=1)))
        await engine.run_once()
        assert len(await h.firings(auto.id)) == 1


async def test_every_event_trigger_stores_no_buckets_and_repeats_fire_once(
    database_url: str,
) -> None:
    # Reactive, threshold 1, no after: nothing is stored per bucket; the firing row (keyed by a
    # firing id derived from the event id) is what keeps a re-evaluated event from firing again.
    async with harness(database_url) as h:
        auto = await h.create(
            {"name": "each", "trigger": {"type": "event", "expect": ["x.y"], "within": 60},
             "actions": [{"type": "do-nothing"}]}
        )  # fmt: skip
        first, second = event("x.y"), event("x.y", occurred=T0 + dt.timedelta(seconds=1))
        await h.emit(first, second)
        await h.engine.run_once()
        assert len(await h.firings(auto.id)) == 2
        assert await h.rows(automation_buckets, automation_buckets.c.automation_id == auto.id) == []
        await h.engine.close()
        engine = h.new_engine()  # replays both events (checkpoint overlap): nothing fires again
        await engine.run_once()
        assert len(await h.firings(auto.id)) == 2
        executed = [a["status"] for a in await h.actions(auto.id)]
        assert executed == ["executed", "executed"]
        assert len(await h.events_named("tideflow.automation.action.executed")) == 2


async def test_crud_updates_the_index_before_later_events(database_url: str) -> None:
    async with harness(database_url) as h:
        await h.engine.run_once()
        auto = await h.create(
            {"name": "n", "trigger": {"type": "event", "expect": ["x.y"]},
             "actions": [{"type": "do-nothing"}]}
        )  # fmt: skip
        await h.emit(event("x.y"))
        await h.engine.run_once()
        assert len(await h.firings(auto.id)) == 1
        async with h.database.write() as session:
            await automation_storage.set_automation_enabled(session, auto.id, False)
        await h.emit(event("x.y", occurred=T0 + dt.timedelta(seconds=1)))
        await h.engine.run_once()
        assert len(await h.firings(auto.id)) == 1
        assert auto.id not in h.engine.index
        async with h.database.write() as session:
            await automation_storage.delete_automation(session, auto.id)
        await h.engine.run_once()
        assert len(h.engine.index) == 0


async def test_candidates_come_from_the_index_not_a_scan(database_url: str) -> None:
    async with harness(database_url) as h:
        for i in range(50):
            await h.create(
                {"name": f"a{i}", "trigger": {"type": "event", "expect": [f"ev.{i}"]},
                 "actions": [{"type": "do-nothing"}]}
            )  # fmt: skip
        await h.create(
            {"name": "wild", "trigger": {"type": "event", "expect": ["ev.*"]},
             "actions": [{"type": "do-nothing"}]}
        )  # fmt: skip
        await h.engine.run_once()
        before = h.engine.evaluated
        await h.emit(event("ev.7"))
        await h.engine.run_once()
        assert h.engine.evaluated - before == 2  # "ev.7" and "ev.*", not all 51


async def test_pause_automation_self_and_change_flow_run_state(database_url: str) -> None:
    from tideflow.schemas import FlowRunCreate
    from tideflow.schemas.states import Running
    from tideflow.server.storage.flow_runs import create_flow_run, read_flow_run

    async with harness(database_url) as h:
        async with h.database.write() as session:
            run, _ = await create_flow_run(session, FlowRunCreate(flow_name="f", state=Running()))
        auto = await h.create(
            {"name": "stopper", "trigger": {"type": "event", "expect": ["too.slow"]},
             "actions": [{"type": "change-flow-run-state", "state": "FAILED",
                          "message": "failed by {{ automation.name }}"},
                         {"type": "pause-automation"}]}
        )  # fmt: skip
        await h.emit(event("too.slow", resource=f"tideflow.flow-run.{run.id}"))
        await h.engine.run_once()
        async with h.database.read() as session:
            after = await read_flow_run(session, run.id)
            stored = await automation_storage.read_automation(session, auto.id)
        assert after is not None and after.state is not None
        assert (after.state_type, after.state.message) == ("FAILED", "failed by stopper")
        assert stored is not None and stored.enabled is False
        await h.engine.run_once()
        assert auto.id not in h.engine.index


async def test_a_thousand_automations_stay_cheap(database_url: str, database_kind: str) -> None:
    if database_kind != "sqlite":
        pytest.skip("one backend is enough for the index check")
    async with harness(database_url) as h:
        engine: TriggerEngine = h.engine
        async with h.database.write() as session:
            from tideflow.schemas.automations import parse_automation

            for i in range(1000):
                await automation_storage.create_automation(session, parse_automation(
                    {"name": f"a{i}", "trigger": {"type": "event", "expect": [f"ev.{i}"]},
                     "actions": [{"type": "do-nothing"}]}
                ))  # fmt: skip
        await engine.run_once()
        assert len(engine.index) == 1000
        before = engine.evaluated
        await h.emit(*(event("ev.unrelated", occurred=T0) for _ in range(100)))
        await engine.run_once()
        assert engine.evaluated == before


class _Hooks:
    """A real local HTTP server recording requests; /moved redirects to another host."""

    def __init__(self) -> None:
        import http.server
        import threading

        received: list[tuple[str, str, dict[str, str], bytes]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append((self.command, self.path, dict(self.headers), body))
                if self.path == "/moved":
                    self.send_response(307)
                    self.send_header("location", "http://other.invalid/hook")
                else:
                    self.send_response(200 if self.path != "/fail" else 500)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_PUT = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_call_webhook_templates_and_refuses_other_host_redirects(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS", "127.0.0.0/8")  # hooks is on loopback

    hooks = _Hooks()
    try:
        async with harness(database_url) as h:
            auto = await h.create(
                {"name": "hook", "trigger": {"type": "event", "expect": ["x.y"]},
                 "actions": [
                     {"type": "call-webhook", "url": f"{hooks.url}/ok", "method": "PUT",
                      "headers": {"x-event": "{{ event.event }}"},
                      "body": {"rows": "{{ event.payload.rows }}", "who": "{{ automation.name }}"}},
                     {"type": "call-webhook", "url": f"{hooks.url}/moved"},
                     {"type": "call-webhook", "url": f"{hooks.url}/fail"},
                 ]}
            )  # fmt: skip
            await h.emit(event("x.y", payload={"rows": 7}))
            await h.engine.run_once()
            actions = sorted(await h.actions(auto.id), key=lambda a: a["action_index"])
            assert [a["status"] for a in actions] == ["executed", "failed", "failed"]
            assert "another host" in actions[1]["detail"] and "500" in actions[2]["detail"]
            method, path, headers, body = hooks.received[0]
            assert (method, path, headers["x-event"]) == ("PUT", "/ok", "x.y")
            assert json.loads(body) == {"rows": 7, "who": "hook"}
            assert len(hooks.received) == 3  # the redirect was not followed
            # A webhook left 'running' by a stopped process is failed at start, never resent.
            async with h.database.write() as session:
                import sqlalchemy as sa

                await session.execute(
                    sa.update(automation_actions)
                    .where(automation_actions.c.action_index == 0)
                    .values(status="running")
                )
            await h.engine.close()
            await h.new_engine().run_once()
            [first] = [a for a in await h.actions(auto.id) if a["action_index"] == 0]
            assert first["status"] == "failed" and "restart" in first["detail"]
            assert len(hooks.received) == 3
    finally:
        hooks.close()


def _follows(name: str, seconds: float, follows: UUID | None = None) -> Event:
    return Event(
        event=name,
        occurred=T0 + dt.timedelta(seconds=seconds),
        resource={"tideflow.resource.id": "tideflow.thing.1"},  # type: ignore[arg-type]
        follows=follows,
    )


GATE = {
    "name": "gate",
    "trigger": {"type": "event", "after": ["x.lead"], "expect": ["x.follow"], "within": 3600},
    "actions": [{"type": "do-nothing"}],
}


async def test_parked_follower_holds_the_checkpoint_until_its_leader_comes(
    database_url: str,
) -> None:
    async with harness(database_url) as h:
        auto = await h.create(GATE)
        await h.emit(_follows("x.before", 0))
        await h.engine.run_once()
        lead = _follows("x.lead", 1)
        follower = _follows("x.follow", 2, follows=lead.id)
        await h.emit(follower)
        await h.engine.run_once()
        await h.emit(_follows("x.later", 3))
        await h.engine.run_once()
        await h.engine.close()  # writes the checkpoint
        async with h.database.read() as session:
            checkpoint = await trigger_state.read_checkpoint(session)
        async with h.database.read() as session:
            stored = await trigger_state.read_received(session, [follower.id])
        assert checkpoint is not None and checkpoint[0] <= stored[follower.id]
        assert await h.firings(auto.id) == []
        # A restarted engine re-reads the parked follower, parks it again, and the leader releases it.
        engine = h.new_engine()
        await engine.run_once()
        assert len(engine.follows) == 1
        await h.emit(lead)
        await engine.run_once()
        assert [f["triggering_event_id"] for f in await h.firings(auto.id)] == [follower.id]
        assert len(engine.follows) == 0


async def test_leader_later_in_the_same_batch_goes_first_and_chains_follow(
    database_url: str,
) -> None:
    async with harness(database_url) as h:
        auto = await h.create(
            {"name": "seq", "trigger": {"type": "sequence", "within": 3600, "triggers": [
                {"type": "event", "expect": ["x.a"]}, {"type": "event", "expect": ["x.b"]},
                {"type": "event", "expect": ["x.c"]}]}, "actions": [{"type": "do-nothing"}]}
        )  # fmt: skip
        a = _follows("x.a", 5)
        b = _follows("x.b", 1, follows=a.id)  # occurred earlier by the clocks, but comes after a
        c = _follows("x.c", 0, follows=b.id)
        await h.emit(c, b, a)
        await h.engine.run_once()
        assert len(await h.firings(auto.id)) == 1


async def test_follower_of_a_lost_leader_is_evaluated_after_the_wait(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(database_url) as h:
        auto = await h.create(
            {"name": "f", "trigger": {"type": "event", "expect": ["x.follow"]},
             "actions": [{"type": "do-nothing"}]}
        )  # fmt: skip
        await h.emit(_follows("x.before", 0))
        await h.engine.run_once()  # a checkpoint exists: storage is asked about the leader
        await h.emit(_follows("x.follow", 1, follows=uuid4()))
        await h.engine.run_once()
        h.clock.advance(FOLLOW_WAIT.total_seconds() - 1)
        await h.engine.run_once()
        assert await h.firings(auto.id) == []
        h.clock.advance(1)
        with caplog.at_level(logging.INFO, logger="tideflow.server.triggers"):
            await h.engine.run_once()
        assert len(await h.firings(auto.id)) == 1
        assert "evaluating it anyway" in caplog.text


async def test_follower_of_a_leader_evaluated_long_ago_is_not_held(database_url: str) -> None:
    async with harness(database_url) as h:
        auto = await h.create(GATE)
        lead = _follows("x.lead", 0)
        await h.emit(lead)
        await h.engine.run_once()
        await h.engine.close()
        engine = h.new_engine()  # remembers no evaluated ids: storage must answer
        # The leader was received long before the checkpoint's replay window.
        async with h.database.write() as session:
            await session.execute(
                sa.update(events).where(events.c.id == lead.id)
                .values(received=T0 - dt.timedelta(hours=1))
            )  # fmt: skip
        await h.emit(_follows("x.follow", 1, follows=lead.id))
        await engine.run_once()
        assert len(engine.follows) == 0
        assert len(await h.firings(auto.id)) == 1


async def test_an_automation_deleted_while_its_firing_commits_costs_one_quiet_line(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        auto = await h.create(chain(dep.id))
        await h.engine.run_once()
        real_commit = h.engine._commit
        calls = 0

        async def delete_first(*args: object, **kwargs: object) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:  # the automation goes away between evaluation and commit
                async with h.database.write() as session:
                    await automation_storage.delete_automation(session, auto.id)
            await real_commit(*args, **kwargs)  # type: ignore[arg-type]

        h.engine._commit = delete_first  # type: ignore[method-assign]
        await h.emit(event(COMPLETED))
        with caplog.at_level(logging.WARNING, logger="tideflow"):
            await h.engine.run_once()
        assert await h.firings(auto.id) == [] and await h.runs(dep.id) == []
        [line] = [r for r in caplog.records if "storing trigger state failed" in r.getMessage()]
        assert "an automation was deleted meanwhile" in line.getMessage()
        assert not line.exc_info  # one line, no traceback
