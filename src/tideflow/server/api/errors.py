"""Error answers: every error is JSON with a readable ``detail`` string naming what was wrong.

422s also carry the raw validation items in ``errors``; storage's NotFound/Conflict become 404/409;
a database out of space is a 507 (out of other resources, or a deadlock undone by PostgreSQL, a 503);
an unexpected failure is a 500 whose detail names the exception type and one line of its message
(never an HTML page, never the SQL statement or its parameters). ``api.openapi`` documents these
answers; on a websocket the same line is the reason of a 1011 close.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, StatementError
from starlette.exceptions import HTTPException
from starlette.websockets import WebSocket, WebSocketState

from tideflow.server.api.validation import InvalidInput
from tideflow.server.storage import Conflict, NotFound
from tideflow.server.storage.errors import database_message, out_of_space
from tideflow.server.storage.guard import DatabaseUnavailable

__all__ = ["format_validation_errors", "install_error_handlers"]

logger = logging.getLogger("tideflow.server")

_MAX_MESSAGE = 300  # characters of an exception's message in a 500's detail
_RETRYABLE = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def format_validation_errors(errors: list[Any]) -> str:
    """``body.parameters: Input should be a valid dictionary; query.x: ...``."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def _safe_errors(errors: list[Any]) -> list[Any]:
    # Pydantic puts the raised exception object in ``ctx``; keep its text, not the object.
    out = []
    for err in errors:
        item = dict(err)
        if "ctx" in item:
            item["ctx"] = {
                k: str(v) if isinstance(v, Exception) else v for k, v in item["ctx"].items()
            }
        out.append(item)
    encoded: list[Any] = jsonable_encoder(out)
    return encoded


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    return JSONResponse(
        {"detail": format_validation_errors(errors), "errors": _safe_errors(errors)},
        status_code=422,
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such route: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    errors = [{"type": "value_error", "loc": list(loc), "msg": msg} for loc, msg in exc.errors]
    return JSONResponse({"detail": str(exc), "errors": errors}, status_code=422)


async def _database(conn: Request | WebSocket, exc: Exception) -> JSONResponse | None:
    """A database error on a route or a websocket (``/events/in``): out of space 507, out of other
    resources 503, a value it cannot store 422, anything else 500; always one line, no SQL."""
    assert isinstance(exc, DBAPIError)
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    # Not bugs, and nothing was stored: say so in one line (the statement stays out of it).
    if out_of_space(exc):
        status, detail = 507, f"the database is out of space: {database_message(exc)}"
    # SQLSTATE class 53 is "insufficient resources" (memory, connections): try again later.
    elif sqlstate.startswith("53"):
        status, detail = 503, f"the database is out of resources: {database_message(exc)}"
    # 40P01 deadlock, 40001 serialization failure: PostgreSQL rolled this transaction back for a
    # concurrent one; nothing was stored and the same request can succeed when sent again.
    elif sqlstate in _RETRYABLE:
        status, detail = 503, f"{database_message(exc)}: the change was undone, send it again"
    # SQLSTATE class 22 is "data exception": a value the database cannot store is bad input.
    elif sqlstate.startswith("22"):
        status, detail = 422, f"the database refused a value: {database_message(exc)}"
    else:
        logger.exception("unhandled error on %s", _where(conn))
        status, detail = 500, _internal(exc)
    if status in (503, 507):
        logger.error("%s (%s)", detail, _where(conn))
    if isinstance(conn, WebSocket):
        await _close(conn, detail)
        return None
    headers = {"Retry-After": "1"} if sqlstate in _RETRYABLE else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _where(conn: Request | WebSocket) -> str:
    if isinstance(conn, WebSocket):
        return f"websocket {conn.url.path}"
    return f"{conn.method} {conn.url.path}"


# Internal error, with the reason as the close reason (at most 123 bytes by the protocol).
_WS_INTERNAL_ERROR = 1011
_WS_REASON_BYTES = 123
_WS_GONE = "the database file was deleted or replaced; the server stopped accepting writes"


async def _close(websocket: WebSocket, reason: str) -> None:
    """Close with 1011 and ``reason`` cut to what the protocol allows: a client must never take an
    error for the answer to a frame it sent, and on a close it keeps its unacked events."""
    if websocket.application_state == WebSocketState.CONNECTED:
        cut = reason.encode()[:_WS_REASON_BYTES].decode(errors="ignore")
        await websocket.close(code=_WS_INTERNAL_ERROR, reason=cut)


async def _unavailable(conn: Request | WebSocket, exc: Exception) -> JSONResponse | None:
    """503: the database cannot keep what is sent (already logged once, at ERROR, when noticed).

    On a websocket (``/events/in``), close with the reason instead of sending a frame: a client must
    never take an error for an answer to the frame it sent, and on a close it keeps its unacked
    events for the next connection."""
    if isinstance(conn, WebSocket):
        if conn.application_state == WebSocketState.CONNECTED:
            reason = str(exc)
            if len(reason.encode()) > _WS_REASON_BYTES:  # a long path: the gist, the log has all
                reason = _WS_GONE
            await conn.close(code=_WS_INTERNAL_ERROR, reason=reason)
        return None
    return JSONResponse({"detail": str(exc)}, status_code=503)


def _one_line(exc: BaseException) -> str:
    """The exception's message for a client: its first line, bounded. SQLAlchemy's own text adds
    the statement and its parameters (which may hold another client's data): use the driver's."""
    if isinstance(exc, DBAPIError):
        text = database_message(exc)
    elif isinstance(exc, StatementError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {_one_line(exc.orig)}"
    else:
        lines = str(exc).strip().splitlines()
        text = lines[0].strip() if lines else ""
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _internal(exc: BaseException) -> str:
    return f"internal server error: {type(exc).__name__}: {_one_line(exc)}"


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The log keeps the whole story (traceback, statement); the answer names the error only.
    logger.exception("unhandled error on %s", _where(request))
    return JSONResponse({"detail": _internal(exc)}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(DBAPIError, _database)  # type: ignore[arg-type]
    app.add_exception_handler(DatabaseUnavailable, _unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
