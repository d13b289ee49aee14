"""Background task runs in storage (ADR 0005), on SQLite and PostgreSQL: create (idempotent by id),
the offered backlog, the compare-and-set claim (exactly one of many claimants wins), heartbeats, and
handing back a dead worker's runs (Scheduled again, then Crashed past the redelivery limit)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest

from tideflow.schemas import FlowRunCreate
from tideflow.schemas import states as S
from tideflow.schemas.events import EventFilter
from tideflow.schemas.task_runs import TaskRunReport
from tideflow.schemas.task_workers import TaskRunCreate
from tideflow.server.storage import Conflict, Database, NotFound
from tideflow.server.storage import events as events_storage
from tideflow.server.storage import task_workers as storage
from tideflow.server.storage.flow_runs import create_flow_run
from tideflow.server.storage.migrate import upgrade_engine
from tideflow.server.storage.task_runs import read_task_run, record_task_run_reports

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2030, 1, 10, tzinfo=dt.UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade_engine(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


async def _create(db: Database, task_name: str = "add", **params: object) -> uuid.UUID:
    body = TaskRunCreate(
        id=uuid.uuid4(), name=f"{task_name}-x", task_name=task_name, parameters=params
    )
    async with db.write() as session:
        run, created = await storage.create_task_run(session, body, T0)
    assert created and run.state is not None and run.state.name == "Scheduled"
    return run.id


async def _flow_run(db: Database) -> uuid.UUID:
    async with db.write() as session:
        run, _ = await create_flow_run(session, FlowRunCreate(flow_name="f", state=S.Running()))
    return run.id


async def _claim(db: Database, run_id: uuid.UUID, worker: uuid.UUID, now: dt.datetime = T0):  # type: ignore[no-untyped-def]
    async with db.read() as session:
        run = await read_task_run(session, run_id)
    assert run is not None and run.state is not None
    async with db.write() as session:
        return await storage.claim_task_run(session, run_id, run.state.id, worker, now)


async def test_create_is_idempotent_by_id_and_emits_the_scheduled_event(db: Database) -> None:
    body = TaskRunCreate(id=uuid.uuid4(), name="add-1", task_name="add", parameters={"x": 1})
    async with db.write() as session:
        first, created = await storage.create_task_run(session, body, T0)
    async with db.write() as session:
        again, created_again = await storage.create_task_run(session, body, T0)
    assert created and not created_again
    assert again.id == first.id and again.state == first.state and again.parameters == {"x": 1}
    async with db.read() as session:
        page = await events_storage.read_events(
            session, EventFilter(event_prefixes=["tideflow.task-run."])
        )
    names = [e.event for e in page.events if e.resource.id == f"tideflow.task-run.{body.id}"]
    assert names == ["tideflow.task-run.Scheduled"]


async def test_backlog_lists_only_waiting_runs_of_the_named_tasks(db: Database) -> None:
    a = await _create(db, "add")
    b = await _create(db, "mul")
    claimed = await _create(db, "add")
    assert (await _claim(db, claimed, uuid.uuid4())).claimed
    async with db.read() as session:
        add_runs = await storage.read_offerable_task_runs(session, ["add"])
        both = await storage.read_offerable_task_runs(session, ["add", "mul"])
    assert [r.id for r in add_runs] == [a]
    assert {r.id for r in both} == {a, b}


async def test_claim_is_a_compare_and_set_only_one_of_many_wins(db: Database) -> None:
    run_id = await _create(db)
    workers = [uuid.uuid4() for _ in range(8)]
    results = await asyncio.gather(*(_claim(db, run_id, w) for w in workers))
    winners = [r for r in results if r.claimed]
    assert len(winners) == 1
    assert all("not the offered state" in (r.reason or "") for r in results if not r.claimed)
    run = winners[0].task_run
    assert run is not None and run.state is not None
    assert run.state.name == "Pending"
    assert run.state.details.model_extra["worker_id"] in {str(w) for w in workers}
    async with db.read() as session:
        page = await events_storage.read_events(
            session, EventFilter(event_prefixes=["tideflow.task-run."])
        )
    names = sorted(e.event for e in page.events if e.resource.id == f"tideflow.task-run.{run_id}")
    assert names == ["tideflow.task-run.Pending", "tideflow.task-run.Scheduled"]  # one claim event


async def test_a_stale_offer_cannot_be_claimed(db: Database) -> None:
    run_id = await _create(db)
    async with db.read() as session:
        offered = await read_task_run(session, run_id)
    assert offered is not None and offered.state is not None
    worker = uuid.uuid4()
    assert (await _claim(db, run_id, worker)).claimed
    async with db.write() as session:
        await storage.release_task_runs(session, max_redeliveries=3, now=T0, worker_id=worker)
    # Scheduled again, but in a new state: the old offer's state id no longer claims it.
    async with db.write() as session:
        late = await storage.claim_task_run(session, run_id, offered.state.id, uuid.uuid4(), T0)
    assert not late.claimed
    assert (await _claim(db, run_id, uuid.uuid4())).claimed


async def test_a_dead_workers_runs_go_back_then_crash_past_the_limit(db: Database) -> None:
    run_id = await _create(db)
    other = await _create(db)
    bystander = uuid.uuid4()
    assert (await _claim(db, other, bystander)).claimed
    for delivery in range(1, 4):  # max_redeliveries=2: delivered 3 times in all
        dead = uuid.uuid4()
        assert (await _claim(db, run_id, dead)).claimed
        async with db.write() as session:
            again = await storage.release_task_runs(
                session, max_redeliveries=2, now=T0, worker_id=dead
            )
        async with db.read() as session:
            run = await read_task_run(session, run_id)
        assert run is not None and run.state is not None
        if delivery <= 2:
            assert [r.id for r in again] == [run_id]
            assert run.state.name == "Scheduled"
            assert f"redelivery {delivery} of 2" in (run.state.message or "")
        else:
            assert again == []
            assert run.state.name == "Crashed"
            assert "delivered 3 times" in (run.state.message or "")
            assert "TIDEFLOW_TASK_WORKERS_MAX_REDELIVERIES=2" in (run.state.message or "")
    async with db.read() as session:
        untouched = await read_task_run(session, other)
    assert untouched is not None and untouched.state is not None
    assert untouched.state.name == "Pending"  # another worker's run is not handed back


async def test_heartbeats_keep_claims_silence_hands_them_back(db: Database) -> None:
    alive, silent = uuid.uuid4(), uuid.uuid4()
    kept = await _create(db)
    lost = await _create(db)
    assert (await _claim(db, kept, alive, T0)).claimed
    assert (await _claim(db, lost, silent, T0)).claimed
    later = T0 + dt.timedelta(seconds=60)
    async with db.write() as session:
        await storage.heartbeat_task_runs(session, alive, [kept, lost], later)  # not its run: no-op
    async with db.write() as session:
        again = await storage.release_task_runs(
            session, max_redeliveries=3, now=later, silent_since=later - dt.timedelta(seconds=30)
        )
    assert [r.id for r in again] == [lost]


async def test_a_run_waiting_to_retry_in_a_dead_worker_is_handed_back(db: Database) -> None:
    run_id = await _create(db)
    dead = uuid.uuid4()
    assert (await _claim(db, run_id, dead)).claimed
    report = TaskRunReport(
        id=run_id,
        name="add-x",
        task_name="add",
        run_count=1,
        states=[S.Running(), S.AwaitingRetry(scheduled_time=T0 + dt.timedelta(seconds=5))],
    )
    async with db.write() as session:
        assert (await record_task_run_reports(session, [report])).accepted == 2
    async with db.write() as session:
        again = await storage.release_task_runs(session, max_redeliveries=3, now=T0, worker_id=dead)
    assert [r.id for r in again] == [run_id]
    assert again[0].state is not None and again[0].state.name == "Scheduled"


async def test_concurrent_creates_of_one_id_store_one_run(db: Database) -> None:
    body = TaskRunCreate(id=uuid.uuid4(), name="add-1", task_name="add")

    async def create() -> bool:
        async with db.write() as session:
            _, created = await storage.create_task_run(session, body, T0)
        return created

    assert sorted(await asyncio.gather(*(create() for _ in range(6)))) == [False] * 5 + [True]


async def test_cancel_an_unclaimed_run_at_once_a_claimed_one_through_its_worker(
    db: Database,
) -> None:
    waiting = await _create(db)
    held = await _create(db)
    worker = uuid.uuid4()
    assert (await _claim(db, held, worker)).claimed
    async with db.write() as session:
        run, holder = await storage.cancel_task_run(session, waiting, T0)
    assert run.state is not None and run.state.name == "Cancelled" and holder is None
    assert not (await _claim(db, waiting, uuid.uuid4())).claimed  # it never starts
    async with db.write() as session:
        run, holder = await storage.cancel_task_run(session, held, T0)
        again, holder_again = await storage.cancel_task_run(session, held, T0)  # a repeat: same
    assert run.state is not None and run.state.name == "Cancelling" and holder == worker
    assert again.state == run.state and holder_again == worker
    async with db.write() as session:  # its worker's heartbeat is answered with the cancel
        assert await storage.heartbeat_task_runs(session, worker, [held], T0) == [held]
    with pytest.raises(Conflict, match="already Cancelled"):
        async with db.write() as session:
            await storage.cancel_task_run(session, waiting, T0)
    with pytest.raises(NotFound):
        async with db.write() as session:
            await storage.cancel_task_run(session, uuid.uuid4(), T0)
    async with db.write() as session:  # the worker died before it stopped the run: Cancelled
        await storage.release_task_runs(session, max_redeliveries=5, now=T0, worker_id=worker)
        stopped = await read_task_run(session, held)
    assert stopped is not None and stopped.state is not None
    assert stopped.state.name == "Cancelled" and "being cancelled" in (stopped.state.message or "")


async def test_a_task_run_of_a_flow_run_is_not_cancelled_here(db: Database) -> None:
    flow_run_id = await _flow_run(db)
    report = TaskRunReport(
        id=uuid.uuid4(), name="t-0", task_name="t", flow_run_id=flow_run_id, states=[S.Running()]
    )
    async with db.write() as session:
        await record_task_run_reports(session, [report])
    with pytest.raises(Conflict, match="cancel the flow run"):
        async with db.write() as session:
            await storage.cancel_task_run(session, report.id, T0)
