"""``{{ variables.name }}`` in action templates: which variables a template names, found without
parsing it, and their values read in one bounded query.

Only names written out in the template are read (``variables.name`` or ``variables['name']``), at
most ``MAX_TEMPLATE_VARIABLES`` per action, each value at most ``MAX_VARIABLE_VALUE_BYTES``: the
work an automation causes stays bounded however many variables the server holds. Finding the names
is one regex pass over the template strings (C speed, linear), so it can run on the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.server.storage.variables import MAX_TEMPLATE_VARIABLES, read_variable_values

__all__ = ["MAX_TEMPLATE_VARIABLES", "read_template_variables", "referenced_variables"]

_REFERENCE = re.compile(
    r"""\bvariables\s*(?:\.\s*([a-z0-9_]+)|\[\s*(['"])([a-z0-9_-]{1,255})\2\s*\])"""
)


def referenced_variables(value: Any) -> set[str]:
    """Names of the variables the template strings inside ``value`` name, at most
    MAX_TEMPLATE_VARIABLES of them."""
    names: set[str] = set()
    stack = [value]
    while stack and len(names) < MAX_TEMPLATE_VARIABLES:
        item = stack.pop()
        if isinstance(item, str):
            if "variables" in item and "{" in item:
                for match in _REFERENCE.finditer(item):
                    names.add(match.group(1) or match.group(3))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return set(sorted(names)[:MAX_TEMPLATE_VARIABLES])


async def read_template_variables(session: AsyncSession, value: Any) -> dict[str, Any]:
    """The ``variables`` of the template context for ``value``: the named variables that exist."""
    names = referenced_variables(value)
    if not names:
        return {}
    return await read_variable_values(session, names)
