"""Typed input for flow runs: ``RunInput`` models, ``send_input`` and ``receive_input``.

A run receives values under keys (``<prefix>-<uuid>``; the prefix defaults to the input type's
name, so a sender and a receiver of the same type meet without agreeing on anything else).
``receive_input`` hands them over oldest first, waiting (polling every ``poll_interval`` seconds) up
to ``timeout`` for the next one. With ``with_ack=True`` each input is acknowledged on the server as it
is handed over, and no later ``receive_input`` (in this process or another, e.g. a suspended run's
second start) delivers it again. ``RunInput.respond`` answers the run that sent an input.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar, Generic, TypeVar, cast
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, PrivateAttr, create_model

from tideflow.engine.clients import sync_client
from tideflow.engine.context import current_run
from tideflow.schemas.run_inputs import FlowRunInput, FlowRunInputFilter
from tideflow.settings import get_settings

__all__ = [
    "AutomaticRunInput",
    "GetInputHandler",
    "RunInput",
    "RunInputMetadata",
    "asend_input",
    "receive_input",
    "run_input_subclass_from_type",
    "send_input",
]

T = TypeVar("T")
_SENDER_PREFIX = "tideflow.flow-run."
_MAX_EXCLUDED = 1000  # the server's bound on one filter's exclude_keys


class RunInputMetadata(BaseModel):
    """Where a received input came from: its key, its sender and the run that received it."""

    key: str
    sender: str | None = None
    receiver: UUID


class RunInput(BaseModel):
    """A typed input: subclass it with the fields a run waits for or sends.

    ``_description`` (markdown; ``with_initial_data(description=...)`` sets it) is shown above the
    resume form in the UI.
    """

    model_config = ConfigDict(extra="forbid")

    _description: ClassVar[str | None] = None
    _metadata: RunInputMetadata | None = PrivateAttr(default=None)

    @property
    def metadata(self) -> RunInputMetadata | None:
        """Set on inputs handed over by ``receive_input``; None on one built here."""
        return self._metadata

    @classmethod
    def key_prefix(cls) -> str:
        return f"{cls.__name__.lower()}-auto"

    @classmethod
    def with_initial_data(cls, description: str | None = None, **defaults: Any) -> type[RunInput]:
        """This model with other defaults (the values a resume form starts with) and description."""
        fields: dict[str, Any] = {}
        for name, value in defaults.items():
            if name not in cls.model_fields:
                raise ValueError(f"{cls.__name__} has no field {name!r}")
            fields[name] = (cls.model_fields[name].annotation, value)
        model: type[RunInput] = create_model(cls.__name__, __base__=cls, **fields)
        model._description = description if description is not None else cls._description
        return model

    def send_to(
        self, flow_run_id: UUID, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        """Send this input to the run ``flow_run_id``."""
        _send(self, flow_run_id, sender, key_prefix)

    async def asend_to(
        self, flow_run_id: UUID, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        await asyncio.to_thread(_send, self, flow_run_id, sender, key_prefix)

    def respond(
        self, run_input: Any, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        """Send ``run_input`` back to the run that sent this input."""
        target = self._sender_run()
        send_input(run_input, target, sender=sender, key_prefix=key_prefix)

    async def arespond(
        self, run_input: Any, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        target = self._sender_run()
        await asend_input(run_input, target, sender=sender, key_prefix=key_prefix)

    def _sender_run(self) -> UUID:
        sender = self._metadata.sender if self._metadata is not None else None
        if not sender or not sender.startswith(_SENDER_PREFIX):
            raise RuntimeError(
                "respond() needs an input received from a flow run (its metadata.sender names "
                f"the run); this one's sender is {sender!r}"
            )
        return UUID(sender.removeprefix(_SENDER_PREFIX))

    @classmethod
    def receive(
        cls,
        timeout: float | None = 3600,
        poll_interval: float = 10,
        raise_timeout_error: bool = False,
        exclude_keys: set[str] | None = None,
        key_prefix: str | None = None,
        flow_run_id: UUID | None = None,
        with_ack: bool = False,
    ) -> GetInputHandler[Any]:
        """Inputs of this type sent to the current run (or ``flow_run_id``); see ``receive_input``."""
        return GetInputHandler(
            cls, timeout=timeout, poll_interval=poll_interval,
            raise_timeout_error=raise_timeout_error, exclude_keys=exclude_keys,
            key_prefix=key_prefix, flow_run_id=flow_run_id, with_metadata=True, with_ack=with_ack,
        )  # fmt: skip


class AutomaticRunInput(RunInput, Generic[T]):
    """The model made for a plain type (``int``, ``list[str]``…): one field, ``value``."""

    value: T


def run_input_subclass_from_type(input_type: Any) -> type[RunInput]:
    """The RunInput model for ``input_type``: itself, a RunInput twin of a pydantic model, or an
    ``AutomaticRunInput`` with one ``value`` field of that type."""
    if isinstance(input_type, type) and issubclass(input_type, RunInput):
        return input_type
    if isinstance(input_type, type) and issubclass(input_type, BaseModel):
        bases: Any = (input_type, RunInput)
        return cast("type[RunInput]", create_model(input_type.__name__, __base__=bases))
    name = getattr(input_type, "__name__", None) or str(input_type).replace("typing.", "")
    base: Any = AutomaticRunInput[input_type]
    return cast("type[RunInput]", create_model(name, __base__=base, value=(input_type, ...)))


def _is_automatic(model: type[RunInput]) -> bool:
    return issubclass(model, AutomaticRunInput)


def _current_sender() -> str | None:
    ctx = current_run()
    return f"{_SENDER_PREFIX}{ctx.flow_run.id}" if ctx is not None else None


def _client() -> Any:
    ctx = current_run()
    return sync_client(ctx.settings if ctx is not None else get_settings())


def _send(value: RunInput, flow_run_id: UUID, sender: str | None, key_prefix: str | None) -> None:
    prefix = key_prefix or type(value).key_prefix()
    data = value.model_dump(mode="json")
    _client().create_flow_run_input(
        flow_run_id, f"{prefix}-{uuid4()}", data, sender or _current_sender()
    )


def _as_run_input(value: Any) -> RunInput:
    if isinstance(value, RunInput):
        return value
    model = run_input_subclass_from_type(type(value))
    if isinstance(value, BaseModel):
        return model.model_validate(value.model_dump())
    return model(value=value)  # type: ignore[call-arg]


def send_input(
    run_input: Any, flow_run_id: UUID, sender: str | None = None, key_prefix: str | None = None
) -> None:
    """Send ``run_input`` (a RunInput, a pydantic model or a plain value) to the run ``flow_run_id``.

    The sender defaults to the current flow run (so the receiver can ``respond``).
    """
    _send(_as_run_input(run_input), flow_run_id, sender, key_prefix)


async def asend_input(
    run_input: Any, flow_run_id: UUID, sender: str | None = None, key_prefix: str | None = None
) -> None:
    await asyncio.to_thread(_send, _as_run_input(run_input), flow_run_id, sender, key_prefix)


class GetInputHandler(Generic[T]):
    """Iterates (``for`` or ``async for``) over the inputs of one type sent to a run, oldest first."""

    def __init__(
        self,
        input_type: Any,
        *,
        timeout: float | None = 3600,
        poll_interval: float = 10,
        raise_timeout_error: bool = False,
        exclude_keys: set[str] | None = None,
        key_prefix: str | None = None,
        flow_run_id: UUID | None = None,
        with_metadata: bool = False,
        with_ack: bool = False,
    ) -> None:
        if flow_run_id is None:
            ctx = current_run()
            if ctx is None:
                raise RuntimeError("receive_input needs flow_run_id outside a flow run")
            flow_run_id = ctx.flow_run.id
        if exclude_keys and len(exclude_keys) > _MAX_EXCLUDED:
            raise ValueError(f"exclude_keys holds more than {_MAX_EXCLUDED} keys")
        self.model = run_input_subclass_from_type(input_type)
        self.flow_run_id = flow_run_id
        self.timeout = timeout
        self.poll_interval = max(0.01, poll_interval)
        self.raise_timeout_error = raise_timeout_error
        self.key_prefix = key_prefix or self.model.key_prefix()
        self.with_metadata = with_metadata or not _is_automatic(self.model)
        self.with_ack = with_ack
        self._excluded = set(exclude_keys or ())
        self._cursor: dt.datetime | None = None
        self._at_cursor: set[str] = set()  # keys handed over whose time is the cursor
        self._buffer: deque[FlowRunInput] = deque()

    def _fetch(self) -> None:
        flt = FlowRunInputFilter(
            prefix=f"{self.key_prefix}-",
            exclude_keys=sorted(self._excluded | self._at_cursor)[:_MAX_EXCLUDED],
            unacked_only=self.with_ack,
            created_after=self._cursor,
            limit=100,
        )
        self._buffer.extend(_client().filter_flow_run_inputs(self.flow_run_id, flt))

    def _take(self) -> Any | None:
        while self._buffer:
            item = self._buffer.popleft()
            if item.key in self._excluded or item.key in self._at_cursor:
                continue
            if self._cursor is None or item.created > self._cursor:
                self._cursor, self._at_cursor = item.created, set()
            self._at_cursor.add(item.key)
            if self.with_ack:
                _client().ack_flow_run_input(self.flow_run_id, item.key)
            return self._convert(item)
        return None

    def _convert(self, item: FlowRunInput) -> Any:
        value = self.model.model_validate(item.value)
        value._metadata = RunInputMetadata(
            key=item.key, sender=item.sender, receiver=self.flow_run_id
        )
        if not self.with_metadata:
            return value.value  # type: ignore[attr-defined]
        return value

    def next(self) -> Any:
        """The next input; waits up to ``timeout`` (StopIteration, or TimeoutError with
        ``raise_timeout_error``)."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            if not self._buffer:
                self._fetch()
            found = self._take() if self._buffer else None
            if found is not None:
                return found
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                if self.raise_timeout_error:
                    raise TimeoutError(
                        f"no input with key prefix {self.key_prefix!r} arrived for flow run "
                        f"{self.flow_run_id} within {self.timeout:g} s"
                    )
                raise StopIteration
            time.sleep(
                self.poll_interval if remaining is None else min(self.poll_interval, remaining)
            )

    async def anext(self) -> Any:
        try:
            return await asyncio.to_thread(self.next)
        except StopIteration:
            raise StopAsyncIteration from None

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return self.next()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        return await self.anext()


def receive_input(
    input_type: Any,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    raise_timeout_error: bool = False,
    exclude_keys: set[str] | None = None,
    key_prefix: str | None = None,
    flow_run_id: UUID | None = None,
    with_metadata: bool = False,
    with_ack: bool = False,
) -> GetInputHandler[Any]:
    """Inputs of ``input_type`` sent to the current run (or ``flow_run_id``), oldest first.

    Plain types yield their values (``with_metadata=True``: the RunInput, with ``.metadata`` and
    ``.respond``); models yield model instances. The iteration ends after ``timeout`` seconds
    without a new input (None: waits for ever). ``with_ack``: see the module's docstring.
    """
    return GetInputHandler(
        input_type, timeout=timeout, poll_interval=poll_interval,
        raise_timeout_error=raise_timeout_error, exclude_keys=exclude_keys,
        key_prefix=key_prefix, flow_run_id=flow_run_id, with_metadata=with_metadata,
        with_ack=with_ack,
    )  # fmt: skip
