"""Ingest checks: split a batch of raw JSON events into the events to store and the refusals.

Pure (no I/O). Each refusal names the event's position in the batch, its id when it has one, and
the reason from ``schemas.events.event_problem``; a bad event never blocks the rest of its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tideflow.schemas.events import Event, event_problem
from tideflow.server.events.hotpath import compact_json

__all__ = ["Checked", "check_events"]


@dataclass
class Checked:
    """The outcome of checking one batch."""

    events: list[Event] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


def _id_of(raw: Any) -> str | None:
    ident = raw.get("id") if isinstance(raw, dict) else None
    return ident if isinstance(ident, str) else None


def check_events(raws: Sequence[Any], max_payload_bytes: int) -> Checked:
    """Validate each raw event; refusals are ``{"index", "id", "reason"}``."""
    out = Checked()
    for index, raw in enumerate(raws):
        reason: str | None
        try:
            if not isinstance(raw, dict):
                raise TypeError
            event = Event.model_validate(raw)
            size = len(compact_json(event.payload).encode())
            reason = None if size <= max_payload_bytes else event_problem(raw, max_payload_bytes)
        except (TypeError, ValidationError):
            reason = event_problem(raw, max_payload_bytes) or "invalid event"
        if reason is None:
            out.events.append(event)
        else:
            out.refused.append({"index": index, "id": _id_of(raw), "reason": reason})
    return out
