"""Pure presentation helpers for the UI pages: state badge classes, durations, JSON display, the
runs-per-hour chart geometry and query-string building. No I/O, no clock (callers pass ``now``)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tideflow.schemas.states import StateType

__all__ = [
    "EVENT_TONES",
    "STATE_ORDER",
    "ChartBar",
    "ChartSegment",
    "compact_json",
    "event_tone",
    "hourly_chart",
    "level_name",
    "pretty_json",
    "query_string",
    "resource_link",
    "seconds",
    "state_class",
    "trigger_summary",
]

# Display order of state types on the dashboard and in filters.
STATE_ORDER: tuple[StateType, ...] = (
    StateType.COMPLETED,
    StateType.FAILED,
    StateType.CRASHED,
    StateType.RUNNING,
    StateType.PENDING,
    StateType.SCHEDULED,
    StateType.PAUSED,
    StateType.CANCELLING,
    StateType.CANCELLED,
)

_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def state_class(state_type: StateType | str | None, state_name: str | None = None) -> str:
    """The CSS modifier of a state badge: ``late`` for Late runs, else the type in lower case."""
    if state_name == "Late":
        return "late"
    if state_type is None:
        return "unknown"
    return str(state_type.value if isinstance(state_type, StateType) else state_type).lower()


def seconds(value: float | None) -> str:
    """A duration for people: ``40 ms``, ``2.4 s``, ``12 s``, ``3 m 05 s``, ``2 h 04 m``; a dash when unknown."""
    if value is None:
        return "\u2013"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 10:
        return f"{value:.1f} s"
    total = round(value)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def level_name(level: int) -> str:
    return _LEVELS.get(level, f"LEVEL {level}")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def compact_json(value: Any) -> str:
    """One line of JSON for text (Jinja's ``tojson`` escapes quotes as ``\\u0027`` for scripts)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def query_string(params: Mapping[str, Any], **changes: Any) -> str:
    """``?a=1&b=2`` from ``params`` with ``changes`` applied; empty and None values are left out."""
    merged = {**params, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, str(v)) for v in values if v not in (None, ""))
    return "?" + urlencode(pairs) if pairs else ""


@dataclass(frozen=True)
class ChartSegment:
    kind: str  # "completed" | "failed" | "other"
    y: float
    height: float
    count: int


@dataclass(frozen=True)
class ChartBar:
    x: float
    start: dt.datetime
    total: int
    segments: tuple[ChartSegment, ...]


def _kind(state_type: str | None) -> str:
    if state_type == StateType.COMPLETED.value:
        return "completed"
    if state_type in (StateType.FAILED.value, StateType.CRASHED.value):
        return "failed"
    return "other"


def hourly_chart(
    runs: Iterable[tuple[dt.datetime, str | None]],
    now: dt.datetime,
    *,
    hours: int = 24,
    width: float = 720.0,
    height: float = 120.0,
    gap: float = 3.0,
) -> list[ChartBar]:
    """Stacked bars (completed, failed, other) of runs per hour over the last ``hours`` hours.

    ``runs`` are ``(created, state_type)`` pairs; the last bar is the current, partial hour.
    """
    end = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=hours)
    counts = [{"completed": 0, "failed": 0, "other": 0} for _ in range(hours)]
    for created, state_type in runs:
        if not start <= created < end:
            continue
        index = int((created - start).total_seconds() // 3600)
        counts[index][_kind(state_type)] += 1
    peak = max((sum(c.values()) for c in counts), default=0) or 1
    slot = width / hours
    bars: list[ChartBar] = []
    for index, bucket in enumerate(counts):
        y = height
        segments: list[ChartSegment] = []
        for kind in ("completed", "failed", "other"):
            if bucket[kind]:
                h = max(2.0, bucket[kind] / peak * height)
                y -= h
                segments.append(ChartSegment(kind, round(y, 2), round(h, 2), bucket[kind]))
        bars.append(
            ChartBar(
                x=round(index * slot + gap / 2, 2),
                start=start + dt.timedelta(hours=index),
                total=sum(bucket.values()),
                segments=tuple(segments),
            )
        )
    return bars


def _spec(spec: Any) -> str:
    if not isinstance(spec, Mapping) or not spec:
        return ""
    parts = []
    for key, value in spec.items():
        shown = key.removeprefix("tideflow.resource.")
        values = value if isinstance(value, list) else [value]
        parts.append(f"{shown} = {' | '.join(str(v) for v in values)}")
    return ", ".join(parts)


def trigger_summary(trigger: Mapping[str, Any]) -> str:
    """One readable line for a trigger (a deployment's or an automation's), e.g. ``on
    tideflow.flow-run.Completed of a resource related with name = extract``."""
    kind = trigger.get("type", "event")
    if kind in ("compound", "sequence"):
        inner = [t for t in trigger.get("triggers", []) if isinstance(t, Mapping)]
        require = trigger.get("require", "all")
        head = "in sequence" if kind == "sequence" else f"{require} of"
        return f"{head}: " + "; ".join(trigger_summary(t) for t in inner)
    expect = sorted(trigger.get("expect") or [])
    posture = trigger.get("posture", "Reactive")
    threshold = trigger.get("threshold", 1)
    within = trigger.get("within") or 0
    words = ("when " if posture != "Proactive" else "when no ") + (
        " or ".join(expect) if expect else "any event"
    )
    if threshold and threshold > 1:
        words += f" {threshold} times"
    if within:
        words += f" within {seconds(float(within))}"
    match = _spec(trigger.get("match"))
    if match:
        words += f" on a resource with {match}"
    related = trigger.get("match_related")
    related_specs = related if isinstance(related, list) else [related] if related else []
    for spec in related_specs:
        text = _spec(spec)
        if text:
            words += f", related to {text}"
    after = sorted(trigger.get("after") or [])
    if after:
        words += f", after {' or '.join(after)}"
    return words


_LINKS = {
    "tideflow.flow-run.": "/runs/",
    "tideflow.deployment.": "/deployments/",
    "tideflow.automation.": "/automations/",
    "tideflow.event.": "/events/",
}


def resource_link(labels: Mapping[str, str]) -> str | None:
    """The UI page of the resource these labels describe (a run, deployment, automation, event, or
    a flow's runs), or None when the UI has no page for it."""
    rid = labels.get("tideflow.resource.id", "")
    for prefix, page in _LINKS.items():
        if rid.startswith(prefix):
            tail = rid.removeprefix(prefix)
            return page + tail if _is_uuid(tail) else None
    if rid.startswith("tideflow.flow.") and labels.get("tideflow.resource.name"):
        return "/runs" + query_string({"flow": labels["tideflow.resource.name"]})
    return None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def event_tone(name: str) -> str:
    """The badge colour of an event name: its last part (in any case: ``Failed`` of a run and
    ``failed`` of an automation action look alike) when it names an outcome, else neutral."""
    return EVENT_TONES.get(name.rsplit(".", 1)[-1].lower(), "neutral")


# Last part of an event name (lower case) -> badge colour; the live feed's script uses it too.
EVENT_TONES = {
    "completed": "completed", "failed": "failed", "crashed": "crashed", "running": "running",
    "pending": "pending", "scheduled": "scheduled", "late": "late", "cancelled": "cancelled",
    "cancelling": "cancelled", "paused": "paused", "triggered": "running", "resolved": "completed",
    "ready": "completed", "not-ready": "failed", "executed": "completed", "timedout": "failed",
    "quarantined": "failed", "dropped": "failed", "retrying": "running",
    "awaitingretry": "scheduled",
}  # fmt: skip
