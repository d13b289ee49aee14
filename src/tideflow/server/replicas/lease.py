"""Leader leases for singleton services on PostgreSQL (ADR 0014).

A ``Lease`` is a session-level advisory lock held on a connection opened for nothing else: the lock
dies with that connection, so a replica killed with SIGKILL frees it as soon as PostgreSQL sees the
socket close. ``LeasedService`` runs a service only while its lease is held: it tries the lock every
``LEASE_RETRY`` seconds, builds a fresh service on each acquisition (its ``start`` reloads state from
the database), checks the lock connection every ``LEASE_CHECK`` seconds and stops the service at
once when that check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from tideflow.server.services.base import Service

__all__ = ["LEASE_CHECK", "LEASE_RETRY", "Lease", "LeasedService", "asyncpg_dsn", "lease_key"]

LEASE_RETRY = 0.5  # seconds between two tries of a standby
LEASE_CHECK = 1.0  # seconds between two checks of the holder's lock connection
_CHECK_TIMEOUT = 3.0  # a check that takes longer counts as a lost connection
_CONNECT_TIMEOUT = 5.0
_STOP_GRACE = 5.0  # seconds a service losing its lease may take to finish its step

_log = logging.getLogger("tideflow.server.replicas")


def asyncpg_dsn(url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, from tideflow's SQLAlchemy URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def lease_key(name: str) -> int:
    """The advisory-lock key of the lease ``name``: a stable signed 64-bit integer."""
    digest = hashlib.blake2b(f"tideflow:lease:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Lease:
    """One advisory lock on its own connection; ``held`` is True between acquire and release."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn = dsn
        self.name = name
        self.key = lease_key(name)
        self._conn: Any = None
        self.held = False

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False (not an error) when PostgreSQL is unreachable."""
        import asyncpg  # PostgreSQL only: a SQLite server never loads the driver

        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(
                    self.dsn,
                    timeout=_CONNECT_TIMEOUT,
                    # Who holds which lease, visible in pg_stat_activity next to pg_locks.
                    server_settings={
                        "application_name": f"tideflow-lease:{self.name}:{os.getpid()}"
                    },
                )
            got = await asyncio.wait_for(
                self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key), _CHECK_TIMEOUT
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _log.debug("lease %s: cannot try the lock: %s", self.name, exc)
            await self._drop()
            return False
        self.held = bool(got)
        return self.held

    async def check(self) -> bool:
        """True while the lock connection answers (so the lock is still ours)."""
        import asyncpg

        if self._conn is None or self._conn.is_closed():
            self.held = False
            return False
        try:
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), _CHECK_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        """Give the lock up by closing its connection (the lock dies with it)."""
        await self._drop()

    async def _drop(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)
            if not conn.is_closed():
                conn.terminate()


class LeasedService:
    """Runs the service ``factory`` builds only while this process holds the lease ``name``.

    Has the loop shape of a ``Service`` (``run()`` until ``stop()``); ``restart()`` stops the current
    service and builds a new one under the same lease (after a missed fan-out: it replays).
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], Service],
        dsn: str,
        *,
        retry: float = LEASE_RETRY,
        check: float = LEASE_CHECK,
    ) -> None:
        self.name = name
        self.factory = factory
        self.lease = Lease(dsn, name)
        self.retry = retry
        self.check_every = check
        self.service: Service | None = None
        self.acquired_at: float | None = None  # time.time() of the last acquisition
        self.terms = 0  # how many times this process took the lease
        self._stop = asyncio.Event()
        self._restart = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def restart(self) -> None:
        if self.service is not None:
            self._restart.set()

    @property
    def leading(self) -> bool:
        return self.lease.held and self.service is not None

    async def run(self) -> None:
        try:
            while not self._stop.is_set():
                if not await self.lease.try_acquire():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), self.retry)
                    continue
                self.terms += 1
                self.acquired_at = time.time()
                _log.info("this process now runs %s (lease acquired)", self.name)
                await self._lead()
                if not self._stop.is_set():
                    # Lost: let a standby take over rather than racing it back at once.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), self.retry * 4)
        finally:
            await self.lease.release()

    async def _lead(self) -> None:
        while self.lease.held and not self._stop.is_set():
            self._restart.clear()
            self.service = service = self.factory()
            task = asyncio.create_task(service.run())
            try:
                while not self._stop.is_set() and not self._restart.is_set():
                    if task.done():
                        # A service's run() only returns when stopped; anything else is a failure.
                        _log.error("%s ended on its own; giving its lease up", self.name)
                        await self.lease.release()
                        return
                    await self._pause()
                    if not await self.lease.check():
                        _log.error("%s lost its lease (its database connection failed)", self.name)
                        return
            finally:
                await self._end(service, task)
                self.service = None

    async def _pause(self) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._stop, self._restart)]
        try:
            await asyncio.wait(
                waiters, timeout=self.check_every, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _end(self, service: Service, task: asyncio.Task[None]) -> None:
        service.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait({task}, timeout=_STOP_GRACE)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
