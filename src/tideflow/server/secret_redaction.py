"""Stored secret values masked out of what runs send the server: log messages and the parameters of
runs created by a flow call (``POST /flow_runs/``).

A flow process masks the values it read with ``Secret.get`` itself (``tideflow._redaction``); this
catches the rest — a secret's value passed in as a parameter, printed by another process, or read
some other way. The values are decrypted into a pattern held by one object per app (never logged),
rebuilt when a secret is set or deleted here and at most ``ttl`` seconds after a change elsewhere
(another replica). Deployment runs keep their parameters: their runner needs the real values (pass a
secret's name and call ``Secret.get`` in the flow instead).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from tideflow.schemas.secrets import MASK
from tideflow.server.secret_box import SecretBox, SecretKeyError
from tideflow.server.storage import Database
from tideflow.server.storage.tables import secrets

__all__ = ["MIN_MASKED_LENGTH", "SecretRedactor"]

MIN_MASKED_LENGTH = 4  # shorter values would mask ordinary words (same rule as the SDK's)
MAX_SECRETS = 1000  # values held at most: bounds each rebuild and each substitution
MAX_DEPTH = 32  # of a parameters document walked


class SecretRedactor:
    """Masks stored secret values in text and JSON values."""

    def __init__(
        self, database: Database, box: Callable[[], SecretBox], *, ttl: float = 10.0
    ) -> None:
        self.database = database
        self._make_box = box
        self.ttl = ttl
        self._pattern: re.Pattern[str] | None = None
        self._built = -float("inf")
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """A secret changed: rebuild before the next use."""
        self._built = -float("inf")

    async def pattern(self) -> re.Pattern[str] | None:
        """The current pattern (None when no secret is stored), rebuilt when stale."""
        if time.monotonic() - self._built < self.ttl:
            return self._pattern
        async with self._lock:
            if time.monotonic() - self._built >= self.ttl:
                await self._rebuild()
        return self._pattern

    async def _rebuild(self) -> None:
        async with self.database.read() as session:
            rows = (
                await session.execute(sa.select(secrets.c.name, secrets.c.token).limit(MAX_SECRETS))
            ).all()
        values: list[str] = []
        if rows:
            # Decrypting is CPU work (HMAC + AES per token): off the event loop.
            values = await asyncio.to_thread(self._decrypt_all, [(r.name, r.token) for r in rows])
        ordered = sorted({v for v in values if len(v) >= MIN_MASKED_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._built = time.monotonic()

    def _decrypt_all(self, tokens: list[tuple[str, str]]) -> list[str]:
        try:
            box = self._make_box()
        except SecretKeyError:
            return []  # no usable key: nothing can be decrypted, the API reports that on reads
        out = []
        for name, token in tokens:
            try:
                out.append(box.decrypt(token, name))
            except SecretKeyError:
                continue
        return out

    async def text(self, value: str) -> str:
        pattern = await self.pattern()
        return pattern.sub(MASK, value) if pattern is not None and value else value

    async def value(self, document: Any) -> Any:
        """``document`` (JSON data) with every string's secret values masked."""
        pattern = await self.pattern()
        return _walk(document, pattern, 0) if pattern is not None else document


def _walk(value: Any, pattern: re.Pattern[str], depth: int) -> Any:
    if isinstance(value, str):
        return pattern.sub(MASK, value)
    if depth >= MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _walk(v, pattern, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, pattern, depth + 1) for v in value]
    return value
