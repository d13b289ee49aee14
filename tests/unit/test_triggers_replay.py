"""replay_events: the engine's evaluation over a window of past events, deadlines included."""

from __future__ import annotations

import datetime as dt

from tideflow.schemas.automations import parse_automation
from tideflow.schemas.events import Event
from tideflow.server.triggers.replay import replay_events

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def _trigger(**fields: object) -> object:
    body = {
        "name": "r",
        "trigger": {"type": "event", **fields},
        "actions": [{"type": "do-nothing"}],
    }
    return parse_automation(body).trigger


def _event(name: str, seconds: float, resource: str = "acme.x") -> Event:
    return Event(
        event=name,
        occurred=T0 + dt.timedelta(seconds=seconds),
        resource={"tideflow.resource.id": resource},
    )


def test_reactive_threshold_and_window() -> None:
    trigger = _trigger(expect=["acme.fail"], threshold=2, within=60)
    events = [_event("acme.fail", s) for s in (0, 30, 200, 400, 430)] + [_event("acme.ok", 31)]
    firings, cut = replay_events(trigger, events, T0, T0 + dt.timedelta(hours=1))  # type: ignore[arg-type]
    assert not cut
    assert [f.occurred for f in firings] == [T0 + dt.timedelta(seconds=s) for s in (30, 430)]


def test_proactive_fires_on_the_deadlines_it_would_have_missed() -> None:
    trigger = _trigger(expect=["acme.heartbeat"], posture="Proactive", within=90)
    beats = [_event("acme.heartbeat", s) for s in (60, 120, 500)]
    firings, cut = replay_events(trigger, beats, T0, T0 + dt.timedelta(seconds=700))  # type: ignore[arg-type]
    assert not cut
    # windows: [0,90) met at 60; [60,150) met at 120; [120,210) missed -> fires at 210; then the
    # next window opens at the heartbeat at 500 and is missed at 590.
    assert [f.posture for f in firings] == ["Proactive"] * len(firings)
    assert firings[0].occurred == T0 + dt.timedelta(seconds=210)
    assert len(firings) >= 2


def test_a_missed_window_fires_once_until_events_come_back() -> None:
    trigger = _trigger(expect=["acme.never"], posture="Proactive", within=1)
    firings, cut = replay_events(trigger, [], T0, T0 + dt.timedelta(days=30))  # type: ignore[arg-type]
    assert not cut and [f.occurred for f in firings] == [T0 + dt.timedelta(seconds=1)]
