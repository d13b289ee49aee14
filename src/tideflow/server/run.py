"""run_server: serve the app with uvicorn until SIGINT/SIGTERM, then shut down gracefully.

The listening socket is bound here first, so "port in use" becomes a readable TideflowError, and the
app's lifespan is driven here (not by uvicorn) so a startup failure (bad database, failed migration)
surfaces as one TideflowError line instead of a logged traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

# Modules the server process loads for nothing, marked absent before the server stack is imported:
# - uvicorn's package import loads its reload supervisor and with it watchfiles (~0.8 MiB: a Rust
#   extension plus anyio); this server never reloads, and uvicorn falls back to its stat-based one;
# - FastAPI imports pydantic.v1 (~15 ms, ~1.7 MiB) only to refuse pydantic v1 models in routes;
#   tideflow has none, and FastAPI treats an absent pydantic.v1 as "not a v1 model".
# - httpx (loaded on the first outgoing request) would load its command-line tool: rich, click's
#   and pygments' modules (see tideflow.client).
# Only when not imported yet: a process that already uses them keeps them.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
if "uvicorn" not in sys.modules:
    sys.modules.setdefault("uvicorn.supervisors.watchfilesreload", None)  # type: ignore[arg-type]
if "fastapi" not in sys.modules:
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]

import uvicorn
import uvicorn.logging

from tideflow.exceptions import TideflowError
from tideflow.server.api.auth import AuthNotConfigured
from tideflow.server.app import create_app
from tideflow.server.memory import start_memory_returner
from tideflow.server.storage import mask_url
from tideflow.server.storage.guard import DatabaseUnavailable
from tideflow.settings import Settings

__all__ = ["bind_socket", "run_server"]

logger = logging.getLogger("tideflow.server")

_LEVELS = ("debug", "info", "warning", "error", "critical")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; a TideflowError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise TideflowError(
                f"port {port} on {host} is already in use; stop what is listening there or pick "
                "another port (--port)"
            ) from None
        raise TideflowError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the caught signal after shutdown (we return instead)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # optional speed-up, shipped with uvicorn[standard]
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    database_url: str | None = None,
    log_level: str | None = None,
    create_database: bool = False,
    services: bool = True,
) -> None:
    """Serve the API on ``host:port`` until SIGINT/SIGTERM; TideflowError on a startup failure.

    ``create_database``: create an empty SQLite database even where one existed and is gone;
    ``services``: False for an API-only replica (no singleton services, ADR 0014)."""
    level = (log_level or settings.logging_level).lower()
    if level not in _LEVELS:
        raise TideflowError(
            f"invalid log level {log_level!r}: use one of {', '.join(_LEVELS).upper()}"
        )
    _log_to_stderr(logging.getLogger("tideflow"), level.upper())
    if host != settings.server_host:
        # The host this server binds is one it answers to (the Host check in server/api/doors.py),
        # also when it came from `--host` rather than TIDEFLOW_SERVER_HOST.
        settings = settings.model_copy(update={"server_host": host})
    url = database_url or settings.resolved_database_url
    app = create_app(
        settings,
        database_url=url,
        create_database=create_database,
        singletons=None if services else (),
    )
    sock = bind_socket(host, port)
    config = uvicorn.Config(
        app,
        log_level=level,
        access_log=False,
        lifespan="off",
        http="auto",
        loop="none",
        timeout_graceful_shutdown=10,
        # /events/in answers frames up to twice the request limit with refusals naming it (so the
        # sender stops resending them); beyond that the websocket is closed (1009).
        ws_max_size=2 * settings.server_max_request_bytes,
    )
    server = _Server(config)

    async def serve() -> None:
        context = app.router.lifespan_context(app)
        try:
            await context.__aenter__()
        except AuthNotConfigured:  # about the address, not the database: its line stands alone
            raise
        except TideflowError as exc:  # already names what is wrong (a read-only home, a lost db)
            raise TideflowError(
                f"cannot start the server on the database {mask_url(url)}: {exc}"
            ) from None
        except Exception as exc:  # any startup failure becomes one line for the CLI
            logger.debug("server startup failed", exc_info=True)
            raise TideflowError(
                f"cannot start the server on the database {mask_url(url)}: {_one_line(exc)}"
            ) from None
        _settle_gc()
        returner = start_memory_returner()
        try:
            await server.serve(sockets=[sock])
        finally:
            if returner is not None:
                returner.stop()
            await context.__aexit__(None, None, None)

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve())
    finally:
        sock.close()


def _log_to_stderr(root: logging.Logger, level: str) -> None:
    """tideflow's server lines on stderr, prefixed with their level like uvicorn's own ones.

    Left alone when logging is already configured (an embedding program's handlers win).
    """
    root.setLevel(level)
    if root.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(uvicorn.logging.DefaultFormatter("%(levelprefix)s %(message)s"))
    handler.addFilter(_not_reported_before)
    root.addHandler(handler)


def _not_reported_before(record: logging.LogRecord) -> bool:
    # Once the database file is gone, the guard logs that once; every background loop failing on
    # it since would add a traceback per step, burying the one line that explains them all.
    return not (record.exc_info and isinstance(record.exc_info[1], DatabaseUnavailable))


# Hot paths (event ingest, trigger evaluation) allocate many short-lived containers; with the
# default gen-0 threshold (700) the cyclic collector ran thousands of times a second and took
# 11-17 % of the server's time in the ingest profile. Refcounting frees almost all of it anyway.
GC_THRESHOLDS = (50_000, 20, 100)


def _settle_gc() -> None:
    """After start-up: move what start-up built out of the collector's sight, collect less often."""
    gc.collect()
    gc.freeze()  # modules, models, app: never garbage, so never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


def _one_line(exc: BaseException) -> str:
    # SQLAlchemy wraps driver errors; the driver's own message is the readable part.
    inner: Any = getattr(exc, "orig", None) or exc
    text = str(inner).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(inner).__name__}: {first}" if first else type(inner).__name__
