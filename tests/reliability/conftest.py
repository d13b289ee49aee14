"""Reliability tests: hostile inputs and faults replayed against a real ``tideflow server start``
process (HTTP and websockets over loopback), each reproducing one finding of the hardening issue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tideflow.testing import ServerProcess


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    """A fresh real server on SQLite in its own home, stopped after the test."""
    with ServerProcess() as s:
        yield s
