"""Stored task results: one record per key in a result storage (a local folder, or any fsspec URL).

A record is a JSON header line (serializer, when it was written, when it expires, which task wrote
it) followed by the serialized value. Local records are written to a temporary file and renamed,
so a reader never sees half a record; an unreadable or expired record reads as absent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

from tideflow.exceptions import TideflowError

__all__ = ["SERIALIZERS", "ResultRecord", "ResultSerializationError", "ResultStore"]

logger = logging.getLogger("tideflow.results")
SERIALIZERS = ("pickle", "cloudpickle", "json")


class ResultSerializationError(TideflowError):
    """A task's value cannot be stored with its serializer."""


@dataclass(frozen=True)
class ResultRecord:
    """One stored result: the value, where it lives, and until when it may be reused."""

    value: Any
    location: str
    created: dt.datetime
    expiration: dt.datetime | None


def _dumps(value: Any, serializer: str) -> bytes:
    if serializer == "json":
        return json.dumps(value).encode()
    return bytes(cloudpickle.dumps(value))


def _loads(data: bytes, serializer: str) -> Any:
    if serializer == "json":
        return json.loads(data)
    return pickle.loads(data)


class ResultStore:
    """Read and write result records under ``location``: a folder, or an fsspec URL."""

    def __init__(self, location: str | Path, serializer: str = "pickle") -> None:
        if serializer not in SERIALIZERS:
            raise ValueError(
                f"result_serializer must be one of {', '.join(SERIALIZERS)}, got {serializer!r}"
            )
        self.serializer = serializer
        text = str(location)
        self.remote = "://" in text and not text.startswith("file://")
        self.location = text.rstrip("/") if self.remote else str(Path(text.removeprefix("file://")))

    def _path(self, key: str) -> str:
        return f"{self.location}/{key}" if self.remote else os.path.join(self.location, key)

    def read(self, key: str, now: dt.datetime | None = None) -> ResultRecord | None:
        """The record stored under ``key``, or None when absent, unreadable or expired."""
        path = self._path(key)
        try:
            raw = self._read_bytes(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read stored result %s: %s", path, exc)
            return None
        try:
            head, _, body = raw.partition(b"\n")
            meta = json.loads(head)
            expiration = (
                dt.datetime.fromisoformat(meta["expiration"]) if meta["expiration"] else None
            )
            if expiration is not None and expiration <= (now or dt.datetime.now(dt.UTC)):
                return None
            value = _loads(body, meta["serializer"])
        except Exception as exc:
            logger.warning("ignoring unreadable stored result %s: %s", path, exc)
            return None
        return ResultRecord(value, path, dt.datetime.fromisoformat(meta["created"]), expiration)

    def write(
        self, key: str, value: Any, *, task_name: str, expiration: dt.datetime | None = None
    ) -> ResultRecord:
        """Store ``value`` under ``key``; ResultSerializationError names the task when it cannot."""
        try:
            body = _dumps(value, self.serializer)
        except Exception as exc:
            raise ResultSerializationError(
                f"the result of task {task_name!r} ({type(value).__name__}) cannot be stored "
                f"with the {self.serializer} serializer: {exc}"
            ) from None
        created = dt.datetime.now(dt.UTC)
        meta = {
            "serializer": self.serializer,
            "created": created.isoformat(),
            "expiration": expiration.isoformat() if expiration else None,
            "task": task_name,
        }
        data = json.dumps(meta).encode() + b"\n" + body
        path = self._path(key)
        self._write_bytes(path, data)
        return ResultRecord(value, path, created, expiration)

    def _read_bytes(self, path: str) -> bytes:
        if not self.remote:
            with open(path, "rb") as fh:
                return fh.read()
        import fsspec  # lazy: only remote storages need it

        with fsspec.open(path, "rb") as fh:
            data: bytes = fh.read()
        return data

    def _write_bytes(self, path: str, data: bytes) -> None:
        if self.remote:
            import fsspec  # lazy: only remote storages need it

            with fsspec.open(path, "wb") as fh:
                fh.write(data)
            return
        os.makedirs(self.location, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.location, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
