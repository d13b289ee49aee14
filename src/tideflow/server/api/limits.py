"""Request-body limits, applied once for every HTTP route before the body is parsed.

One check at the door instead of one per schema, so no route can forget it:

- **size**: a body above ``server_max_request_bytes`` is answered 413 naming the limit (from its
  ``Content-Length`` without reading it, or as soon as the streamed bytes pass the limit);
- **nesting**: JSON nested deeper than ``server_max_json_depth`` is answered 422; parsing,
  validating or storing it could recurse past the interpreter's limit;
- **lone surrogates**: JSON text holding a lone surrogate (``"\\udc80"``, or its raw UTF-8 bytes,
  which Python's ``json`` also decodes) is answered 422 naming the field: stored, it would make
  every later read that carries it fail. Run-log batches are the exception: one bad character must
  not lose a batch, so there each lone surrogate becomes U+FFFD (as NUL characters do).

The checks are pure functions (:func:`body_problem`); :class:`LimitsMiddleware` is the ASGI shell.
The common case costs two byte counts and one regex search of the body; large bodies are checked
in a worker thread so the event loop keeps answering.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tideflow.schemas.limits import (
    escape_lone_surrogates,
    has_lone_surrogate,
    json_text_depth,
    lone_surrogate_path,
    replace_lone_surrogates,
    surrogate_problem,
)

__all__ = [
    "LENIENT_TEXT_PATHS",
    "BodyProblem",
    "LimitsMiddleware",
    "body_problem",
    "too_large_detail",
]

LENIENT_TEXT_PATHS = frozenset({"/api/logs/", "/api/logs"})
"""POST bodies whose lone surrogates are replaced by U+FFFD instead of refused (run logs)."""

_THREAD_ABOVE = 1 << 20  # bytes: bodies larger than this are checked off the event loop
# A surrogate's JSON escape (\uD800-\uDFFF), or its UTF-8 bytes (ED A0..BF xx), which json.loads
# decodes with "surrogatepass". Only a hit costs a parse, to tell a valid pair from a lone one.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


@dataclass
class BodyProblem:
    """Why a body is refused (``status``, ``detail``, ``errors``), or a replacement ``body``."""

    status: int = 0
    detail: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)
    body: bytes | None = None


def too_large_detail(max_bytes: int) -> str:
    return (
        f"request body is larger than the limit of {max_bytes} bytes "
        "(TIDEFLOW_SERVER_MAX_REQUEST_BYTES)"
    )


def _loc_text(loc: tuple[str | int, ...]) -> str:
    return escape_lone_surrogates(".".join(str(p) for p in loc))


def _text_at(value: Any, path: tuple[str | int, ...]) -> str:
    # The string at ``path``, or the key ending it when the key is what holds the surrogate.
    parent = None
    for part in path:
        parent, value = value, value[part]
    if not path or (isinstance(value, str) and has_lone_surrogate(value)):
        return str(value)
    return str(path[-1]) if isinstance(parent, dict) else ""


def body_problem(body: bytes, *, max_depth: int, lenient_text: bool = False) -> BodyProblem | None:
    """Why a JSON request ``body`` must be refused, or a cleaned body, or None when it may pass.

    Bodies that are not JSON pass: the route's own parsing refuses them with its usual answer.
    """
    if json_text_depth(body, max_depth) > max_depth:
        detail = (
            f"body: JSON nested deeper than the limit of {max_depth} levels "
            "(TIDEFLOW_SERVER_MAX_JSON_DEPTH)"
        )
        msg = f"nested deeper than {max_depth} levels"
        return BodyProblem(422, detail, [{"type": "value_error", "loc": ["body"], "msg": msg}])
    if _MAYBE_SURROGATE.search(body) is None:
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    where = lone_surrogate_path(value, ("body",))
    if where is None:
        return None  # only valid pairs (or an escaped backslash before "u")
    if lenient_text:
        cleaned = json.dumps(replace_lone_surrogates(value), ensure_ascii=False)
        return BodyProblem(body=cleaned.encode())
    msg = escape_lone_surrogates(surrogate_problem(_text_at(value, where[1:])))
    loc = [escape_lone_surrogates(p) if isinstance(p, str) else p for p in where]
    return BodyProblem(
        422, f"{_loc_text(where)}: {msg}", [{"type": "value_error", "loc": loc, "msg": msg}]
    )


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name.lower() == b"content-type":
            return b"json" in value.lower()
    return True  # FastAPI reads a body without a content type as JSON too


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class LimitsMiddleware:
    """ASGI middleware applying the body limits to every HTTP request (websockets pass through)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": too_large_detail(self.max_body_bytes)}, status_code=413)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = None
        if body and _is_json(scope):
            lenient = scope["method"] == "POST" and scope["path"] in LENIENT_TEXT_PATHS
            if len(body) > _THREAD_ABOVE:
                problem = await anyio.to_thread.run_sync(self._check, body, lenient)
            else:
                problem = self._check(body, lenient)
        if problem is not None and problem.body is None:
            content = {"detail": problem.detail, "errors": problem.errors}
            await JSONResponse(content, status_code=problem.status)(scope, receive, send)
            return
        if problem is not None and problem.body is not None:
            body = problem.body
            scope = dict(scope)
            scope["headers"] = [
                (k, str(len(body)).encode() if k.lower() == b"content-length" else v)
                for k, v in scope["headers"]
            ]
        await self.app(scope, _replay([body], None, receive), send)

    def _check(self, body: bytes, lenient: bool) -> BodyProblem | None:
        return body_problem(body, max_depth=self.max_json_depth, lenient_text=lenient)


def _replay(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then defers to the real one."""
    pending: list[Message] = [
        {"type": "http.request", "body": b"".join(chunks), "more_body": False}
    ]
    if last is not None:
        pending = [last]

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
