"""``tideflow server services start``: singleton services in a process of their own, without the API.

Only on PostgreSQL: the process listens to the replicas' fan-out for the events, automation and
schedule changes the API replicas commit, and each service runs under its lease (ADR 0014), so any
number of these processes and of full servers can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from tideflow.exceptions import TideflowError
from tideflow.server.context import ServerContext
from tideflow.server.replicas.fanout import PgFanout
from tideflow.server.replicas.lease import LeasedService, asyncpg_dsn
from tideflow.server.services.registry import SINGLETONS, build_services
from tideflow.server.storage import Database, mask_url, parse_database_url
from tideflow.server.storage.migrate import upgrade_engine
from tideflow.settings import Settings

__all__ = ["parse_only", "run_services"]

_STOP_GRACE = 10.0

_log = logging.getLogger("tideflow.server")


def parse_only(text: str | None) -> list[str]:
    """The service names of ``--only a,b`` (all singletons when None); TideflowError naming an
    unknown one."""
    if text is None:
        return list(SINGLETONS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SINGLETONS]
    if unknown or not names:
        raise TideflowError(
            f"unknown service {', '.join(map(repr, unknown)) or repr(text)}: "
            f"choose from {', '.join(SINGLETONS)}"
        )
    return list(dict.fromkeys(names))


def run_services(settings: Settings, *, database_url: str, only: Sequence[str]) -> None:
    """Run the ``only`` services until SIGINT/SIGTERM; TideflowError when they cannot start."""
    parsed = parse_database_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        raise TideflowError(
            "services apart from the API need PostgreSQL: on SQLite one `tideflow server start` "
            "holds the API and every service"
        )
    asyncio.run(_main(settings, database_url, list(only)))


async def _main(settings: Settings, url: str, only: list[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    database = Database(url)
    fanout: PgFanout | None = None
    try:
        try:
            await upgrade_engine(database.engine)
        except Exception as exc:
            raise TideflowError(f"cannot open the database {mask_url(url)}: {exc}") from None
        context = ServerContext(settings=settings, database=database)
        # No runner connects here: run changes are never read, only notified.
        fanout = context.fanout = PgFanout(
            database, context.broker, asyncpg_dsn(url), wants_runs=lambda: False
        )
        database.before_commit = fanout.before_commit
        await fanout.start()
        services = build_services(context, singletons=only, per_replica=False)
        fanout.on_resync.extend(
            s.restart for s in services if isinstance(s, LeasedService) and s.name == "triggers"
        )
        _log.info("tideflow services %s on %s", ", ".join(only), mask_url(url))
        tasks = [asyncio.create_task(s.run()) for s in services]
        await stop.wait()
        for service in services:
            service.stop()
        _, stuck = await asyncio.wait(tasks, timeout=_STOP_GRACE)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if fanout is not None:
            with contextlib.suppress(Exception):
                await fanout.stop()
        await database.dispose()
