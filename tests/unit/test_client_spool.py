"""The event spool's file handling without a server: atomic claims, the bound (own oldest first,
then older files whole), exact drop counts including the counts of dropped drop reports, and
files meant for another API URL left alone."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tideflow.client._events import DROPPED_EVENT, _write_spool, drop_report
from tideflow.client._spool import Spool
from tideflow.schemas.events import Event

URL = "http://127.0.0.1:1/api"


def _events(n: int, start: int = 0) -> list[Event]:
    return [
        Event.model_validate(
            {"event": "spool.unit", "resource": {"tideflow.resource.id": "r"}, "payload": {"i": i}}
        )
        for i in range(start, start + n)
    ]


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()[1:]]


def test_a_file_is_claimed_by_exactly_one_claimer(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**6)
    path = spool.write([e.model_dump_json() for e in _events(3)], URL)
    assert json.loads(path.read_text().splitlines()[0]) == {"tideflow_spool": 1, "api_url": URL}
    assert spool.pending()
    claimed = spool._claim(path)
    assert claimed is not None and claimed.exists() and not path.exists()
    assert spool._claim(path) is None  # the second claimer loses
    assert not spool.pending()  # our own live claim is not abandoned
    assert not list(tmp_path.glob(".*.tmp"))


def test_everything_fits_nothing_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**6)
    events = _events(10)
    path, kept, dropped = _write_spool(spool, events, set(), URL)
    assert (kept, dropped) == (10, 0)
    assert [e["payload"]["i"] for e in _lines(path)] == list(range(10))  # type: ignore[index]


def test_alone_over_the_limit_the_oldest_go_and_the_report_counts_them(tmp_path: Path) -> None:
    events = _events(100)
    size = Spool.size_of([e.model_dump_json() for e in events], URL)
    spool = Spool(tmp_path, size // 2)
    path, kept, dropped = _write_spool(spool, events, set(), URL)
    lines = _lines(path)
    assert lines[0]["event"] == DROPPED_EVENT and lines[0]["payload"]["count"] == dropped  # type: ignore[index]
    assert kept + dropped == 100 and 40 < kept < 50
    assert [e["payload"]["i"] for e in lines[1:]] == list(range(dropped, 100))  # type: ignore[index]
    assert path.stat().st_size <= spool.max_bytes


def test_older_files_go_whole_and_a_dropped_report_keeps_its_count(tmp_path: Path) -> None:
    first = _events(20)
    report = drop_report(7, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    lines = [e.model_dump_json() for e in [report, *first]]
    spool = Spool(tmp_path, Spool.size_of(lines, URL) + 1000)  # not room for 10 more
    old = spool.write(lines, URL)
    path, kept, dropped = _write_spool(spool, _events(10, start=20), set(), URL)
    assert not old.exists()
    assert (kept, dropped) == (10, 20)  # 20 events dropped now...
    saved = _lines(path)
    assert saved[0]["payload"]["count"] == 27  # type: ignore[index]  # ...the report also carries 7
    assert saved[0]["payload"]["since"] == "2026-01-01T00:00:00+00:00"  # type: ignore[index]


def test_files_for_another_server_are_left_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**6)
    path = spool.write([e.model_dump_json() for e in _events(2)], "http://elsewhere:1/api")
    result = spool.deliver(URL, "ws://127.0.0.1:1/api/events/in")
    assert result.other_servers == 1 and result.events == 0 and result.error is None
    assert path.exists()
