"""``AssetTrigger``: run a deployment once each of its upstream assets was materialized again.

It is a compound trigger (``require="all"``, no time window) with one child per asset, expecting
``tideflow.asset.materialization.succeeded`` with that asset as resource. A compound forgets its
children's firings when it fires, so "all fired" means "every asset was materialized since the
last run this trigger started" — with the exactly-once firing and ``tideflow automation explain``
of every trigger. On the server it is stored as that compound trigger; ``assets`` is the shorthand.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tideflow.events._deployment_triggers import DeploymentCompoundTrigger
from tideflow.schemas.assets import MATERIALIZATION_SUCCEEDED, asset_key_problem
from tideflow.schemas.triggers import MAX_CHILDREN

__all__ = ["AssetTrigger"]


def _key(value: Any) -> str:
    # An Asset (tideflow.assets) or its key; not imported: defining a trigger stays cheap.
    key = getattr(value, "key", value)
    problem = asset_key_problem(key)
    if problem:
        raise ValueError(problem)
    return str(key)


class AssetTrigger(DeploymentCompoundTrigger):
    """Runs its deployment when every asset in ``assets`` (keys or ``Asset`` objects; ``*`` is a
    wildcard in a key) has been materialized successfully since this trigger's last run.

    ``require="any"`` (or a number) runs it when that many of them have been. Every other option of
    a deployment trigger works (``parameters`` templates see the last event, ``schedule_after``…).
    """

    assets: list[str] = Field(min_length=1, max_length=MAX_CHILDREN, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _children(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "assets" not in data:
            return data
        if data.get("triggers"):
            raise ValueError("an AssetTrigger takes assets=[...], not triggers")
        raw = data["assets"]
        if isinstance(raw, str) or not isinstance(raw, list | tuple):
            raw = [raw]
        keys = list(dict.fromkeys(_key(a) for a in raw))
        children = [
            {
                "type": "event",
                "expect": [MATERIALIZATION_SUCCEEDED],
                "match": {"tideflow.resource.id": key},
            }
            for key in keys
        ]
        return {**data, "assets": keys, "triggers": children}
