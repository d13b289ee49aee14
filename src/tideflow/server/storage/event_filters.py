"""EventFilter as SQL: the WHERE conditions that select exactly the events ``EventFilter.includes``
accepts, on SQLite and PostgreSQL.

Name and id matching is case-sensitive on both backends: ``GLOB`` on SQLite (its ``LIKE`` ignores
ASCII case), ``LIKE`` on PostgreSQL, each with its own escaping of the literal parts. Related
criteria go through ``event_resources`` (one row per related resource, indexed by resource id and
by role) and, when labels are
involved, through the event's ``related`` JSON, so that one related resource satisfies them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tideflow.schemas.events import EventFilter
from tideflow.server.storage.dialect import jsonb
from tideflow.server.storage.tables import event_resources, events

__all__ = ["filter_clauses", "first_related_row", "pattern_clause", "related_rows"]


def _glob_literal(text: str) -> str:
    # In GLOB, '*', '?' and '[' are special; a one-character class makes each literal.
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def pattern_clause(
    column: sa.ColumnElement[Any], pattern: str, dialect: str, *, prefix: bool = False
) -> sa.ColumnElement[bool]:
    """``column`` matches ``pattern`` (``*`` = any run of characters), or starts with it if
    ``prefix`` (then ``*`` is literal), case-sensitively."""
    if not prefix and "*" not in pattern:
        return column == pattern
    parts = [pattern] if prefix else pattern.split("*")
    if dialect == "postgresql":
        like = "%".join(_like_literal(p) for p in parts) + ("%" if prefix else "")
        return column.like(like, escape="\\")
    glob = "*".join(_glob_literal(p) for p in parts) + ("*" if prefix else "")
    return column.op("GLOB", is_comparison=True)(glob)


def _value_clause(
    value: sa.ColumnElement[Any], expected: str | Sequence[str], dialect: str
) -> sa.ColumnElement[bool]:
    """SQL for ``label_value_matches(expected, value)``; ``value`` is NULL when the label is absent."""
    entries = [expected] if isinstance(expected, str) else list(expected)
    positives = [e for e in entries if not e.startswith("!")]
    negatives = [e[1:] for e in entries if e.startswith("!")]
    excluded = sa.or_(sa.false(), *(pattern_clause(value, n, dialect) for n in negatives))
    if not positives:
        return sa.or_(value.is_(None), sa.not_(excluded))
    return sa.and_(
        value.is_not(None),
        sa.or_(*(pattern_clause(value, p, dialect) for p in positives)),
        sa.not_(excluded),
    )


def _label(obj: sa.ColumnElement[Any], label: str, dialect: str) -> sa.ColumnElement[Any]:
    """The text value of key ``label`` in the JSON object ``obj`` (NULL when absent)."""
    if dialect == "postgresql":
        return sa.type_coerce(obj, jsonb()).op("->>", return_type=sa.String)(
            sa.literal(label, sa.String)
        )
    each = sa.func.json_each(obj).table_valued("key", "value").alias()
    return (
        sa.select(each.c.value).where(each.c.key == sa.literal(label, sa.String)).scalar_subquery()
    )


def _labels_clause(
    obj: sa.ColumnElement[Any], spec: dict[str, str | list[str]], dialect: str
) -> sa.ColumnElement[bool]:
    return sa.and_(
        sa.true(), *(_value_clause(_label(obj, k, dialect), v, dialect) for k, v in spec.items())
    )


def _any_of(
    column: sa.ColumnElement[Any],
    exact: list[str] | None,
    prefixes: list[str] | None,
    patterns: list[str] | None,
    dialect: str,
) -> sa.ColumnElement[bool]:
    options: list[sa.ColumnElement[bool]] = []
    if exact:
        options.append(column.in_(exact))
    options += [pattern_clause(column, p, dialect, prefix=True) for p in prefixes or ()]
    options += [pattern_clause(column, p, dialect) for p in patterns or ()]
    return sa.or_(sa.false(), *options)


def _row_matches(er: Any, flt: EventFilter) -> list[sa.ColumnElement[bool]]:
    conds = [er.position > 0, er.resource_id.in_(flt.related_ids or [])]
    if flt.related_roles is not None:
        conds.append(er.role.in_(flt.related_roles))
    return conds


def related_rows(flt: EventFilter) -> list[sa.ColumnElement[bool]] | None:
    """Conditions on ``event_resources`` rows: an event has one when the related criteria accept it,
    or None when the criteria are not decided by those rows alone (no ids, or labels)."""
    if flt.related_ids is None or flt.related_labels is not None:
        return None
    return _row_matches(event_resources.c, flt)


def first_related_row(flt: EventFilter) -> sa.ColumnElement[bool]:
    """Of the rows ``related_rows`` accepts, only each event's first: a join on them has no
    duplicates."""
    earlier = event_resources.alias("earlier")
    er = event_resources.c
    return sa.not_(
        sa.exists(
            sa.select(1).where(
                earlier.c.event_id == er.event_id,
                earlier.c.position < er.position,
                *_row_matches(earlier.c, flt),
            )
        )
    )


def _related_clause(flt: EventFilter, dialect: str) -> sa.ColumnElement[bool] | None:
    if flt.related_ids is None and flt.related_roles is None and flt.related_labels is None:
        return None
    er = event_resources.c
    if flt.related_labels is None:
        # Indexed: ids by (resource_id, occurred), roles by (role, resource_id).
        sub = sa.select(er.event_id).where(er.position > 0)
        if flt.related_ids is not None:
            sub = sub.where(er.resource_id.in_(flt.related_ids))
        if flt.related_roles is not None:
            sub = sub.where(er.role.in_(flt.related_roles))
        return events.c.id.in_(sub)
    # One related resource (a JSON object of the array) must satisfy every criterion together.
    if dialect == "postgresql":
        item = (
            sa.func.jsonb_array_elements(sa.type_coerce(events.c.related, jsonb()))
            .table_valued("value")
            .alias()
        )
        obj: sa.ColumnElement[Any] = item.c.value
    else:
        item = sa.func.json_each(events.c.related).table_valued("value").alias()
        obj = item.c.value
    conds = [_labels_clause(obj, flt.related_labels, dialect)]
    if flt.related_ids is not None:
        conds.append(_label(obj, "tideflow.resource.id", dialect).in_(flt.related_ids))
    if flt.related_roles is not None:
        conds.append(_label(obj, "tideflow.resource.role", dialect).in_(flt.related_roles))
    exact = sa.exists(sa.select(1).select_from(item).where(*conds))
    if flt.related_ids is None:
        return exact
    # The indexed lookup narrows the candidates; the JSON check decides.
    ids = sa.select(er.event_id).where(er.position > 0, er.resource_id.in_(flt.related_ids))
    return sa.and_(events.c.id.in_(ids), exact)


def filter_clauses(
    flt: EventFilter, dialect: str, *, for_page: bool = False, related: bool = True
) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions on ``events`` for ``flt`` (order, limit and cursor left to the caller).

    ``for_page``: the conditions of a newest/oldest page. On SQLite a name prefix or pattern then
    does not use the (event, occurred) index: for a broad prefix that index means sorting every
    match, while walking (occurred, id) in page order stops after one page of matches.
    ``related=False`` leaves out the related criteria (the caller joins ``related_rows``).
    """
    c = events.c
    event_column: sa.ColumnElement[Any] = c.event
    if for_page and dialect == "sqlite" and (flt.event_prefixes or flt.event_patterns):
        event_column = c.event.op("||", return_type=sa.String)(sa.literal("", sa.String))
    out: list[sa.ColumnElement[bool]] = []
    if flt.ids is not None:
        out.append(c.id.in_(flt.ids))
    if flt.occurred_after is not None:
        out.append(c.occurred >= flt.occurred_after)
    if flt.occurred_before is not None:
        out.append(c.occurred <= flt.occurred_before)
    names = (flt.event_names, flt.event_prefixes, flt.event_patterns)
    if any(n is not None for n in names):
        exact = _any_of(c.event, names[0], None, None, dialect) if names[0] else sa.false()
        out.append(sa.or_(exact, _any_of(event_column, None, names[1], names[2], dialect)))
    if flt.exclude_event_prefixes:
        out.append(sa.not_(_any_of(c.event, None, flt.exclude_event_prefixes, None, dialect)))
    if flt.resource_ids is not None or flt.resource_id_prefixes is not None:
        out.append(
            _any_of(c.resource_id, flt.resource_ids, flt.resource_id_prefixes, None, dialect)
        )
    if flt.resource_labels is not None:
        out.append(_labels_clause(c.resource, flt.resource_labels, dialect))
    related_clause = _related_clause(flt, dialect) if related else None
    if related_clause is not None:
        out.append(related_clause)
    if flt.any_resource_ids is not None:
        # The primary resource through events' own index, related ones through event_resources.
        sub = sa.select(event_resources.c.event_id).where(
            event_resources.c.resource_id.in_(flt.any_resource_ids)
        )
        out.append(sa.or_(c.resource_id.in_(flt.any_resource_ids), c.id.in_(sub)))
    return out
