"""The automation index: which automations an event could matter to, without scanning them all.

Each enabled automation is filed under the keys ``evaluate.index_keys`` gives its trigger tree:
exact event names, ``*`` patterns (each distinct pattern tested once per event, however many
automations share it), "any event", and — when every leaf pins the resource id — the resource ids.
``IndexKeys.could_match`` is the final check, so the index can only narrow, never change, results.
"""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

from tideflow.schemas.events import Event, name_matches
from tideflow.server.triggers.evaluate import AnyTrigger, IndexKeys, index_keys

__all__ = ["AutomationIndex"]


class AutomationIndex:
    """Automation ids by event name, name pattern, resource id, or 'any event'."""

    def __init__(self) -> None:
        self._keys: dict[UUID, IndexKeys] = {}
        self._by_name: dict[str, set[UUID]] = defaultdict(set)
        self._by_pattern: dict[str, set[UUID]] = defaultdict(set)
        self._by_resource: dict[str, set[UUID]] = defaultdict(set)
        self._any: set[UUID] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, automation_id: object) -> bool:
        return automation_id in self._keys

    def add(self, automation_id: UUID, trigger: AnyTrigger) -> None:
        """File (or re-file) an automation under its trigger's keys."""
        self.remove(automation_id)
        keys = index_keys(trigger)
        self._keys[automation_id] = keys
        if keys.resource_ids is not None:
            for rid in keys.resource_ids:
                self._by_resource[rid].add(automation_id)
            return
        if keys.all_events:
            self._any.add(automation_id)
            return
        for name in keys.event_names:
            self._by_name[name].add(automation_id)
        for pattern in keys.event_patterns:
            self._by_pattern[pattern].add(automation_id)

    def remove(self, automation_id: UUID) -> None:
        keys = self._keys.pop(automation_id, None)
        if keys is None:
            return
        self._any.discard(automation_id)
        for table, entries in (
            (self._by_resource, keys.resource_ids or ()),
            (self._by_name, keys.event_names),
            (self._by_pattern, keys.event_patterns),
        ):
            for entry in entries:
                ids = table.get(entry)
                if ids is not None:
                    ids.discard(automation_id)
                    if not ids:
                        del table[entry]

    def candidates(self, event: Event) -> list[UUID]:
        """Automations this event could change, each checked with ``could_match``."""
        found: set[UUID] = set(self._any)
        found.update(self._by_name.get(event.event, ()))
        for pattern, ids in self._by_pattern.items():
            if name_matches(pattern, event.event):
                found.update(ids)
        found.update(self._by_resource.get(event.resource.id, ()))
        return [ident for ident in found if self._keys[ident].could_match(event)]
