"""Ingest checks: split a batch of raw JSON events into the events to store and the refusals.

Pure (no I/O). Each refusal names the event's position in the batch, its id when it has one, and
the reason from ``schemas.events.event_problem``; a bad event never blocks the rest of its batch.
Every websocket frame gets an answer, whatever it holds, so the sender never resends it forever.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tideflow.schemas.events import Event, event_limits_problem, event_problem
from tideflow.schemas.limits import MAX_NESTING, escape_lone_surrogates
from tideflow.server.events.hotpath import compact_json

__all__ = ["Checked", "check_events", "check_frame"]


@dataclass
class Checked:
    """The outcome of checking one batch."""

    events: list[Event] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


def _id_of(raw: Any) -> str | None:
    ident = raw.get("id") if isinstance(raw, dict) else None
    return escape_lone_surrogates(ident) if isinstance(ident, str) else None


def _reason(raw: Any, max_payload_bytes: int) -> str:
    try:
        return event_problem(raw, max_payload_bytes) or "invalid event"
    except RecursionError:
        return "the event is nested too deeply to be read"


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
            reason = reason or event_limits_problem(event, size)
        except (TypeError, ValidationError, RecursionError):
            reason = _reason(raw, max_payload_bytes)
        if reason is None:
            out.events.append(event)
        else:
            out.refused.append({"index": index, "id": _id_of(raw), "reason": reason})
    return out


def _all_refused(raw: Any, reason: str) -> Checked:
    raws = raw if isinstance(raw, list) else [raw]
    return Checked(
        refused=[{"index": i, "id": _id_of(r), "reason": reason} for i, r in enumerate(raws)]
    )


def check_frame(text: str, max_payload_bytes: int, max_frame_bytes: int) -> Checked:
    """Check one websocket frame (an event or a list of events); never raises.

    A frame that is not JSON, or nested past what the parser can follow, is one refusal naming the
    frame; a frame above ``max_frame_bytes`` refuses each of its events, saying so, so the sender
    learns why instead of sending it again.
    """
    try:
        raw = json.loads(text)
    except RecursionError:
        reason = f"frame is nested too deeply to be read (events nest at most {MAX_NESTING} levels)"
        return Checked(refused=[{"index": 0, "id": None, "reason": reason}])
    except ValueError as exc:
        reason = escape_lone_surrogates(f"frame is not JSON: {exc}")
        return Checked(refused=[{"index": 0, "id": None, "reason": reason}])
    if len(text) > max_frame_bytes:  # characters: at most the frame's bytes, a cheap first test
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_frame_bytes:
            return _all_refused(raw, f"its frame is {size} bytes, above the limit of "
                                     f"{max_frame_bytes} bytes; send fewer events per frame")  # fmt: skip
    return check_events(raw if isinstance(raw, list) else [raw], max_payload_bytes)
