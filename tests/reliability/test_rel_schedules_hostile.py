"""One schedule took the server down for good: ``FREQ=SECONDLY;INTERVAL=1;COUNT=1000000000`` was
accepted (201) and the scheduler then walked every second since 2020 on the event loop — no answer,
still none after a restart on the same database, and SIGTERM did not stop it. Refusing
``FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30`` blocked every request for 9.6 s, and a 5,000-character
``timezone`` was a 500 (OSError).

Now the rule is computed in milliseconds (COUNT skips ahead), impossible or too expensive rules are a
quick 422 naming the problem, a stored schedule that cannot be computed is quarantined (inactive, an
event, a log line) without stopping the server or the other deployments' schedules, and health
answers throughout.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from tideflow.testing import ServerProcess

QUARANTINED = "tideflow.deployment.schedule.quarantined"
DURATION = TypeAdapter(dt.timedelta)
LIVENESS = 5.0  # seconds /api/health may take to answer: generous, the old failure was "never"


class HealthProbe:
    """Asks /api/health every 0.2 s in a thread; ``failures`` lists the probes that did not answer."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.failures: list[str] = []
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=LIVENESS) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"{self.api_url}/health").status_code
                    if status == 200:
                        self.answers += 1
                    else:
                        self.failures.append(f"status {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self._stop.wait(0.2)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(LIVENESS + 5)


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=30) as client:
        yield client


def _deployment(api: httpx.Client, name: str, **extra: Any) -> str:
    response = api.post("/deployments/", json={"flow_name": "hostile", "name": name, **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _runs(api: httpx.Client, deployment_id: str) -> list[dict[str, Any]]:
    response = api.post("/flow_runs/filter", json={"deployment_id": [deployment_id]})
    assert response.status_code == 200, response.text
    return list(response.json())


def _wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not true within {timeout:.0f} s: {predicate}")


def _rrule(text: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"schedule": {"rrule": text, **extra}}]


def test_secondly_rrule_with_a_huge_count_is_computed_and_health_keeps_answering(
    server: ServerProcess, api: httpx.Client
) -> None:
    deployment_id = _deployment(api, "every-second")
    with HealthProbe(server.api_url) as probe:
        created = api.post(
            f"/deployments/{deployment_id}/schedules",
            json=_rrule("FREQ=SECONDLY;INTERVAL=1;COUNT=1000000000"),
        )
        assert created.status_code == 201, created.text
        # the scheduler computed its next seconds: runs exist, one second apart
        runs = _wait_for(lambda: len(_runs(api, deployment_id)) >= 3 and _runs(api, deployment_id))
        assert all(r["created_by"]["type"] == "schedule" for r in runs)
        time.sleep(3)  # a few scheduler steps with the rule stored
    assert probe.failures == [] and probe.answers > 0

    stopped_at = time.monotonic()
    assert server.stop(timeout=15) == 0  # SIGTERM, not the SIGKILL fallback
    assert time.monotonic() - stopped_at < 15


@pytest.mark.parametrize(
    ("rrule", "words"),
    [
        ("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", "has no occurrences within 60 years"),
        ("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", "has no occurrences within 60 years"),
        ("FREQ=SECONDLY;COUNT=1000000000;BYMINUTE=0", "cannot be computed"),
    ],
)
def test_impossible_or_too_expensive_rrule_is_a_quick_422(
    server: ServerProcess, api: httpx.Client, rrule: str, words: str
) -> None:
    deployment_id = _deployment(api, "refused")
    with HealthProbe(server.api_url) as probe:
        refused = api.post(f"/deployments/{deployment_id}/schedules", json=_rrule(rrule))
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert words in detail and "rrule" in detail
        # the same through a deployment's whole schedule list
        again = api.patch(f"/deployments/{deployment_id}", json={"schedules": _rrule(rrule)})
        assert again.status_code == 422 and words in again.json()["detail"]
    assert probe.failures == []
    assert api.get(f"/deployments/{deployment_id}/schedules").json() == []  # nothing stored


def test_cron_that_never_matches_is_a_422(api: httpx.Client) -> None:
    deployment_id = _deployment(api, "never")
    refused = api.post(
        f"/deployments/{deployment_id}/schedules", json=[{"schedule": {"cron": "0 0 30 2 *"}}]
    )
    assert refused.status_code == 422
    assert "cron expression '0 0 30 2 *' never matches a date" in refused.json()["detail"]


def test_a_5000_character_timezone_is_a_422_naming_the_timezone(api: httpx.Client) -> None:
    zone = "x" * 5000
    schedule = {"cron": "0 9 * * *", "timezone": zone}
    deployment_id = _deployment(api, "zoned", schedules=[{"schedule": {"cron": "0 9 * * *"}}])
    stored = api.get(f"/deployments/{deployment_id}/schedules").json()

    answers = [
        api.post(f"/deployments/{deployment_id}/schedules", json=[{"schedule": schedule}]),
        api.patch(
            f"/deployments/{deployment_id}/schedules/{stored[0]['id']}",
            json={"schedule": schedule},
        ),
        api.post(
            "/deployments/",
            json={"flow_name": "hostile", "name": "zoned-2", "schedules": [{"schedule": schedule}]},
        ),
        api.patch(f"/deployments/{deployment_id}", json={"schedules": [{"schedule": schedule}]}),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert "timezone" in detail and "too long (5000 characters, at most 64)" in detail
        assert len(detail) < 2000  # the 5,000 characters are not echoed back
    assert api.get(f"/deployments/{deployment_id}/schedules").json() == stored


def _store_directly(db_path: str, replacements: dict[int, Any]) -> None:
    """Replace stored schedules (found by their interval in seconds) behind the API's back."""
    with sqlite3.connect(db_path) as db:
        for row_id, text in db.execute("SELECT id, schedule FROM deployment_schedules").fetchall():
            interval = json.loads(text).get("interval")
            seconds = DURATION.validate_python(interval).total_seconds() if interval else None
            for marker, hostile in replacements.items():
                if seconds == marker:
                    db.execute(
                        "UPDATE deployment_schedules SET schedule = ? WHERE id = ?",
                        (json.dumps(hostile), row_id),
                    )


def _quarantine_events(api: httpx.Client) -> list[dict[str, Any]]:
    page = api.post("/events/filter", json={"event_names": [QUARANTINED]})
    assert page.status_code == 200, page.text
    return list(page.json()["events"])


def test_hostile_schedules_stored_directly_are_quarantined_and_the_rest_keeps_running(
    server: ServerProcess, api: httpx.Client
) -> None:
    hostile_id = _deployment(
        api,
        "hostile",
        schedules=[{"schedule": {"interval": seconds}} for seconds in (1001, 1002, 1003, 1004)],
    )
    server.stop()
    _store_directly(
        str(server.home / "tideflow.db"),
        {
            # the finding itself: now computed, it makes runs instead of hanging the server
            1001: {"type": "rrule", "rrule": "FREQ=SECONDLY;INTERVAL=1;COUNT=1000000000"},
            # too expensive to compute: quarantined
            1002: {"type": "rrule", "rrule": "FREQ=SECONDLY;COUNT=1000000000;BYMINUTE=0"},
            # no occurrence ever (no API accepts it): quarantined
            1003: {"type": "rrule", "rrule": "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"},
            # does not even parse: quarantined
            1004: {"type": "cron", "cron": "0 9 * * *", "timezone": "x" * 5000},
        },
    )

    server.start()  # answers health (start() waits for it) despite the stored schedules
    with HealthProbe(server.api_url) as probe:
        events = _wait_for(lambda: len(_quarantine_events(api)) >= 3 and _quarantine_events(api))
        assert len(events) == 3
        reasons = sorted(e["payload"]["reason"] for e in events)
        assert any("is too expensive" in r and "periods to walk" in r for r in reasons), reasons
        assert any("has no occurrences within 60 years" in r for r in reasons), reasons
        assert any("timezone is too long" in r for r in reasons), reasons
        assert {e["resource"]["tideflow.resource.id"] for e in events} == {
            f"tideflow.deployment.{hostile_id}"
        }

        # the quarantined ones that parse are listed inactive; the one that does not is left out
        listed = api.get(f"/deployments/{hostile_id}/schedules").json()
        by_rule = {s["schedule"].get("rrule"): s["active"] for s in listed}
        assert by_rule == {
            "FREQ=SECONDLY;INTERVAL=1;COUNT=1000000000": True,
            "FREQ=SECONDLY;COUNT=1000000000;BYMINUTE=0": False,
        }
        # (the impossible rule does not parse any more either: validation refuses it)

        # the computable hostile rule makes runs, and another deployment's schedule does too
        other_id = _deployment(api, "other", schedules=[{"schedule": {"interval": 3600}}])
        assert _wait_for(lambda: len(_runs(api, other_id)) >= 3)
        assert _wait_for(lambda: len(_runs(api, hostile_id)) >= 3)
        assert api.get("/health").status_code == 200
    assert probe.failures == []
    assert "quarantined schedule" in server.output_tail(200)

    # a quarantined schedule cannot be switched back on while it still cannot be computed
    expensive = next(s for s in listed if s["active"] is False)
    again = api.patch(
        f"/deployments/{hostile_id}/schedules/{expensive['id']}", json={"active": True}
    )
    assert again.status_code == 422
    assert "the stored schedule cannot be computed" in again.json()["detail"]

    stopped_at = time.monotonic()
    assert server.stop(timeout=15) == 0
    assert time.monotonic() - stopped_at < 15
