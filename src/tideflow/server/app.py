"""create_app: the FastAPI application. Its lifespan checks and opens the database, upgrades the
schema, arms the watch on the SQLite file and builds the ServerContext; shutdown disposes the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.gzip import GZipMiddleware

import tideflow
from tideflow.server.api import API_PREFIX, api_routers, install_error_handlers, install_openapi
from tideflow.server.api.auth import (
    AuthFailures,
    AuthMiddleware,
    BrowserSessions,
    KeyVerifier,
    check_auth_configured,
)
from tideflow.server.api.doors import DoorPolicy, DoorsMiddleware
from tideflow.server.api.headers import SecurityHeadersMiddleware
from tideflow.server.api.limits import LimitsMiddleware
from tideflow.server.api.scopes import auth_required
from tideflow.server.context import ServerContext
from tideflow.server.replicas import LeasedService, PgFanout, SqliteServerLock, asyncpg_dsn
from tideflow.server.services.registry import build_services
from tideflow.server.storage import Database, parse_database_url
from tideflow.server.storage.guard import check_sqlite_start, marker_path, write_marker
from tideflow.server.storage.migrate import upgrade_engine
from tideflow.server.ui import install_ui
from tideflow.settings import Settings, get_settings

__all__ = ["create_app"]

SERVICE_STOP_GRACE = 10.0  # seconds a service may take to finish its step at shutdown


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    create_database: bool = False,
    singletons: Iterable[str] | None = None,
) -> FastAPI:
    """The API app for ``database_url`` (default: the settings' database, SQLite in TIDEFLOW_HOME).

    A SQLite database that existed and is gone is refused at start unless ``create_database``, and
    one another server holds is refused. ``singletons``: which singleton services this process runs
    (default all; on PostgreSQL each under a lease, ADR 0014); ``()`` for an API-only replica.
    """
    settings = settings or get_settings()
    auth_on = auth_required(settings, settings.server_host)
    url = database_url or settings.resolved_database_url
    parsed = parse_database_url(url)  # a bad URL fails here, readably, not at first request
    sqlite_file = Path(parsed.database) if parsed.get_backend_name() == "sqlite" else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refuse_empty = None
        file_lock = SqliteServerLock(sqlite_file) if sqlite_file is not None else None
        if file_lock is not None:
            file_lock.acquire()
        if sqlite_file is not None:
            try:
                refuse_empty = check_sqlite_start(sqlite_file, create_database=create_database)
            except BaseException:
                assert file_lock is not None
                file_lock.release()
                raise
        database = Database(url)
        fanout: PgFanout | None = None
        try:
            await upgrade_engine(database.engine, refuse_empty=refuse_empty)
            if auth_on:
                await check_auth_configured(settings, database)
            if sqlite_file is not None:
                if create_database or not marker_path(sqlite_file).exists():
                    write_marker(sqlite_file)
                database.watch_file()
            context = ServerContext(settings=settings, database=database)
            app.state.context = context
            if not database.is_sqlite:
                # Changes committed by the other replicas reach this one's broker (ADR 0014).
                fanout = context.fanout = PgFanout(
                    database,
                    context.broker,
                    asyncpg_dsn(url),
                    wants_runs=lambda: context.dispatcher.serving,
                )
                database.before_commit = fanout.before_commit
                await fanout.start()
            context.dispatcher.start()
            services = build_services(context, singletons=singletons)
            if fanout is not None:
                # Notices missed while the listener was down: the engine replays its checkpoint.
                fanout.on_resync.extend(
                    s.restart
                    for s in services
                    if isinstance(s, LeasedService) and s.name == "triggers"
                )
            tasks = [asyncio.create_task(service.run()) for service in services]
            try:
                yield
            finally:
                for service in services:
                    service.stop()
                # A service stuck in a step must not hold shutdown hostage: cancel it after a grace.
                _, stuck = (
                    await asyncio.wait(tasks, timeout=SERVICE_STOP_GRACE) if tasks else ((), ())
                )
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await context.dispatcher.stop()
        finally:
            if fanout is not None:
                await fanout.stop()
            await database.dispose()
            if file_lock is not None:
                file_lock.release()

    app = FastAPIOffline(
        title="tideflow",
        version=tideflow.__version__,
        description="The tideflow API: flows, flow runs, their states and logs.",
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
    )
    install_error_handlers(app)
    install_openapi(app)  # documents the answers of those handlers on every route
    for router in api_routers:
        # With a prefix given here, FastAPI defers each router's route set-up to its first request.
        app.include_router(router, prefix=API_PREFIX)

    install_ui(app)
    # Pages, JSON and assets compressed when the client accepts gzip (websockets pass through;
    # event streams and already-compressed types are left alone). Level 6: most of 9's gain for a
    # fraction of its CPU. Small answers (most API calls) are sent as they are.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    # Body size, JSON depth and lone surrogates, checked once for every route before it parses.
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=settings.server_max_request_bytes,
        max_json_depth=settings.server_max_json_depth,
    )
    if auth_on:
        # Outside the limits, inside the doors: no route runs and no body is read before the key
        # is checked; revoking a key (api.api_keys) drops it from this verifier's cache.
        app.state.key_verifier = KeyVerifier(admin_key=settings.server_admin_key)
        # UI logins, stored in the database (server/ui/login.py, ADR 0007).
        app.state.browser_sessions = BrowserSessions(app.state.key_verifier)
        app.state.auth_failures = AuthFailures()
        app.add_middleware(
            AuthMiddleware,
            verifier=app.state.key_verifier,
            sessions=app.state.browser_sessions,
            failures=app.state.auth_failures,
        )
    # Added last, so outermost: a request refused at the door (foreign Host or Origin, a body-less
    # cross-site POST) never reaches a route nor has its body read.
    app.add_middleware(
        DoorsMiddleware, policy=DoorPolicy.from_settings(settings), api_prefix=API_PREFIX
    )
    # Outermost of all: every answer, a refusal at the door included, carries the security headers.
    app.add_middleware(SecurityHeadersMiddleware)

    return app
