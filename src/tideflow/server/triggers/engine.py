"""The trigger engine: consumes committed events and automation changes from the broker, evaluates
only the candidate automations of each event, persists what changed, and hands firings to actions.

One engine per app (built by ``services.registry``; no globals). It subscribes lossless to the
``"events"`` and ``"automations"`` topics when built, so nothing committed after the app starts can
slip past it. Per batch: events are evaluated in ``occurred`` order (per resource, that is the order
they happened), each after the event it ``follows`` (a follower whose leader has not come yet waits
for it, at most ``follows.FOLLOW_WAIT``; the checkpoint stays at or before it), the new bucket state, firings, pending action rows, the ``tideflow.automation.*``
events and the replay checkpoint are written in ONE transaction, and only then are the actions run
(``actions.ActionRunner``). Proactive deadlines sit in a heap keyed by ``next_deadline``; nothing
is scanned. On start the engine reloads state, finishes actions a stopped process left, and
re-evaluates the events received since its checkpoint: deterministic firing ids and unique action
keys make that replay harmless, so every firing runs its actions exactly once.

Loop guards (``guard.py``): an automation is not evaluated on an event its own actions caused
``max_causal_depth`` firings deep, and one firing more than ``max_firings_per_minute`` times is
paused (disabled, with a ``tideflow.automation.paused`` event saying why) in the same transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import Action, Automation, MetricTrigger
from tideflow.schemas.events import Event, ReceivedEvent, uuid_after
from tideflow.server.events.broker import Broker
from tideflow.server.events.run_events import state_event_id
from tideflow.server.events.task_run_events import task_run_event_id
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database, NotFound
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage.events import insert_events
from tideflow.server.triggers import state as store
from tideflow.server.triggers.actions import (
    ActionFailed,
    ActionRunner,
    Outcome,
    runs_in_transaction,
)
from tideflow.server.triggers.backfill import BackfillQueued
from tideflow.server.triggers.egress import parse_allow_list
from tideflow.server.triggers.emitted import action_event, firing_event, paused_event
from tideflow.server.triggers.evaluate import (
    AnyTrigger,
    Evaluation,
    Firing,
    Resolution,
    TriggerState,
    evaluate_deadlines,
    evaluate_event,
    initial_state,
    is_stateless,
    next_deadline,
)
from tideflow.server.triggers.follows import FollowGate
from tideflow.server.triggers.guard import (
    DEFAULT_MAX_CAUSAL_DEPTH,
    DEFAULT_MAX_FIRINGS_PER_MINUTE,
    RATE_WINDOW,
    FiringRate,
    Lineage,
    RunLineage,
    child_lineage,
    event_lineage,
    rate_reason,
)
from tideflow.server.triggers.index import AutomationIndex

__all__ = [
    "DEFAULT_MAX_CAUSAL_DEPTH",
    "DEFAULT_MAX_FIRINGS_PER_MINUTE",
    "EVENTS_TOPIC",
    "REPLAY_OVERLAP",
    "TriggerEngine",
]

EVENTS_TOPIC = "events"
# Events can commit slightly out of their ``received`` order; replay re-reads this much before the
# checkpoint (repeats change nothing: buckets remember event ids, firing rows are unique).
REPLAY_OVERLAP = dt.timedelta(seconds=30)
CHECKPOINT_EVERY = 2.0  # seconds between checkpoint-only writes while events change nothing
REPLAY_PAGE = 500

_log = logging.getLogger("tideflow.server.triggers")
_EMPTY = (
    TriggerState()
)  # the state of every stateless automation (never mutated: evaluation copies)


def _on_events(automation: Automation) -> AnyTrigger:
    """The trigger of an automation the engine holds (never a metric trigger: see apply_change)."""
    trigger = automation.trigger
    assert not isinstance(trigger, MetricTrigger), "metric triggers are not evaluated on events"
    return trigger


@dataclass
class _Result:
    """What one batch did to one automation (not yet applied in memory)."""

    automation_id: UUID
    state: TriggerState
    changed: dict[tuple[UUID, str], None] = field(default_factory=dict)
    firings: list[Firing | Resolution] = field(default_factory=list)


class TriggerEngine(Service):
    """Evaluates automations on events and deadlines; ``run_once`` processes what is queued now."""

    name = "triggers"

    def __init__(
        self,
        database: Database,
        broker: Broker,
        *,
        clock: Clock = utc_clock,
        crash_at: str | None = None,
        max_causal_depth: int = DEFAULT_MAX_CAUSAL_DEPTH,
        max_firings_per_minute: int = DEFAULT_MAX_FIRINGS_PER_MINUTE,
        webhooks_allowed_networks: str | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.database = database
        self.crash_at = crash_at
        self.max_causal_depth = max_causal_depth
        self._runs = RunLineage()  # runs automations created -> their firing's lineage
        self._rate = FiringRate(max_firings_per_minute)
        self._lineages: dict[UUID, Lineage] = {}  # of the events last evaluated (one batch)
        self._replaying = False
        self._events = broker.subscribe(EVENTS_TOPIC, lossless=True)
        self._changes = broker.subscribe(automation_storage.AUTOMATIONS_TOPIC, lossless=True)
        self._held: list[Any] = []
        self._held_changes: list[automation_storage.AutomationChanged | BackfillQueued] = []
        self.index = AutomationIndex()
        self._automations: dict[UUID, Automation] = {}
        self._states: dict[UUID, TriggerState] = {}
        self._stateless: set[UUID] = set()  # evaluated from an empty state, never stored
        self._heap: list[tuple[dt.datetime, int, UUID]] = []
        self._deadline: dict[UUID, dt.datetime] = {}
        self._seq = itertools.count()
        self._checkpoint: tuple[dt.datetime, UUID] | None = None
        self._latest: tuple[dt.datetime, UUID] | None = None  # latest event evaluated or parked
        self.follows = FollowGate()
        self._checkpoint_dirty = False
        self._checkpoint_written = 0.0
        self._started = False
        allowed = (
            None if webhooks_allowed_networks is None
            else parse_allow_list(webhooks_allowed_networks)
        )  # fmt: skip
        self.actions = ActionRunner(
            database, clock=clock, crash=self._crash, allowed_networks=allowed
        )
        self.evaluated = 0  # (event, candidate automation) evaluations, for benchmarks
        self.fired = 0
        self.suppressed = 0  # evaluations skipped by the causal-depth guard

    def _crash(self, point: str) -> None:
        # Test hook (TIDEFLOW_TEST_CRASH_AT): die at a named point like a kill -9 would.
        if self.crash_at == point:
            os._exit(17)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load automations and state, finish left-over actions, replay since the checkpoint."""
        if self._started:
            return
        self._started = True
        async with self.database.read() as session:
            automations = await automation_storage.read_all_automations(session)
            states = await store.load_states(session)
            self._checkpoint = await store.read_checkpoint(session)
            unfinished = await store.read_unfinished_actions(session)
        now = self.clock()
        for automation in automations:
            if automation.enabled and not isinstance(automation.trigger, MetricTrigger):
                state = states.get(automation.id) or initial_state(_on_events(automation), now)
                self._install(automation, state)
        for pending in unfinished:
            await self.actions.resume(pending)
        await self._replay()

    async def _replay(self) -> None:
        if self._checkpoint is None:
            return
        since: tuple[dt.datetime, UUID | None] = (self._checkpoint[0] - REPLAY_OVERLAP, None)
        # Replayed firings were mostly counted before the restart already (and are found recorded):
        # counting them again could pause a busy automation for no new firing.
        self._replaying = True
        try:
            while True:
                async with self.database.read() as session:
                    page = await store.read_events_since(session, *since, REPLAY_PAGE)
                if not page:
                    return
                _log.info("replaying %d event(s) received since the checkpoint", len(page))
                await self._process_events(page)
                since = (page[-1].received, page[-1].id)
        finally:
            self._replaying = False

    async def close(self) -> None:
        self._events.close()
        self._changes.close()
        if self._checkpoint_dirty:
            await self._write_checkpoint()
        await self.actions.close()

    async def run(self) -> None:
        """Process events, changes and deadlines as they come, until ``stop()``."""
        try:
            await self.start()
        except Exception:
            _log.exception("the trigger engine could not start")
        try:
            while not self.stopping:
                try:
                    await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.exception("trigger engine step failed")
                    await asyncio.sleep(0.5)
                await self._wait()
        finally:
            await self.close()

    async def _wait(self) -> None:
        timeout = None
        wake_at = [t for t in (self._heap[0][0] if self._heap else None,
                               self.follows.next_expiry()) if t is not None]  # fmt: skip
        if wake_at:
            timeout = max(0.0, (min(wake_at) - self.clock()).total_seconds())
        if self._checkpoint_dirty:
            timeout = min(timeout if timeout is not None else CHECKPOINT_EVERY, CHECKPOINT_EVERY)
        getters = {
            asyncio.ensure_future(self._events.get()): self._held,
            asyncio.ensure_future(self._changes.get()): self._held_changes,
        }
        stopper = asyncio.ensure_future(self._stop.wait())
        waker = asyncio.ensure_future(self._wake.wait())
        done, pending = await asyncio.wait(
            [*getters, stopper, waker], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        for task, held in getters.items():
            if task in done:
                held.append(task.result())
        self._wake.clear()

    # -- one step -----------------------------------------------------------------------------

    async def run_once(self) -> None:
        """Apply queued automation changes, evaluate queued events, fire due deadlines."""
        await self.start()
        await self._apply_changes()
        batch = self._drain()
        if batch:
            await self._process_events(batch)
        expired = self.follows.expire(self.clock())
        if expired:
            await self._evaluate_and_commit(expired)
            self._advance_checkpoint([])
        await self._process_deadlines()
        if (
            self._checkpoint_dirty
            and time.monotonic() - self._checkpoint_written >= CHECKPOINT_EVERY
        ):
            await self._write_checkpoint()

    def _drain(self) -> list[ReceivedEvent]:
        items, self._held = self._held, []
        while True:
            try:
                items.append(self._events.get_nowait())
            except asyncio.QueueEmpty:
                break
        out: list[ReceivedEvent] = []
        for item in items:
            out.extend(item if isinstance(item, list | tuple) else [item])
        return out

    async def _apply_changes(self) -> None:
        changes, self._held_changes = self._held_changes, []
        while True:
            try:
                changes.append(self._changes.get_nowait())
            except asyncio.QueueEmpty:
                break
        for change in changes:
            if isinstance(change, BackfillQueued):
                # Firings a replay recorded (triggers.backfill): run their actions now.
                for pending in change.pending:
                    await self.actions.resume(pending)
                continue
            await self.apply_change(change)

    async def apply_change(self, change: automation_storage.AutomationChanged) -> None:
        """Bring the index and state in line with one committed automation change."""
        automation = change.automation
        # Metric triggers read stored runs on a timer (services.metric_triggers), not events.
        if (
            automation is None
            or not automation.enabled
            or isinstance(automation.trigger, MetricTrigger)
        ):
            self._uninstall(change.automation_id)
            return
        if change.reset_state:
            # Saved anyway (the API answer carries them too): the server log names every one, which
            # is where a deployment trigger registered by serve() or to_deployment() shows them.
            for warning in automation.warnings:
                _log.warning("automation %r (%s): %s", automation.name, automation.id, warning)
        if change.reset_state or automation.id not in self._states:
            now = self.clock()
            state = initial_state(_on_events(automation), now)
            # A reset change already deleted the stored buckets in its own transaction: a start
            # with no open bucket has nothing to write (one transaction less per created automation).
            if not (change.reset_state and not state.buckets):
                async with self.database.write() as session:
                    if await automation_storage.read_automation(session, automation.id) is None:
                        return  # deleted since; its delete is further down the queue
                    await store.replace_state(session, automation.id, state, now)
        else:
            state = self._states[automation.id]
        self._install(automation, state)

    def _install(self, automation: Automation, state: TriggerState) -> None:
        self._automations[automation.id] = automation
        self._states[automation.id] = state
        if is_stateless(_on_events(automation)):
            self._stateless.add(automation.id)
            self._states[automation.id] = _EMPTY
        else:
            self._stateless.discard(automation.id)
        self.index.add(automation.id, _on_events(automation))
        self._schedule(automation.id)

    def _uninstall(self, automation_id: UUID) -> None:
        self._rate.forget(automation_id)  # resumed later, it starts counting afresh
        self._automations.pop(automation_id, None)
        self._states.pop(automation_id, None)
        self._stateless.discard(automation_id)
        self._deadline.pop(automation_id, None)
        self.index.remove(automation_id)

    def _schedule(self, automation_id: UUID) -> None:
        when = next_deadline(
            _on_events(self._automations[automation_id]), self._states[automation_id]
        )
        if when is None:
            self._deadline.pop(automation_id, None)
        elif self._deadline.get(automation_id) != when:
            self._deadline[automation_id] = when
            heapq.heappush(self._heap, (when, next(self._seq), automation_id))

    # -- evaluation ---------------------------------------------------------------------------

    def _evaluate_events(self, events: list[ReceivedEvent], now: dt.datetime) -> list[_Result]:
        results: dict[UUID, _Result] = {}
        runs = self._runs.as_mapping()
        limit = self.max_causal_depth
        self._lineages = lineages = {}
        for event in events:  # already in order (``FollowGate.admit``)
            candidates = self.index.candidates(event)
            if not candidates:
                continue
            lineage = lineages[event.id] = event_lineage(event, runs)
            for ident in candidates:
                if lineage and lineage.get(ident, 0) >= limit:
                    self.suppressed += 1  # its own action caused this event, too deep: a loop
                    continue
                self.evaluated += 1
                current = results.get(ident)
                state = current.state if current else self._states[ident]
                outcome = evaluate_event(_on_events(self._automations[ident]), state, event, now)
                self._collect(results, ident, outcome)
        return list(results.values())

    def _collect(self, results: dict[UUID, _Result], ident: UUID, outcome: Evaluation) -> None:
        if ident in self._stateless:
            # Only the firing matters; the bucket it opened and closed again is not kept.
            if outcome.firings or outcome.resolutions:
                result = results.setdefault(ident, _Result(ident, _EMPTY))
                result.firings.extend([*outcome.firings, *outcome.resolutions])
            return
        if not (outcome.changed or outcome.firings or outcome.resolutions):
            return
        result = results.setdefault(ident, _Result(ident, outcome.state))
        result.state = outcome.state
        result.changed.update(dict.fromkeys(outcome.changed))
        result.firings.extend([*outcome.firings, *outcome.resolutions])

    async def _process_events(self, events: list[ReceivedEvent]) -> None:
        ready = await self._admit(events)
        self._advance_checkpoint(events)
        if ready:
            await self._evaluate_and_commit(ready)

    async def _admit(self, events: list[ReceivedEvent]) -> list[ReceivedEvent]:
        """The events to evaluate now, in order; followers of leaders not evaluated yet are parked."""
        events = await self._follow_states(events)
        unknown = self.follows.unknown_leaders(events)
        known: set[UUID] = set()
        if unknown and self._checkpoint is not None:
            async with self.database.read() as session:
                stored = await store.read_received(session, unknown)
            # A stored leader older than the replay window was evaluated (by this process or before
            # a restart); a newer one that this process has not evaluated is still on its way to it
            # (queued, or later in the replay), so its follower waits for it.
            horizon = self._checkpoint[0] - REPLAY_OVERLAP
            known = {ident for ident, received in stored.items() if received < horizon}
        return self.follows.admit(events, known, self.clock())

    async def _follow_states(self, events: list[ReceivedEvent]) -> list[ReceivedEvent]:
        """Followers that name a run's *state* as their leader, ordered after that state's event.

        Prefect gives a state's event the state's id, so a hook ported from it emits
        ``follows=state.id``; here a state's event has its own id (``state_event_id``), and such a
        follower would wait FOLLOW_WAIT for an event that never comes. A leader no event has is
        looked up as a state of the runs the follower names (resource or related), then of any
        flow run, and the follower follows that state's event instead."""
        unknown = set(self.follows.unknown_leaders(events))
        if not unknown:
            return events
        # The candidates need no query: the state event ids of the runs each follower names.
        candidates: dict[UUID, list[UUID]] = {}  # follower id -> possible state event ids
        for event in events:
            lead = event.follows
            if lead is None or lead not in unknown:
                continue
            for resource_id in (event.resource.id, *(r.id for r in event.related)):
                run = uuid_after(FLOW_RUN_PREFIX, resource_id)
                if run is not None:
                    candidates.setdefault(event.id, []).append(state_event_id(run, lead))
                task = uuid_after(TASK_RUN_PREFIX, resource_id)
                if task is not None:
                    candidates.setdefault(event.id, []).append(task_run_event_id(task, lead))
        in_batch = {e.id for e in events}
        wanted = {c for cs in candidates.values() for c in cs} | unknown
        wanted_ids = list(wanted)
        stored: set[UUID] = set()
        async with self.database.read() as session:
            for i in range(0, len(wanted_ids), _LOOKUP_CHUNK):  # bounded bind parameters
                stored.update(await store.read_received(session, wanted_ids[i : i + _LOOKUP_CHUNK]))
            # A leader that is neither an event nor a state of a run the follower names may still
            # be a flow run's state (a follower that names no run): one primary-key lookup.
            orphans = list(unknown - stored)
            states: dict[UUID, UUID] = {}
            for i in range(0, len(orphans), _LOOKUP_CHUNK):
                chunk = orphans[i : i + _LOOKUP_CHUNK]
                states.update(await store.read_flow_run_state_runs(session, chunk))
        changed: dict[UUID, UUID] = {}
        for event in events:
            lead = event.follows
            if lead is None or lead not in unknown or lead in stored:
                continue
            found = [c for c in candidates.get(event.id, []) if c in stored or c in in_batch]
            if not found and lead in states:
                found = [state_event_id(states[lead], lead)]
            if found:
                changed[event.id] = found[0]
        if not changed:
            return events
        return [
            e.model_copy(update={"follows": changed[e.id]}) if e.id in changed else e
            for e in events
        ]

    def _advance_checkpoint(self, events: list[ReceivedEvent]) -> None:
        def key(point: tuple[dt.datetime, UUID]) -> tuple[dt.datetime, int]:
            return point[0], point[1].int

        for event in events:
            if self._latest is None or key((event.received, event.id)) > key(self._latest):
                self._latest = (event.received, event.id)
        target = self._latest
        parked = self.follows.oldest_parked()
        if target is not None and parked is not None and key(parked) < key(target):
            # Not past a parked event: replay starts REPLAY_OVERLAP before the checkpoint (inclusive),
            # so after a restart the parked event is read and evaluated again.
            target = parked
        if target is not None and (self._checkpoint is None or key(target) > key(self._checkpoint)):
            self._checkpoint = target
            self._checkpoint_dirty = True

    async def _evaluate_and_commit(self, events: list[ReceivedEvent]) -> None:
        for attempt in range(2):
            results = self._evaluate_events(events, self.clock())
            if not results:
                return
            try:
                await self._commit(results, with_checkpoint=True)
                return
            except Exception as exc:
                if attempt:
                    raise
                # Most likely an automation was deleted meanwhile: apply changes, evaluate again.
                # That is expected (a foreign key refuses the deleted automation's rows), so it
                # gets one line; anything else keeps its traceback.
                expected = isinstance(exc, sa_exc.IntegrityError)
                _log.warning(
                    "storing trigger state failed (%s); retrying once",
                    "an automation was deleted meanwhile" if expected else type(exc).__name__,
                    exc_info=not expected,
                )
                await self._apply_changes()

    async def _process_deadlines(self) -> None:
        now = self.clock()
        due: list[UUID] = []
        while self._heap and self._heap[0][0] <= now:
            when, _, ident = heapq.heappop(self._heap)
            if self._deadline.get(ident) == when:
                del self._deadline[ident]
                due.append(ident)
        results: dict[UUID, _Result] = {}
        for ident in due:
            outcome = evaluate_deadlines(
                _on_events(self._automations[ident]), self._states[ident], now
            )
            self._collect(results, ident, outcome)
        if results:
            await self._commit(list(results.values()), with_checkpoint=False)
        for ident in due:
            if ident in self._automations and ident not in results:
                self._schedule(ident)

    # -- persistence and actions --------------------------------------------------------------

    async def _commit(self, results: list[_Result], *, with_checkpoint: bool) -> None:
        # One transaction per batch, each kind of row written by ONE statement run with all its
        # parameter sets: per-firing statements through aiosqlite's thread used to dominate. What
        # needs no database is prepared before the write lock is taken, and the actions run before
        # the events about them are built, so a downstream run is created as early as possible.
        now = self.clock()
        live = [
            (automation, result)
            for result in results
            if (automation := self._automations.get(result.automation_id)) is not None
        ]  # the others were deleted or disabled since they were evaluated
        fired, paused = self._guard_firings([(a, f) for a, r in live for f in r.firings])
        firing_rows = [store.firing_row(a.id, f) for a, f in fired]
        # The checkpoint rides along at most every CHECKPOINT_EVERY: replay re-reads from before it
        # and firing ids dedupe, so a checkpoint a little behind costs nothing but a short replay.
        checkpoint = (
            self._checkpoint
            if with_checkpoint and time.monotonic() - self._checkpoint_written >= CHECKPOINT_EVERY
            else None
        )
        work: list[tuple[Automation, Firing | Resolution, list[int]]] = []
        async with self.database.write() as session:
            # Buckets first: an action (pause, or a trigger change) may clear them after this.
            await store.save_bucket_changes(
                session,
                [(a.id, r.state, list(r.changed)) for a, r in live if r.changed],
                now,
            )
            new = await store.insert_firings(session, firing_rows)
            ran: list[tuple[Automation, Firing | Resolution, list[tuple[int, Action, Any]]]] = []
            for automation, firing in fired:
                if (automation.id, firing.id) not in new:
                    continue  # recorded before (a replay): its actions are already recorded
                new.discard((automation.id, firing.id))
                actions = (
                    automation.actions_on_resolve
                    if isinstance(firing, Resolution)
                    else automation.firing_actions()
                )
                outcomes: list[tuple[int, Action, Outcome | ActionFailed | None]] = []
                for index, action in enumerate(actions):
                    # The firing row is new, so this action has never run: database actions run
                    # here, in this transaction; webhooks are recorded pending and sent after it.
                    outcome = (
                        await self.actions.execute_in(session, automation, firing, index, action)
                        if runs_in_transaction(action)
                        else None
                    )
                    outcomes.append((index, action, outcome))
                ran.append((automation, firing, outcomes))
            emitted: list[Event] = []
            action_rows: list[dict[str, Any]] = []
            for automation, firing, outcomes in ran:
                emitted.append(firing_event(automation, firing, now))
                later = []
                for index, action, outcome in outcomes:
                    emitted.append(
                        action_event(automation, firing, index, action.type, "triggered", now)
                    )
                    dumped = action.model_dump(mode="json")
                    if outcome is None:
                        action_rows.append(
                            store.action_row(automation.id, firing.id, index, dumped, now)
                        )
                        later.append(index)
                        continue
                    detail: str | None
                    if isinstance(outcome, ActionFailed):
                        status, detail, run_id = "failed", str(outcome), None
                    else:
                        status, detail, run_id = "executed", outcome.detail, outcome.flow_run_id
                    if run_id is not None:  # its events inherit this firing's lineage
                        self._runs.record(run_id, firing.lineage)
                    action_rows.append(
                        store.action_row(automation.id, firing.id, index, dumped, now,
                                         status=status, detail=detail, flow_run_id=run_id)
                    )  # fmt: skip
                    emitted.append(
                        self.actions.outcome_event(automation, firing, index, action, outcome)
                    )
                work.append((automation, firing, later))
            await store.insert_actions(session, action_rows)
            for automation in paused:
                emitted.extend(await self._pause(session, automation))
            if checkpoint is not None:
                await store.save_checkpoint(session, *checkpoint, now)
            if emitted:
                await insert_events(session, emitted)
            if work:
                self._crash("before-action-commit")
        if checkpoint is not None:
            self._checkpoint_written = time.monotonic()
            self._checkpoint_dirty = self._checkpoint != checkpoint
        for automation in paused:
            self._uninstall(automation.id)  # its change arrives later; nothing fires it meanwhile
        for _, result in live:
            if result.automation_id in self._automations:
                self._states[result.automation_id] = result.state
                self._schedule(result.automation_id)
        self.fired += len(work)
        if work:
            self._crash("after-firing-commit")
        for automation, firing, indexes in work:
            if indexes:  # webhooks: claimed and sent outside any transaction
                await self.actions.run(automation, firing, indexes)

    def _guard_firings(
        self, fired: list[tuple[Automation, Firing | Resolution]]
    ) -> tuple[list[tuple[Automation, Firing | Resolution]], list[Automation]]:
        """Give each firing its lineage; drop those over their automation's rate (and the rest of
        that automation's firings), returning the automations to pause."""
        runs = self._runs.as_mapping()
        now = time.monotonic()
        kept: list[tuple[Automation, Firing | Resolution]] = []
        paused: dict[UUID, Automation] = {}
        for automation, firing in fired:
            if automation.id in paused:
                continue
            if not self._replaying and not self._rate.allow(automation.id, now):
                paused[automation.id] = automation
                continue
            event = firing.triggering_event
            parent: Lineage = {}
            if event is not None:
                known = self._lineages.get(event.id)
                parent = known if known is not None else event_lineage(event, runs)
            firing.lineage = child_lineage(parent, automation.id)
            kept.append((automation, firing))
        return kept, list(paused.values())

    async def _pause(self, session: AsyncSession, automation: Automation) -> list[Event]:
        """Disable an automation that fired too often, with the event that says why (timed now,
        not at the batch's start: explain pairs it with the automation's ``updated``)."""
        limit = self._rate.limit
        try:
            await automation_storage.set_automation_enabled(session, automation.id, False)
        except NotFound:
            return []  # deleted meanwhile
        reason = rate_reason(limit)
        _log.warning("paused automation %r (%s): %s", automation.name, automation.id, reason)
        details = {"limit": limit, "window_seconds": RATE_WINDOW}
        return [paused_event(automation, "rate", reason, self.clock(), **details)]

    async def _write_checkpoint(self) -> None:
        if self._checkpoint is None:
            return
        async with self.database.write() as session:
            await store.save_checkpoint(session, *self._checkpoint, self.clock())
        self._checkpoint_dirty = False
        self._checkpoint_written = time.monotonic()

    # -- introspection ------------------------------------------------------------------------

    def state_of(self, automation_id: UUID) -> TriggerState | None:
        """The in-memory state of an enabled automation (None when not loaded)."""
        return self._states.get(automation_id)

    def loaded(self) -> Iterable[UUID]:
        return list(self._automations)


_LOOKUP_CHUNK = 500  # ids per IN (...) when looking up leaders
FLOW_RUN_PREFIX = "tideflow.flow-run."
TASK_RUN_PREFIX = "tideflow.task-run."
