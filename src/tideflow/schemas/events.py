"""Events: the event model, its validation (with reasons), label matching, and the event-feed filter.

An event says that something happened (``event``) to a resource (``resource``), naming other
resources involved (``related``, each with a ``role``). Resources are label maps; the labels
``tideflow.resource.id``, ``tideflow.resource.name`` and ``tideflow.resource.role`` are reserved.
Label matching (``*`` wildcards, ``!`` negation, lists as any-of) is defined once here and used by
``EventFilter`` and by trigger specifications.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from tideflow.schemas.limits import (
    MAX_EVENT_BYTES,
    MAX_LABEL_NAME_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_NESTING,
    escape_lone_surrogates,
    has_lone_surrogate,
    json_text_depth,
    lone_surrogate_path,
    surrogate_problem,
)
from tideflow.schemas.matching import (
    MAX_EVENT_NAME_LENGTH,
    LabelSpec,
    event_name_problem,
    label_value_matches,
    labels_match,
    name_matches,
    validate_label_spec,
)

__all__ = [
    "MAX_EVENT_NAME_LENGTH",
    "MAX_LABELS",
    "MAX_RELATED",
    "RESOURCE_ID",
    "RESOURCE_NAME",
    "RESOURCE_ROLE",
    "AnyEvent",
    "Event",
    "EventFilter",
    "EventPage",
    "LabelSpec",
    "ReceivedEvent",
    "RelatedResource",
    "Resource",
    "decode_cursor",
    "encode_cursor",
    "event_limits_problem",
    "event_name_problem",
    "event_problem",
    "event_size_problem",
    "label_value_matches",
    "labels_match",
    "name_matches",
    "uuid_after",
    "validate_label_spec",
]

RESOURCE_ID = "tideflow.resource.id"
RESOURCE_NAME = "tideflow.resource.name"
RESOURCE_ROLE = "tideflow.resource.role"
MAX_LABELS = 500
MAX_RELATED = 100


def uuid_after(prefix: str, resource_id: str) -> UUID | None:
    """The id in ``<prefix><uuid>`` (``tideflow.flow-run.<id>``), None for any other resource id."""
    if not resource_id.startswith(prefix):
        return None
    try:
        return UUID(resource_id[len(prefix) :])
    except ValueError:
        return None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------------------------
# Resources and events


class Resource(RootModel[dict[str, str]]):
    """A resource as a label map (str -> str) that must hold ``tideflow.resource.id``."""

    root: dict[str, str]

    @model_validator(mode="after")
    def _check(self) -> Resource:
        self._check_labels()
        return self

    def _check_labels(self) -> None:
        if not self.root.get(RESOURCE_ID):
            raise ValueError(f"resource has no {RESOURCE_ID!r} label")
        if len(self.root) > MAX_LABELS:
            raise ValueError(
                f"resource has {len(self.root)} labels, above the limit of {MAX_LABELS}"
            )
        # Joined first: one C-speed test for the usual all-ASCII labels.
        if not ("".join(self.root).isascii() and "".join(self.root.values()).isascii()):
            for label, value in self.root.items():
                if has_lone_surrogate(label):
                    raise ValueError(f"label name {label[:80]!r} {surrogate_problem(label)}")
                if has_lone_surrogate(value):
                    raise ValueError(f"label {label[:80]!r} {surrogate_problem(value)}")

    @property
    def id(self) -> str:
        return self.root[RESOURCE_ID]

    @property
    def name(self) -> str | None:
        return self.root.get(RESOURCE_NAME)

    def get(self, label: str, default: str | None = None) -> str | None:
        return self.root.get(label, default)

    def __getitem__(self, label: str) -> str:
        return self.root[label]

    def __contains__(self, label: object) -> bool:
        return label in self.root

    def labels(self) -> dict[str, str]:
        """A copy of the label map."""
        return dict(self.root)


class RelatedResource(Resource):
    """A resource involved in an event, in a ``tideflow.resource.role`` (flow, deployment, creator, tag…)."""

    def _check_labels(self) -> None:
        super()._check_labels()
        if not self.root.get(RESOURCE_ROLE):
            raise ValueError(
                f"related resource {self.root[RESOURCE_ID]!r} has no {RESOURCE_ROLE!r} label"
            )

    @property
    def role(self) -> str:
        return self.root[RESOURCE_ROLE]


def _payload_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return f"payload must be a JSON object, got {type(payload).__name__}"
    try:
        text = json.dumps(payload, allow_nan=False)
    except RecursionError:
        return f"payload is nested deeper than the limit of {MAX_NESTING} levels"
    except (TypeError, ValueError) as exc:
        return f"payload is not JSON: {exc}"
    # ASCII output: every surrogate is an escape; only a hit costs a walk (a pair is no problem).
    where = lone_surrogate_path(payload, ("payload",)) if "\\ud" in text else None
    if where is not None:
        return escape_lone_surrogates(
            f"{_loc(where)} {surrogate_problem(_text_at(payload, where))}"
        )
    depth = json_text_depth(text, MAX_NESTING)
    if depth > MAX_NESTING:
        return f"payload is nested deeper than the limit of {MAX_NESTING} levels"
    return None


def _text_at(payload: Any, where: tuple[str | int, ...]) -> str:
    # The string (or the key) at ``where`` (which starts with "payload"), for the message.
    value = payload
    for part in where[1:]:
        value = value[part]
    return value if isinstance(value, str) and has_lone_surrogate(value) else str(where[-1])


def _labels_problem(labels: dict[str, str]) -> tuple[str | None, bool]:
    """The first label above its length limit (or None), and whether the labels are *small*:
    values at most MAX_LABEL_VALUE_LENGTH and names at most MAX_LABEL_NAME_LENGTH characters in
    all (the usual few short labels)."""
    # Total lengths first (two C-speed joins; labels are usually a few short strings), the
    # loop only to name an offending label.
    if len("".join(labels.values())) <= MAX_LABEL_VALUE_LENGTH and (
        len("".join(labels)) <= MAX_LABEL_NAME_LENGTH
    ):
        return None, True
    for label, value in labels.items():
        if len(label) > MAX_LABEL_NAME_LENGTH:
            return (
                f"label name {label[:40]!r}... is {len(label)} characters, above the limit of "
                f"{MAX_LABEL_NAME_LENGTH}"
            ), False
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            return (
                f"label {label[:80]!r} is {len(value)} characters, above the limit of "
                f"{MAX_LABEL_VALUE_LENGTH}"
            ), False
    return None, False


# At least the compact JSON bytes of small labels (see _labels_problem): each character takes at
# most 12 bytes as JSON escapes, at most MAX_LABEL_NAME_LENGTH + 1 labels (one may have an empty
# name) take 6 bytes each for quotes, colon and comma, and 2 for the braces.
_SMALL_LABELS_BYTES = 12 * (MAX_LABEL_VALUE_LENGTH + MAX_LABEL_NAME_LENGTH)
_SMALL_LABELS_BYTES += 6 * (MAX_LABEL_NAME_LENGTH + 1) + 2
_EVENT_FIELDS_BYTES = 512  # at least the id, times, follows and the key names as JSON


def _labels_bytes_bound(labels: dict[str, str]) -> int:
    # As above, for labels of any size.
    names, values = "".join(labels), "".join(labels.values())
    per_char = 6 if names.isascii() and values.isascii() else 12
    return per_char * (len(names) + len(values)) + 6 * len(labels) + 2


def event_size_problem(
    event: Event, payload_bytes: int | None = None, *, small_labels: bool = False
) -> str | None:
    """Why ``event`` is too big: its compact JSON above ``MAX_EVENT_BYTES``, or None.

    ``payload_bytes`` (the payload's compact JSON size) when the caller has it; ``small_labels``
    when every label map of the event is known small (see _labels_problem). Cheap for the usual
    event: an upper bound from those sizes; the exact size is computed only when the bound passes
    the limit.
    """
    if payload_bytes is None:
        payload_bytes = len(json.dumps(event.payload, separators=(",", ":")))
    bound = payload_bytes + 6 * len(event.event) + _EVENT_FIELDS_BYTES
    if small_labels and bound + _SMALL_LABELS_BYTES * (1 + len(event.related)) <= MAX_EVENT_BYTES:
        return None
    bound += sum(_labels_bytes_bound(r.root) for r in (event.resource, *event.related))
    if bound <= MAX_EVENT_BYTES:
        return None
    size = len(json.dumps(event.model_dump(mode="json"), separators=(",", ":")))
    if size <= MAX_EVENT_BYTES:
        return None
    return (
        f"the event is {size} bytes as JSON, above the limit of {MAX_EVENT_BYTES} bytes "
        "(1.5 MB) for one event"
    )


def event_limits_problem(event: Event, payload_bytes: int | None = None) -> str | None:
    """Why a client may not send ``event``: a label name or value (an id) above its length limit,
    or the whole event above ``MAX_EVENT_BYTES`` (``payload_bytes``: see event_size_problem).

    Checked where events come in (the SDK's ``emit_event``, the server's ingest), not by the model:
    events the server builds from data it already holds must not start failing on a new limit.
    """
    problem, small = _labels_problem(event.resource.root)
    if problem:
        return f"resource: {problem}"
    for i, related in enumerate(event.related):
        problem, fits = _labels_problem(related.root)
        if problem:
            return f"related[{i}]: {problem}"
        small = small and fits
    return event_size_problem(event, payload_bytes, small_labels=small)


class Event(BaseModel):
    """Something that happened to a resource; ``id`` is set by the client and used to drop duplicates."""

    model_config = ConfigDict(extra="forbid")

    id: UUID = Field(default_factory=uuid4)
    occurred: AwareDatetime = Field(
        default_factory=_utcnow, description="When it happened (client clock)."
    )
    event: str = Field(description="Dotted name, e.g. 'tideflow.flow-run.Completed'.")
    resource: Resource
    related: list[RelatedResource] = Field(default_factory=list, max_length=MAX_RELATED)
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: UUID | None = Field(None, description="Id of an event known to precede this one.")

    @field_validator("event")
    @classmethod
    def _check_name(cls, value: str) -> str:
        problem = event_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("occurred")
    @classmethod
    def _to_utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)

    @field_validator("payload")
    @classmethod
    def _check_payload(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = _payload_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def related_by_role(self, role: str) -> list[RelatedResource]:
        """Related resources in ``role``, in event order."""
        return [r for r in self.related if r.role == role]

    @property
    def resource_in_role(self) -> dict[str, RelatedResource]:
        """Role -> related resource (the last one given when a role occurs more than once)."""
        return {r.role: r for r in self.related}

    @property
    def resources_in_role(self) -> dict[str, list[RelatedResource]]:
        """Role -> every related resource in that role."""
        out: dict[str, list[RelatedResource]] = {}
        for r in self.related:
            out.setdefault(r.role, []).append(r)
        return out


class ReceivedEvent(Event):
    """An event as the server stored it, with the server's ``received`` time."""

    received: AwareDatetime = Field(default_factory=_utcnow)

    @field_validator("received")
    @classmethod
    def _received_utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)


def _event_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "received" if "received" in value else "event"
    return "received" if isinstance(value, ReceivedEvent) else "event"


# An Event or a ReceivedEvent, each kept as what it is through a JSON round trip.
AnyEvent = Annotated[
    Annotated[ReceivedEvent, Tag("received")] | Annotated[Event, Tag("event")],
    Discriminator(_event_kind),
]


def _loc(parts: Iterable[int | str]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def event_problem(raw: Mapping[str, Any], max_payload_bytes: int) -> str | None:
    """Why the server must refuse this one raw event (a JSON object), or None to accept it."""
    if not isinstance(raw, Mapping):
        return f"an event must be a JSON object, got {type(raw).__name__}"
    payload = raw.get("payload", {})
    problem = _payload_problem(payload)
    if problem:
        return problem
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > max_payload_bytes:
        return f"payload is {size} bytes, above the limit of {max_payload_bytes} bytes"
    try:
        event = Event.model_validate(dict(raw))
    except RecursionError:
        return f"the event is nested deeper than the limit of {MAX_NESTING} levels"
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        where = _loc(err["loc"])
        # The reason goes back to the sender as JSON text: no lone surrogate from the input in it.
        return escape_lone_surrogates(f"{where}: {msg}" if where else msg)
    return event_limits_problem(event, size)


# ---------------------------------------------------------------------------------------------
# Feed filter and pages


def encode_cursor(occurred: dt.datetime, event_id: UUID) -> str:
    """An opaque page cursor naming the last event of a page (its ``occurred`` and ``id``)."""
    raw = f"{occurred.astimezone(dt.UTC).isoformat()}|{event_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, UUID]:
    """Inverse of ``encode_cursor``; raises ValueError('invalid cursor') on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        occurred = dt.datetime.fromisoformat(when)
        if occurred.tzinfo is None:
            raise ValueError
        return occurred, UUID(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


def _any_name(
    value: str, exact: list[str] | None, prefixes: list[str] | None, patterns: list[str] | None
) -> bool:
    return (
        (exact is not None and value in exact)
        or (prefixes is not None and any(value.startswith(p) for p in prefixes))
        or (patterns is not None and any(name_matches(p, value) for p in patterns))
    )


class EventFilter(BaseModel):
    """Which events to read from the feed. Criteria are AND-ed; ``None`` (the default) means no constraint.

    Within a group (names; resource ids; any-resource ids) the given lists are alternatives: an
    event passes the group when it matches any entry of any list in it. Label specifications use
    ``labels_match`` semantics: ``*`` wildcards, ``!`` negation, list = any of. ``includes`` is the
    reference implementation; storage must return exactly the events it accepts.
    """

    model_config = ConfigDict(extra="forbid")

    ids: list[UUID] | None = Field(None, description="Events with one of these ids.")
    occurred_after: AwareDatetime | None = Field(None, description="occurred >= this (inclusive).")
    occurred_before: AwareDatetime | None = Field(None, description="occurred <= this (inclusive).")
    event_names: list[str] | None = Field(
        None, description="Name group: names equal to one of these."
    )
    event_prefixes: list[str] | None = Field(
        None, description="Name group: names starting with one of these."
    )
    event_patterns: list[str] | None = Field(
        None,
        description="Name group: names matching one of these '*' patterns (e.g. 'tideflow.*.Failed').",
    )
    exclude_event_prefixes: list[str] | None = Field(
        None, description="Drop events whose name starts with one of these (e.g. heartbeats)."
    )
    resource_ids: list[str] | None = Field(
        None, description="Resource group: resource id equal to one of these."
    )
    resource_id_prefixes: list[str] | None = Field(
        None, description="Resource group: resource id starting with one of these."
    )
    resource_labels: dict[str, str | list[str]] | None = Field(
        None, description="The primary resource's labels satisfy this specification."
    )
    related_ids: list[str] | None = Field(
        None, description="Related criteria: related id is one of these."
    )
    related_roles: list[str] | None = Field(
        None, description="Related criteria: related role is one of these."
    )
    related_labels: dict[str, str | list[str]] | None = Field(
        None,
        description="Related criteria: the related resource's labels satisfy this specification.",
    )
    any_resource_ids: list[str] | None = Field(
        None, description="The primary or any related resource has one of these ids."
    )
    order: Literal["newest", "oldest"] = Field(
        "newest", description="newest: (occurred, id) descending."
    )
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(
        None,
        description=(
            "Opaque, from EventPage.next_cursor: continue after that event in the chosen order, i.e. "
            "(occurred, id) strictly below it for 'newest', strictly above it for 'oldest'."
        ),
    )

    @field_validator("resource_labels", "related_labels")
    @classmethod
    def _check_spec(cls, value: dict[str, Any] | None) -> dict[str, str | list[str]] | None:
        return None if value is None else validate_label_spec(value)

    @field_validator("cursor")
    @classmethod
    def _check_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)
        return value

    def _related_ok(self, event: Event) -> bool:
        if self.related_ids is None and self.related_roles is None and self.related_labels is None:
            return True
        # One single related resource must satisfy every related criterion together.
        for r in event.related:
            if self.related_ids is not None and r.id not in self.related_ids:
                continue
            if self.related_roles is not None and r.role not in self.related_roles:
                continue
            if self.related_labels is not None and not labels_match(self.related_labels, r.root):
                continue
            return True
        return False

    def includes(self, event: Event) -> bool:
        """True when ``event`` passes every criterion (ignores limit, order and cursor)."""
        if self.ids is not None and event.id not in self.ids:
            return False
        if self.occurred_after is not None and event.occurred < self.occurred_after:
            return False
        if self.occurred_before is not None and event.occurred > self.occurred_before:
            return False
        names = (self.event_names, self.event_prefixes, self.event_patterns)
        if any(n is not None for n in names) and not _any_name(event.event, *names):
            return False
        if self.exclude_event_prefixes and any(
            event.event.startswith(p) for p in self.exclude_event_prefixes
        ):
            return False
        if (
            self.resource_ids is not None or self.resource_id_prefixes is not None
        ) and not _any_name(event.resource.id, self.resource_ids, self.resource_id_prefixes, None):
            return False
        if self.resource_labels is not None and not labels_match(
            self.resource_labels, event.resource.root
        ):
            return False
        if not self._related_ok(event):
            return False
        if self.any_resource_ids is not None:
            ids = {event.resource.id, *(r.id for r in event.related)}
            if not ids.intersection(self.any_resource_ids):
                return False
        return True

    def after_cursor(self, event: Event) -> bool:
        """True when ``event`` comes after the cursor in this filter's order (True without a cursor)."""
        if self.cursor is None:
            return True
        occurred, ident = decode_cursor(self.cursor)
        key, mark = (event.occurred, event.id.int), (occurred, ident.int)
        return key < mark if self.order == "newest" else key > mark


class EventPage(BaseModel):
    """One page of the feed; ``next_cursor`` is None on the last page, ``total`` counts all matches."""

    events: list[ReceivedEvent]
    next_cursor: str | None = None
    total: int = Field(ge=0)
