"""Loop guards for automations, pure: causal lineage of events and a per-automation firing rate.

An automation whose action makes events it matches (an every-event trigger running a deployment)
would feed itself forever. Two guards stop it at the engine:

- **Lineage**: each firing carries ``{automation id: depth}``, the automations whose actions caused
  it and how many of their firings deep it is. The run it creates and the events about that run, the
  events related to that run, and the ``tideflow.automation.*`` events of the firing inherit it. An
  automation does not fire on an event whose lineage already holds it at the depth limit; chains of
  DIFFERENT automations (A → B → C) each see depth 0 for themselves and are unaffected.
- **Rate**: an automation firing more than a limit within a minute is paused by the engine.

The engine keeps the run → lineage map (bounded, in memory); the ``tideflow.automation.*`` events
carry their firing's lineage in the payload (``LINEAGE_KEY``), so it survives restarts there. A run
created by an automation whose lineage was forgotten (a restart) still names that automation as its
creator: it counts as depth 1 for it, so a loop is still bounded after a restart.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from tideflow.schemas.events import Event, uuid_after

__all__ = [
    "DEFAULT_MAX_CAUSAL_DEPTH",
    "DEFAULT_MAX_FIRINGS_PER_MINUTE",
    "LINEAGE_KEY",
    "RATE_WINDOW",
    "FiringRate",
    "Lineage",
    "RunLineage",
    "child_lineage",
    "depth_detail",
    "event_lineage",
    "lineage_from_payload",
    "lineage_payload",
    "rate_reason",
]

DEFAULT_MAX_CAUSAL_DEPTH = 3  # the settings' defaults (an engine built without settings uses them)
DEFAULT_MAX_FIRINGS_PER_MINUTE = 600
LINEAGE_KEY = "lineage"  # payload key of the tideflow.automation.* events: {automation id: depth}
RATE_WINDOW = 60.0  # seconds: the firing rate is counted per minute
MAX_LINEAGE = 64  # automations remembered per lineage (a longer chain keeps its deepest ones)

_AUTOMATION = "tideflow.automation."
_RUN = "tideflow.flow-run."

Lineage = dict[UUID, int]


def lineage_payload(lineage: Mapping[UUID, int]) -> dict[str, int]:
    return {str(ident): depth for ident, depth in lineage.items()}


def lineage_from_payload(payload: Mapping[str, Any]) -> Lineage:
    """The lineage a ``tideflow.automation.*`` event carries (empty when absent or malformed)."""
    raw = payload.get(LINEAGE_KEY)
    out: Lineage = {}
    if not isinstance(raw, dict):
        return out
    for key, depth in raw.items():
        try:
            ident = UUID(str(key))
        except ValueError:
            continue
        if isinstance(depth, int) and not isinstance(depth, bool) and depth > 0:
            out[ident] = depth
    return out


def _merge(into: Lineage, other: Mapping[UUID, int]) -> None:
    for ident, depth in other.items():
        if depth > into.get(ident, 0):
            into[ident] = depth


def event_lineage(event: Event, runs: Mapping[UUID, Lineage]) -> Lineage:
    """Which automations caused ``event``, and how deep: from its own payload when it is an
    automation's event, from ``runs`` for every flow run it is about or related to, and at least
    depth 1 for an automation named as the creator of the run."""
    out: Lineage = {}
    resource_id = event.resource.id
    if resource_id.startswith(_AUTOMATION) and event.event.startswith("tideflow.automation."):
        _merge(out, lineage_from_payload(event.payload))
    for rid, role in [(resource_id, None), *((r.id, r.role) for r in event.related)]:
        run = uuid_after(_RUN, rid)
        if run is not None:
            known = runs.get(run)
            if known:
                _merge(out, known)
            continue
        if role == "creator":
            creator = uuid_after(_AUTOMATION, rid)
            if creator is not None and out.get(creator, 0) < 1:
                out[creator] = 1
    return out


def child_lineage(parent: Mapping[UUID, int], automation_id: UUID) -> Lineage:
    """The lineage of a firing of ``automation_id`` caused by an event of lineage ``parent``."""
    out = dict(parent)
    out[automation_id] = out.get(automation_id, 0) + 1
    if len(out) > MAX_LINEAGE:
        keep = sorted(out.items(), key=lambda item: item[1], reverse=True)[:MAX_LINEAGE]
        out = dict(keep)
        out[automation_id] = parent.get(automation_id, 0) + 1
    return out


def depth_detail(depth: int, limit: int) -> str:
    """The explanation of the causal-depth guard for one automation and event."""
    if depth <= 0:
        return "not caused by this automation's own actions"
    if depth >= limit:
        return (
            f"caused by this automation's own action {depth} firing(s) deep; the limit is {limit} "
            "(TIDEFLOW_AUTOMATIONS_MAX_CAUSAL_DEPTH), so it does not fire again on it"
        )
    return f"caused by this automation's own action {depth} firing(s) deep (limit {limit})"


def rate_reason(limit: int) -> str:
    return (
        f"fired more than {limit} times within {RATE_WINDOW:g} seconds "
        "(TIDEFLOW_AUTOMATIONS_MAX_FIRINGS_PER_MINUTE); paused to stop a runaway loop. "
        "Check its trigger (an empty expect matches every event), then resume it"
    )


class RunLineage:
    """Lineage of the runs automations created, most recent ``capacity`` kept."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._runs: OrderedDict[UUID, Lineage] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, run_id: UUID) -> Lineage | None:
        return self._runs.get(run_id)

    def __getitem__(self, run_id: UUID) -> Lineage:
        return self._runs[run_id]

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def record(self, run_id: UUID, lineage: Lineage) -> None:
        known = self._runs.get(run_id)
        if known is not None:
            _merge(known, lineage)
            return
        self._runs[run_id] = dict(lineage)
        if len(self._runs) > self.capacity:
            self._runs.popitem(last=False)

    def as_mapping(self) -> Mapping[UUID, Lineage]:
        return self._runs


class FiringRate:
    """Firings per automation within the last ``RATE_WINDOW`` seconds of a monotonic clock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times: dict[UUID, deque[float]] = {}

    def allow(self, automation_id: UUID, now: float) -> bool:
        """Count one firing at ``now``; False (and not counted) when it would exceed the limit."""
        times = self._times.get(automation_id)
        if times is None:
            times = self._times[automation_id] = deque()
        horizon = now - RATE_WINDOW
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def forget(self, automation_id: UUID) -> None:
        self._times.pop(automation_id, None)
