"""Global concurrency and rate limits from Python, across every process that talks to the server.

``with concurrency("db", occupy=2): ...`` waits until 2 slots of the limit named ``db`` are free,
holds them while the block runs and frees them after. The slots are a lease that a background
thread (or task, for ``aconcurrency``) renews while the block runs: when the process dies, even by
kill -9, the lease runs out after ``lease_seconds`` and the slots come back. ``rate_limit("api")``
waits for a slot of a limit with ``slot_decay_per_second`` and takes it; the slots drain by
themselves. Create limits with ``tideflow gcl create NAME --limit N``. A name with no limit is not
limited (a warning is logged), unless ``strict=True``, which raises ObjectNotFound. Prefect's
``prefect.concurrency.sync.concurrency`` / ``rate_limit`` map to ``concurrency`` / ``rate_limit``,
and its ``prefect.concurrency.asyncio`` versions to ``aconcurrency`` / ``arate_limit``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Literal
from uuid import UUID

from tideflow.client import AsyncClient, SyncClient
from tideflow.engine.clients import sync_client
from tideflow.exceptions import ObjectNotFound
from tideflow.schemas.global_concurrency import LeaseAnswer, SlotRequest
from tideflow.settings import get_settings

__all__ = ["ConcurrencySlotTimeout", "aconcurrency", "arate_limit", "concurrency", "rate_limit"]

logger = logging.getLogger("tideflow.concurrency")

_MAX_WAIT_STEP = 2.0  # seconds between two asks at most, so a freed slot is found quickly


class ConcurrencySlotTimeout(TimeoutError):
    """The slots were not free within ``timeout_seconds``."""


def _names(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _request(
    names: list[str], occupy: int, mode: Literal["concurrency", "rate_limit"], lease: float
) -> SlotRequest:
    return SlotRequest(names=names, slots=occupy, mode=mode, lease_seconds=lease)


def _granted(answer: LeaseAnswer, names: list[str], strict: bool) -> bool:
    """Whether to stop asking; raises for missing limits when ``strict``."""
    if answer.missing and strict:
        raise ObjectNotFound(
            404,
            f"no global concurrency limit named {answer.missing[0]!r}; create it with "
            f"`tideflow gcl create {answer.missing[0]} --limit N`",
        )
    if answer.missing:
        logger.warning(
            "no global concurrency limit named %s: not limited",
            ", ".join(repr(n) for n in answer.missing),
        )
    return answer.acquired


def _pause(answer: LeaseAnswer, deadline: float | None, names: list[str]) -> float:
    wait = min(max(answer.retry_after, 0.05), _MAX_WAIT_STEP)
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConcurrencySlotTimeout(
                f"no free slots of {answer.full_name or names[0]!r} within the timeout"
            )
        wait = min(wait, left)
    return wait


def _acquire(
    client: SyncClient, request: SlotRequest, timeout: float | None, strict: bool
) -> LeaseAnswer:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        answer = client.acquire_global_slots(request)
        if _granted(answer, request.names, strict):
            return answer
        time.sleep(_pause(answer, deadline, request.names))


async def _aacquire(
    client: AsyncClient, request: SlotRequest, timeout: float | None, strict: bool
) -> LeaseAnswer:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        answer = await client.acquire_global_slots(request)
        if _granted(answer, request.names, strict):
            return answer
        await asyncio.sleep(_pause(answer, deadline, request.names))


def _renew_until(stop: threading.Event, lease_id: UUID, lease_seconds: float) -> None:
    client: SyncClient | None = None  # made on the first renewal: most blocks end before it
    try:
        while not stop.wait(lease_seconds / 3):
            client = client or SyncClient(settings=get_settings())
            try:
                client.renew_global_lease(lease_id, lease_seconds)
            except ObjectNotFound:
                logger.warning("concurrency lease %s expired before the block ended", lease_id)
                return
            except Exception as exc:  # the server may be back before the lease runs out
                logger.warning("could not renew concurrency lease %s: %s", lease_id, exc)
    finally:
        if client is not None:
            client.close()


@contextmanager
def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    *,
    lease_seconds: float = 30.0,
    strict: bool = False,
) -> Iterator[None]:
    """Hold ``occupy`` slots of each named limit while the block runs (waiting for them first)."""
    request = _request(_names(names), occupy, "concurrency", lease_seconds)
    client = sync_client(get_settings())  # the process's client: its connection is kept open
    answer = _acquire(client, request, timeout_seconds, strict)
    if answer.lease_id is None:  # nothing to hold (inactive or missing limits)
        yield
        return
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew_until, args=(stop, answer.lease_id, lease_seconds), daemon=True
    )
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        client.release_global_lease(answer.lease_id)


def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    *,
    strict: bool = False,
) -> None:
    """Wait until ``occupy`` slots of each named rate limit are free and take them (they drain)."""
    request = _request(_names(names), occupy, "rate_limit", 30.0)
    _acquire(sync_client(get_settings()), request, timeout_seconds, strict)


async def _arenew(client: AsyncClient, lease_id: UUID, lease_seconds: float) -> None:
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            await client.renew_global_lease(lease_id, lease_seconds)
        except ObjectNotFound:
            logger.warning("concurrency lease %s expired before the block ended", lease_id)
            return
        except Exception as exc:
            logger.warning("could not renew concurrency lease %s: %s", lease_id, exc)


@asynccontextmanager
async def aconcurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    *,
    lease_seconds: float = 30.0,
    strict: bool = False,
) -> AsyncIterator[None]:
    """Async :func:`concurrency` (``async with aconcurrency("db"): ...``)."""
    request = _request(_names(names), occupy, "concurrency", lease_seconds)
    async with AsyncClient(settings=get_settings()) as client:
        answer = await _aacquire(client, request, timeout_seconds, strict)
        if answer.lease_id is None:
            yield
            return
        renewer = asyncio.create_task(_arenew(client, answer.lease_id, lease_seconds))
        try:
            yield
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            await client.release_global_lease(answer.lease_id)


async def arate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    *,
    strict: bool = False,
) -> None:
    """Async :func:`rate_limit`."""
    request = _request(_names(names), occupy, "rate_limit", 30.0)
    async with AsyncClient(settings=get_settings()) as client:
        await _aacquire(client, request, timeout_seconds, strict)
