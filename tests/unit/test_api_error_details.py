"""The JSON error answers for database failures: out of space is a 507, other insufficient
resources a 503, and an unexpected failure a 500 whose detail names the error in one line without
SQLAlchemy's statement, parameters or link (they may hold another client's data)."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from tideflow.server.api.errors import install_error_handlers
from tideflow.server.storage.errors import database_message, is_unique_violation, out_of_space

STATEMENT = "INSERT INTO logs (message) VALUES (?)"
PARAMS = ("a secret of another client",)


class _PgError(Exception):
    """What SQLAlchemy's asyncpg adapter hands over: the message and a ``sqlstate``."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


async def _answer(exc: Exception) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(exc), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/boom")


def _no_statement(detail: str) -> None:
    for leak in ("INSERT", "[SQL", "parameters", "secret", "sqlalche.me"):
        assert leak not in detail, detail
    assert "\n" not in detail


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("orig", "status", "detail"),
    [
        (
            sqlite3.OperationalError("database or disk is full"),
            507,
            "the database is out of space: database or disk is full",
        ),
        (
            _PgError('could not extend file "base/1/2": No space left on device', "53100"),
            507,
            'the database is out of space: could not extend file "base/1/2": '
            "No space left on device",
        ),
        (
            _PgError("sorry, too many clients already", "53300"),
            503,
            "the database is out of resources: sorry, too many clients already",
        ),
        (
            _PgError("deadlock detected", "40P01"),
            503,
            "deadlock detected: the change was undone, send it again",
        ),
        (
            sqlite3.OperationalError("no such table: logs"),
            500,
            "internal server error: OperationalError: no such table: logs",
        ),
        (
            _PgError("value too long for type character varying(200)", "22001"),
            422,
            "the database refused a value: value too long for type character varying(200)",
        ),
    ],
)
async def test_database_errors(orig: Exception, status: int, detail: str) -> None:
    response = await _answer(OperationalError(STATEMENT, PARAMS, orig))
    assert response.status_code == status
    retry = getattr(orig, "sqlstate", "") == "40P01"
    assert (response.headers.get("retry-after") == "1") is retry
    assert response.json() == {"detail": detail}
    _no_statement(response.json()["detail"])


@pytest.mark.anyio
async def test_statement_error_names_its_cause_only() -> None:
    exc = StatementError("bad bind", STATEMENT, PARAMS, OverflowError("int too big to convert"))
    response = await _answer(exc)
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal server error: StatementError: OverflowError: int too big to convert"
    }


@pytest.mark.anyio
async def test_unexpected_error_is_one_bounded_line() -> None:
    response = await _answer(RuntimeError("first line " + "x" * 1000 + "\nsecond line"))
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert detail.startswith("internal server error: RuntimeError: first line x")
    assert "second line" not in detail and len(detail) < 400


def test_classification() -> None:
    def wrap(orig: Any) -> IntegrityError:
        return IntegrityError(STATEMENT, PARAMS, orig)

    assert is_unique_violation(wrap(sqlite3.IntegrityError("UNIQUE constraint failed: x.id")))
    assert is_unique_violation(wrap(_PgError("duplicate key value", "23505")))
    assert not is_unique_violation(wrap(sqlite3.IntegrityError("FOREIGN KEY constraint failed")))
    assert not is_unique_violation(wrap(_PgError("violates foreign key", "23503")))
    assert not out_of_space(wrap(_PgError("too many clients", "53300")))
    pg = wrap(_PgError("<class 'asyncpg.exceptions.DiskFullError'>: could not extend", "53100"))
    assert out_of_space(pg) and database_message(pg) == "could not extend"
