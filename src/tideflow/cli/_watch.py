"""Following a flow run in the terminal: its state changes and logs in time order until it ends
(`deployment run --watch`, `flow-run watch`, `flow-run retry --watch`)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from typing import TYPE_CHECKING

from tideflow.cli._common import STATE_COLOURS, console, state_text

if TYPE_CHECKING:
    from uuid import UUID

    from rich.text import Text

    from tideflow.client import SyncClient
    from tideflow.schemas import FlowRun, Log, State

__all__ = ["watch_run"]

_WATCH_INTERVAL = 0.2
_LATE_LOG_POLLS = 2
_LEVEL_STYLES = {10: "dim", 20: "", 30: "yellow", 40: "red", 50: "bold red"}


def _state_line(state: State) -> Text:
    from rich.text import Text

    stamp = state.timestamp.astimezone().strftime("%H:%M:%S.%f")[:-3]
    line = Text.assemble(stamp, " ", (state.name, STATE_COLOURS.get(state.type.value, "")))
    if state.message:
        line.append(f"  {state.message}")
    return line


def _log_line(log: Log) -> Text:
    from rich.text import Text

    stamp = log.timestamp.astimezone().strftime("%H:%M:%S.%f")[:-3]
    level = logging.getLevelName(log.level)
    style = _LEVEL_STYLES.get(log.level, "")
    return Text.assemble(stamp, " ", (f"{level:<8}", style), " ", log.message)


def _new_lines(
    client: SyncClient, run_id: UUID, seen: set[object]
) -> list[tuple[dt.datetime, Text]]:

    from tideflow.schemas import LogFilter

    lines: list[tuple[dt.datetime, Text]] = []
    for state in client.read_flow_run_states(run_id):
        if state.id not in seen:
            seen.add(state.id)
            lines.append((state.timestamp, _state_line(state)))
    for log in client.read_logs(LogFilter(flow_run_id=[run_id], limit=10_000)):
        key = ("log", log.id if log.id is not None else (log.timestamp, log.message))
        if key not in seen:
            seen.add(key)
            lines.append((log.timestamp, _log_line(log)))
    return sorted(lines, key=lambda item: item[0])


def watch_run(client: SyncClient, run: FlowRun) -> int:
    """Print the run's state changes and logs, in time order, until it ends; the exit code."""
    from rich.text import Text

    seen: set[object] = set()
    while True:
        current = client.read_flow_run(run.id)
        for _, line in _new_lines(client, run.id, seen):
            console.print(line)
        state = current.state
        if state is not None and state.is_final:
            break
        sys.stdout.flush()
        time.sleep(_WATCH_INTERVAL)
    # A run sends its last log batch just after its final state: give it a moment to land.
    for _ in range(_LATE_LOG_POLLS):
        time.sleep(_WATCH_INTERVAL)
        for _, line in _new_lines(client, run.id, seen):
            console.print(line)
    end = Text.assemble(
        f"Flow run {current.name} finished in state ", state_text(state.type, state.name)
    )
    if state.message:
        end.append(f": {state.message}")
    console.print(end)
    return 0 if state.is_completed() else 1
