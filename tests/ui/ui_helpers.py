"""Helpers shared by the UI tests (a unique module name: every test folder has its own conftest)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

Snap = Callable[[Page, str], list[Path]]


def unique(prefix: str) -> str:
    """``prefix`` plus a short random suffix: tests share one server, so names must not collide."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
