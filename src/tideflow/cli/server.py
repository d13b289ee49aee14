"""`tideflow server`: start the API server, ask whether one is up, stop the local one, migrate its database.

Only these command bodies import the server stack (FastAPI, SQLAlchemy, uvicorn), so every other
command stays fast. The local server records itself in ``$TIDEFLOW_HOME/server.pid`` while it runs;
``status`` and ``stop`` read that file.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from tideflow.cli._common import console, err_console, exit_with_error, print_json
from tideflow.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="Run and manage the tideflow API server.", no_args_is_help=True)
database_app = typer.Typer(help="Migrate the server's database.", no_args_is_help=True)
app.add_typer(database_app, name="database")
services_app = typer.Typer(
    help="Run the background services apart from the API (PostgreSQL).", no_args_is_help=True
)
app.add_typer(services_app, name="services")

STOP_TIMEOUT = 10.0


def _settings() -> Settings:
    from tideflow.settings import get_settings

    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError and a broken profile file
        exit_with_error(f"invalid tideflow settings: {_line(exc)}")


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _fail(exc: BaseException) -> NoReturn:
    exit_with_error(_line(exc))


def _port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (checked before we claim the pid file)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _exit_while_starting(settings: Settings) -> Any:
    """A SIGTERM/SIGINT handler for the start-up phase, before uvicorn installs its own.

    Raising from a signal handler lands in whatever runs at that moment (inside pydantic's schema
    building it surfaces as a SchemaError, exit 1); nothing has been served yet and a half-done
    migration rolls back with the process, so removing our pid file and exiting 0 at once is safe.
    """
    from tideflow._pidfile import remove_pid_file

    def handler(signum: int, frame: Any) -> None:
        remove_pid_file(settings, only_pid=os.getpid())
        os._exit(0)

    return handler


def _setting_default(name: str) -> str:
    """``TIDEFLOW_X, else <default>`` for an option's help: what applies when it is not given.
    (Rich reads ``[...]`` in help text as markup, which ate the hand-written defaults.)"""
    return f"TIDEFLOW_{name.upper()}, else {Settings.model_fields[name].default}"


_DATABASE_DEFAULT = "TIDEFLOW_DATABASE_URL, else SQLite at $TIDEFLOW_HOME/tideflow.db"


@app.command()
def start(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind.", show_default=_setting_default("server_host")),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Port to bind.", show_default=_setting_default("server_port")
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL.", show_default=_DATABASE_DEFAULT),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="Server log level.", show_default=_setting_default("logging_level")),
    ] = None,
    background: Annotated[
        bool,
        typer.Option("--background", help="Run as the auto-started local server (plain output)."),
    ] = False,
    create_database: Annotated[
        bool,
        typer.Option(
            "--create-database",
            help="Create an empty SQLite database even where one existed and is now missing "
            "(without it, such a start is refused, so a deleted database is never silently "
            "replaced by an empty one).",
        ),
    ] = False,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve without API keys even on a non-loopback address: anyone who can reach "
            "it can use the API.",
        ),
    ] = False,
    no_services: Annotated[
        bool,
        typer.Option(
            "--no-services",
            help="Serve the API only: no scheduler, trigger engine, late-run monitor or event "
            "retention here (run them with `tideflow server services start`; PostgreSQL).",
        ),
    ] = False,
) -> None:
    """Serve the API, UI and services until Ctrl-C or SIGTERM."""
    from tideflow._pidfile import (
        pid_file_path,
        process_alive,
        read_pid_file,
        remove_pid_file,
        write_pid_file,
    )
    from tideflow.exceptions import TideflowError
    from tideflow.server.run import run_server
    from tideflow.server.storage import mask_url, parse_database_url
    from tideflow.server.storage.guard import check_sqlite_start, check_writable_dir

    settings = _settings()
    host = host or settings.server_host
    port = port or settings.server_port
    url = database_url or settings.resolved_database_url
    if log_level is not None and log_level.upper() not in (
        "DEBUG",
        "INFO",
        "WARNING",
        "ERROR",
        "CRITICAL",
    ):
        exit_with_error(
            f"invalid --log-level {log_level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    try:
        parsed = parse_database_url(url)
    except TideflowError as exc:
        _fail(exc)
    # Before the pid file is written there: a read-only home is one line, not a traceback.
    try:
        check_writable_dir(settings.home, "TIDEFLOW_HOME")
    except TideflowError as exc:
        exit_with_error(f"cannot start the server: {exc}")
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        try:
            check_sqlite_start(Path(parsed.database), create_database=create_database)
        except TideflowError as exc:
            exit_with_error(f"cannot start the server on the database {mask_url(url)}: {exc}")
    _check_auth(settings, host, url, insecure_no_auth)
    if insecure_no_auth:
        settings = settings.model_copy(update={"server_auth": "off"})
    if _port_in_use(host, port):
        exit_with_error(
            f"port {port} on {host} is already in use — is a tideflow server running? (tideflow server status)"
        )
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base = f"http://[{shown_host}]:{port}" if ":" in shown_host else f"http://{shown_host}:{port}"
    masked = mask_url(url)
    banner = f"tideflow server on {base} · API /api · docs /docs · database {masked}"
    if background:
        print(banner, flush=True)
    else:
        # click's styling, not rich's: the server process does not keep rich loaded for one line
        # (click drops the colour when stdout is not a terminal).
        typer.echo(typer.style("tideflow server", fg="green", bold=True) + banner[15:])
    # A signal before uvicorn installs its handlers (during migrations) must still exit 0 and clean up.
    early_exit = _exit_while_starting(settings)
    signal.signal(signal.SIGTERM, early_exit)
    signal.signal(signal.SIGINT, early_exit)
    other = read_pid_file(settings)
    if other is not None and other.pid != os.getpid() and process_alive(other.pid):
        # Another server of this TIDEFLOW_HOME owns the pid file; `server stop` keeps meaning that one.
        typer.echo(
            f"note: {pid_file_path(settings).name} stays with the running server pid {other.pid} "
            f"({other.api_url})",
            err=True,
        )
    else:
        write_pid_file(settings, api_url=f"{base}/api", database=masked)
    try:
        run_server(
            settings,
            host=host,
            port=port,
            database_url=url,
            log_level=log_level,
            create_database=create_database,
            services=not no_services,
        )
    except TideflowError as exc:
        _fail(exc)
    finally:
        remove_pid_file(settings, only_pid=os.getpid())


def _check_auth(settings: Settings, host: str, url: str, insecure_no_auth: bool) -> None:
    """Refuse, before anything is written or bound, a start with auth on and no way in."""
    from tideflow.server.api.auth import MIN_ADMIN_KEY_LENGTH, not_configured_message
    from tideflow.server.api.scopes import auth_required, is_loopback

    if insecure_no_auth or not auth_required(settings, host):
        if not is_loopback(host):
            typer.secho(
                f"warning: serving on {host} WITHOUT authentication: anyone who can reach "
                "it can use the API",
                fg="red", bold=True, err=True,
            )  # fmt: skip
        return
    admin = settings.server_admin_key
    if admin is not None and len(admin) < MIN_ADMIN_KEY_LENGTH:
        exit_with_error(
            f"TIDEFLOW_SERVER_ADMIN_KEY is too short to be a secret: use at least "
            f"{MIN_ADMIN_KEY_LENGTH} random characters"
        )
    if not admin and not asyncio.run(_admin_key_stored(url)):
        exit_with_error(not_configured_message(host))


async def _admin_key_stored(url: str) -> bool:
    from tideflow.server.storage import Database, parse_database_url
    from tideflow.server.storage.api_keys import admin_key_exists

    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).exists():
        return False  # never create a database just to find it empty
    database = Database(url)
    try:
        async with database.read() as session:
            return await admin_key_exists(session)
    except Exception:  # no api_keys table yet (an older schema), or unreachable: no key
        return False
    finally:
        await database.dispose()


@app.command()
def bootstrap(
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL [default: TIDEFLOW_DATABASE_URL or SQLite in TIDEFLOW_HOME]."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="Name of the admin key.")] = "admin",
) -> None:
    """Create the first admin API key in the server's database and print it (shown only once)."""
    from rich.text import Text

    from tideflow.exceptions import TideflowError
    from tideflow.schemas.api_keys import ApiKeyCreate
    from tideflow.server.storage import Database, mask_url, migrate, parse_database_url
    from tideflow.server.storage.api_keys import admin_key_exists, create_api_key
    from tideflow.server.storage.auth_events import emit_api_key_event

    settings = _settings()
    url = database_url or settings.resolved_database_url
    try:
        parse_database_url(url)
    except TideflowError as exc:
        _fail(exc)

    async def run() -> str | None:
        await migrate.upgrade(url, "head")
        database = Database(url)
        try:
            async with database.write() as session:
                if await admin_key_exists(session):
                    return None
                created = await create_api_key(session, ApiKeyCreate(name=name, scopes=["admin"]))
                await emit_api_key_event(session, created, "created")
                return created.key
        finally:
            await database.dispose()

    try:
        key = asyncio.run(run())
    except Exception as exc:
        exit_with_error(
            f"cannot bootstrap {mask_url(url)}: {_line(getattr(exc, 'orig', None) or exc)}"
        )
    if key is None:
        exit_with_error(
            f"{mask_url(url)} has an admin API key already; create more with "
            "`tideflow api-key create NAME --scope ...` using it"
        )
    err_console.print(Text("admin API key (shown once; store it now, e.g. as TIDEFLOW_API_KEY):"))
    print(key, flush=True)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Say whether a server answers at the configured API URL (exit 1 when none does)."""
    from rich.text import Text

    from tideflow._pidfile import process_alive, read_pid_file
    from tideflow.client import SyncClient
    from tideflow.exceptions import ServerUnreachable, TideflowError

    settings = _settings()
    api_url = settings.resolved_api_url
    local = read_pid_file(settings)
    pid = (
        local.pid
        if local is not None and local.api_url == api_url and process_alive(local.pid)
        else None
    )
    problem: str | None = None
    info: Any = None
    try:
        with SyncClient(api_url=api_url, settings=settings, timeout=5.0) as client:
            info = client.version()
    except ServerUnreachable:
        problem = f"nothing answers at {api_url}"
    except (TideflowError, ValueError) as exc:  # an HTTP error or a body that is not JSON
        problem = f"something answers at {api_url} but not as a tideflow API ({_line(exc)})"
    if problem is None and not (isinstance(info, dict) and "version" in info):
        problem = (
            f"something answers at {api_url} but not as a tideflow API (no version in its answer)"
        )
    if problem is not None:
        if as_json:
            print_json({"up": False, "api_url": api_url, "error": problem, "pid": pid})
        else:
            console.print(Text(problem))
        raise typer.Exit(1)
    report = {
        "up": True,
        "api_url": api_url,
        "version": info.get("version"),
        "database": info.get("database"),
        # The API names only the dialect; the URL (masked) is known for this home's local server.
        "database_url": local.database if pid is not None and local is not None else None,
        "pid": pid,
    }
    if as_json:
        print_json(report)
        return
    console.print(Text.assemble(("up", "green"), f" tideflow {report['version']} at {api_url}"))
    shown_url = f" {report['database_url']}" if report["database_url"] else ""
    console.print(Text(f"database {report['database']}{shown_url}"))
    if pid is not None:
        console.print(Text(f"local server pid {pid} (started {local.started if local else '?'})"))


@app.command()
def stop(
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait after SIGTERM before SIGKILL.")
    ] = STOP_TIMEOUT,
) -> None:
    """Stop the local server started from this TIDEFLOW_HOME (SIGTERM, then SIGKILL after 10 s)."""
    from tideflow._pidfile import pid_file_path, process_alive, read_pid_file, remove_pid_file

    settings = _settings()
    local = read_pid_file(settings)
    if local is None:
        if pid_file_path(settings).exists():
            remove_pid_file(settings)
            console.print(f"removed an unreadable pid file {pid_file_path(settings)}")
        console.print("no local tideflow server is running")
        return
    if not process_alive(local.pid):
        remove_pid_file(settings, only_pid=local.pid)
        console.print(f"removed a stale pid file (process {local.pid} is gone)")
        console.print("no local tideflow server is running")
        return
    _signal(local.pid, signal.SIGTERM)
    how = "stopped"
    if not _wait_gone(local.pid, timeout):
        _signal(local.pid, signal.SIGKILL)
        how = f"killed (it did not stop within {timeout:g} s of SIGTERM)"
        if not _wait_gone(local.pid, 5.0):
            exit_with_error(f"process {local.pid} is still running after SIGKILL")
    remove_pid_file(settings, only_pid=local.pid)
    console.print(f"{how} the local tideflow server (pid {local.pid}, {local.api_url})")


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        exit_with_error(
            f"not allowed to signal process {pid} (the local server belongs to another user)"
        )


def _wait_gone(pid: int, timeout: float) -> bool:
    from tideflow._pidfile import process_alive

    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


DatabaseUrlOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL.", show_default=_DATABASE_DEFAULT)
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if sys.stdin is None or sys.stdin.closed:
        exit_with_error("no terminal to confirm on: pass --yes to go ahead without asking")
    try:
        answer = typer.confirm(question, default=False)
    except typer.Abort:  # end of input: nobody can answer
        exit_with_error("no answer on stdin: pass --yes to go ahead without asking")
    if not answer:
        exit_with_error("aborted; the database was not changed")


def _migrate(action: str, url: str | None, revision: str | None) -> None:
    from rich.text import Text

    from tideflow.exceptions import TideflowError
    from tideflow.server.storage import mask_url, migrate, parse_database_url

    settings = _settings()
    url = url or settings.resolved_database_url
    try:
        parse_database_url(url)
    except TideflowError as exc:
        _fail(exc)

    async def run() -> tuple[str | None, str | None]:
        before = await migrate.current(url)
        if action == "upgrade":
            await migrate.upgrade(url, revision or "head")
        elif action == "downgrade":
            await migrate.downgrade(url, revision or "base")
        else:
            await migrate.reset(url)
        return before, await migrate.current(url)

    try:
        before, after = asyncio.run(run())
    except Exception as exc:  # driver, SQLAlchemy and alembic errors (an unknown revision) alike
        reason = _line(getattr(exc, "orig", None) or exc)
        exit_with_error(f"cannot {action} the database {mask_url(url)}: {reason}")
    console.print(
        Text(f"{action}: {mask_url(url)} revision {before or '(empty)'} -> {after or '(empty)'}")
    )


@database_app.command()
def upgrade(
    database_url: DatabaseUrlOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Accepted as Prefect's (an upgrade never asks).")
    ] = False,
) -> None:
    """Upgrade the database schema (to the latest revision by default)."""
    _migrate("upgrade", database_url, revision)


@database_app.command()
def downgrade(
    database_url: DatabaseUrlOption = None,
    revision: Annotated[
        str, typer.Option(help="Target revision (base drops every table).")
    ] = "base",
    yes: YesOption = False,
) -> None:
    """Downgrade the database schema (to base, an empty database, by default)."""
    from tideflow.server.storage import mask_url

    shown = mask_url(database_url or _settings().resolved_database_url)
    _confirm(f"Downgrade {shown} to revision {revision}? Data in dropped tables is lost.", yes)
    _migrate("downgrade", database_url, revision)


@database_app.command()
def reset(database_url: DatabaseUrlOption = None, yes: YesOption = False) -> None:
    """Drop every table and recreate the schema: all data is lost."""
    from tideflow.server.storage import mask_url

    shown = mask_url(database_url or _settings().resolved_database_url)
    _confirm(f"Reset {shown}? Every flow, run and log in it is deleted.", yes)
    _migrate("reset", database_url, None)


@services_app.command("start")
def services_start(
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated services to run: scheduler, triggers, late-runs, "
            "event-retention (default: all of them).",
        ),
    ] = None,
    database_url: DatabaseUrlOption = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="Log level.", show_default=_setting_default("logging_level")),
    ] = None,
) -> None:
    """Run singleton services without the API until Ctrl-C or SIGTERM (each under its lease)."""
    import logging

    from tideflow.exceptions import TideflowError
    from tideflow.server.replicas.standalone import parse_only, run_services

    settings = _settings()
    level = (log_level or settings.logging_level).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        exit_with_error(
            f"invalid --log-level {log_level!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    try:
        names = parse_only(only)
        logging.basicConfig(level=level, format="%(levelname)s: %(name)s: %(message)s")
        logging.getLogger("tideflow").setLevel(level)
        run_services(settings, database_url=database_url or settings.resolved_database_url,
                     only=names)  # fmt: skip
    except TideflowError as exc:
        _fail(exc)
