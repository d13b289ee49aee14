"""The paused run's Resume form: the fields of the input its pause waits for (from the JSON schema
the pause stored: defaults, enums as selects, descriptions, required), and the pause's facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRun, StateType
from tideflow.schemas.run_inputs import keyset_for
from tideflow.schemas.states import utcnow
from tideflow.server.storage import flow_run_inputs as input_storage
from tideflow.server.ui.forms import ParamField, parameter_fields

__all__ = ["ResumeForm", "input_fields", "resume_form"]

_MAX_REF_DEPTH = 8  # a schema's local $refs are inlined this deep (a cycle stops there)
_MAX_DESCRIPTION = (
    20_000  # characters of the description rendered (on the event loop: keep it small)
)


@dataclass(frozen=True)
class ResumeForm:
    """What the run page shows for a paused run."""

    suspended: bool
    deadline: dt.datetime | None
    fields: list[ParamField] = field(default_factory=list)
    waits_for_input: bool = False
    title: str = ""
    description: Markup | None = None


def _markdown(text: str) -> Markup:
    # Raw HTML shown as text, as artifacts are; a fresh parser per call (not documented thread-safe).
    return Markup(MarkdownIt("commonmark", {"html": False}).render(text[:_MAX_DESCRIPTION]))


def _inline(node: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """``node`` with local ``#/$defs/X`` references (and one-element ``allOf`` wrappers) replaced
    by what they point at, so enums and nested models read like inline ones."""
    if depth > _MAX_REF_DEPTH or not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return _inline({**target, **rest}, defs, depth + 1)
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return _inline({**_inline(all_of[0], defs, depth + 1), **rest}, defs, depth + 1)
    return node


def input_fields(schema: Mapping[str, Any]) -> list[ParamField]:
    """The form's fields for an input model's JSON schema, in the model's field order."""
    defs = schema.get("$defs") or schema.get("definitions") or {}
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not isinstance(defs, Mapping):
        return []
    inlined = {name: _inline(prop, defs) for name, prop in properties.items()}
    return parameter_fields({**schema, "properties": inlined}, {})


async def resume_form(session: AsyncSession, run: FlowRun) -> ResumeForm | None:
    """The Resume form of ``run`` when it is paused or suspended; None otherwise."""
    state = run.state
    if state is None or state.type is not StateType.PAUSED:
        return None
    pause = await input_storage.read_pause(session, run.id, utcnow())
    extra = state.details.model_extra or {}
    form = ResumeForm(
        suspended=bool(extra.get("pause_reschedule")), deadline=state.details.pause_timeout
    )
    if pause.schema is None:
        return form
    key = extra.get("pause_key")
    description = None
    if isinstance(key, str):
        found = await input_storage.read_input(session, run.id, keyset_for(key)["description"])
        if found is not None and isinstance(found.value, str):
            description = _markdown(found.value)
    return ResumeForm(
        suspended=form.suspended,
        deadline=form.deadline,
        fields=input_fields(pause.schema),
        waits_for_input=True,
        title=str(pause.schema.get("title") or ""),
        description=description,
    )
